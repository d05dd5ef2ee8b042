/**
 * Pusher presence channels with pusher-js 8: the subscriber gets every member with its
 * user_info; the others hear member_added for a user's first connection and member_removed
 * for its last, never the joiner itself; on one node and across two through Redis; the
 * HTTP API lists the same users; native clients on the channel hear none of it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import type { PresenceChannel } from 'pusher-js';
import { WebSocket } from 'ws';
import { channelAuth } from '../../src/pusher/signatures.js';
import { TestClient } from '../helpers/client.js';
import { sdk } from '../helpers/pusher-api.js';
import { APP, NATIVE_MAY_USE_ALL, pusherClient, subscribed, within, type PresenceUser, type Pusher } from '../helpers/pusher.js';
import { startRedis } from '../helpers/redis.js';
import { PREFIX, SHORT_TIMINGS, startNode } from '../helpers/redis-nodes.js';
import { cliEnv, spawnCli, tempDir } from '../helpers/cli.js';
import { startServer, type TestServer } from '../helpers/server.js';

const CHANNEL = 'presence-room';
const ALICE: PresenceUser = { user_id: 1, user_info: { name: 'Alice' } };
const BOB: PresenceUser = { user_id: 'bob', user_info: { name: 'Bob' } };

async function start(t: TestContext): Promise<TestServer> {
  const server = await startServer({ pusher: APP, channels: NATIVE_MAY_USE_ALL });
  t.after(() => server.close());
  return server;
}

async function join(t: TestContext, server: { port: number }, user: PresenceUser): Promise<{ client: Pusher; channel: PresenceChannel }> {
  const client = pusherClient(t, server, APP.key, user);
  const channel = client.subscribe(CHANNEL) as PresenceChannel;
  await subscribed(channel);
  return { client, channel };
}

/** Records the member events a channel hears. */
function memberEvents(channel: PresenceChannel): string[] {
  const events: string[] = [];
  channel.bind('pusher:member_added', (member: { id: string }) => events.push(`added ${member.id}`));
  channel.bind('pusher:member_removed', (member: { id: string }) => events.push(`removed ${member.id}`));
  return events;
}

const until = (condition: () => boolean, what: string): Promise<void> =>
  within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    what,
  );

