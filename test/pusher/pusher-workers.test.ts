/**
 * The Pusher endpoint with WS_WORKER_NUM=2 and no Redis: Pusher clients on both workers get
 * what a native client publishes, and a client event crosses workers, through the primary's
 * relay like every message. A Pusher client's worker is told by its socket_id (the
 * connection id in digits, which names its node).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeOfConnection } from '../../src/ids.js';
import { connectionIdOf } from '../../src/pusher/socket-id.js';
import { APP, connected, next, pusherClient, subscribed, type Pusher } from '../helpers/pusher.js';
import { TEST_TIMEOUT_MS, connect, serverEnv, startCluster } from '../helpers/workers.js';

const MAX_CLIENTS = 20;

const workerOf = (client: Pusher): string => nodeOfConnection(connectionIdOf(client.connection.socket_id) ?? '');

test('two workers: events reach Pusher clients on both, and client events cross workers', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cluster = await startCluster(
    t,
    serverEnv({ WS_WORKER_NUM: '2', PUSHER_APP_ID: APP.appId, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret, PUSHER_CLIENT_EVENTS: 'true' }),
  );
  const port = Number(new URL(cluster.url).port);
  const clients: Pusher[] = [];
  while (new Set(clients.map(workerOf)).size < 2) {
    assert.ok(clients.length < MAX_CLIENTS, `${clients.length} Pusher clients all reached one worker`);
    const client = pusherClient(t, { port });
    await connected(client);
    clients.push(client);
  }
  const channels = clients.map((client) => client.subscribe('private-orders'));
  await Promise.all(channels.map(subscribed));

  const native = await connect(t, cluster.url);
  await native.subscribe('private-orders');
  const arrivals = channels.map((channel) => next<unknown>(channel, 'order.paid'));
  await native.publish('private-orders', { event: 'order.paid', data: { id: 1 } });
  for (const arrival of arrivals) assert.deepEqual(await arrival, { id: 1 });

  // From a client on one worker to one on the other.
  const sender = clients[0] as Pusher;
  const index = clients.findIndex((client) => workerOf(client) !== workerOf(sender));
  const receiver = channels[index];
  assert.ok(receiver !== undefined);
  const heard = next<unknown>(receiver, 'client-ping');
  assert.equal((channels[0] as (typeof channels)[number]).trigger('client-ping', { from: workerOf(sender) }), true);
  assert.deepEqual(await heard, { from: workerOf(sender) });
});
