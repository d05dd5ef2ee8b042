/**
 * With PUSHER_WEBHOOK_URL, a client event is reported to the application as Pusher reports
 * it: a signed `client_event` webhook (verified here by the real `pusher` SDK) naming the
 * channel, the event, its data and the sender's socket_id.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import PusherServer from 'pusher';
import { APP, pusherClient, subscribed, within } from '../helpers/pusher.js';
import { startServer } from '../helpers/server.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

test('a client event becomes a signed client_event webhook with the sender socket_id', async (t) => {
  const received: Received[] = [];
  let arrived: () => void = () => undefined;
  const receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.end('{}');
      arrived();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  t.after(() => receiver.close());
  const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/pusher/webhooks`;

  const server = await startServer({ pusher: { ...APP, clientEvents: true, webhookUrl } });
  t.after(() => server.close());
  const client = pusherClient(t, server);
  const channel = client.subscribe('private-room');
  await subscribed(channel);
  const delivered = within(new Promise<void>((resolve) => (arrived = resolve)), 'the webhook');
  channel.trigger('client-typing', { who: 'me' });
  await delivered;

  const [hook] = received;
  assert.ok(hook !== undefined);
  const pusher = new PusherServer({ appId: APP.appId, key: APP.key, secret: APP.secret, cluster: 'mt1' });
  const webhook = pusher.webhook({ headers: hook.headers, rawBody: hook.body });
  assert.equal(webhook.isValid(), true, 'signed with the app secret');
  assert.deepEqual(webhook.getEvents(), [{ name: 'client_event', channel: 'private-room', event: 'client-typing', data: '{"who":"me"}', socket_id: client.connection.socket_id }]);
});
