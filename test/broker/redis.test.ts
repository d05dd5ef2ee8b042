/**
 * Scale-out through Redis (SPEC §6, issue 5), with Redis up: several nodes that share
 * nothing but a real redis-server act as one server. Each in-process WebSocketHandler is
 * its own node; clients are real WebSocket clients; assertions on Redis go through a
 * plain ioredis client. Outages are in redis-outage.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import { TestClient, isMessageOn } from '../helpers/client.js';
import { startRedis, until } from '../helpers/redis.js';
import {
  CHANNEL,
  GENEROUS_MS,
  PREFIX,
  QUIET_MS,
  allKeys,
  connect,
  connectionId,
  isMessage,
  keys,
  messagesOn,
  numsub,
  publishMany,
  receivedAtLeast,
  sleep,
  SHORT_TIMINGS,
  startNode,
  startNodeProcess,
  subscribeAll,
} from '../helpers/redis-nodes.js';

/**
 * SPEC §6 bounds dead-node cleanup: "within a short, bounded time"; issue 5 says 30 s.
 * With the production timings (a 10 s TTL, checked every 3 s) a dead node is gone within
 * 13 s; the test runs on SHORT_TIMINGS, and this is how long it waits at most.
 */
const DEAD_NODE_CLEANUP_MS = 30_000;

test('two nodes: a message published on either reaches every subscriber on both exactly once, the publisher included', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const onA = [await connect(t, a), await connect(t, a)];
  const onB = [await connect(t, b), await connect(t, b)];
  const everyone = [...onA, ...onB];
  await subscribeAll(everyone);
  const [publisherA] = onA;
  const [publisherB] = onB;
  assert.ok(publisherA && publisherB);

  const fromA = await publisherA.publish(CHANNEL, 'from A');
  const fromB = await publisherB.publish(CHANNEL, 'from B');
  assert.equal(fromA.recipients_count, 4);
  assert.equal(fromB.recipients_count, 4);

  for (const client of everyone) {
    await receivedAtLeast(client, isMessage(CHANNEL, 'from A'));
    await receivedAtLeast(client, isMessage(CHANNEL, 'from B'));
  }
  await sleep(QUIET_MS);
  for (const client of everyone) {
    const received = messagesOn(client);
    assert.deepEqual(received.map((frame) => frame.message).sort(), ['from A', 'from B'], `${connectionId(client)} got each message once`);
    const a1 = received.find((frame) => frame.message === 'from A');
    assert.equal(a1?.sender, connectionId(publisherA));
    assert.equal(a1?.user_id, null);
    assert.equal(received.find((frame) => frame.message === 'from B')?.sender, connectionId(publisherB));
  }
});

test('three nodes: a message published on any one reaches every subscriber on all three exactly once', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const nodes = [await startNode(t, redis), await startNode(t, redis), await startNode(t, redis)];
  const publishers = [];
  const everyone = [];
  for (const node of nodes) {
    const publisher = await connect(t, node);
    publishers.push(publisher);
    everyone.push(publisher, await connect(t, node));
  }
  await subscribeAll(everyone);

  for (const [index, publisher] of publishers.entries()) {
    const ack = await publisher.publish(CHANNEL, `from node ${index}`);
    assert.equal(ack.recipients_count, 6);
  }
  for (const client of everyone) for (const index of [0, 1, 2]) await receivedAtLeast(client, isMessage(CHANNEL, `from node ${index}`));
  await sleep(QUIET_MS);
  for (const client of everyone) {
    assert.deepEqual(
      messagesOn(client)
        .map((frame) => frame.message)
        .sort(),
      ['from node 0', 'from node 1', 'from node 2'],
      `${connectionId(client)} got each message once`,
    );
  }
});

