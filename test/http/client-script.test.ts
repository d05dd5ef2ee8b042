/**
 * GET /client.js (SPEC §9): the built client, client/dist/switchboard-client.min.js, as one
 * ES module a page imports with no build step: its headers (JavaScript, ETag, caching, CORS),
 * 304 on If-None-Match, HEAD without a body, the same under a prefix through
 * createRequestListener; at most 5 KB gzipped; and the served module works (imported in
 * Node, its Client connects to the server that served it).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type * as ClientModule from '../../client/src/index.js';
import { WebSocketHandler } from '../../src/handler.js';
import { createRequestListener } from '../../src/http/endpoints.js';
import { request } from '../helpers/http.js';
import { NodeWebSocket, Scope, next, reach } from '../helpers/sdk.js';

const BUNDLE = readFileSync(new URL('../../client/dist/switchboard-client.min.js', import.meta.url));

async function fetchScript(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(url, { headers });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** The raw bytes of an HTTP exchange, read until the server closes: what a HEAD really answers. */
async function rawExchange(port: number, head: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.end(head);
  await once(socket, 'close');
  return Buffer.concat(chunks).toString('latin1');
}

function assertScriptHeaders(headers: Headers): void {
  assert.match(headers.get('content-type') ?? '', /^text\/javascript\b/);
  assert.match(headers.get('etag') ?? '', /^"[^"]+"$/);
  assert.match(headers.get('cache-control') ?? '', /max-age=\d+/);
  assert.equal(headers.get('access-control-allow-origin'), '*');
}

void describe('GET /client.js', () => {
  void test('answers 200 with the built bundle, as JavaScript, with an ETag, Cache-Control and CORS for any origin', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const answer = await fetchScript(`${server.httpUrl}/client.js`);
    assert.equal(answer.status, 200);
    assertScriptHeaders(answer.headers);
    // fetch asks for gzip and unpacks it: the bytes are the bundle's, the length the gzipped one's.
    assert.equal(answer.headers.get('content-encoding'), 'gzip');
    assert.equal(answer.headers.get('vary'), 'Accept-Encoding');
    assert.equal(answer.headers.get('content-length'), String(gzipSync(BUNDLE, { level: 9 }).length));
    assert.ok(answer.body.equals(BUNDLE), 'the body is client/dist/switchboard-client.min.js');
    // A client that does not take gzip gets the bundle as it is.
    const plain = await request(`${server.httpUrl}/client.js`);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['content-length'], String(BUNDLE.length));
    assert.equal(plain.body, BUNDLE.toString('utf8'));
    // The same ETag every time.
    assert.equal((await fetchScript(`${server.httpUrl}/client.js`)).headers.get('etag'), answer.headers.get('etag'));
  });

  void test('If-None-Match with its ETag answers 304 without a body; another ETag gets the script', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const etag = (await fetchScript(`${server.httpUrl}/client.js`)).headers.get('etag') as string;
    const cached = await fetchScript(`${server.httpUrl}/client.js`, { 'If-None-Match': etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    assert.equal(cached.headers.get('etag'), etag);
    const stale = await fetchScript(`${server.httpUrl}/client.js`, { 'If-None-Match': '"something-else"' });
    assert.equal(stale.status, 200);
    assert.ok(stale.body.equals(BUNDLE));
  });

  void test('HEAD answers the headers and no body', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const raw = await rawExchange(server.port, 'HEAD /client.js HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    const [head, body] = raw.split('\r\n\r\n');
    assert.match(head ?? '', /^HTTP\/1\.1 200 /);
    assert.match(head ?? '', /\r\ncontent-type: text\/javascript/i);
    assert.match(head ?? '', new RegExp(`\\r\\ncontent-length: ${BUNDLE.length}\\r\\n`, 'i'));
    assert.equal(body, '', 'nothing after the headers');
  });

  void test('is served under a prefix by createRequestListener', async (t) => {
    const handler = new WebSocketHandler({ logger: pino({ level: 'silent' }), shutdownTimeout: 1 });
    const app = createHttpServer(createRequestListener(handler, { prefix: '/switchboard' }));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    t.after(async () => {
      await new Promise((resolve) => app.close(resolve));
      await handler.close();
    });
    const base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    const answer = await fetchScript(`${base}/switchboard/client.js`);
    assert.equal(answer.status, 200);
    assertScriptHeaders(answer.headers);
    assert.ok(answer.body.equals(BUNDLE));
    assert.equal((await fetchScript(`${base}/client.js`)).status, 404, 'only under the prefix');
  });

  void test('is at most 5 KB gzipped', () => {
    const gzipped = gzipSync(BUNDLE, { level: 9 }).length;
    assert.ok(gzipped <= 5000, `${gzipped} bytes gzipped`);
  });

  void test('the served module imports in Node, exports Client and SwitchboardError, and its Client works', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const served = await fetchScript(`${server.httpUrl}/client.js`);
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-client-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'client.mjs');
    writeFileSync(file, served.body);
    const module = (await import(pathToFileURL(file).href)) as typeof ClientModule;
    assert.equal(typeof module.Client, 'function');
    assert.equal(typeof module.SwitchboardError, 'function');
    const error = new module.SwitchboardError('TIMEOUT', 'x');
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'TIMEOUT');

    const client = new module.Client(server.url, { WebSocket: NodeWebSocket, reconnect: { minDelay: 20, maxDelay: 200 } });
    scope.defer(() => client.close());
    const room = client.subscribe('bundle.check');
    await room.ready;
    await reach(client, 'connected');
    const delivered = next(room, 'message');
    assert.equal(await server.handler.publish('bundle.check', 'from the bundle'), 1);
    assert.equal((await delivered).message, 'from the bundle');
    assert.equal((await room.publish('echo')).recipients_count, 1);
  });
});
