/**
 * Switchboard inside a Fastify 5 application, as the README shows it: the app keeps its
 * own routes and 404s, the WebSocket lives at /ws on `fastify.server`, and the HTTP
 * endpoints answer under /switchboard through a hijacked route, over real sockets.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import Fastify from 'fastify';
import { pino } from 'pino';
import { WebSocketHandler } from '../../src/handler.js';
import { createRequestListener } from '../../src/http/endpoints.js';
import { TestClient, isMessageOn } from '../helpers/client.js';
import { apiRequest, assertErrorBody, assertJson, get, request } from '../helpers/http.js';

const SUITE = { timeout: 60_000 };
const API_KEY = 'mount-fastify-test-key';

interface App {
  handler: WebSocketHandler;
  /** http://127.0.0.1:PORT */
  base: string;
  ws: string;
}

async function startApp(t: TestContext): Promise<App> {
  const handler = new WebSocketHandler({ apiKey: API_KEY, shutdownTimeout: 1, logger: pino({ level: 'silent' }) });
  const app = Fastify();
  app.get('/hello', () => ({ hello: 'from the app' }));
  app.post('/echo', (request) => request.body);
  const switchboard = createRequestListener(handler, { prefix: '/switchboard' });
  // onRequest runs before Fastify reads the body, which the API reads itself; not calling
  // done() ends Fastify's part, and hijack() leaves the response to Switchboard.
  app.all('/switchboard/*', {
    onRequest: (request, reply) => {
      reply.hijack();
      switchboard(request.raw, reply.raw);
    },
    handler: () => undefined,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  handler.attach(app.server, { path: '/ws' });
  t.after(async () => {
    await handler.close();
    await app.close();
  });
  const { port } = app.server.address() as AddressInfo;
  return { handler, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

void describe('Fastify: a hijacked /switchboard/* route', SUITE, () => {
  void test('the app answers its own routes, its own 404s and its own body-parsed POSTs', async (t) => {
    const app = await startApp(t);
    assert.deepEqual(assertJson(await get(`${app.base}/hello`), 200), { hello: 'from the app' });
    const missing = assertJson(await get(`${app.base}/other`), 404);
    assert.equal(missing.error, 'Not Found', 'Fastify answers its own 404');
    const echoed = await request(`${app.base}/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' });
    assert.deepEqual(assertJson(echoed, 200), { a: 1 });
  });

  void test('WebSocket clients on /ws subscribe, publish and receive', async (t) => {
    const app = await startApp(t);
    const alice = await TestClient.connect(app.ws);
    const bob = await TestClient.connect(app.ws);
    t.after(() => {
      alice.close();
      bob.close();
    });
    await alice.subscribe('chat.room.1');
    await bob.subscribe('chat.room.1');
    const delivered = bob.next(isMessageOn('chat.room.1'));
    assert.equal((await alice.publish('chat.room.1', { text: 'inside fastify' })).recipients_count, 2);
    assert.deepEqual((await delivered).message, { text: 'inside fastify' });
    // A POST body reaches the API unread by Fastify.
    const fromApi = alice.next(isMessageOn('chat.room.1'));
    const published = await apiRequest(`${app.base}/switchboard/api/publish`, API_KEY, 'POST', { channel: 'chat.room.1', message: 'from the API' });
    assert.deepEqual(assertJson(published, 200), { success: true, recipients_count: 2 });
    assert.equal((await fromApi).message, 'from the API');
    const stats = assertJson(await apiRequest(`${app.base}/switchboard/api/stats`, API_KEY, 'GET'), 200);
    assert.equal(stats.connections, 2);
  });

  void test('health, readiness, metrics, the API and the dashboard answer under /switchboard', async (t) => {
    const app = await startApp(t);
    assert.deepEqual(assertJson(await get(`${app.base}/switchboard/healthz`), 200), { status: 'ok' });
    assert.deepEqual(assertJson(await get(`${app.base}/switchboard/readyz`), 200), { status: 'ready' });
    const metrics = await get(`${app.base}/switchboard/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers['content-type'] ?? '', /^text\/plain\b/);
    assert.match(metrics.body, /^switchboard_connections 0$/m);
    const stats = assertJson(await apiRequest(`${app.base}/switchboard/api/stats`, API_KEY, 'GET'), 200);
    assert.equal(stats.connections, 0);
    assertErrorBody(await apiRequest(`${app.base}/switchboard/api/stats`, null, 'GET'), 401);
    const dashboard = await get(`${app.base}/switchboard/dashboard`);
    assert.equal(dashboard.status, 200);
    assert.match(dashboard.headers['content-type'] ?? '', /^text\/html\b/);
    assert.match(dashboard.body, /<html/i);
    const head = await request(`${app.base}/switchboard/healthz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    // Below the prefix every path is Switchboard's: its own JSON 404.
    assertErrorBody(await get(`${app.base}/switchboard/nope`), 404);
    // Outside it, Switchboard's paths are the app's.
    assert.equal(assertJson(await get(`${app.base}/healthz`), 404).error, 'Not Found');
  });

  void test('once the handler is closing, /switchboard/readyz answers 503', async (t) => {
    const app = await startApp(t);
    await app.handler.close();
    assert.deepEqual(assertJson(await get(`${app.base}/switchboard/readyz`), 503), { status: 'not_ready', reason: 'shutting down' });
  });
});
