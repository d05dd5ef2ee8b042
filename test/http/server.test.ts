/**
 * SPEC §7 and §1 over real sockets: the plain HTTP answers on the WebSocket port, the
 * WebSocket path, TLS (wss:// and https://), and the same answers from
 * createRequestListener in a plain node:http server of the application's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { ConfigError } from '../../src/errors.js';
import { WebSocketHandler, type HandlerOptions } from '../../src/handler.js';
import { createRequestListener, type RequestListenerOptions } from '../../src/http/endpoints.js';
import { TestClient, isMessageOn } from '../helpers/client.js';
import { apiRequest, assertErrorBody, assertJson, get, refusedHandshake, request } from '../helpers/http.js';
import { startServer } from '../helpers/server.js';

/** A hung handshake or request fails its test instead of the whole run. */
const SUITE = { timeout: 60_000 };

void describe('HTTP answers', SUITE, () => {
  void test('GET /healthz answers 200 {"status":"ok"} as JSON', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const answer = await get(`${server.httpUrl}/healthz`);
    assert.deepEqual(assertJson(answer, 200), { status: 'ok' });
  });

  void test('GET /readyz answers 200 {"status":"ready"} on a single node', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    assert.deepEqual(assertJson(await get(`${server.httpUrl}/readyz`), 200), { status: 'ready' });
  });

  void test('GET /readyz answers 503 with the broker\'s reason while the broker cannot reach the cluster', async (t) => {
    const { MemoryBroker } = await import('../../src/broker/memory.js');
    let reason: string | null = 'redis unavailable (127.0.0.1:6379/0): connect ECONNREFUSED';
    class CutOffBroker extends MemoryBroker {
      override notReadyReason(): string | null {
        return reason;
      }
    }
    const server = await startServer({ broker: new CutOffBroker() });
    t.after(() => server.close());
    assert.deepEqual(assertJson(await get(`${server.httpUrl}/readyz`), 503), { status: 'not_ready', reason });
    // /healthz says the process runs, whatever the broker's state.
    assert.equal((await get(`${server.httpUrl}/healthz`)).status, 200);
    reason = null;
    assert.deepEqual(assertJson(await get(`${server.httpUrl}/readyz`), 200), { status: 'ready' });
  });

  void test('a handler that is shutting down is not ready', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    assert.equal(server.handler.notReadyReason(), null);
    const closing = server.handler.close();
    assert.equal(server.handler.notReadyReason(), 'shutting down');
    await closing;
  });

  void test('a request that is not HTTP gets a JSON 400 and the connection closes', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /Content-Type: application\/json/);
    assert.ok(answer.endsWith('{"error":"malformed HTTP request"}'), answer);
    assert.equal((await get(`${server.httpUrl}/healthz`)).status, 200);
  });

  void test('an unknown path answers 404 with a JSON error body', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    assertErrorBody(await get(`${server.httpUrl}/no/such/page`), 404);
  });

  void test('a plain GET on the WebSocket path answers 426 Upgrade Required', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const answer = await get(`${server.httpUrl}/`);
    assertErrorBody(answer, 426);
    assert.equal(answer.headers.upgrade, 'websocket');
  });
});

void describe('WebSocket path (path: "/ws")', SUITE, () => {
  void test('a plain GET on /ws answers 426 and on / answers 404', async (t) => {
    const server = await startServer({ path: '/ws' });
    t.after(() => server.close());
    assertErrorBody(await get(`${server.httpUrl}/ws`), 426);
    assertErrorBody(await get(`${server.httpUrl}/`), 404);
  });

  void test('an upgrade on /ws is accepted, with or without a query string', async (t) => {
    const server = await startServer({ path: '/ws' });
    t.after(() => server.close());
    assert.match(server.url, /\/ws$/);
    const plain = await TestClient.connect(`ws://127.0.0.1:${server.port}/ws`);
    const withQuery = await TestClient.connect(`ws://127.0.0.1:${server.port}/ws?client=test`);
    assert.equal(plain.welcome.action, 'welcome');
    assert.equal(withQuery.welcome.action, 'welcome');
  });

  void test('an upgrade on another path gets HTTP 404 with a JSON error body', async (t) => {
    const server = await startServer({ path: '/ws' });
    t.after(() => server.close());
    assertErrorBody(await refusedHandshake(`ws://127.0.0.1:${server.port}/`), 404);
    assertErrorBody(await refusedHandshake(`ws://127.0.0.1:${server.port}/wsx`), 404);
    assert.equal(server.handler.connectionCount, 0);
  });
});

