/**
 * A real headless Chromium (Debian's `chromium` package, driven by playwright-core) for
 * the tests of pages. One browser per test file, a fresh context (cookies, storage) per
 * test. Without Chromium on this machine the test is skipped, except under CI=true, where
 * it fails: CI installs it, so a missing one is a broken CI, not a reason to skip.
 */
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** No sandbox (CI runs as root in a container); nothing that phones home on its own. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser: Promise<Browser> | null = null;

/**
 * A new page in its own context, closed after the test; null when the test was skipped
 * (`const page = await openPage(t); if (!page) return;`). Uncaught errors in the page
 * fail the test.
 */
export async function openPage(t: TestContext): Promise<Page | null> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is not installed, and CI=true: browser tests must run in CI (.ci/run installs chromium)`);
    t.skip(`${CHROMIUM} is not installed (apt-get install chromium)`);
    return null;
  }
  browser ??= chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const context = await (await browser).newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors: Error[] = [];
  page.on('pageerror', (error) => pageErrors.push(error));
  t.after(async () => {
    await context.close();
    if (pageErrors.length > 0) throw new Error(`uncaught errors in the page: ${pageErrors.map((error) => error.message).join('; ')}`);
  });
  return page;
}

/** Closes the file's browser; register it with `after(closeBrowser)`. */
export async function closeBrowser(): Promise<void> {
  const launched = browser;
  browser = null;
  if (launched !== null) await (await launched).close();
}