test('two publishers on different nodes: every subscriber on every node sees each one\'s messages in publish order, none missing', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const publisherA = await connect(t, a);
  const publisherB = await connect(t, b);
  const subscribers = [publisherA, publisherB, await connect(t, a), await connect(t, b)];
  await subscribeAll(subscribers);

  const COUNT = 300;
  const sequence = Array.from({ length: COUNT }, (_, index) => index);
  const [acksA, acksB] = await Promise.all([
    publishMany(
      publisherA,
      CHANNEL,
      sequence.map((seq) => ({ from: 'A', seq })),
    ),
    publishMany(
      publisherB,
      CHANNEL,
      sequence.map((seq) => ({ from: 'B', seq })),
    ),
  ]);
  for (const ack of [...acksA, ...acksB]) assert.equal(ack.action, 'message_sent', JSON.stringify(ack));

  for (const client of subscribers) {
    await receivedAtLeast(client, isMessageOn(CHANNEL), 2 * COUNT);
  }
  await sleep(QUIET_MS);
  for (const client of subscribers) {
    const received = messagesOn(client).map((frame) => frame.message as { from: string; seq: number });
    assert.equal(received.length, 2 * COUNT, `${connectionId(client)}: no message twice`);
    for (const from of ['A', 'B']) {
      assert.deepEqual(
        received.filter((message) => message.from === from).map((message) => message.seq),
        sequence,
        `${connectionId(client)} sees ${from}'s messages in publish order`,
      );
    }
  }
});

test('recipients_count without recipients counts every subscriber on every node', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const publisher = await connect(t, a, 'carol');
  const others = [await connect(t, a), await connect(t, b, 'alice'), await connect(t, b), await connect(t, b)];
  await subscribeAll([publisher, ...others]);

  assert.equal((await publisher.publish(CHANNEL, 'all')).recipients_count, 5);
  assert.equal(await a.handler.publish(CHANNEL, 'all, from the application'), 5);
  assert.equal(await b.handler.publish(CHANNEL, 'all, from the application on B'), 5);
});

test('recipients_count with recipients counts the listed users\' connections on every node, and only they receive', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const publisher = await connect(t, a, 'carol');
  const aliceOnA = await connect(t, a, 'alice');
  const aliceOnB = await connect(t, b, 'alice');
  const bobOnB = await connect(t, b, 7);
  const anonymousOnA = await connect(t, a);
  const anonymousOnB = await connect(t, b);
  const everyone = [publisher, aliceOnA, aliceOnB, bobOnB, anonymousOnA, anonymousOnB];
  await subscribeAll(everyone);

  // A user with a connection on each node counts twice.
  assert.equal((await publisher.publish(CHANNEL, 'to alice', { recipients: ['alice'] })).recipients_count, 2);
  // User ids compare as strings: 7 and '7' are bob.
  assert.equal((await publisher.publish(CHANNEL, 'to alice and bob', { recipients: ['alice', 7] })).recipients_count, 3);
  assert.equal((await publisher.publish(CHANNEL, 'to bob as a string', { recipients: ['7'] })).recipients_count, 1);
  assert.equal((await publisher.publish(CHANNEL, 'to nobody', { recipients: ['nobody'] })).recipients_count, 0);
  // An empty list addresses nobody, and counts nobody (not the whole channel).
  assert.equal((await publisher.publish(CHANNEL, 'to an empty list', { recipients: [] })).recipients_count, 0);
  assert.equal(await a.handler.publish(CHANNEL, 'to an empty list, from the application', { recipients: [] }), 0);
  // Anonymous connections are nobody's: not even an empty or "null" user id reaches them.
  assert.equal((await publisher.publish(CHANNEL, 'to anonymous?', { recipients: ['', 'null'] })).recipients_count, 0);
  // The sender receives it only when listed.
  assert.equal((await publisher.publish(CHANNEL, 'to carol and alice', { recipients: ['carol', 'alice'] })).recipients_count, 3);

  const expected = new Map([
    [publisher, ['to carol and alice']],
    [aliceOnA, ['to alice', 'to alice and bob', 'to carol and alice']],
    [aliceOnB, ['to alice', 'to alice and bob', 'to carol and alice']],
    [bobOnB, ['to alice and bob', 'to bob as a string']],
    [anonymousOnA, []],
    [anonymousOnB, []],
  ]);
  for (const [client, messages] of expected) if (messages.length > 0) await receivedAtLeast(client, isMessageOn(CHANNEL), messages.length);
  await sleep(QUIET_MS);
  for (const [client, messages] of expected) {
    assert.deepEqual(
      messagesOn(client).map((frame) => frame.message),
      messages,
      `what ${connectionId(client)} (${String(client.welcome.user_id)}) received`,
    );
  }
});

