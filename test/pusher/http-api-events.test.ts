/**
 * The Pusher HTTP API (SPEC §10), triggering: the real `pusher` SDK's trigger and
 * triggerBatch reach pusher-js clients as the event and native clients as
 * `message: {event, data}`; `socket_id` leaves out that one client; `info` answers counts.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { socketIdOf } from '../../src/pusher/socket-id.js';
import { TestClient, isMessageOn } from '../helpers/client.js';
import { connected, next, pusherClient, subscribed } from '../helpers/pusher.js';
import type { TestServer } from '../helpers/server.js';
import { json, sdk, startPusherServer } from '../helpers/pusher-api.js';

async function nativeOn(t: TestContext, server: TestServer, channel: string): Promise<TestClient> {
  const client = await TestClient.connect(server.url);
  t.after(() => client.close());
  const reply = await client.subscribe(channel);
  assert.equal(reply.success, true, JSON.stringify(reply));
  return client;
}

describe('Pusher HTTP API: events', () => {
  test('trigger reaches a pusher-js client as the event and a native client as message {event, data}', async (t) => {
    const server = await startPusherServer(t);
    const client = pusherClient(t, server);
    const orders = client.subscribe('orders');
    await subscribed(orders);
    const native = await nativeOn(t, server, 'orders');

    const shipped = next<unknown>(orders, 'order.shipped');
    const response = await sdk(server).trigger('orders', 'order.shipped', { id: 7 });
    assert.deepEqual(await response.json(), {});
    assert.deepEqual(await shipped, { id: 7 });
    const frame = await native.next(isMessageOn('orders'));
    assert.deepEqual(frame.message, { event: 'order.shipped', data: '{"id":7}' });
    assert.equal(frame.sender, null);
  });

  test('a string data is passed as it is', async (t) => {
    const server = await startPusherServer(t);
    const native = await nativeOn(t, server, 'news');
    await sdk(server).trigger('news', 'headline', 'plain text, not JSON');
    const frame = await native.next(isMessageOn('news'));
    assert.deepEqual(frame.message, { event: 'headline', data: 'plain text, not JSON' });
  });

  test('socket_id leaves out that client, and only it', async (t) => {
    const server = await startPusherServer(t);
    const alice = pusherClient(t, server);
    const bob = pusherClient(t, server);
    const aliceRoom = alice.subscribe('room');
    const bobRoom = bob.subscribe('room');
    await Promise.all([connected(alice), subscribed(aliceRoom), subscribed(bobRoom)]);
    const native = await nativeOn(t, server, 'room');
    const atAlice: string[] = [];
    aliceRoom.bind_global((name: string) => atAlice.push(name));

    const atBob = next<unknown>(bobRoom, 'said');
    await sdk(server).trigger('room', 'said', { text: 'not for alice' }, { socket_id: alice.connection.socket_id });
    assert.deepEqual(await atBob, { text: 'not for alice' });
    assert.deepEqual((await native.next(isMessageOn('room'))).message, { event: 'said', data: '{"text":"not for alice"}' });
    // Events arrive in order: had alice received the first, it would be before this one.
    const later = next<unknown>(aliceRoom, 'later');
    await sdk(server).trigger('room', 'later', {});
    await later;
    assert.deepEqual(atAlice, ['later']);
  });

  test('socket_id of a native connection leaves it out too', async (t) => {
    const server = await startPusherServer(t);
    const excluded = await nativeOn(t, server, 'room');
    const other = await nativeOn(t, server, 'room');
    const connectionId = excluded.welcome.connection_id as string;
    await sdk(server).trigger('room', 'first', {}, { socket_id: socketIdOf(connectionId) as string });
    await sdk(server).trigger('room', 'second', {});
    assert.deepEqual((await other.next(isMessageOn('room'))).message, { event: 'first', data: '{}' });
    assert.deepEqual((await excluded.next(isMessageOn('room'))).message, { event: 'second', data: '{}' });
  });

  test('one trigger to several channels reaches each', async (t) => {
    const server = await startPusherServer(t);
    const client = pusherClient(t, server);
    const channels = ['alpha', 'beta', 'gamma'].map((name) => client.subscribe(name));
    await Promise.all(channels.map(subscribed));
    const arrivals = channels.map((channel) => next<unknown>(channel, 'broadcast'));
    await sdk(server).trigger(['alpha', 'beta', 'gamma'], 'broadcast', { all: true });
    assert.deepEqual(await Promise.all(arrivals), [{ all: true }, { all: true }, { all: true }]);
  });

  test('triggerBatch publishes each event on its channel, in order', async (t) => {
    const server = await startPusherServer(t);
    const client = pusherClient(t, server);
    const alpha = client.subscribe('alpha');
    const beta = client.subscribe('beta');
    await Promise.all([subscribed(alpha), subscribed(beta)]);
    const native = await nativeOn(t, server, 'alpha');

    const first = next<unknown>(alpha, 'first');
    const second = next<unknown>(alpha, 'second');
    const onBeta = next<unknown>(beta, 'other');
    const response = await sdk(server).triggerBatch([
      { channel: 'alpha', name: 'first', data: { n: 1 } },
      { channel: 'beta', name: 'other', data: 'two' },
      { channel: 'alpha', name: 'second', data: { n: 3 } },
    ]);
    assert.deepEqual(await response.json(), {});
    assert.deepEqual(await Promise.all([first, onBeta, second]), [{ n: 1 }, 'two', { n: 3 }]);
    assert.deepEqual((await native.next(isMessageOn('alpha'))).message, { event: 'first', data: '{"n":1}' });
    assert.deepEqual((await native.next(isMessageOn('alpha'))).message, { event: 'second', data: '{"n":3}' });
  });

  test('a batch event with socket_id leaves that client out', async (t) => {
    const server = await startPusherServer(t);
    const alice = pusherClient(t, server);
    const bob = pusherClient(t, server);
    const aliceRoom = alice.subscribe('room');
    const bobRoom = bob.subscribe('room');
    await Promise.all([connected(alice), subscribed(aliceRoom), subscribed(bobRoom)]);
    const atAlice: string[] = [];
    aliceRoom.bind_global((name: string) => atAlice.push(name));
    const atBob = next<unknown>(bobRoom, 'last');
    const atAliceLast = next<unknown>(aliceRoom, 'last');
    await sdk(server).triggerBatch([
      { channel: 'room', name: 'hidden', data: '{}', socket_id: alice.connection.socket_id },
      { channel: 'room', name: 'last', data: '{}' },
    ]);
    await Promise.all([atBob, atAliceLast]);
    assert.deepEqual(atAlice, ['last']);
  });

  test('info=subscription_count answers each channel’s count; user_count only for presence channels', async (t) => {
    const server = await startPusherServer(t);
    await nativeOn(t, server, 'orders');
    await nativeOn(t, server, 'orders');
    const answer = await json(sdk(server).trigger(['orders', 'empty'], 'ping', {}, { info: 'subscription_count,user_count' }));
    assert.deepEqual(answer, { channels: { orders: { subscription_count: 2 }, empty: { subscription_count: 0 } } });
  });

  test('info in a batch: one attributes object per event, {} where none was asked for', async (t) => {
    const server = await startPusherServer(t);
    await nativeOn(t, server, 'orders');
    const answer = await json(
      sdk(server).triggerBatch([
        { channel: 'orders', name: 'a', data: '{}', info: 'subscription_count' },
        { channel: 'orders', name: 'b', data: '{}' },
        { channel: 'news', name: 'c', data: '{}', info: 'subscription_count' },
      ]),
    );
    assert.deepEqual(answer, { batch: [{ subscription_count: 1 }, {}, { subscription_count: 0 }] });
  });
});