describe('Pusher presence channels', () => {
  test('members with their info; added and removed per user, never to the joiner', async (t) => {
    const server = await start(t);
    const alice = await join(t, server, ALICE);
    assert.equal(alice.channel.members.count, 1);
    // pusher-js keeps `me` as its own channel_data gave it (a number here); the list is the server's.
    assert.deepEqual(alice.channel.members.get('1'), { id: '1', info: { name: 'Alice' } });
    const heardByAlice = memberEvents(alice.channel);

    const bob = await join(t, server, BOB);
    const heardByBob = memberEvents(bob.channel);
    assert.equal(bob.channel.members.count, 2);
    assert.deepEqual(bob.channel.members.get('1'), { id: '1', info: { name: 'Alice' } });
    await until(() => heardByAlice.length === 1, 'member_added at alice');
    assert.deepEqual(heardByAlice, ['added bob']);
    assert.deepEqual(alice.channel.members.get('bob'), { id: 'bob', info: { name: 'Bob' } });

    // Bob's second connection adds nobody; closing it removes nobody; his last one leaving removes him.
    const bobAgain = await join(t, server, BOB);
    assert.equal(bobAgain.channel.members.count, 2);
    bobAgain.client.disconnect();
    bob.client.disconnect();
    await until(() => heardByAlice.length === 2, 'member_removed at alice');
    assert.deepEqual(heardByAlice, ['added bob', 'removed bob']);
    assert.deepEqual(heardByBob, [], 'the joiner hears nothing of itself');
    assert.equal(alice.channel.members.count, 1);
  });

  test('unsubscribing removes the member; the HTTP API lists the users; native subscribers hear none of it', async (t) => {
    const server = await start(t);
    const native = await TestClient.connect(server.url);
    t.after(() => native.close());
    await native.subscribe(CHANNEL);
    const alice = await join(t, server, ALICE);
    const heardByAlice = memberEvents(alice.channel);
    const bob = await join(t, server, BOB);
    await until(() => heardByAlice.length === 1, 'member_added');

    const users = (await sdk(server).get({ path: `/channels/${CHANNEL}/users` }).then((response) => response.json())) as { users: Array<{ id: string }> };
    assert.deepEqual(users.users.map((user) => user.id).sort(), ['1', 'bob']);

    bob.client.unsubscribe(CHANNEL);
    await until(() => heardByAlice.length === 2, 'member_removed');
    // A marker after the presence events: the native client's next frame is the marker, nothing Pusher-only before it.
    await server.handler.publish(CHANNEL, 'marker');
    const next = await native.next((frame) => frame.action !== 'subscribe');
    assert.equal(next.message, 'marker');
  });

  test('channel_data without a user_id, or a second user on one connection: a subscription_error', async (t) => {
    const server = await start(t);
    const raw = new WebSocket(`${server.url}app/${APP.key}`);
    t.after(() => raw.terminate());
    const frames: Array<{ event: string; channel?: string; data: unknown }> = [];
    raw.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await within(new Promise((resolve) => raw.once('open', resolve)), 'open');
    await until(() => frames.length === 1, 'connection_established');
    const socketId = (JSON.parse(frames[0]?.data as string) as { socket_id: string }).socket_id;
    const subscribe = (channel: string, channelData: string): void =>
      raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel, channel_data: channelData, auth: channelAuth(APP.key, APP.secret, socketId, channel, channelData) } }));
    subscribe('presence-a', '{"user_info":{}}');
    subscribe('presence-b', '{"user_id":7}');
    subscribe('presence-c', '{"user_id":8}');
    await until(() => frames.filter((frame) => frame.channel !== undefined).length === 3, 'three answers');
    assert.deepEqual(
      frames.filter((frame) => frame.channel !== undefined).map((frame) => [frame.channel, frame.event]),
      [
        ['presence-a', 'pusher:subscription_error'],
        ['presence-b', 'pusher_internal:subscription_succeeded'],
        ['presence-c', 'pusher:subscription_error'],
      ],
    );
  });

  test('two nodes through Redis: the member list and the member events are cluster-wide', async (t) => {
    const redis = await startRedis(t);
    if (redis === null) return;
    const a = await startNode(t, redis, { pusher: APP });
    const b = await startNode(t, redis, { pusher: APP });
    const alice = await join(t, a, ALICE);
    const heardByAlice = memberEvents(alice.channel);
    const bob = await join(t, b, BOB);
    assert.equal(bob.channel.members.count, 2);
    assert.deepEqual(bob.channel.members.get('1'), { id: '1', info: { name: 'Alice' } });
    await until(() => heardByAlice.length === 1, 'member_added across nodes');
    // The HTTP API answers for the cluster, whichever node is asked.
    for (const node of [a, b]) {
      const users = (await sdk(node).get({ path: `/channels/${CHANNEL}/users` }).then((response) => response.json())) as { users: Array<{ id: string }> };
      assert.deepEqual(users.users.map((user) => user.id).sort(), ['1', 'bob']);
      const info = (await sdk(node).get({ path: `/channels/${CHANNEL}`, params: { info: 'user_count,subscription_count' } }).then((response) => response.json())) as Record<string, unknown>;
      assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 2 });
    }
    // The member's info is stored beside its user id: recipients still count by the user id alone.
    const forBob = new Promise<unknown>((resolve) => bob.channel.bind('message', resolve));
    assert.equal((await a.handler.publishMessage(CHANNEL, 'for bob', { recipients: ['bob'] })).recipientsCount, 1);
    assert.equal(await within(forBob, 'the message for bob'), 'for bob');
    bob.client.disconnect();
    await until(() => heardByAlice.length === 2, 'member_removed across nodes');
    assert.deepEqual(heardByAlice, ['added bob', 'removed bob']);
  });
});

test('a node killed with SIGKILL (a real `switchboard start` process): its presence members are removed for the Pusher clients on the survivors', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis(t);
  if (redis === null) return;
  const survivor = await startNode(t, redis, { pusher: APP, brokerTuning: SHORT_TIMINGS });
  const victim = spawnCli(t, ['start'], {
    cwd: tempDir(t),
    env: cliEnv({
      WS_HOST: '127.0.0.1',
      WS_PORT: '0',
      WS_HEARTBEAT_INTERVAL: '3600',
      REDIS_ENABLED: 'true',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      REDIS_PREFIX: PREFIX,
      PUSHER_APP_ID: APP.appId,
      PUSHER_APP_KEY: APP.key,
      PUSHER_APP_SECRET: APP.secret,
    }),
  });
  const victimPort = Number(new URL(await victim.listeningUrl()).port);
  const watcher = await join(t, survivor, ALICE);
  const heard = memberEvents(watcher.channel);
  // A raw connection on the victim (pusher-js would reconnect elsewhere and join again).
  const socket = new WebSocket(`ws://127.0.0.1:${victimPort}/app/${APP.key}`);
  t.after(() => socket.terminate());
  const [established] = (await within(once(socket, 'message'), 'connection_established')) as [Buffer];
  const socketId = (JSON.parse((JSON.parse(established.toString()) as { data: string }).data) as { socket_id: string }).socket_id;
  const channelData = JSON.stringify(BOB);
  socket.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: CHANNEL, channel_data: channelData, auth: channelAuth(APP.key, APP.secret, socketId, CHANNEL, channelData) } }));
  await until(() => heard.length === 1, 'member_added from the victim node');
  await victim.kill();
  // The victim keeps the production liveness TTL (10 s); the survivor checks every 300 ms.
  await within(
    (async () => {
      while (heard.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    })(),
    'member_removed after the node died',
    60_000,
  );
  assert.deepEqual(heard, ['added bob', 'removed bob']);
});