test('an application publish on one node reaches subscribers on another with sender null and returns the cluster-wide count', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const onA = await connect(t, a);
  const onB = [await connect(t, b, 'alice'), await connect(t, b)];
  await subscribeAll([onA, ...onB]);

  assert.equal(await a.handler.publish(CHANNEL, { text: 'from the backend' }), 3);
  for (const client of [onA, ...onB]) {
    const [frame] = await receivedAtLeast(client, isMessageOn(CHANNEL));
    assert.deepEqual(frame?.message, { text: 'from the backend' });
    assert.equal(frame?.sender, null);
    assert.equal(frame?.user_id, null);
    assert.equal(typeof frame?.time, 'number');
  }

  assert.equal(await a.handler.publish(CHANNEL, 'for alice', { recipients: ['alice'] }), 1);
  await receivedAtLeast(onB[0]!, isMessage(CHANNEL, 'for alice'));
  await sleep(QUIET_MS);
  assert.equal(messagesOn(onA).length, 1);
  assert.equal(messagesOn(onB[1]!).length, 1);
});

test('a node holds one Redis subscription per channel, whatever its number of local subscribers, and drops it when the last leaves', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const onA = [];
  for (let index = 0; index < 5; index++) onA.push(await connect(t, a));
  const onB = [await connect(t, b), await connect(t, b), await connect(t, b)];
  await subscribeAll([...onA, ...onB]);
  assert.equal(await numsub(redis, keys.pub()), 2);

  // A's clients leave, some by unsubscribing, some by disconnecting.
  for (const client of onA.slice(0, 3)) assert.equal((await client.request('unsubscribe', { channel: CHANNEL })).success, true);
  for (const client of onA.slice(3)) client.close();
  await until(async () => (await numsub(redis, keys.pub())) === 1, GENEROUS_MS, 'node A to drop its subscription');
  assert.equal((await onB[0]!.publish(CHANNEL, 'B only')).recipients_count, 3);

  for (const client of onB) client.close();
  await until(async () => (await numsub(redis, keys.pub())) === 0, GENEROUS_MS, 'node B to drop its subscription');
  // No channel's subscription is left; what stays is each node's own: its requests and answers (the HTTP API).
  assert.deepEqual(await redis.client.pubsub('CHANNELS', `${PREFIX}{*`), []);
  assert.deepEqual(((await redis.client.pubsub('CHANNELS', `${PREFIX}*`)) as string[]).sort(), [`${PREFIX}control`, `${PREFIX}reply:{${a.handler.nodeId}}`, `${PREFIX}reply:{${b.handler.nodeId}}`].sort());
});

test('the members hash holds each subscribed connection with its user id as JSON (empty when anonymous), and leaving removes it', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const anonymous = await connect(t, a);
  const aliceOnA = await connect(t, a, 'alice');
  const aliceOnB = await connect(t, b, 'alice');
  const bob = await connect(t, b, 42);
  await subscribeAll([anonymous, aliceOnA, aliceOnB, bob]);

  assert.deepEqual(await redis.client.hgetall(keys.members()), {
    [connectionId(anonymous)]: '',
    [connectionId(aliceOnA)]: '"alice"',
    [connectionId(aliceOnB)]: '"alice"',
    [connectionId(bob)]: '42',
  });
  assert.deepEqual(await redis.client.hgetall(keys.users()), { alice: '2', '42': '1' });

  await aliceOnA.request('unsubscribe', { channel: CHANNEL });
  await until(async () => !(await redis.client.hexists(keys.members(), connectionId(aliceOnA))), GENEROUS_MS, 'the unsubscribed member to leave the hash');
  bob.close();
  await until(async () => !(await redis.client.hexists(keys.members(), connectionId(bob))), GENEROUS_MS, 'the disconnected member to leave the hash');
  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(anonymous)]: '', [connectionId(aliceOnB)]: '"alice"' });
  assert.deepEqual(await redis.client.hgetall(keys.users()), { alice: '1' });

  anonymous.close();
  aliceOnB.close();
  await until(async () => (await redis.client.exists(keys.members(), keys.users())) === 0, GENEROUS_MS, 'the channel\'s hashes to be emptied');
});

