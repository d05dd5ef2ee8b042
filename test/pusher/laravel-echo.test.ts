/**
 * Laravel Echo 2 (with pusher-js under it) against the Pusher endpoint, as a Laravel front
 * end uses it: a public channel with a namespaced event class, a private channel through an
 * authorizer, and a whisper (a client event) between two Echo clients.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import Echo from 'laravel-echo';
import { channelAuth } from '../../src/pusher/signatures.js';
import { APP, Pusher, connectionOptions, within } from '../helpers/pusher.js';
import { startServer, type TestServer } from '../helpers/server.js';

type EchoClient = Echo<'pusher'>;

function echoClient(t: TestContext, server: TestServer): EchoClient {
  const echo = new Echo({
    broadcaster: 'pusher',
    key: APP.key,
    ...connectionOptions(server),
    // Echo types this as the pusher-js module; what it calls is the class.
    Pusher: Pusher as never,
    // What Laravel's /broadcasting/auth answers, signed here instead.
    authorizer: (channel: { name: string }) => ({
      authorize: (socketId: string, callback: (error: Error | null, data: { auth: string } | null) => void) => callback(null, { auth: channelAuth(APP.key, APP.secret, socketId, channel.name) }),
    }),
  });
  t.after(() => echo.disconnect());
  return echo;
}

test('Laravel Echo: a broadcast event on a public channel, a private channel, and a whisper', async (t) => {
  const server = await startServer({ pusher: { ...APP, clientEvents: true } });
  t.after(() => server.close());
  const alice = echoClient(t, server);
  const bob = echoClient(t, server);

  // Laravel broadcasts `App\Events\OrderShipped` (the class name is the event name); Echo listens by the short name.
  const shipped = within(new Promise<unknown>((resolve) => alice.channel('orders').listen('OrderShipped', resolve)), 'OrderShipped');
  await within(new Promise<void>((resolve) => alice.channel('orders').subscribed(() => resolve())), 'subscribed to orders');
  await server.handler.publish('orders', { event: 'App\\Events\\OrderShipped', data: JSON.stringify({ order: { id: 5 } }) });
  assert.deepEqual(await shipped, { order: { id: 5 } });

  // A private channel, through the authorizer; then a whisper from bob reaches alice.
  const alicePrivate = alice.private('room.1');
  const bobPrivate = bob.private('room.1');
  await Promise.all([
    within(new Promise<void>((resolve) => alicePrivate.subscribed(() => resolve())), 'alice in private-room.1'),
    within(new Promise<void>((resolve) => bobPrivate.subscribed(() => resolve())), 'bob in private-room.1'),
  ]);
  const typing = within(new Promise<unknown>((resolve) => alicePrivate.listenForWhisper('typing', resolve)), 'the whisper');
  bobPrivate.whisper('typing', { name: 'bob' });
  assert.deepEqual(await typing, { name: 'bob' });
});