void describe('TLS (ssl.enabled)', SUITE, () => {
  let directory = '';
  let certPath = '';
  let keyPath = '';
  let cert = Buffer.alloc(0);

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
    certPath = join(directory, 'cert.pem');
    keyPath = join(directory, 'key.pem');
    // A subjectAltName for 127.0.0.1 lets the clients verify the certificate for real.
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    cert = readFileSync(certPath);
  });

  after(() => {
    if (directory !== '') rmSync(directory, { recursive: true, force: true });
  });

  void test('wss:// clients that trust the certificate exchange a channel message', async (t) => {
    const server = await startServer({ ssl: { enabled: true, cert: certPath, key: keyPath } });
    t.after(() => server.close());
    assert.match(server.url, /^wss:\/\//);
    const alice = await TestClient.connect(server.url, { ca: cert });
    const bob = await TestClient.connect(server.url, { ca: cert });
    await alice.subscribe('chat.room.1');
    await bob.subscribe('chat.room.1');
    const delivered = bob.next(isMessageOn('chat.room.1'));
    assert.equal((await alice.publish('chat.room.1', { text: 'over TLS' })).recipients_count, 2);
    assert.deepEqual((await delivered).message, { text: 'over TLS' });
  });

  void test('https:// GET /healthz answers 200 {"status":"ok"}', async (t) => {
    const server = await startServer({ ssl: { enabled: true, cert: certPath, key: keyPath } });
    t.after(() => server.close());
    assert.match(server.httpUrl, /^https:\/\//);
    const answer = await get(`${server.httpUrl}/healthz`, { ca: cert });
    assert.deepEqual(assertJson(answer, 200), { status: 'ok' });
  });

  void test('a plain ws:// handshake on the TLS port does not connect', async (t) => {
    const server = await startServer({ ssl: { enabled: true, cert: certPath, key: keyPath } });
    t.after(() => server.close());
    const client = new TestClient(`ws://127.0.0.1:${server.port}/`);
    await assert.rejects(client.opened);
  });
});

/**
 * A node:http server of the application's whose requests go to createRequestListener;
 * with `fallback`, as the listener's `next` (requests Switchboard leaves to the app).
 */