test('an anonymous subscriber that authenticates later shows its user id in Redis and counts for recipients on another node', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const dave = await connect(t, a);
  const publisher = await connect(t, b);
  await subscribeAll([dave, publisher]);
  assert.equal(await redis.client.hget(keys.members(), connectionId(dave)), '');
  assert.equal((await publisher.publish(CHANNEL, 'before auth', { recipients: ['dave'] })).recipients_count, 0);

  const token = await mintToken(a.handler.options.auth, { userId: 'dave', role: 'user', ttlSeconds: 3600 });
  const auth = await dave.request('auth', { token });
  assert.equal(auth.authenticated, true);
  await until(async () => (await redis.client.hget(keys.members(), connectionId(dave))) === '"dave"', GENEROUS_MS, 'the member to carry its user id');
  assert.deepEqual(await redis.client.hgetall(keys.users()), { dave: '1' });

  assert.equal((await publisher.publish(CHANNEL, 'after auth', { recipients: ['dave'] })).recipients_count, 1);
  await receivedAtLeast(dave, isMessage(CHANNEL, 'after auth'));
  await sleep(QUIET_MS);
  assert.deepEqual(
    messagesOn(dave).map((frame) => frame.message),
    ['after auth'],
  );
});

test('every key and pub/sub channel the nodes use starts with the prefix', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const prefix = 'tenant-a:';
  const a = await startNode(t, redis, {}, { prefix });
  const b = await startNode(t, redis, {}, { prefix });
  const clients = [await connect(t, a), await connect(t, a, 'alice'), await connect(t, b, 'bob')];
  await subscribeAll(clients);
  await subscribeAll(clients.slice(1), 'chat.room.2');
  await clients[0]!.publish(CHANNEL, 'hello');
  await clients[1]!.publish('chat.room.2', 'hello', { recipients: ['bob'] });
  await a.handler.publish('chat.room.3', 'nobody listens');
  await clients[2]!.request('unsubscribe', { channel: 'chat.room.2' });

  const found = await allKeys(redis);
  assert.ok(found.length > 0, 'the nodes wrote keys');
  for (const key of found) assert.ok(key.startsWith(prefix), `key ${key} starts with ${prefix}`);
  assert.ok(found.includes(`${prefix}nodes`), `the nodes hash is there: ${found.join(', ')}`);
  assert.ok(found.includes(keys.members(CHANNEL, prefix)));

  const channels = (await redis.client.pubsub('CHANNELS', '*')) as string[];
  const nodeChannels = [`${prefix}control`, ...[a, b].map((node) => `${prefix}reply:{${node.handler.nodeId}}`)];
  assert.deepEqual(channels.sort(), [keys.pub(CHANNEL, prefix), keys.pub('chat.room.2', prefix), ...nodeChannels].sort());
});

test('two clusters with different prefixes on one Redis see neither each other\'s messages nor members', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const x = [await startNode(t, redis, {}, { prefix: 'cluster-x:' }), await startNode(t, redis, {}, { prefix: 'cluster-x:' })];
  const y = [await startNode(t, redis, {}, { prefix: 'cluster-y:' }), await startNode(t, redis, {}, { prefix: 'cluster-y:' })];
  const onX = [await connect(t, x[0]!, 'alice'), await connect(t, x[1]!, 'alice')];
  const onY = [await connect(t, y[0]!, 'alice'), await connect(t, y[1]!, 'alice'), await connect(t, y[1]!)];
  await subscribeAll([...onX, ...onY]);

  assert.equal((await onX[0]!.publish(CHANNEL, 'to cluster x')).recipients_count, 2);
  assert.equal((await onX[0]!.publish(CHANNEL, 'to alice in x', { recipients: ['alice'] })).recipients_count, 2);
  assert.equal((await onY[0]!.publish(CHANNEL, 'to cluster y')).recipients_count, 3);
  assert.equal((await onY[0]!.publish(CHANNEL, 'to alice in y', { recipients: ['alice'] })).recipients_count, 2);
  for (const client of onX) await receivedAtLeast(client, isMessageOn(CHANNEL), 2);
  for (const client of onY.slice(0, 2)) await receivedAtLeast(client, isMessageOn(CHANNEL), 2);
  await sleep(QUIET_MS);
  for (const client of onX) assert.deepEqual(messagesOn(client).map((frame) => frame.message), ['to cluster x', 'to alice in x']);
  for (const client of onY.slice(0, 2)) assert.deepEqual(messagesOn(client).map((frame) => frame.message), ['to cluster y', 'to alice in y']);
  assert.deepEqual(messagesOn(onY[2]!).map((frame) => frame.message), ['to cluster y']);

  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.members(CHANNEL, 'cluster-x:'))).sort(), onX.map(connectionId).sort());
  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.members(CHANNEL, 'cluster-y:'))).sort(), onY.map(connectionId).sort());
  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.nodes('cluster-x:'))).sort(), x.map((node) => node.handler.nodeId).sort());
  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.nodes('cluster-y:'))).sort(), y.map((node) => node.handler.nodeId).sort());
});

