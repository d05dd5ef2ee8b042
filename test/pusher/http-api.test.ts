/**
 * The Pusher HTTP API (SPEC §10), its gate: every request signed as the real `pusher` SDK
 * signs it, 401 for a wrong signature, key, timestamp or body_md5, 404 for an unknown app
 * id (and for every /apps path while the Pusher endpoint is off), 400 and 413 for bad events.
 * The other themes: http-api-events.test.ts, http-api-channels.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get } from '../helpers/http.js';
import { APP, next, pusherClient, subscribed } from '../helpers/pusher.js';
import { startServer } from '../helpers/server.js';
import { postRaw, refusal, sdk, signedRequest, startPusherServer } from '../helpers/pusher-api.js';

const EVENTS = `/apps/${APP.appId}/events`;
const event = (extra: Record<string, unknown> = {}): string => JSON.stringify({ name: 'ping', data: '{}', channels: ['orders'], ...extra });

/** A one-line `{"error": "..."}` body that says `what`. */
function assertError(body: unknown, what: RegExp): void {
  const { error } = body as { error?: unknown };
  assert.equal(typeof error, 'string');
  assert.doesNotMatch(error as string, /\n/);
  assert.match(error as string, what);
}

describe('Pusher HTTP API: signatures', () => {
  test('a request the SDK signs is accepted: {} for an event', async (t) => {
    const server = await startPusherServer(t);
    const response = await sdk(server).trigger('orders', 'ping', { n: 1 });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {});
  });

  test('the SDK with the wrong secret: 401, and nothing is published', async (t) => {
    const server = await startPusherServer(t);
    const client = pusherClient(t, server);
    const orders = client.subscribe('orders');
    await subscribed(orders);
    const seen: string[] = [];
    orders.bind_global((name: string) => seen.push(name));
    const answer = await refusal(sdk(server, { secret: 'not-the-secret' }).trigger('orders', 'forged', {}));
    assert.equal(answer.status, 401);
    assertError(answer.body, /signature/i);
    // Events arrive in order: had the forged one been published, it would have come first.
    const genuine = next(orders, 'genuine');
    await sdk(server).trigger('orders', 'genuine', {});
    await genuine;
    assert.deepEqual(seen, ['genuine']);
    // A GET is signed too.
    const read = await refusal(sdk(server, { secret: 'not-the-secret' }).get({ path: '/channels' }));
    assert.equal(read.status, 401);
  });

  test('the SDK with the wrong key: 401', async (t) => {
    const server = await startPusherServer(t);
    const answer = await refusal(sdk(server, { key: 'other-key' }).get({ path: '/channels' }));
    assert.equal(answer.status, 401);
    assertError(answer.body, /auth_key/);
  });

  test('a timestamp more than 600 s old (or ahead): 401; within 600 s: accepted', async (t) => {
    const server = await startPusherServer(t);
    const body = event();
    const old = await signedRequest(server, { method: 'POST', path: EVENTS, body }, { nowMs: Date.now() - 700_000 });
    assert.equal(old.status, 401);
    assertError(old.body, /timestamp/i);
    const ahead = await signedRequest(server, { method: 'GET', path: `/apps/${APP.appId}/channels` }, { nowMs: Date.now() + 700_000 });
    assert.equal(ahead.status, 401);
    const recent = await signedRequest(server, { method: 'POST', path: EVENTS, body }, { nowMs: Date.now() - 500_000 });
    assert.equal(recent.status, 200);
  });

  test('a body other than the one whose body_md5 was signed: 401', async (t) => {
    const server = await startPusherServer(t);
    const answer = await signedRequest(server, { method: 'POST', path: EVENTS, body: event() }, { sendBody: event({ name: 'pong' }) });
    assert.equal(answer.status, 401);
    assertError(answer.body, /body_md5/);
  });

  test('no signature at all: 401 naming what is missing', async (t) => {
    const server = await startPusherServer(t);
    const response = await fetch(`${server.httpUrl}${EVENTS}`, { method: 'POST', body: event() });
    assert.equal(response.status, 401);
    assertError(await response.json(), /auth_signature/);
  });

  test('an unknown app id: 404, signed or not', async (t) => {
    const server = await startPusherServer(t);
    const answer = await refusal(sdk(server, { appId: 'other-app' }).trigger('orders', 'ping', {}));
    assert.equal(answer.status, 404);
    assertError(answer.body, /app/i);
    const plain = await get(`${server.httpUrl}/apps/other-app/channels`);
    assert.equal(plain.status, 404);
    assert.match(plain.headers['content-type'] ?? '', /application\/json/);
  });

  test('an unknown endpoint of the app: 404; the wrong method: 405', async (t) => {
    const server = await startPusherServer(t);
    const unknown = await refusal(sdk(server).get({ path: '/nothing-here' }));
    assert.equal(unknown.status, 404);
    const wrongMethod = await refusal(sdk(server).get({ path: '/events' }));
    assert.equal(wrongMethod.status, 405);
  });

  test('with the Pusher endpoint off, /apps paths answer 404 like any unknown path', async (t) => {
    const server = await startServer({});
    t.after(() => server.close());
    const answer = await refusal(sdk(server).trigger('orders', 'ping', {}));
    assert.equal(answer.status, 404);
    assert.deepEqual(answer.body, { error: 'not found' });
  });
});

