/**
 * Pusher user sign-in with pusher-js 8 and the `pusher` SDK's sendToUser: a signed-in client
 * receives what is sent to its user, and nobody else does; a bad signature closes the
 * connection (4009); the user's channel cannot be subscribed to without signing in as that user.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { userAuth } from '../../src/pusher/signatures.js';
import { sdk } from '../helpers/pusher-api.js';
import { APP, Pusher, connected, connectionOptions, within } from '../helpers/pusher.js';
import { startServer, type TestServer } from '../helpers/server.js';


async function start(t: TestContext): Promise<TestServer> {
  const server = await startServer({ pusher: APP });
  t.after(() => server.close());
  return server;
}

/** A pusher-js client that signs in as `id` through its (here local) user authentication endpoint. */
function signedIn(t: TestContext, server: TestServer, id: string): Pusher {
  const client = new Pusher(APP.key, {
    ...connectionOptions(server),
    userAuthentication: {
      endpoint: 'unused',
      transport: 'ajax',
      customHandler: ({ socketId }: { socketId: string }, callback: (error: Error | null, data: { auth: string; user_data: string }) => void) => {
        const userData = JSON.stringify({ id, user_info: { name: id } });
        callback(null, { auth: userAuth(APP.key, APP.secret, socketId, userData), user_data: userData });
      },
    },
  });
  t.after(() => client.disconnect());
  client.signin();
  return client;
}

test('sendToUser reaches the signed-in user, and only that user', async (t) => {
  const server = await start(t);
  const alice = signedIn(t, server, 'alice');
  const bob = signedIn(t, server, 'bob');
  await Promise.all([connected(alice), connected(bob)]);
  let bobGot = 0;
  bob.user.bind('order.ready', () => bobGot++);
  const delivered = within(new Promise<unknown>((resolve) => alice.user.bind('order.ready', resolve)), 'the event for alice');
  // The client subscribes to its user channel after signin_success: retry until it has.
  const sending = setInterval(() => void sdk(server).sendToUser('alice', 'order.ready', { id: 1 }), 200);
  t.after(() => clearInterval(sending));
  assert.deepEqual(await delivered, { id: 1 });
  clearInterval(sending);
  // Something for bob after it: had alice's events reached bob, they would have come first.
  const forBob = within(new Promise<unknown>((resolve) => bob.user.bind('note', resolve)), 'the event for bob');
  const bobSending = setInterval(() => void sdk(server).sendToUser('bob', 'note', 'hi'), 200);
  t.after(() => clearInterval(bobSending));
  assert.equal(await forBob, 'hi');
  assert.equal(bobGot, 0);
});

test('a bad sign-in signature closes the connection with 4009; a user channel needs its sign-in', async (t) => {
  const server = await start(t);
  const frames: Array<{ event: string; channel?: string; data: unknown }> = [];
  const raw = new WebSocket(`${server.url}app/${APP.key}`);
  t.after(() => raw.terminate());
  raw.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
  await within(new Promise((resolve) => raw.once('open', resolve)), 'open');
  raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } }));
  raw.send(JSON.stringify({ event: 'pusher:signin', data: { user_data: '{"id":"alice"}', auth: `${APP.key}:${'0'.repeat(64)}` } }));
  const code = await within(new Promise<number>((resolve) => raw.once('close', (closeCode: number) => resolve(closeCode))), 'the close');
  assert.equal(code, 4009);
  const refusal = frames.find((frame) => frame.channel === '#server-to-user-alice');
  assert.equal(refusal?.event, 'pusher:subscription_error');
  assert.equal((refusal?.data as { status: number }).status, 403);
});
