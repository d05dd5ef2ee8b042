/**
 * The open-file limit (README "Running in production"): past it, connections are closed as
 * soon as they are accepted and nothing is logged, so the CLI warns at start when the
 * limit is below what the configuration needs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openFileLimit, openFileWarning } from '../../src/cli/open-file-limit.js';
import { CLI_PATH, cliEnv, freePort, parseLogLines, tempDir, waitUntil, GENEROUS_MS } from '../helpers/cli.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('reads the soft limit on open files from /proc/self/limits, unlimited too, and null without the file', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'limits');
  writeFileSync(file, LIMITS);
  assert.equal(openFileLimit(file), 1024);
  writeFileSync(file, LIMITS.replace('1024                 524288', 'unlimited            unlimited'));
  assert.equal(openFileLimit(file), Number.POSITIVE_INFINITY);
  assert.equal(openFileLimit(join(dir, 'missing')), null);
  if (process.platform === 'linux') assert.equal(typeof openFileLimit(), 'number', 'this process has a limit');
});

test('warns below 10,000 files without WS_MAX_CONNECTIONS, and below the connections it asks for with it', () => {
  assert.match(openFileWarning(1024, 0) ?? '', /^the open-file limit is 1024: this node can hold about 960 connections.*ulimit -n 65536/);
  assert.equal(openFileWarning(65536, 0), null);
  assert.equal(openFileWarning(Number.POSITIVE_INFINITY, 0), null);
  assert.equal(openFileWarning(null, 0), null, 'no word where the limit cannot be read');
  assert.equal(openFileWarning(1024, 500), null, '500 connections fit in 1024 files');
  assert.match(openFileWarning(20_000, 50_000) ?? '', /to at least 50064 for WS_MAX_CONNECTIONS=50000$/);
});

test('the CLI started under a low limit logs the warning once, and serves all the same', { skip: process.platform !== 'linux' }, async (t) => {
  const port = await freePort();
  const child = spawn('/bin/sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${CLI_PATH}" start`], { env: cliEnv({ WS_PORT: String(port), WS_HOST: '127.0.0.1' }), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  // The warning follows the listening line, and the two may reach the pipe in separate chunks.
  await waitUntil(() => stdout.includes('listening on') && stdout.includes('the open-file limit is 256'), GENEROUS_MS, 'the server to listen and warn');
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  const warnings = parseLogLines(stdout).filter((line) => typeof line.msg === 'string' && line.msg.startsWith('the open-file limit is 256'));
  assert.equal(warnings.length, 1, stdout);
  assert.equal(warnings[0]?.level, 40);
});
