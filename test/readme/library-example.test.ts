/**
 * The README's Library API example is run as a user would run it (with the package's
 * import pointed at this build), so that it cannot drift from what the library does.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const MARKER = '<!-- library-example:';

function exampleFromReadme(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  assert.notEqual(at, -1, 'the README marks its library example');
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block !== null, 'a js block follows the marker');
  return block[1] as string;
}

test('the README library example runs and prints what the README says it prints', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-readme-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wsEntry = createRequire(join(root, 'package.json')).resolve('ws');
  const code = exampleFromReadme()
    .replace("from 'switchboard'", `from '${pathToFileURL(join(root, 'dist/index.js')).href}'`)
    .replace("from 'ws'", `from '${pathToFileURL(wsEntry).href}'`);
  const file = join(dir, 'library-demo.mjs');
  writeFileSync(file, code);

  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, [file], { cwd: dir, timeout: 30_000 }, (error, out, err) => (error === null ? resolve({ stdout: out, stderr: err }) : reject(new Error(`${error.message}\n${err}`))));
  });
  assert.equal(stderr, '');
  const frames = stdout
    .split('\n')
    .filter((line) => line.startsWith('client got '))
    .map((line) => JSON.parse(line.slice('client got '.length)) as Record<string, unknown>);
  const find = (predicate: (frame: Record<string, unknown>) => boolean): Record<string, unknown> => {
    const frame = frames.find(predicate);
    assert.ok(frame !== undefined, `missing frame in:\n${stdout}`);
    return frame;
  };
  assert.match(stdout, /^server: listening on ws:\/\/127\.0\.0\.1:\d+\/$/m);
  assert.match(stdout, /^server: connected \S+$/m);
  find((frame) => frame.action === 'welcome');
  assert.equal(find((frame) => frame.id === 1).success, true);
  const refused = find((frame) => frame.id === 2);
  assert.equal(refused.code, 'FORBIDDEN');
  assert.equal(refused.error, 'private channels are closed');
  assert.deepEqual(find((frame) => frame.action === 'message' && typeof frame.message === 'object' && frame.sender !== null).message, { text: 'hi', checked: true });
  assert.equal(find((frame) => frame.action === 'message' && typeof frame.message === 'string').message, 'plain text');
  assert.equal(typeof (find((frame) => frame.action === 'typing').data as { typing?: unknown }).typing, 'string');
  assert.deepEqual(find((frame) => frame.action === 'message' && frame.sender === null).message, { text: 'from the backend' });
  assert.match(stdout, /^server: published to 1 connection\(s\)$/m);
  assert.match(stdout, /^server: \S+ left with 1001$/m);
});
