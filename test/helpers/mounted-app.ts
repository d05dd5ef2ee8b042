/**
 * What every embedding test checks of an application with Switchboard mounted in it
 * (Express, Fastify): WebSocket clients on /ws, the API reaching them, and the HTTP
 * endpoints under /switchboard.
 */
import assert from 'node:assert/strict';
import type { WebSocketHandler } from '../../src/handler.js';
import { TestClient, isMessageOn } from './client.js';
import { apiRequest, assertErrorBody, assertJson, get, request } from './http.js';

export interface MountedApp {
  handler: WebSocketHandler;
  /** http://127.0.0.1:PORT */
  base: string;
  /** ws://127.0.0.1:PORT/ws */
  ws: string;
  apiKey: string;
}

/** Two clients on /ws exchange a message, and a publish through the mounted API reaches them. */
export async function assertClientsAndApi(app: MountedApp, framework: string): Promise<void> {
  const alice = await TestClient.connect(app.ws);
  const bob = await TestClient.connect(app.ws);
  try {
    await alice.subscribe('chat.room.1');
    await bob.subscribe('chat.room.1');
    const delivered = bob.next(isMessageOn('chat.room.1'));
    assert.equal((await alice.publish('chat.room.1', { text: `inside ${framework}` })).recipients_count, 2);
    assert.deepEqual((await delivered).message, { text: `inside ${framework}` });
    // A POST body reaches the API unread by the framework.
    const fromApi = alice.next(isMessageOn('chat.room.1'));
    const published = await apiRequest(`${app.base}/switchboard/api/publish`, app.apiKey, 'POST', { channel: 'chat.room.1', message: 'from the API' });
    assert.deepEqual(assertJson(published, 200), { success: true, recipients_count: 2 });
    assert.equal((await fromApi).message, 'from the API');
    const stats = assertJson(await apiRequest(`${app.base}/switchboard/api/stats`, app.apiKey, 'GET'), 200);
    assert.equal(stats.connections, 2);
  } finally {
    alice.close();
    bob.close();
  }
}

/** Health, readiness, metrics, the API, the dashboard and HEAD under /switchboard; below it, Switchboard's own 404. */
export async function assertEndpointsUnderPrefix(app: MountedApp): Promise<void> {
  assert.deepEqual(assertJson(await get(`${app.base}/switchboard/healthz`), 200), { status: 'ok' });
  assert.deepEqual(assertJson(await get(`${app.base}/switchboard/readyz`), 200), { status: 'ready' });
  const metrics = await get(`${app.base}/switchboard/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers['content-type'] ?? '', /^text\/plain\b/);
  assert.match(metrics.body, /^switchboard_connections 0$/m);
  const stats = assertJson(await apiRequest(`${app.base}/switchboard/api/stats`, app.apiKey, 'GET'), 200);
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
}

/** Once the handler is closing, readiness says so. */
export async function assertNotReadyWhenClosing(app: MountedApp): Promise<void> {
  await app.handler.close();
  assert.deepEqual(assertJson(await get(`${app.base}/switchboard/readyz`), 503), { status: 'not_ready', reason: 'shutting down' });
}
