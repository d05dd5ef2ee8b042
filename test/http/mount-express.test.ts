/**
 * Switchboard inside an Express 5 application, as the README shows it: the app keeps its
 * own routes and 404s, the WebSocket lives at /ws on the app's server, and the HTTP
 * endpoints answer under /switchboard, over real sockets.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test, type TestContext } from 'node:test';
import express, { type Express } from 'express';
import { pino } from 'pino';
import { WebSocketHandler } from '../../src/handler.js';
import { createRequestListener } from '../../src/http/endpoints.js';
import { closeBrowser, openPage } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { apiRequest, assertErrorBody, assertJson, get, request } from '../helpers/http.js';
import { assertClientsAndApi, assertEndpointsUnderPrefix, assertNotReadyWhenClosing, type MountedApp } from '../helpers/mounted-app.js';

/** Chromium's first launch on a loaded 2-core machine can take a while: the runner's own limit. */
const SUITE = { timeout: 120_000 };
/** The dashboard polls every 2 s; generous for a noisy machine. */
const GENEROUS_MS = 20_000;

/** What the page-side functions use: the project compiles without lib "dom". */
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

after(closeBrowser);
const API_KEY = 'mount-express-test-key';

/** `mount` puts Switchboard's endpoints into the app; the app's own routes come before and after. */
async function startApp(t: TestContext, mount: (app: Express, handler: WebSocketHandler) => void): Promise<MountedApp> {
  const handler = new WebSocketHandler({ apiKey: API_KEY, shutdownTimeout: 1, logger: pino({ level: 'silent' }) });
  const app = express();
  app.get('/hello', (_request, response) => {
    response.json({ hello: 'from the app' });
  });
  mount(app, handler);
  // After Switchboard: a body parser before it would consume the bodies the API reads.
  app.use(express.json());
  app.post('/echo', (request, response) => {
    response.json(request.body as unknown);
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  handler.attach(server, { path: '/ws' });
  t.after(async () => {
    await handler.close();
    // A browser polling the dashboard keeps its keep-alive connections busy: close() alone would wait for them.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  });
  const { port } = server.address() as AddressInfo;
  return { handler, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws`, apiKey: API_KEY };
}

const MOUNTS: Array<[string, (app: Express, handler: WebSocketHandler) => void]> = [
  ["app.use('/switchboard', listener)", (app, handler) => app.use('/switchboard', createRequestListener(handler, { prefix: '/switchboard' }))],
  ['app.use(listener) with the prefix', (app, handler) => app.use(createRequestListener(handler, { prefix: '/switchboard', websocketPath: '/ws' }))],
];

for (const [name, mount] of MOUNTS) {
  void describe(`Express: ${name}`, SUITE, () => {
    void test('the app answers its own routes, its own 404s and its own body-parsed POSTs', async (t) => {
      const app = await startApp(t, mount);
      assert.deepEqual(assertJson(await get(`${app.base}/hello`), 200), { hello: 'from the app' });
      const missing = await get(`${app.base}/other`);
      assert.equal(missing.status, 404);
      assert.match(missing.headers['content-type'] ?? '', /^text\/html\b/, 'Express answers its own 404');
      const echoed = await request(`${app.base}/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' });
      assert.deepEqual(assertJson(echoed, 200), { a: 1 });
    });

    void test('WebSocket clients on /ws subscribe, publish and receive, and the API reaches them', async (t) => {
      await assertClientsAndApi(await startApp(t, mount), 'express');
    });

    void test('health, readiness, metrics, the API and the dashboard answer under /switchboard', async (t) => {
      const app = await startApp(t, mount);
      await assertEndpointsUnderPrefix(app);
      // Outside the prefix, Switchboard's paths are the app's: Express's own HTML 404.
      const outside = await get(`${app.base}/healthz`);
      assert.equal(outside.status, 404);
      assert.match(outside.headers['content-type'] ?? '', /^text\/html\b/);
    });

    void test('once the handler is closing, /switchboard/readyz answers 503', async (t) => {
      await assertNotReadyWhenClosing(await startApp(t, mount));
    });
  });
}

void describe('Express: mounting details', SUITE, () => {
  void test('mounted with app.use(listener), a plain GET on the WebSocket path answers 426', async (t) => {
    const app = await startApp(t, (mounting, handler) => mounting.use(createRequestListener(handler, { prefix: '/switchboard', websocketPath: '/ws' })));
    const answer = await get(`${app.base}/ws`);
    assertErrorBody(answer, 426);
    assert.equal(answer.headers.upgrade, 'websocket');
  });

  void test('a body parser mounted before Switchboard gets a 500 that says so, not a hung request', async (t) => {
    const app = await startApp(t, (parsing, handler) => {
      parsing.use(express.json());
      parsing.use('/switchboard', createRequestListener(handler, { prefix: '/switchboard' }));
    });
    const answer = await apiRequest(`${app.base}/switchboard/api/publish`, API_KEY, 'POST', { channel: 'chat.room.1', message: 'x' });
    assertErrorBody(answer, 500);
    assert.match(answer.body, /before any body parser/);
  });
});

void describe('Express: the dashboard under /switchboard, in a real browser', SUITE, () => {
  void test('the page reads the API below its own prefix', async (t) => {
    const app = await startApp(t, (mounting, handler) => mounting.use('/switchboard', createRequestListener(handler, { prefix: '/switchboard' })));
    const client = await TestClient.connect(app.ws);
    t.after(() => client.close());
    await client.subscribe('chat.room.9');
    const page = await openPage(t);
    if (!page) return;
    const fetched: string[] = [];
    page.on('request', (outgoing) => fetched.push(new URL(outgoing.url()).pathname));
    await page.goto(`${app.base}/switchboard/dashboard`);
    await page.fill('#api-key', API_KEY);
    await page.click('#key-form button[type="submit"]');
    await page.waitForSelector('#dashboard', { state: 'visible', timeout: GENEROUS_MS });
    await page.waitForFunction(() => (document.querySelector('#channels-table tbody')?.textContent ?? '').includes('chat.room.9'), undefined, { timeout: GENEROUS_MS });
    // The figures and the channels come from two requests: wait for both.
    await page.waitForFunction(() => document.querySelector('#connections')?.textContent === '1', undefined, { timeout: GENEROUS_MS });
    assert.ok(fetched.includes('/switchboard/api/stats'), fetched.join(', '));
    assert.ok(fetched.every((path) => path.startsWith('/switchboard/')), fetched.join(', '));
  });
});
