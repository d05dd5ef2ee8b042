/**
 * The client with no `ws` at all: the global WebSocket of Node 22 and later (undici), which
 * Node 20 has behind --experimental-websocket. It reports a refused or failed handshake
 * differently from `ws` (an error event, no status, and in Node 22 no close event), so the
 * whole check of test/runtimes/client-runtimes.mjs runs under it in a child process:
 * connect, publish, presence, history, a cut and recovery, a bad token, a server down.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer } from '../helpers/server.js';

const API_KEY = 'global-websocket-test-api-key-of-32-bytes';
const SCRIPT = fileURLToPath(new URL('../runtimes/client-runtimes.mjs', import.meta.url));

test("the client over Node's own (undici) WebSocket passes every runtime check", async (t) => {
  const server = await startServer({
    apiKey: API_KEY,
    auth: { secret: 'global-websocket-test-secret-of-32-bytes' },
    history: { size: 100, ttl: 60 },
    presence: true,
    maxMessagesPerMinute: 0,
  });
  t.after(() => server.close());
  const { stdout, code } = await new Promise<{ stdout: string; code: number }>((resolve) => {
    execFile(
      process.execPath,
      ['--experimental-websocket', '--no-warnings', SCRIPT],
      { env: { ...process.env, SWITCHBOARD_URL: server.url, SWITCHBOARD_API_KEY: API_KEY }, timeout: 60_000 },
      (error, out, err) => resolve({ stdout: `${out}${err}`, code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1 }),
    );
  });
  assert.match(stdout, /WebSocket: function/, stdout);
  assert.doesNotMatch(stdout, /^FAIL/m, stdout);
  assert.match(stdout, /^all checks passed/m, stdout);
  assert.equal(code, 0, stdout);
});
