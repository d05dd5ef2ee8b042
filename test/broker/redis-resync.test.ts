/**
 * What a node does while it gets back in sync with Redis after an outage (SPEC §6,
 * issue 5): requests that arrive while it is re-registering and sending its outbox, and a
 * connection to Redis that drops alone. Each test runs its own real redis-server.
 *
 * To catch a node in the middle of sending its outbox, the outbox is made large (a few MB
 * of held messages) and redis-server is frozen (SIGSTOP) as soon as a plain subscriber
 * sees the first held message: the node has then sent the outbox and waits for Redis'
 * answers, and /readyz (still 503) confirms it has not finished. The test acts, then lets
 * Redis go on (SIGCONT). Node A reconnects 1.5 s after its last attempt and node B every
 * 100 ms, so B is back before A starts sending.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { TestClient } from '../helpers/client.js';
import { startRedis, until, type TestRedis } from '../helpers/redis.js';
import type { TestServer } from '../helpers/server.js';
import {
  CHANNEL,
  GENEROUS_MS,
  PREFIX,
  SHORT_TIMINGS,
  connect,
  connectionId,
  isMessage,
  isNotReady,
  isReady,
  keys,
  killConnectionsOf,
  messagesOn,
  nodeWithOwnBroker,
  numsub,
  receivedAtLeast,
  startNode,
  subscribeAll,
  waitUntilDown,
  waitUntilReady,
} from '../helpers/redis-nodes.js';

const BULK = 'chat.bulk';
const HELD_MESSAGES = 4000;
const FILLER = 'x'.repeat(2000);

interface MidFlush {
  a: TestServer;
  b: TestServer;
  /** On A, subscribed to CHANNEL before the outage. */
  onA: TestClient;
  /** On B, subscribed to CHANNEL before the outage. */
  onB: TestClient;
  /** Lets Redis go on, then waits until both nodes are ready. */
  resume: () => Promise<void>;
}

/** The pid of the redis-server now listening on the test's port. */
async function redisPid(redis: TestRedis): Promise<number> {
  const probe = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    const pid = /process_id:(\d+)/.exec(await probe.info('server'))?.[1];
    assert.ok(pid !== undefined);
    return Number(pid);
  } finally {
    probe.disconnect();
  }
}

/**
 * Nodes A and B; Redis goes down, A holds a few MB of messages, Redis comes back, and the
 * returned state is A in the middle of sending them (Redis frozen).
 */
async function midFlush(t: TestContext, redis: TestRedis): Promise<MidFlush> {
  const { node: a, nextAttemptScheduled } = await nodeWithOwnBroker(t, redis);
  // B reconnects quickly, so that it is back (and subscribed) before A sends its outbox.
  const { node: b } = await nodeWithOwnBroker(t, redis, { nodeId: 'quickB01', retryMs: 100 });
  const onA = await connect(t, a);
  const onB = await connect(t, b);
  await subscribeAll([onA, onB]);

  await redis.stop();
  await waitUntilDown(a);
  for (let index = 0; index < HELD_MESSAGES; index++) await a.handler.publish(BULK, `${index} ${FILLER}`);

  await nextAttemptScheduled();
  await redis.start();
  const pid = await redisPid(redis);
  let frozen = false;
  const resumeRedis = (): void => {
    if (!frozen) return;
    frozen = false;
    process.kill(pid, 'SIGCONT');
  };
  t.after(resumeRedis);
  const observer = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  observer.on('error', () => undefined);
  t.after(() => observer.disconnect());
  let held = 0;
  observer.on('message', () => {
    if (++held === 1) {
      process.kill(pid, 'SIGSTOP');
      frozen = true;
    }
  });
  await observer.subscribe(keys.pub(BULK));
  await waitUntilReady(b);
  assert.equal(await isReady(a), false, 'A is not back yet: the observer was subscribed and B is back first');

  await until(() => frozen, GENEROUS_MS, 'A to start sending its outbox');
  // Precondition: A has sent its outbox and waits for Redis' answers.
  assert.equal(await isReady(a), false, 'A is still sending its outbox');

  return {
    a,
    b,
    onA,
    onB,
    resume: async () => {
      resumeRedis();
      await waitUntilReady(a, b);
    },
  };
}

test('a message published on a node while it sends its outbox reaches the other nodes, in order', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { onA, onB, resume } = await midFlush(t, redis);

  // Redis is frozen: the ack waits for it, so the frame is sent now and its ack read later.
  onA.send({ action: 'message', data: { channel: CHANNEL, message: 'while the outbox goes out' }, id: 'while' });
  await receivedAtLeast(onA, isMessage(CHANNEL, 'while the outbox goes out'));
  await resume();
  assert.equal((await onA.next((frame) => frame.id === 'while')).success, true);
  assert.equal((await onA.publish(CHANNEL, 'after')).recipients_count, 2);

  await receivedAtLeast(onB, isMessage(CHANNEL, 'after'));
  assert.deepEqual(
    messagesOn(onB).map((frame) => frame.message),
    ['while the outbox goes out', 'after'],
  );
});

test('a subscription made on a node while it sends its outbox is registered in Redis and receives from other nodes', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { a, onB, resume } = await midFlush(t, redis);

  const late = await connect(t, a);
  // Redis is frozen: the ack waits for the subscription, so it is read after Redis goes on.
  late.send({ action: 'subscribe', data: { channel: 'chat.late' }, id: 'late' });
  await resume();
  assert.equal((await late.next((frame) => frame.id === 'late')).success, true);

  await subscribeAll([onB], 'chat.late');
  assert.equal((await onB.publish('chat.late', 'to the late subscriber')).recipients_count, 2);
  await receivedAtLeast(late, isMessage('chat.late', 'to the late subscriber'));
  assert.equal(await redis.client.hget(keys.members('chat.late'), connectionId(late)), '');
});