async function listenerServer(
  t: TestContext,
  options: RequestListenerOptions,
  fallback?: (request: IncomingMessage, response: ServerResponse) => void,
  handlerOptions: HandlerOptions = {},
): Promise<{ base: string; handler: WebSocketHandler }> {
  const handler = new WebSocketHandler({ shutdownTimeout: 1, logger: pino({ level: 'silent' }), ...handlerOptions });
  const listener = createRequestListener(handler, options);
  const server = createHttpServer((request, response) => {
    if (fallback === undefined) listener(request, response);
    else listener(request, response, () => fallback(request, response));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  handler.attach(server);
  t.after(async () => {
    await handler.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handler };
}

const fromTheApp = (_request: IncomingMessage, response: ServerResponse): void => {
  response.writeHead(200, { 'Content-Type': 'text/plain' });
  response.end('the app');
};

void describe('createRequestListener in a node:http server', SUITE, () => {
  void test('under a prefix: the endpoints answer below it, and every other path below it is a JSON 404', async (t) => {
    const { base } = await listenerServer(t, { prefix: '/sb' }, undefined, { apiKey: 'listener-test-key' });
    assert.deepEqual(assertJson(await get(`${base}/sb/healthz`), 200), { status: 'ok' });
    assert.deepEqual(assertJson(await get(`${base}/sb/readyz?probe=1`), 200), { status: 'ready' });
    assert.match((await get(`${base}/sb/metrics`)).body, /^switchboard_connections 0$/m);
    assert.equal(assertJson(await apiRequest(`${base}/sb/api/stats`, 'listener-test-key', 'GET'), 200).connections, 0);
    assertErrorBody(await apiRequest(`${base}/sb/api/nope`, 'listener-test-key', 'GET'), 404);
    assert.equal((await get(`${base}/sb/dashboard`)).status, 200);
    assert.equal((await get(`${base}/sb/dashboard/`)).status, 200, 'with a trailing slash too');
    assert.equal((await get(`${base}/sb/dashboard/index.html`)).status, 200);
    const head = await request(`${base}/sb/dashboard`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assertErrorBody(await get(`${base}/sb/nope`), 404);
    assertErrorBody(await get(`${base}/sb`), 404);
    assertErrorBody(await request(`${base}/sb/healthz`, { method: 'POST' }), 404);
    // Without `next`, paths outside the prefix get the same JSON 404, the root's included.
    assertErrorBody(await get(`${base}/healthz`), 404);
    assertErrorBody(await get(`${base}/sbx/healthz`), 404);
  });

  void test('under a prefix with next: paths outside it go to next, paths below it stay Switchboard\'s', async (t) => {
    const { base } = await listenerServer(t, { prefix: '/sb/' }, fromTheApp);
    assert.deepEqual(assertJson(await get(`${base}/sb/healthz`), 200), { status: 'ok' });
    assertErrorBody(await get(`${base}/sb/nope`), 404);
    for (const path of ['/', '/healthz', '/sbx/healthz', '/other']) {
      const answer = await get(`${base}${path}`);
      assert.equal(answer.body, 'the app', path);
    }
  });

  void test('at the root with next: only Switchboard\'s own paths (and methods) are its', async (t) => {
    const { base } = await listenerServer(t, {}, fromTheApp, { apiKey: 'listener-test-key' });
    assert.deepEqual(assertJson(await get(`${base}/healthz`), 200), { status: 'ok' });
    // The API's own paths are Switchboard's; the application keeps the rest of /api.
    assert.equal(assertJson(await apiRequest(`${base}/api/stats`, 'listener-test-key', 'GET'), 200).connections, 0);
    assertErrorBody(await apiRequest(`${base}/api/channels/news`, null, 'GET'), 401);
    for (const path of ['/api/users', '/api', '/api/channels/', '/apix']) assert.equal((await get(`${base}${path}`)).body, 'the app', path);
    assert.equal((await get(`${base}/other`)).body, 'the app');
    assert.equal((await request(`${base}/healthz`, { method: 'POST' })).body, 'the app');
  });

  void test('websocketPath: a plain GET there answers 426, wherever the prefix is', async (t) => {
    const { base } = await listenerServer(t, { prefix: '/sb', websocketPath: '/' }, fromTheApp);
    const answer = await get(`${base}/`);
    assertErrorBody(answer, 426);
    assert.equal(answer.headers.upgrade, 'websocket');
    assert.equal((await get(`${base}/other`)).body, 'the app');
  });

  void test('the OpenAPI document names where the endpoints are mounted as its server', async (t) => {
    const mounted = await listenerServer(t, { prefix: '/sb' }, undefined, { apiKey: 'listener-test-key' });
    const underPrefix = assertJson(await apiRequest(`${mounted.base}/sb/api/openapi.json`, 'listener-test-key', 'GET'), 200);
    assert.deepEqual((underPrefix.servers as Array<{ url: string }>).map((server) => server.url), ['/sb']);
    const root = await listenerServer(t, {}, undefined, { apiKey: 'listener-test-key' });
    const atRoot = assertJson(await apiRequest(`${root.base}/api/openapi.json`, 'listener-test-key', 'GET'), 200);
    assert.deepEqual((atRoot.servers as Array<{ url: string }>).map((server) => server.url), ['/']);
  });

  void test('readiness follows the handler: 503 once it is closing', async (t) => {
    const { base, handler } = await listenerServer(t, { prefix: '/sb' });
    await handler.close();
    assert.deepEqual(assertJson(await get(`${base}/sb/readyz`), 503), { status: 'not_ready', reason: 'shutting down' });
  });

  void test('a prefix that is not a path is refused; a trailing slash is dropped', () => {
    const handler = new WebSocketHandler({ logger: pino({ level: 'silent' }) });
    assert.throws(() => createRequestListener(handler, { prefix: 'switchboard' }), ConfigError);
    assert.throws(() => createRequestListener(handler, { prefix: '/sb?x=1' }), ConfigError);
    assert.doesNotThrow(() => createRequestListener(handler, { prefix: '/' }));
    assert.doesNotThrow(() => createRequestListener(handler, { prefix: '/a/b/' }));
  });
});