describe('Pusher HTTP API: refused events', () => {
  test('data over 10 KB: 413; exactly 10 KB: accepted', async (t) => {
    const server = await startPusherServer(t);
    const pusher = sdk(server);
    const answer = await refusal(pusher.trigger('orders', 'big', 'x'.repeat(10 * 1024 + 1)));
    assert.equal(answer.status, 413);
    assertError(answer.body, /10240/);
    const fits = await pusher.trigger('orders', 'big', 'é'.repeat(5 * 1024));
    assert.equal(fits.status, 200);
    const batch = await refusal(pusher.triggerBatch([{ channel: 'orders', name: 'big', data: 'x'.repeat(10 * 1024 + 1) }]));
    assert.equal(batch.status, 413);
  });

  test('more than 100 channels: 400 (sent past the SDK, which refuses them itself)', async (t) => {
    const server = await startPusherServer(t);
    const channels = Array.from({ length: 101 }, (_, index) => `room-${index}`);
    const answer = await refusal(postRaw(sdk(server), '/events', { name: 'ping', data: '{}', channels }));
    assert.equal(answer.status, 400);
    assertError(answer.body, /100/);
    const hundred = await sdk(server).trigger(channels.slice(0, 100), 'ping', {});
    assert.equal(hundred.status, 200);
  });

  test('a bad channel name, a missing or over-long name, missing data, a bad socket_id: 400', async (t) => {
    const server = await startPusherServer(t);
    const post = (body: object) => refusal(postRaw(sdk(server), '/events', body));
    const cases: Array<[object, RegExp]> = [
      [{ name: 'ping', data: '{}', channels: ['bad channel'] }, /channel name/i],
      [{ name: 'ping', data: '{}', channel: '' }, /channel name/i],
      [{ name: 'ping', data: '{}' }, /channel/],
      [{ data: '{}', channels: ['orders'] }, /name/],
      [{ name: 'n'.repeat(201), data: '{}', channels: ['orders'] }, /200/],
      [{ name: 'ping', channels: ['orders'] }, /data/],
      [{ name: 'ping', data: { not: 'a string' }, channels: ['orders'] }, /data/],
      [{ name: 'ping', data: '{}', channels: ['orders'], socket_id: 'abc' }, /socket_id/],
    ];
    for (const [body, what] of cases) {
      const answer = await post(body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assertError(answer.body, what);
    }
  });

  test('a body that is not JSON: 400', async (t) => {
    const server = await startPusherServer(t);
    const answer = await signedRequest(server, { method: 'POST', path: EVENTS, body: '{"name": ' });
    assert.equal(answer.status, 400);
    assertError(answer.body, /JSON/);
  });

  test('a batch of more than 10 events: 400, and none of it is published', async (t) => {
    const server = await startPusherServer(t);
    const batch = Array.from({ length: 11 }, (_, index) => ({ channel: 'orders', name: `e${index}`, data: '{}' }));
    const client = pusherClient(t, server);
    const orders = client.subscribe('orders');
    await subscribed(orders);
    const seen: string[] = [];
    orders.bind_global((name: string) => seen.push(name));
    const answer = await refusal(sdk(server).triggerBatch(batch));
    assert.equal(answer.status, 400);
    assertError(answer.body, /10/);
    // Not even the first ten: the next event is the first to arrive.
    const after = next(orders, 'after');
    await sdk(server).triggerBatch([{ channel: 'orders', name: 'after', data: '{}' }]);
    await after;
    assert.deepEqual(seen, ['after']);
  });
});
