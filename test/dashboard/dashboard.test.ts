/**
 * GET /dashboard (SPEC §7) in a real headless Chromium: the page asks for the API key,
 * then shows what real WebSocket clients do to a real server (connections, channels and
 * their members, message rates, nodes) and refreshes itself, talking to nobody else.
 * Waits poll the page's DOM with generous timeouts; nothing asserts on timing.
 */
import assert from 'node:assert/strict';
import { after, test, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import type { HandlerOptions } from '../../src/handler.js';
import { closeBrowser, openPage } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * The little of the DOM that the functions run in the page use: the project compiles
 * without lib "dom", and these names exist only in the browser.
 */
declare const document: { querySelector(selector: string): { textContent: string | null } | null };
declare const window: { injected?: boolean };

const API_KEY = 'dashboard-test-key';
const TOKEN_SECRET = 'dashboard-test-secret-of-at-least-32-bytes';
/** The page polls every 2 s; these waits are for things that must happen, on a noisy machine. */
const GENEROUS_MS = 20_000;

after(closeBrowser);

async function start(t: TestContext, options: HandlerOptions = { apiKey: API_KEY }): Promise<TestServer> {
  const server = await startServer({ maxMessagesPerMinute: 0, ...options });
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, server: TestServer, token?: string): Promise<TestClient> {
  const client = await TestClient.connect(server.url, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });
  t.after(() => client.close());
  return client;
}

async function openDashboard(page: Page, server: TestServer): Promise<void> {
  const response = await page.goto(`${server.httpUrl}/dashboard`);
  assert.equal(response?.status(), 200);
  assert.match(response.headers()['content-type'] ?? '', /^text\/html\b/);
}

async function enterKey(page: Page, key: string): Promise<void> {
  await page.fill('#api-key', key);
  await page.click('#key-form button[type="submit"]');
}

async function signIn(page: Page, server: TestServer): Promise<void> {
  await openDashboard(page, server);
  await enterKey(page, API_KEY);
  await page.waitForSelector('#dashboard', { state: 'visible', timeout: GENEROUS_MS });
}

/** Waits until the element's text is `expected`; fails with what it showed instead. */
async function waitForText(page: Page, selector: string, expected: string): Promise<void> {
  try {
    await page.waitForFunction(
      ([selector, expected]) => document.querySelector(selector)?.textContent?.trim() === expected,
      [selector, expected] as const,
      { timeout: GENEROUS_MS, polling: 100 },
    );
  } catch (error) {
    const shown = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
    throw new Error(`${selector} did not show ${JSON.stringify(expected)} (it shows ${JSON.stringify(shown)})`, { cause: error });
  }
}

const subscribersOf = (channel: string): string => `#channels-table tr[data-channel="${channel}"] [data-testid="subscribers"]`;

test('the page asks for the key, says so when it is wrong, and with the right one shows the connection and channel a client made', async (t) => {
  const server = await start(t);
  const page = await openPage(t);
  if (!page) return;
  const client = await connect(t, server);
  await client.subscribe('chat.room.1');

  await openDashboard(page, server);
  assert.equal(await page.isVisible('#key-form'), true);
  assert.equal(await page.isVisible('#dashboard'), false, 'nothing is shown before a key is accepted');
  assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
  assert.equal(await page.locator('label[for="api-key"]').textContent(), 'API key');

  await enterKey(page, 'not-the-key');
  await page.waitForFunction(() => /wrong key/i.test(document.querySelector('#key-message')?.textContent ?? ''), null, { timeout: GENEROUS_MS });
  assert.equal(await page.isVisible('#dashboard'), false);

  await enterKey(page, API_KEY);
  await page.waitForSelector('#dashboard', { state: 'visible', timeout: GENEROUS_MS });
  assert.equal(await page.isVisible('#key-form'), false);
  await waitForText(page, '#connections', '1');
  await waitForText(page, '#channels-count', '1');
  await waitForText(page, subscribersOf('chat.room.1'), '1');
  assert.equal(await page.locator('#nodes-table tbody tr').count(), 1, 'one node: this server');
  await waitForText(page, '#nodes-table tbody tr [data-testid="state"]', 'ready');
});

