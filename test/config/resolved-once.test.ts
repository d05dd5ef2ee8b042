/**
 * Configuration is resolved once, by whoever starts the process: a handler and a server
 * given resolved options take them as they are, and the files they name (TLS
 * certificate and key, JWT public key) are read once, not once per part that uses them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs, { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { WebSocketHandler } from '../../src/handler.js';
import { createServer } from '../../src/http/server.js';

const silent = pino({ level: 'silent' });

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-once-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Counts fs.readFileSync calls per path while the test runs (ESM named imports included). */
function countReads(t: TestContext): Map<string, number> {
  const reads = new Map<string, number>();
  const original = fs.readFileSync;
  t.mock.method(fs, 'readFileSync', (...args: Parameters<typeof fs.readFileSync>) => {
    const path = String(args[0]);
    reads.set(path, (reads.get(path) ?? 0) + 1);
    return original(...args);
  });
  syncBuiltinESMExports();
  t.after(() => {
    t.mock.restoreAll();
    syncBuiltinESMExports();
  });
  return reads;
}

test('the TLS files and the JWT public key are read once from loadConfig to a listening server', async (t) => {
  const dir = tempDir(t);
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const publicKey = join(dir, 'jwt.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  writeFileSync(publicKey, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
  const reads = countReads(t);

  const options = loadConfig({ cwd: dir, env: { WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: key, JWT_PUBLIC_KEY: publicKey }, options: { host: '127.0.0.1', port: 0, shutdownTimeout: 1 } });
  const handler = new WebSocketHandler({ ...options, logger: silent });
  const server = createServer({}, handler);
  t.after(() => server.close());
  await server.listen();

  assert.equal(reads.get(cert), 1, 'the certificate');
  assert.equal(reads.get(key), 1, 'the private key');
  assert.equal(reads.get(publicKey), 1, 'the JWT public key');
});

test('a handler given resolved options keeps them as they are', (t) => {
  const resolved = loadConfig({ cwd: tempDir(t), env: { WS_MAX_PAYLOAD: '4096' } });
  const handler = new WebSocketHandler({ ...resolved, logger: silent });
  assert.deepEqual(handler.options, resolved);
  assert.equal(handler.options.ssl, resolved.ssl);
});

test('a copy of resolved options with a field changed is checked again', (t) => {
  const resolved = loadConfig({ cwd: tempDir(t), env: {} });
  assert.throws(() => new WebSocketHandler({ ...resolved, maxPayload: 1, logger: silent }), (error: unknown) => error instanceof ConfigError && /WS_MAX_PAYLOAD/.test(error.message));
  resolved.redis.prefix = 'has spaces';
  assert.throws(() => new WebSocketHandler({ ...resolved, logger: silent }), (error: unknown) => error instanceof ConfigError && /REDIS_PREFIX/.test(error.message));
});
