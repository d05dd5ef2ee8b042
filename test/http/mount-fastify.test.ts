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
import { assertJson, get, request } from '../helpers/http.js';
import { assertClientsAndApi, assertEndpointsUnderPrefix, assertNotReadyWhenClosing, type MountedApp } from '../helpers/mounted-app.js';

const SUITE = { timeout: 60_000 };
const API_KEY = 'mount-fastify-test-key';

async function startApp(t: TestContext): Promise<MountedApp> {
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
  return { handler, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws`, apiKey: API_KEY };
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

  void test('WebSocket clients on /ws subscribe, publish and receive, and the API reaches them', async (t) => {
    await assertClientsAndApi(await startApp(t), 'fastify');
  });

  void test('health, readiness, metrics, the API and the dashboard answer under /switchboard', async (t) => {
    const app = await startApp(t);
    await assertEndpointsUnderPrefix(app);
    // Outside the prefix, Switchboard's paths are the app's.
    assert.equal(assertJson(await get(`${app.base}/healthz`), 404).error, 'Not Found');
  });

  void test('once the handler is closing, /switchboard/readyz answers 503', async (t) => {
    await assertNotReadyWhenClosing(await startApp(t));
  });
});