test('the page refreshes itself: connections, subscribers and message rates follow what clients do', async (t) => {
  const server = await start(t);
  const page = await openPage(t);
  if (!page) return;
  const publisher = await connect(t, server);
  await publisher.subscribe('chat.room.1');
  await signIn(page, server);
  await waitForText(page, '#connections', '1');
  await waitForText(page, subscribersOf('chat.room.1'), '1');
  await waitForText(page, '#rate-in', '0');
  await waitForText(page, '#rate-out', '0');

  const listener = await connect(t, server);
  await listener.subscribe('chat.room.1');
  await waitForText(page, '#connections', '2');
  await waitForText(page, subscribersOf('chat.room.1'), '2');

  // Publish until the page shows both rates moving: a burst, then a steady trickle so the
  // server's average stays above zero whenever the page happens to poll.
  let publishing = true;
  const publishes = (async () => {
    for (let sent = 0; publishing; sent++) {
      await publisher.publish('chat.room.1', { text: `message ${sent}` });
      if (sent >= 50) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await page.waitForFunction(
      () => !['0', '–'].includes(document.querySelector('#rate-in')?.textContent ?? '0') && !['0', '–'].includes(document.querySelector('#rate-out')?.textContent ?? '0'),
      null,
      { timeout: GENEROUS_MS, polling: 100 },
    );
  } finally {
    publishing = false;
    await publishes;
  }
  const rateIn = Number((await page.textContent('#rate-in'))?.replace(/,/g, ''));
  const rateOut = Number((await page.textContent('#rate-out'))?.replace(/,/g, ''));
  assert.ok(rateIn > 0, `messages in/s shows ${rateIn}`);
  assert.ok(rateOut >= rateIn, `each message reaches both subscribers: out ${rateOut}, in ${rateIn}`);
  // The chart drew both series from the polls.
  for (const series of ['#chart-in', '#chart-out']) {
    const path = (await page.getAttribute(series, 'd')) ?? '';
    assert.match(path, /^M[\d.]+ [\d.]+L/, `${series} is a line of several points`);
  }

  listener.close();
  await listener.closed;
  await waitForText(page, '#connections', '1');
  await waitForText(page, subscribersOf('chat.room.1'), '1');
});

test('a reload keeps the key for the tab, and "Change key" forgets it', async (t) => {
  const server = await start(t);
  const page = await openPage(t);
  if (!page) return;
  await connect(t, server);
  await signIn(page, server);
  await waitForText(page, '#connections', '1');

  await page.reload();
  await page.waitForSelector('#dashboard', { state: 'visible', timeout: GENEROUS_MS });
  assert.equal(await page.isVisible('#key-form'), false);
  await waitForText(page, '#connections', '1');

  await page.click('#sign-out');
  await page.waitForSelector('#key-form', { state: 'visible', timeout: GENEROUS_MS });
  await page.reload();
  await page.waitForSelector('#key-form', { state: 'visible', timeout: GENEROUS_MS });
  assert.equal(await page.isVisible('#dashboard'), false);
});

test('clicking a channel lists its members, and a user id full of markup is shown as text', async (t) => {
  const server = await start(t, { apiKey: API_KEY, auth: { secret: TOKEN_SECRET } });
  const page = await openPage(t);
  if (!page) return;
  const hostileUserId = '<img src=x onerror="window.injected=true">';
  const token = await new SignJWT({ user_id: hostileUserId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TOKEN_SECRET));
  const authenticated = await connect(t, server, token);
  const anonymous = await connect(t, server);
  await authenticated.subscribe('chat.room.1');
  await anonymous.subscribe('chat.room.1');

  await signIn(page, server);
  await waitForText(page, subscribersOf('chat.room.1'), '2');
  await page.click('#channels-table tr[data-channel="chat.room.1"] button');
  const memberRow = (client: TestClient): string => `#members-table tr[data-connection="${String(client.welcome.connection_id)}"]`;
  await page.waitForSelector(memberRow(authenticated), { timeout: GENEROUS_MS });
  await page.waitForSelector(memberRow(anonymous), { timeout: GENEROUS_MS });
  assert.equal(await page.locator(`${memberRow(authenticated)} td`).nth(1).textContent(), hostileUserId);
  assert.equal(await page.locator(`${memberRow(anonymous)} td`).nth(1).textContent(), 'anonymous');
  assert.equal(await page.locator('#members img').count(), 0, 'the user id was not parsed as HTML');
  assert.equal(await page.evaluate(() => window.injected), undefined);
  assert.equal(await page.getAttribute('#channels-table tr[data-channel="chat.room.1"]', 'aria-current'), 'true');

  // The open member list refreshes with the rest.
  anonymous.close();
  await page.waitForSelector(memberRow(anonymous), { state: 'detached', timeout: GENEROUS_MS });
});

test('without WS_API_KEY the page says that the API is disabled', async (t) => {
  const server = await start(t, {});
  const page = await openPage(t);
  if (!page) return;
  await openDashboard(page, server);
  await enterKey(page, 'any-key');
  await waitForText(page, '#key-message', 'API disabled (no WS_API_KEY): start the server with WS_API_KEY set.');
  assert.equal(await page.isVisible('#dashboard'), false);
});

test('the page requests nothing from any other origin', async (t) => {
  const server = await start(t);
  const page = await openPage(t);
  if (!page) return;
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  const client = await connect(t, server);
  await client.subscribe('chat.room.1');

  await signIn(page, server);
  await waitForText(page, subscribersOf('chat.room.1'), '1');
  await page.click('#channels-table tr[data-channel="chat.room.1"] button');
  await page.waitForSelector('#members-table tbody tr', { timeout: GENEROUS_MS });
  // A few refreshes, so that whatever the page loads late has been loaded.
  const polls = (): number => requested.filter((url) => url.endsWith('/api/stats')).length;
  const before = polls();
  for (const deadline = Date.now() + GENEROUS_MS; polls() < before + 2; ) {
    if (Date.now() > deadline) throw new Error('the page stopped polling /api/stats');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  assert.ok(requested.length > 0);
  // data: URLs (the empty favicon) are no request to anybody.
  const elsewhere = requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== server.httpUrl);
  assert.deepEqual(elsewhere, []);
});
