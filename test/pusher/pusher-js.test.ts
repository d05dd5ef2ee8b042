/**
 * The Pusher endpoint (SPEC §10) with the real pusher-js 8 (its Node build, WebSocket
 * transport) against a real server: connecting, public and private channels, events from
 * native clients and from Pusher clients, client events, and the refusals.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { TestClient } from '../helpers/client.js';
import { APP, NATIVE_MAY_USE_ALL, connected, next, pusherClient, subscribed, within } from '../helpers/pusher.js';
import { startServer, type TestServer } from '../helpers/server.js';

async function start(t: TestContext, clientEvents = true): Promise<TestServer> {
  const server = await startServer({ pusher: { ...APP, clientEvents }, channels: NATIVE_MAY_USE_ALL });
  t.after(() => server.close());
  return server;
}


describe('pusher-js against the Pusher endpoint', () => {
  test('connects with a socket_id of the documented form', async (t) => {
    const server = await start(t);
    const client = pusherClient(t, server);
    await connected(client);
    assert.match(client.connection.socket_id, /^\d+\.\d+$/);
  });

  test('a public channel: a native publish arrives as the event message, a {event, data} one as that event', async (t) => {
    const server = await start(t);
    const client = pusherClient(t, server);
    const channel = client.subscribe('orders');
    await subscribed(channel);
    const plain = next<unknown>(channel, 'message');
    await server.handler.publish('orders', { text: 'hi' });
    assert.deepEqual(await plain, { text: 'hi' });
    const shipped = next<unknown>(channel, 'order.shipped');
    await server.handler.publish('orders', { event: 'order.shipped', data: { id: 7 } });
    assert.deepEqual(await shipped, { id: 7 });
  });

  test('a private channel needs the signature: a good one subscribes, a bad one gets an AuthError with status 401', async (t) => {
    const server = await start(t);
    const client = pusherClient(t, server);
    await subscribed(client.subscribe('private-account.1'));

    const raw = new WebSocket(`${server.url}app/${APP.key}?protocol=7`);
    t.after(() => raw.terminate());
    const frames: Array<{ event: string; data: unknown; channel?: string }> = [];
    raw.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await within(new Promise((resolve) => raw.once('open', resolve)), 'open');
    raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-account.1', auth: `${APP.key}:${'0'.repeat(64)}` } }));
    await within(
      (async () => {
        while (!frames.some((frame) => frame.event === 'pusher:subscription_error')) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      'subscription_error',
    );
    const error = frames.find((frame) => frame.event === 'pusher:subscription_error');
    assert.equal(error?.channel, 'private-account.1');
    assert.deepEqual({ ...(error?.data as object), error: undefined }, { type: 'AuthError', status: 401, error: undefined });
  });

  test('client events: to the others on a private channel, never echoed, and to native clients as {event, data}', async (t) => {
    const server = await start(t);
    const alice = pusherClient(t, server);
    const bob = pusherClient(t, server);
    const aliceRoom = alice.subscribe('private-room');
    const bobRoom = bob.subscribe('private-room');
    await Promise.all([subscribed(aliceRoom), subscribed(bobRoom)]);
    const native = await TestClient.connect(server.url);
    t.after(() => native.close());
    await native.subscribe('private-room');

    let echoed = 0;
    aliceRoom.bind('client-typing', () => echoed++);
    const atBob = next<unknown>(bobRoom, 'client-typing');
    assert.equal(aliceRoom.trigger('client-typing', { who: 'alice' }), true);
    assert.deepEqual(await atBob, { who: 'alice' });
    const atNative = await native.next((frame) => frame.action === 'message');
    assert.deepEqual(atNative.message, { event: 'client-typing', data: { who: 'alice' } });
    // A native message after it arrives at alice: had the client event been echoed, it would have come first.
    const after = next<unknown>(aliceRoom, 'message');
    await server.handler.publish('private-room', 'after');
    assert.equal(await after, 'after');
    assert.equal(echoed, 0);
  });

  test('client events off (the default), or on a public channel: a pusher:error, nothing delivered', async (t) => {
    const server = await start(t, false);
    const raw = new WebSocket(`${server.url}app/${APP.key}`);
    t.after(() => raw.terminate());
    const frames: Array<{ event: string; data: unknown }> = [];
    raw.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await within(new Promise((resolve) => raw.once('open', resolve)), 'open');
    raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'news' } }));
    raw.send(JSON.stringify({ event: 'client-x', channel: 'news', data: {} }));
    raw.send(JSON.stringify({ event: 'pusher:ping', data: {} }));
    await within(
      (async () => {
        while (!frames.some((frame) => frame.event === 'pusher:pong')) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      'pong',
    );
    assert.deepEqual(
      frames.map((frame) => frame.event),
      ['pusher:connection_established', 'pusher_internal:subscription_succeeded', 'pusher:error', 'pusher:pong'],
    );
  });

  test('an unknown app key: pusher:error 4001, then close 4001', async (t) => {
    const server = await start(t);
    const raw = new WebSocket(`${server.url}app/not-the-key?protocol=7`);
    const frames: string[] = [];
    raw.on('message', (data: Buffer) => frames.push(data.toString()));
    const code = await within(new Promise<number>((resolve) => raw.once('close', (closeCode: number) => resolve(closeCode))), 'close');
    assert.equal(code, 4001);
    assert.equal((JSON.parse(frames[0] as string) as { event: string; data: { code: number } }).data.code, 4001);
  });
});


describe('hostile handshakes', () => {
  test('a malformed escape in the app key is an unknown key (4001), and the server keeps serving', async (t) => {
    const server = await start(t);
    const raw = new WebSocket(`${server.url}app/%E0%A4%A`);
    const code = await within(new Promise<number>((resolve) => raw.once('close', (closeCode: number) => resolve(closeCode))), 'close');
    assert.equal(code, 4001);
    const client = pusherClient(t, server);
    await connected(client);
  });
});
