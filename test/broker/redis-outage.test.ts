/**
 * Redis outages (SPEC §6, §7 /readyz; issue 5): local delivery goes on, /readyz reports
 * 503, the node reconnects with backoff, re-registers its memberships, resubscribes, then
 * sends the bounded outbox of what was published meanwhile, and is ready again. Each test
 * runs its own real redis-server and stops (SIGKILL, no persistence: its data is lost)
 * and restarts it on the same port.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMessageOn } from '../helpers/client.js';
import { get } from '../helpers/http.js';
import { memoryLogger, type LogLine } from '../helpers/memory-logger.js';
import { startRedis, until } from '../helpers/redis.js';
import {
  CHANNEL,
  GENEROUS_MS,
  QUIET_MS,
  connect,
  connectionId,
  isMessage,
  isReady,
  keys,
  killConnectionsOf,
  messagesOn,
  nodeWithOwnBroker,
  numsub,
  rawSubscriber,
  readyz,
  receivedAtLeast,
  sleep,
  startNode,
  subscribeAll,
  waitUntilDown,
  waitUntilReady,
} from '../helpers/redis-nodes.js';

const ERROR = 50;



const unavailableLines = (lines: readonly LogLine[]): LogLine[] => lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Redis unavailable'));
const backLines = (lines: readonly LogLine[]): LogLine[] => lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Redis is back'));

test('while Redis is down, a publish still reaches the local subscribers and its ack counts only them', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const onA = [await connect(t, a), await connect(t, a, 'alice')];
  const onB = await connect(t, b, 'alice');
  await subscribeAll([...onA, onB]);
  assert.equal((await onA[0]!.publish(CHANNEL, 'before')).recipients_count, 3);

  await redis.stop();
  await waitUntilDown(a);

  const ack = await onA[0]!.publish(CHANNEL, 'during the outage');
  assert.equal(ack.success, true, JSON.stringify(ack));
  assert.equal(ack.recipients_count, 2);
  for (const client of onA) await receivedAtLeast(client, isMessage(CHANNEL, 'during the outage'));
  assert.equal((await onA[0]!.publish(CHANNEL, 'to alice', { recipients: ['alice'] })).recipients_count, 1);
  await receivedAtLeast(onA[1]!, isMessage(CHANNEL, 'to alice'));
  assert.equal(await a.handler.publish(CHANNEL, 'from the application'), 2);
  for (const client of onA) await receivedAtLeast(client, isMessage(CHANNEL, 'from the application'));

  // A client that subscribes during the outage is served locally too.
  const late = await connect(t, a);
  await subscribeAll([late]);
  assert.equal((await late.publish(CHANNEL, 'from a late subscriber')).recipients_count, 3);
  for (const client of [...onA, late]) await receivedAtLeast(client, isMessage(CHANNEL, 'from a late subscriber'));
});

test('/readyz answers 503 not_ready with a reason naming Redis while it is down, and 200 again once it is back', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  assert.deepEqual(await readyz(a), { status: 200, body: { status: 'ready' } });

  await redis.stop();
  await waitUntilDown(a);
  const down = await readyz(a);
  assert.deepEqual(Object.keys(down.body).sort(), ['reason', 'status']);
  assert.equal(down.body.status, 'not_ready');
  assert.match(String(down.body.reason), /redis/i);

  await redis.start();
  await waitUntilReady(a);
  assert.deepEqual(await readyz(a), { status: 200, body: { status: 'ready' } });
});

test('/metrics reports the Redis state: switchboard_redis_up 1, 0 while Redis is down, 1 again', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const redisUp = async (): Promise<string | undefined> => /^switchboard_redis_up (\d)$/m.exec((await get(`${a.httpUrl}/metrics`)).body)?.[1];
  assert.equal(await redisUp(), '1');
  await redis.stop();
  await waitUntilDown(a);
  assert.equal(await redisUp(), '0');
  await redis.start();
  await waitUntilReady(a);
  assert.equal(await redisUp(), '1');
});

test('after Redis restarts empty, every node re-registers its memberships and resubscribes, and cross-node delivery works again', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const onA = [await connect(t, a), await connect(t, a, 'alice')];
  const onB = [await connect(t, b, 'bob')];
  await subscribeAll([...onA, ...onB]);
  const expectedMembers = { [connectionId(onA[0]!)]: '', [connectionId(onA[1]!)]: '"alice"', [connectionId(onB[0]!)]: '"bob"' };
  assert.deepEqual(await redis.client.hgetall(keys.members()), expectedMembers);

  await redis.stop();
  await waitUntilDown(a);
  await waitUntilDown(b);
  await redis.start(); // empty: it has no persistence
  await waitUntilReady(a, b);

  assert.deepEqual(await redis.client.hgetall(keys.members()), expectedMembers);
  assert.deepEqual(await redis.client.hgetall(keys.users()), { alice: '1', bob: '1' });
  assert.deepEqual(Object.keys(await redis.client.hgetall(keys.nodes())).sort(), [a.handler.nodeId, b.handler.nodeId].sort());
  assert.equal(await numsub(redis, keys.pub()), 2);

  assert.equal((await onB[0]!.publish(CHANNEL, 'from B after the restart')).recipients_count, 3);
  assert.equal((await onA[0]!.publish(CHANNEL, 'from A after the restart', { recipients: ['bob', 'alice'] })).recipients_count, 2);
  for (const client of onA) await receivedAtLeast(client, isMessage(CHANNEL, 'from B after the restart'));
  await receivedAtLeast(onB[0]!, isMessage(CHANNEL, 'from A after the restart'));
  await receivedAtLeast(onA[1]!, isMessage(CHANNEL, 'from A after the restart'));
});

test('subscriptions made and ended during an outage are registered and removed in Redis once it is back', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startNode(t, redis);
  const b = await startNode(t, redis);
  const staying = await connect(t, a);
  const leaving = await connect(t, a, 'alice');
  const onB = await connect(t, b);
  await subscribeAll([staying, leaving, onB]);

  await redis.stop();
  await waitUntilDown(a);
  const joining = await connect(t, a, 'carol');
  await subscribeAll([joining]);
  await subscribeAll([joining], 'chat.room.2');
  await leaving.request('unsubscribe', { channel: CHANNEL });
  await redis.start();
  await waitUntilReady(a, b);

  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(staying)]: '', [connectionId(joining)]: '"carol"', [connectionId(onB)]: '' });
  assert.deepEqual(await redis.client.hgetall(keys.members('chat.room.2')), { [connectionId(joining)]: '"carol"' });
  assert.equal(await numsub(redis, keys.pub('chat.room.2')), 1);
  assert.equal((await onB.publish(CHANNEL, 'to carol', { recipients: ['carol', 'alice'] })).recipients_count, 1);
  await receivedAtLeast(joining, isMessage(CHANNEL, 'to carol'));
});

test('memberships that ended while a node was cut off from a Redis that kept its data are removed when it reconnects', async (t) => {
  // The node is cut off by changing the password and killing its connections: Redis keeps
  // its data, so the node must remove the memberships that ended meanwhile itself.
  const redis = await startRedis(t, ['--requirepass', 'first-password']);
  if (!redis) return;
  const a = await startNode(t, redis, {}, { password: 'first-password' });
  const b = await startNode(t, redis, {}, { password: 'first-password' });
  const staying = await connect(t, a);
  const leaving = await connect(t, a, 'alice');
  const disconnecting = await connect(t, a, 'alice');
  const onB = await connect(t, b);
  await subscribeAll([staying, leaving, disconnecting, onB]);
  await subscribeAll([leaving], 'chat.room.2');

  await redis.client.config('SET', 'requirepass', 'second-password');
  await killConnectionsOf(redis, a.handler.nodeId);
  await waitUntilDown(a);
  await leaving.request('unsubscribe', { channel: CHANNEL });
  await leaving.request('unsubscribe', { channel: 'chat.room.2' });
  disconnecting.close();
  await disconnecting.closed;
  await sleep(QUIET_MS);
  // Still there: only node A can know that these ended.
  assert.equal(await redis.client.hlen(keys.members()), 4);

  await redis.client.config('SET', 'requirepass', 'first-password');
  await waitUntilReady(a);
  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(staying)]: '', [connectionId(onB)]: '' });
  assert.equal(await redis.client.exists(keys.users(), keys.members('chat.room.2'), keys.users('chat.room.2')), 0);
  assert.deepEqual(await redis.client.smembers(keys.nodeMembers(a.handler.nodeId)), [`${CHANNEL} ${connectionId(staying)}`]);
  assert.equal((await onB.publish(CHANNEL, 'to alice', { recipients: ['alice'] })).recipients_count, 0);
});


test('the "Redis unavailable" error is logged once per outage, however many publishes and reconnect attempts it spans', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { logger, lines } = memoryLogger();
  const a = await startNode(t, redis, { logger });
  const client = await connect(t, a);
  await subscribeAll([client]);
  assert.deepEqual(unavailableLines(lines), []);

  for (const outage of [1, 2]) {
    await redis.stop();
    await waitUntilDown(a);
    // Several publishes, and (with the default backoff from 100 ms) several reconnect attempts.
    for (let index = 0; index < 6; index++) {
      assert.equal((await client.publish(CHANNEL, `outage ${outage}, message ${index}`)).recipients_count, 1);
      await a.handler.publish(CHANNEL, `outage ${outage}, application message ${index}`);
      await sleep(500);
    }
    assert.equal(unavailableLines(lines).length, outage, `after outage ${outage}: ${JSON.stringify(unavailableLines(lines))}`);
    await redis.start();
    await waitUntilReady(a);
    assert.equal(backLines(lines).length, outage);
  }

  const errors = lines.filter((line) => line.level >= ERROR);
  assert.deepEqual(
    errors.map((line) => line.msg),
    unavailableLines(lines).map((line) => line.msg),
    'no other error lines',
  );
  for (const line of unavailableLines(lines)) {
    assert.equal(line.level, ERROR);
    assert.match(line.msg ?? '', new RegExp(`127\\.0\\.0\\.1:${redis.port}`));
  }
});


test('messages published while Redis was down go out to the other nodes, in order, once the node is back', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { node: a, lines, nextAttemptScheduled } = await nodeWithOwnBroker(t, redis);
  const local = await connect(t, a);
  await subscribeAll([local]);

  await redis.stop();
  await waitUntilDown(a);
  const held = ['m1', 'm2', 'm3', 'm4', 'm5'];
  for (const message of held) assert.equal(await a.handler.publish(CHANNEL, message), 1);
  await receivedAtLeast(local, isMessageOn(CHANNEL), held.length);

  await nextAttemptScheduled();
  await redis.start();
  const received = await rawSubscriber(t, redis, keys.pub());
  assert.equal(await isReady(a), false, 'A is not back yet: the observer was subscribed first');

  await until(() => received.length >= held.length, GENEROUS_MS, 'the held messages');
  await waitUntilReady(a);
  await sleep(QUIET_MS);
  assert.deepEqual(received, held);
  assert.deepEqual(
    messagesOn(local).map((frame) => frame.message),
    held,
    'local subscribers got them once, at once',
  );
  const [back] = backLines(lines);
  assert.equal(back?.sent, 5);
  assert.equal(back?.droppedMessages, 0);
});

test('a full outbox drops the oldest messages, and the recovery log line says how many', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { node: a, lines, nextAttemptScheduled } = await nodeWithOwnBroker(t, redis, { outboxMessages: 3 });

  await redis.stop();
  await waitUntilDown(a);
  for (const message of ['m1', 'm2', 'm3', 'm4', 'm5']) await a.handler.publish(CHANNEL, message);

  await nextAttemptScheduled();
  await redis.start();
  const received = await rawSubscriber(t, redis, keys.pub());
  assert.equal(await isReady(a), false, 'A is not back yet: the observer was subscribed first');

  await until(() => received.length >= 3, GENEROUS_MS, 'the held messages');
  await waitUntilReady(a);
  await sleep(QUIET_MS);
  assert.deepEqual(received, ['m3', 'm4', 'm5']);
  const back = backLines(lines);
  assert.equal(back.length, 1, JSON.stringify(lines));
  assert.equal(back[0]?.droppedMessages, 2);
  assert.equal(back[0]?.sent, 3);
  assert.match(back[0]?.msg ?? '', /\b2 older ones were dropped\b/);
});

test('a node started while Redis is unreachable listens, serves its clients locally, and becomes ready when Redis comes up', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  await redis.stop(); // nothing listens on redis.port now

  const a = await startNode(t, redis);
  const down = await readyz(a);
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'not_ready');
  assert.match(String(down.body.reason), /redis/i);
  const clients = [await connect(t, a), await connect(t, a, 'alice')];
  await subscribeAll(clients);
  assert.equal((await clients[0]!.publish(CHANNEL, 'served locally')).recipients_count, 2);
  for (const client of clients) await receivedAtLeast(client, isMessage(CHANNEL, 'served locally'));

  await redis.start();
  await waitUntilReady(a);
  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(clients[0]!)]: '', [connectionId(clients[1]!)]: '"alice"' });
  const b = await startNode(t, redis);
  const onB = await connect(t, b);
  await subscribeAll([onB]);
  assert.equal((await onB.publish(CHANNEL, 'from B')).recipients_count, 3);
  for (const client of clients) await receivedAtLeast(client, isMessage(CHANNEL, 'from B'));
});

test('a node with a wrong Redis password serves locally, is not ready, and never shows the password', async (t) => {
  const redis = await startRedis(t, ['--requirepass', 'right-password']);
  if (!redis) return;
  const password = 'wrong-password-d4e5f6';
  const { logger, lines } = memoryLogger();
  const a = await startNode(t, redis, { logger }, { password });

  const clients = [await connect(t, a), await connect(t, a)];
  await subscribeAll(clients);
  assert.equal((await clients[0]!.publish(CHANNEL, 'served locally')).recipients_count, 2);
  for (const client of clients) await receivedAtLeast(client, isMessage(CHANNEL, 'served locally'));

  const down = await readyz(a);
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'not_ready');
  assert.match(String(down.body.reason), /redis/i);
  assert.ok(!String(down.body.reason).includes(password), `reason: ${String(down.body.reason)}`);
  assert.ok(!String(down.body.reason).includes('right-password'));
  await sleep(QUIET_MS);
  for (const line of lines) assert.ok(!JSON.stringify(line).includes(password), `log line: ${JSON.stringify(line)}`);
  assert.equal(await redis.client.exists(keys.members()), 0);
});
