/**
 * The README's 30-second client example, run as a user runs it (a file beside the server),
 * against a real server on a free port, with the imports pointed at this build.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startServer } from '../helpers/server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const MARKER = '<!-- quickstart-example:';

function exampleFromReadme(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  assert.notEqual(at, -1, 'the README marks its quickstart example');
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block !== null, 'a js block follows the marker');
  return block[1] as string;
}

test('the README quickstart example runs and prints what the README says it prints', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-quickstart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wsEntry = createRequire(join(root, 'package.json')).resolve('ws');
  const example = exampleFromReadme();
  assert.ok(example.includes("'ws://127.0.0.1:9501/'"), 'the example talks to npm start');
  const code = example
    .replaceAll("'ws://127.0.0.1:9501/'", `'${server.url}'`)
    .replace("from 'switchboard-client'", `from '${pathToFileURL(join(root, 'client/dist/index.js')).href}'`)
    .replace("from 'ws'", `from '${pathToFileURL(wsEntry).href}'`);
  const file = join(dir, 'demo.mjs');
  writeFileSync(file, code);

  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, [file], { cwd: dir, timeout: 30_000 }, (error, out, err) => (error === null ? resolve({ stdout: out, stderr: err }) : reject(new Error(`${error.message}\n${err}`))));
  });
  assert.equal(stderr, '');
  assert.match(stdout, /^alice sent it to 2 connections$/m);
  assert.match(stdout, /^bob got \{ text: 'hi bob' \} from \S+-\d+$/m);
});