test('a node closed gracefully leaves no trace in Redis: members, nodes entry, liveness and membership keys', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const onA = [await connect(t, a, 'alice'), await connect(t, a)];
  const onB = [await connect(t, b, 'alice'), await connect(t, b, 'bob')];
  await subscribeAll([...onA, ...onB]);
  await subscribeAll([onA[0]!], 'chat.room.2');
  const nodeA = a.handler.nodeId;
  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.nodes())).sort(), [nodeA, b.handler.nodeId].sort());
  assert.equal(await redis.client.exists(keys.nodeAlive(nodeA)), 1);
  assert.equal(await redis.client.scard(keys.nodeMembers(nodeA)), 3);

  await a.close();

  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.members())).sort(), onB.map(connectionId).sort());
  assert.deepEqual(await redis.client.hgetall(keys.users()), { alice: '1', bob: '1' });
  assert.equal(await redis.client.exists(keys.members('chat.room.2'), keys.users('chat.room.2')), 0);
  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.nodes())), [b.handler.nodeId]);
  assert.equal(await redis.client.exists(keys.nodeAlive(nodeA)), 0);
  assert.equal(await redis.client.exists(keys.nodeMembers(nodeA)), 0);
  assert.equal(await numsub(redis, keys.pub('chat.room.2')), 0);
  assert.equal(await numsub(redis, keys.pub()), 1);
  assert.equal((await onB[1]!.publish(CHANNEL, 'after A left')).recipients_count, 2);
  assert.equal((await onB[1]!.publish(CHANNEL, 'alice', { recipients: ['alice'] })).recipients_count, 1);
});

test('a node killed with SIGKILL is cleaned out of Redis by the surviving nodes once its liveness key expires, without KEYS', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // Both on short liveness timings: the cleanup waits for the dead node's TTL, then a survivor's check.
  const survivor = await startNode(t, redis, { brokerTuning: SHORT_TIMINGS });
  const victim = await startNodeProcess(t, redis);
  const remote = await TestClient.connect(victim.url);
  t.after(() => remote.close());
  const local = await connect(t, survivor);
  await subscribeAll([remote, local]);
  const remoteId = connectionId(remote);
  const deadNode = victim.nodeId;
  assert.ok(remoteId.startsWith(`${deadNode}-`));

  assert.equal((await local.publish(CHANNEL, 'both nodes')).recipients_count, 2);
  await receivedAtLeast(remote, isMessage(CHANNEL, 'both nodes'));
  assert.equal(await redis.client.hget(keys.members(), remoteId), '');
  assert.ok((await redis.client.hkeys(keys.nodes())).includes(deadNode));

  await victim.kill();
  await until(async () => !(await redis.client.hexists(keys.members(), remoteId)), DEAD_NODE_CLEANUP_MS, 'the dead node\'s member to be removed');

  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.members())), [connectionId(local)]);
  assert.equal((await local.publish(CHANNEL, 'survivor only')).recipients_count, 1);
  await until(async () => !(await redis.client.hkeys(keys.nodes())).includes(deadNode), GENEROUS_MS, 'the dead node to leave the nodes hash');
  assert.equal(await redis.client.exists(keys.nodeMembers(deadNode), keys.nodeAlive(deadNode)), 0);
  // SPEC §6: "No KEYS scans" (this Redis served only the nodes and this test, which uses none).
  assert.doesNotMatch(await redis.client.info('commandstats'), /^cmdstat_keys:/m);
});