test('an unsubscribe on a node while it sends its outbox is removed from Redis', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { onA, onB, resume } = await midFlush(t, redis);

  assert.equal((await onA.request('unsubscribe', { channel: CHANNEL })).success, true);
  await resume();

  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(onB)]: '' });
  assert.equal((await onB.publish(CHANNEL, 'who is left')).recipients_count, 1);
});

test('the last local subscriber leaving while only the node\'s command connection is down still drops the channel\'s Redis subscription', async (t) => {
  // The command connection is cut by changing the password and killing it; the subscriber
  // connection stays up (and subscribed) all along.
  const redis = await startRedis(t, ['--requirepass', 'first-password']);
  if (!redis) return;
  const a = await startNode(t, redis, {}, { password: 'first-password' });
  const client = await connect(t, a);
  await subscribeAll([client], 'chat.room.2');
  assert.equal(await numsub(redis, keys.pub('chat.room.2')), 1);

  await redis.client.config('SET', 'requirepass', 'second-password');
  await killConnectionsOf(redis, a.handler.nodeId, 'commands');
  await waitUntilDown(a);
  assert.equal((await client.request('unsubscribe', { channel: 'chat.room.2' })).success, true);
  await redis.client.config('SET', 'requirepass', 'first-password');
  await waitUntilReady(a);

  assert.equal(await redis.client.exists(keys.members('chat.room.2')), 0);
  await until(async () => (await numsub(redis, keys.pub('chat.room.2'))) === 0, GENEROUS_MS, 'node A to drop its subscription to chat.room.2');
});

test('a node whose entries were removed while it ran (as a survivor does to a node silent past its TTL) registers them again', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // Short timings: node A notices at its next heartbeat.
  const a = await startNode(t, redis, { brokerTuning: SHORT_TIMINGS });
  const b = await startNode(t, redis, { brokerTuning: SHORT_TIMINGS });
  const onA = await connect(t, a);
  const onB = await connect(t, b);
  await subscribeAll([onA, onB]);
  const nodeA = a.handler.nodeId;

  // What a cleaner does to a node it thinks dead: its members, its index, its nodes entry.
  await redis.client.hdel(keys.members(), connectionId(onA));
  await redis.client.del(keys.nodeMembers(nodeA), keys.nodeAlive(nodeA));
  await redis.client.hdel(keys.nodes(), nodeA);

  await until(async () => (await redis.client.hget(keys.members(), connectionId(onA))) === '', GENEROUS_MS, 'node A to register its member again');
  assert.ok((await redis.client.hkeys(keys.nodes())).includes(nodeA));
  assert.deepEqual(await redis.client.smembers(keys.nodeMembers(nodeA)), [`${CHANNEL} ${connectionId(onA)}`]);
  assert.equal((await onB.publish(CHANNEL, 'both again')).recipients_count, 2);
  await receivedAtLeast(onA, isMessage(CHANNEL, 'both again'));
});

test('a node flagged by a cleaner that found it alive after all registers its entries again', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // Short timings: node A notices at its next heartbeat.
  const a = await startNode(t, redis, { brokerTuning: SHORT_TIMINGS });
  const onA = await connect(t, a);
  await subscribeAll([onA]);
  const nodeA = a.handler.nodeId;

  // The cleaner removed a member before it saw the node's key again, and flagged the node.
  await redis.client.hdel(keys.members(), connectionId(onA));
  await redis.client.set(`${PREFIX}node:{${nodeA}}:resync`, '1', 'PX', 30_000);

  await until(async () => (await redis.client.hget(keys.members(), connectionId(onA))) === '', GENEROUS_MS, 'node A to register its member again');
  assert.equal(await redis.client.exists(`${PREFIX}node:{${nodeA}}:resync`), 0, 'the flag is consumed');
});

test('a Redis that stops answering without closing its connections (frozen) is noticed: /readyz turns 503, and 200 again once it answers', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // The watchdog's timings, short (production: a PING every 3 s, dropped after 10 s unanswered).
  const watchdog = { brokerTuning: { checkIntervalMs: 300, silenceTimeoutMs: 1500, commandTimeoutMs: 1000 } };
  const a = await startNode(t, redis, watchdog);
  const b = await startNode(t, redis, watchdog);
  const onA = await connect(t, a);
  const onB = await connect(t, b);
  await subscribeAll([onA, onB]);
  const pid = await redisPid(redis);
  process.kill(pid, 'SIGSTOP');
  let frozen = true;
  t.after(() => {
    if (frozen) process.kill(pid, 'SIGCONT');
  });

  // The check's PING goes unanswered past silenceTimeoutMs.
  await until(async () => await isNotReady(a), GENEROUS_MS, 'node A to notice the silent Redis');
  // Meanwhile local delivery goes on.
  assert.equal((await onA.publish(CHANNEL, 'local while frozen')).recipients_count, 1);
  process.kill(pid, 'SIGCONT');
  frozen = false;
  await until(async () => (await isReady(a)) && (await isReady(b)), GENEROUS_MS, 'both nodes to be ready again');
  assert.equal((await onB.publish(CHANNEL, 'after the freeze')).recipients_count, 2);
  await receivedAtLeast(onA, isMessage(CHANNEL, 'after the freeze'));
});
