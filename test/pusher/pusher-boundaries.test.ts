/**
 * Where the Pusher endpoint and the native protocol meet, and what a hostile client of
 * either may not do: the channel rules bind Pusher clients on public channels; native
 * clients may not use Pusher's signed channels (without a rule granting them) nor speak for
 * the server; a signature opens only the channel it was made for; client events are
 * checked like messages, limited in size, refused on encrypted channels; a flood is closed.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import type { HandlerOptions, WebSocketHandler } from '../../src/handler.js';
import { channelAuth } from '../../src/pusher/signatures.js';
import { TestClient } from '../helpers/client.js';
import { APP, next, pusherClient, subscribed, within } from '../helpers/pusher.js';
import { startServer, type TestServer } from '../helpers/server.js';

interface PusherFrame {
  event: string;
  channel?: string;
  data: unknown;
}

async function start(t: TestContext, options: HandlerOptions = {}, setup?: (handler: WebSocketHandler) => void): Promise<TestServer> {
  const server = await startServer({ pusher: { ...APP, clientEvents: true }, ...options }, setup);
  t.after(() => server.close());
  return server;
}

/** A raw Pusher connection: its frames, its socket_id, and a way to wait for a frame. */
async function raw(t: TestContext, server: TestServer): Promise<{ socket: WebSocket; frames: PusherFrame[]; socketId: string; until: (test: (frame: PusherFrame) => boolean, what: string) => Promise<PusherFrame>; closed: Promise<number> }> {
  const socket = new WebSocket(`${server.url}app/${APP.key}`);
  t.after(() => socket.terminate());
  const frames: PusherFrame[] = [];
  socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as PusherFrame));
  const closed = new Promise<number>((resolve) => socket.once('close', (code: number) => resolve(code)));
  const until = (test: (frame: PusherFrame) => boolean, what: string): Promise<PusherFrame> =>
    within(
      (async () => {
        for (;;) {
          const found = frames.find(test);
          if (found !== undefined) return found;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })(),
      what,
    );
  const established = await until((frame) => frame.event === 'pusher:connection_established', 'connection_established');
  const socketId = (JSON.parse(established.data as string) as { socket_id: string }).socket_id;
  return { socket, frames, socketId, until, closed };
}

const send = (socket: WebSocket, frame: object): void => socket.send(JSON.stringify(frame));

