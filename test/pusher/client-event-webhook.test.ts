/**
 * With PUSHER_WEBHOOK_URL, a client event is reported to the application as Pusher reports
 * it: a signed `client_event` webhook (verified here by the real `pusher` SDK) naming the
 * channel, the event, its data and the sender's socket_id.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import PusherServer from 'pusher';
import { APP, pusherClient, subscribed, within } from '../helpers/pusher.js';
import { TestClient } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** An application's webhook receiver: every request it got, and the URL to give the server. */
async function receiver(t: TestContext): Promise<{ received: Received[]; url: string; events: () => unknown[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const pusher = new PusherServer({ appId: APP.appId, key: APP.key, secret: APP.secret, cluster: 'mt1' });
  // Every event of every valid request, in order (an invalid one fails the test).
  const events = (): unknown[] =>
    received.flatMap((hook) => {
      const webhook = pusher.webhook({ headers: hook.headers, rawBody: hook.body });
      assert.equal(webhook.isValid(), true, 'signed with the app secret');
      return webhook.getEvents();
    });
  return { received, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pusher/webhooks`, events };
}

const eventually = (condition: () => boolean, what: string): Promise<void> =>
  within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    what,
  );

test('a client event becomes a signed client_event webhook with the sender socket_id', async (t) => {
  const hooks = await receiver(t);
  const webhookUrl = hooks.url;

  const server = await startServer({ pusher: { ...APP, clientEvents: true, webhookUrl } });
  t.after(() => server.close());
  const client = pusherClient(t, server);
  const channel = client.subscribe('private-room');
  await subscribed(channel);
  channel.trigger('client-typing', { who: 'me' });
  const clientEvents = (): unknown[] => hooks.events().filter((event) => (event as { name: string }).name === 'client_event');
  await eventually(() => clientEvents().length > 0, 'the webhook');
  assert.deepEqual(clientEvents(), [{ name: 'client_event', channel: 'private-room', event: 'client-typing', data: '{"who":"me"}', socket_id: client.connection.socket_id }]);
});

test('presence: member_added for a user first connection, member_removed for its last, once each', async (t) => {
  const hooks = await receiver(t);
  const server = await startServer({ pusher: { ...APP, webhookUrl: hooks.url } });
  t.after(() => server.close());
  const alice = pusherClient(t, server, APP.key, { user_id: 'alice' });
  await subscribed(alice.subscribe('presence-room'));
  const bob = pusherClient(t, server, APP.key, { user_id: 'bob' });
  await subscribed(bob.subscribe('presence-room'));
  const bobAgain = pusherClient(t, server, APP.key, { user_id: 'bob' });
  await subscribed(bobAgain.subscribe('presence-room'));
  bobAgain.disconnect();
  bob.disconnect();
  const memberEvents = (): unknown[] => hooks.events().filter((event) => (event as { name: string }).name.startsWith('member_'));
  await eventually(() => memberEvents().length === 3, 'three member events');
  assert.deepEqual(memberEvents(), [
    { name: 'member_added', channel: 'presence-room', user_id: 'alice' },
    { name: 'member_added', channel: 'presence-room', user_id: 'bob' },
    { name: 'member_removed', channel: 'presence-room', user_id: 'bob' },
  ]);
});

test('channel_occupied when the first subscriber joins (of either protocol), channel_vacated when the last leaves', async (t) => {
  const hooks = await receiver(t);
  const server = await startServer({ pusher: { ...APP, webhookUrl: hooks.url } });
  t.after(() => server.close());
  const client = pusherClient(t, server);
  await subscribed(client.subscribe('news'));
  await eventually(() => hooks.events().length === 1, 'channel_occupied');
  const native = await TestClient.connect(server.url);
  t.after(() => native.close());
  await native.subscribe('news');
  // The native client leaves while the Pusher one stays: not vacated. Its next channel is
  // occupied, which comes after any (wrong) vacated of the first, from the same node's queue.
  await native.request('unsubscribe', { channel: 'news' });
  await native.subscribe('other');
  await eventually(() => hooks.events().length === 2, 'channel_occupied of the second channel');
  client.unsubscribe('news');
  await eventually(() => hooks.events().length === 3, 'channel_vacated');
  assert.deepEqual(hooks.events(), [
    { name: 'channel_occupied', channel: 'news' },
    { name: 'channel_occupied', channel: 'other' },
    { name: 'channel_vacated', channel: 'news' },
  ]);
});
