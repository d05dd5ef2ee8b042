/**
 * The Pusher endpoint with WS_WORKER_NUM=2 and no Redis: Pusher clients on both workers get
 * what a native client publishes, and a client event crosses workers, through the primary's
 * relay like every message. A Pusher client's worker is told by its socket_id (the
 * connection id in digits, which names its node).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { nodeOfConnection } from '../../src/ids.js';
import { channelAuth } from '../../src/pusher/signatures.js';
import { connectionIdOf } from '../../src/pusher/socket-id.js';
import type { PresenceChannel } from 'pusher-js';
import { WebSocket } from 'ws';
import { APP, NATIVE_MAY_USE_ALL, connected, next, pusherClient, subscribed, within, type Pusher } from '../helpers/pusher.js';
import { TEST_TIMEOUT_MS, connect, serverEnv, startCluster, workerPids } from '../helpers/workers.js';

const MAX_CLIENTS = 20;

/** A channels file letting the native client share the private channel (NATIVE_MAY_USE_ALL). */
function channelsFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-pusher-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'channels.json');
  writeFileSync(file, JSON.stringify(NATIVE_MAY_USE_ALL));
  return file;
}

const workerOf = (client: Pusher): string => nodeOfConnection(connectionIdOf(client.connection.socket_id) ?? '');

test('two workers: events reach Pusher clients on both, and client events cross workers', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cluster = await startCluster(
    t,
    serverEnv({ WS_WORKER_NUM: '2', WS_CHANNELS_FILE: channelsFile(t), PUSHER_APP_ID: APP.appId, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret, PUSHER_CLIENT_EVENTS: 'true' }),
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

test('two workers: a presence channel lists the members of both, with their info, and tells each of the other', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const cluster = await startCluster(t, serverEnv({ WS_WORKER_NUM: '2', PUSHER_APP_ID: APP.appId, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret }));
  const port = Number(new URL(cluster.url).port);
  // Users 0, 1, 2, ... until two of them sit on different workers.
  const joined: Array<{ client: Pusher; channel: PresenceChannel }> = [];
  while (new Set(joined.map(({ client }) => workerOf(client))).size < 2) {
    assert.ok(joined.length < MAX_CLIENTS, `${joined.length} Pusher clients all reached one worker`);
    const client = pusherClient(t, { port }, APP.key, { user_id: joined.length, user_info: { n: joined.length } });
    const channel = client.subscribe('presence-lobby') as PresenceChannel;
    await subscribed(channel);
    joined.push({ client, channel });
  }
  const last = joined[joined.length - 1] as (typeof joined)[number];
  assert.equal(last.channel.members.count, joined.length, 'the newest member sees everyone, on both workers');
  for (let user = 0; user < joined.length; user++) assert.deepEqual(last.channel.members.get(String(user)), { id: String(user), info: { n: user } });
  const first = joined[0] as (typeof joined)[number];
  const removed = new Promise<{ id: string }>((resolve) => first.channel.bind('pusher:member_removed', resolve));
  last.client.disconnect();
  assert.equal((await within(removed, 'member_removed')).id, String(joined.length - 1));
});

test('a worker killed with SIGKILL: its presence members are removed for the Pusher clients on the other worker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const apiKey = 'pusher-workers-api-key-of-some-length';
  const cluster = await startCluster(t, serverEnv({ WS_WORKER_NUM: '2', WS_API_KEY: apiKey, PUSHER_APP_ID: APP.appId, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret }));
  const port = Number(new URL(cluster.url).port);
  const watcher = pusherClient(t, { port }, APP.key, { user_id: 'watcher' });
  const watched = watcher.subscribe('presence-lobby') as PresenceChannel;
  await subscribed(watched);
  const watcherNode = workerOf(watcher);

  // A raw connection (it does not reconnect, as pusher-js would) on the other worker joins as "victim".
  let victim: { socket: WebSocket; node: string } | null = null;
  for (let attempt = 0; victim === null; attempt++) {
    assert.ok(attempt < MAX_CLIENTS, 'no connection reached the other worker');
    const socket = new WebSocket(`ws://127.0.0.1:${port}/app/${APP.key}`);
    t.after(() => socket.terminate());
    const [data] = (await within(once(socket, 'message'), 'connection_established')) as [Buffer];
    const socketId = (JSON.parse((JSON.parse(data.toString()) as { data: string }).data) as { socket_id: string }).socket_id;
    const node = nodeOfConnection(connectionIdOf(socketId) ?? '');
    if (node === watcherNode) {
      socket.close();
      continue;
    }
    const channelData = JSON.stringify({ user_id: 'victim' });
    socket.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'presence-lobby', channel_data: channelData, auth: channelAuth(APP.key, APP.secret, socketId, 'presence-lobby', channelData) } }));
    victim = { socket, node };
  }
  const added = new Promise<{ id: string }>((resolve) => watched.bind('pusher:member_added', resolve));
  assert.equal((await within(added, 'member_added')).id, 'victim');

  const removed = new Promise<{ id: string }>((resolve) => watched.bind('pusher:member_removed', resolve));
  const pid = (await workerPids(cluster.url, apiKey)).get(victim.node);
  assert.ok(pid !== undefined, 'the victim worker has a pid');
  process.kill(pid, 'SIGKILL');
  assert.equal((await within(removed, 'member_removed')).id, 'victim');
  assert.equal(watched.members.count, 1);
});