describe('the Pusher endpoint and the native protocol, side by side', () => {
  test('the channel rules bind Pusher clients on public channels', async (t) => {
    const rules = [
      { pattern: 'admin.**', subscribe: ['admin'], publish: ['admin'] },
      { pattern: '**', subscribe: ['*'], publish: [] },
    ];
    const server = await start(t, { channels: { rules } });
    const client = await raw(t, server);
    send(client.socket, { event: 'pusher:subscribe', data: { channel: 'admin.secrets' } });
    send(client.socket, { event: 'pusher:subscribe', data: { channel: 'news' } });
    const refused = await client.until((frame) => frame.channel === 'admin.secrets', 'the answer for admin.secrets');
    assert.equal(refused.event, 'pusher:subscription_error');
    assert.equal((await client.until((frame) => frame.channel === 'news', 'the answer for news')).event, 'pusher_internal:subscription_succeeded');
  });

  test("native clients may not use Pusher's signed channels, nor send Pusher's own events", async (t) => {
    const server = await start(t);
    const native = await TestClient.connect(server.url);
    t.after(() => native.close());
    for (const channel of ['private-orders', 'presence-room', 'private-encrypted-x']) {
      const reply = await native.request('subscribe', { channel });
      assert.equal(reply.code, 'FORBIDDEN', channel);
    }
    // On a public channel a native {event, data} is an event, but never one of Pusher's own.
    const pusher = pusherClient(t, server);
    const channel = pusher.subscribe('news');
    await subscribed(channel);
    await native.subscribe('news');
    const forged = next<unknown>(channel, 'message');
    await native.publish('news', { event: 'pusher_internal:member_removed', data: { user_id: 'x' } });
    assert.deepEqual(await forged, { event: 'pusher_internal:member_removed', data: { user_id: 'x' } });
  });

  test('a signature opens only its own channel: no `:` in a Pusher channel name, channel_data signed on presence channels only', async (t) => {
    const server = await start(t);
    const client = await raw(t, server);
    send(client.socket, { event: 'pusher:subscribe', data: { channel: 'private-user', channel_data: '42', auth: channelAuth(APP.key, APP.secret, client.socketId, 'private-user:42') } });
    send(client.socket, { event: 'pusher:subscribe', data: { channel: 'private-user:42', auth: channelAuth(APP.key, APP.secret, client.socketId, 'private-user:42') } });
    const first = await client.until((frame) => frame.channel === 'private-user', 'private-user');
    assert.equal(first.event, 'pusher:subscription_error');
    assert.equal((first.data as { status: number }).status, 401);
    const second = await client.until((frame) => frame.channel === 'private-user:42', 'private-user:42');
    assert.equal(second.event, 'pusher:subscription_error');
    assert.equal((second.data as { status: number }).status, 400);
  });

  test('client events: checked by the message hooks, at most 10 KB, none on encrypted channels; one without data carries null', async (t) => {
    const server = await start(t, {}, (handler) => handler.onMessage((_connection, { message }) => ((message as { event?: string }).event === 'client-bad' ? 'no bad events' : true)));
    const sender = await raw(t, server);
    const listener = pusherClient(t, server);
    const channel = listener.subscribe('private-room');
    await subscribed(channel);
    for (const name of ['private-room', 'private-encrypted-room']) {
      send(sender.socket, { event: 'pusher:subscribe', data: { channel: name, auth: channelAuth(APP.key, APP.secret, sender.socketId, name) } });
      await sender.until((frame) => frame.channel === name && frame.event === 'pusher_internal:subscription_succeeded', `subscribed to ${name}`);
    }
    send(sender.socket, { event: 'client-bad', channel: 'private-room', data: {} });
    send(sender.socket, { event: 'client-big', channel: 'private-room', data: 'x'.repeat(10 * 1024 + 1) });
    send(sender.socket, { event: 'client-secret', channel: 'private-encrypted-room', data: { plain: true } });
    const nodata = next<unknown>(channel, 'client-nodata');
    send(sender.socket, { event: 'client-nodata', channel: 'private-room' });
    assert.equal(await nodata, null);
    const errors = sender.frames.filter((frame) => frame.event === 'pusher:error').map((frame) => (frame.data as { message: string }).message);
    assert.equal(errors.length, 3, errors.join(' | '));
    assert.match(errors[0] as string, /no bad events/);
    assert.match(errors[1] as string, /10240 bytes/);
    assert.match(errors[2] as string, /encrypted/);
  });

  test('a client that keeps sending while rate-limited is closed (4029), and others are served', async (t) => {
    const server = await start(t, { maxMessagesPerMinute: 5 });
    const flooder = await raw(t, server);
    for (let i = 0; i < 30; i++) send(flooder.socket, { event: 'pusher:ping', data: {} });
    assert.equal(await within(flooder.closed, 'the flooder closed'), 4029);
    const other = await raw(t, server);
    send(other.socket, { event: 'pusher:ping', data: {} });
    await other.until((frame) => frame.event === 'pusher:pong', 'pong for the other');
  });

  test('a native endpoint on a path under /app is the native one', async (t) => {
    const server = await start(t, { path: '/app/ws' });
    const native = await TestClient.connect(server.url);
    t.after(() => native.close());
    assert.equal(native.welcome.action, 'welcome');
  });
});

describe('a silent Pusher client', () => {
  test('is told why and closed with 4201 after WS_CONNECTION_TIMEOUT, as Pusher closes a client that stopped answering', async (t) => {
    const server = await start(t, { heartbeatInterval: 3600, connectionTimeout: 1 });
    const client = await raw(t, server);
    assert.equal(await within(client.closed, 'the close'), 4201);
    const last = client.frames[client.frames.length - 1];
    assert.equal(last?.event, 'pusher:error');
    assert.equal((last?.data as { code: number }).code, 4201);
  });
});
