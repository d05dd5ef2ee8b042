/**
 * Held messages after an outage (issue: a Redis restart lost every held message for the
 * nodes that had not resubscribed yet). A node that held messages sends them only once
 * the other live nodes say they listen again (peer-sync.ts), up to a bound; a node that
 * never lost its connection answers at once; one that never comes back costs the bound.
 * Real redis-server, restarted without persistence, and in-process nodes whose reconnect
 * delays are fixed so that the node with the held messages is always back first.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { RedisBroker, type RedisBrokerTuning } from '../../src/broker/redis/redis-broker.js';
import { memoryLogger, type LogLine } from '../helpers/memory-logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { CHANNEL, GENEROUS_MS, QUIET_MS, connect, killConnectionsOf, messagesOn, receivedAtLeast, redisOptions, sleep, startNode, subscribeAll, waitUntilDown, waitUntilReady } from '../helpers/redis-nodes.js';
import { isMessageOn } from '../helpers/client.js';

const CHECK_MS = 200;

/** A node with its own broker: a fixed reconnect delay and the given wait for its peers. */
async function node(t: TestContext, redis: TestRedis, nodeId: string, retryMs: number, tuning: RedisBrokerTuning = {}) {
  const { logger, lines } = memoryLogger();
  const broker = new RedisBroker(redisOptions(redis), { nodeId, logger, nodeTtlMs: 2000, checkIntervalMs: CHECK_MS, retryDelay: () => retryMs, ...tuning });
  const server = await startNode(t, redis, { broker, logger });
  return { server, lines };
}

const held = Array.from({ length: 40 }, (_, index) => `held ${index}`);
const heldOn = (frames: ReturnType<typeof messagesOn>) => frames.map((frame) => frame.message).filter((message) => typeof message === 'string' && message.startsWith('held '));
const backLine = (lines: readonly LogLine[]) => lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('Redis is back'));

test('after Redis restarts empty, the messages a node held reach the nodes that reconnect after it', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // A is back about 0.1 s after Redis, B 2 s later: without waiting, A's held messages would
  // pass while B is still unsubscribed.
  const a = await node(t, redis, 'heldNdeA', 100);
  const b = await node(t, redis, 'heldNdeB', 2000);
  const onA = await connect(t, a.server);
  const onB = await connect(t, b.server);
  await subscribeAll([onA, onB]);
  // A learns of B at its checks (Redis loses that list when it restarts empty).
  await sleep(CHECK_MS * 5);

  await redis.stop();
  await Promise.all([waitUntilDown(a.server), waitUntilDown(b.server)]);
  for (const message of held) await a.server.handler.publish(CHANNEL, message);
  await receivedAtLeast(onA, isMessageOn(CHANNEL), held.length);
  await redis.start();

  await waitUntilReady(a.server, b.server);
  await receivedAtLeast(onB, isMessageOn(CHANNEL), held.length);
  await sleep(QUIET_MS);
  assert.deepEqual(heldOn(messagesOn(onB)), held, 'B got every held message once, in order');
  assert.deepEqual(heldOn(messagesOn(onA)), held, "A's own subscriber got them once, at publish time");
  assert.equal(backLine(a.lines)?.sent, held.length);
});

test('a node that never lost Redis answers at once: the held messages do not wait for the bound', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // A bound far beyond the test's own wait: only B's answer can let the messages go in time.
  const a = await node(t, redis, 'heldNdeC', 1000, { peerWaitMs: 10 * GENEROUS_MS });
  const b = await node(t, redis, 'heldNdeD', 100);
  const onB = await connect(t, b.server);
  await subscribeAll([onB]);
  await sleep(CHECK_MS * 5);

  await killConnectionsOf(redis, 'heldNdeC');
  await waitUntilDown(a.server);
  for (const message of held) await a.server.handler.publish(CHANNEL, message);

  await waitUntilReady(a.server);
  await receivedAtLeast(onB, isMessageOn(CHANNEL), held.length);
  await sleep(QUIET_MS);
  assert.deepEqual(heldOn(messagesOn(onB)), held);
});

test('a node that never comes back costs the bound once; then the held messages go out to the others', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await node(t, redis, 'heldNdeE', 100, { peerWaitMs: 1500 });
  const b = await node(t, redis, 'heldNdeF', 100);
  const gone = await node(t, redis, 'heldNdeG', 100);
  const onB = await connect(t, b.server);
  await subscribeAll([onB]);
  await sleep(CHECK_MS * 5);

  await redis.stop();
  await Promise.all([a, b, gone].map(({ server }) => waitUntilDown(server)));
  // G stops while Redis is out of reach: nobody is told, and it never announces again.
  await gone.server.close();
  for (const message of held) await a.server.handler.publish(CHANNEL, message);
  await redis.start();

  await waitUntilReady(a.server, b.server);
  await receivedAtLeast(onB, isMessageOn(CHANNEL), held.length);
  await sleep(QUIET_MS);
  assert.deepEqual(heldOn(messagesOn(onB)), held);
  const warning = a.lines.find((line) => typeof line.msg === 'string' && line.msg.includes('did not say they were listening again'));
  assert.deepEqual(warning?.nodes, ['heldNdeG'], 'the wait named the node that never came back');
});
