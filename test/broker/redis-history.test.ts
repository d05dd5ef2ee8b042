/**
 * History through the Redis broker (SPEC §4, §6; issue 12), at the broker level: bare
 * RedisBrokers on one real redis-server, each serving a LocalNode that records what it is
 * handed. Offsets are assigned in Redis by the script that publishes (one call: offset,
 * stream entry, PUBLISH), every node delivers kept messages from the pub/sub echo in
 * offset order, and the epoch changes whenever Redis lost the history.
 * Outages and restarts: redis-history-outage.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Delivery } from '../../src/broker/broker.js';
import { POSITION_TTL_MS } from '../../src/history/history.js';
import { startRedis, until } from '../helpers/redis.js';
import {
  CHANNEL,
  GENEROUS_MS,
  QUIET_MS,
  brokerCluster as cluster,
  deliveredOnEvery,
  frameOf,
  frameText,
  kept,
  keptOn,
  keys,
  live,
  sleep,
  startBroker,
  type BrokerNode,
} from '../helpers/redis-nodes.js';

test('kept messages get offsets 1, 2, 3… from Redis, the same on every node, delivered in offset order, and the frame carries the offset', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const nodes = await cluster(t, redis, 3);
  const [a, b, c] = nodes as [BrokerNode, BrokerNode, BrokerNode];

  const first = await a.broker.publish(kept('one'));
  assert.equal(first.count, 3);
  assert.equal(first.position?.offset, 1);
  const epoch = first.position.epoch;
  assert.match(epoch, /^[A-Za-z0-9_-]{12,}$/);
  assert.deepEqual((await b.broker.publish(kept('two'))).position, { epoch, offset: 2 });
  assert.deepEqual((await c.broker.publish(kept('three'))).position, { epoch, offset: 3 });

  await deliveredOnEvery(nodes, 3);
  for (const node of nodes) {
    assert.deepEqual(keptOn(node), [[1, 'one'], [2, 'two'], [3, 'three']], node.nodeId);
    const deliveries = node.node.deliveries.filter((delivery) => delivery.channel === CHANNEL);
    assert.equal(deliveries.length, 3, `${node.nodeId}: each once, and nothing else`);
    assert.equal(frameText(deliveries[0] as Delivery), `${frameOf('one').slice(0, -1)},"offset":1}`);
    for (const delivery of deliveries) {
      assert.equal(delivery.position?.epoch, epoch);
      assert.equal(delivery.recipients, null);
      assert.equal(delivery.exclude, null);
    }
  }
});

test('a kept message is delivered on the publishing node from the echo only, exactly once; a node with no member there gets none', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  const outsider = await startBroker(t, redis, { nodeId: 'outsider' });

  // Published by a node without a member in the channel: it delivers nothing itself.
  const { count, position } = await outsider.broker.publish(kept('from outside'));
  assert.equal(count, 2);
  assert.equal(position?.offset, 1);
  await deliveredOnEvery([a, b], 1);

  // On A, publish() resolves once Redis answered; the delivery comes from the echo, with its position.
  const published = a.broker.publish(kept('from A'));
  assert.equal(a.node.deliveries.length, 1, 'nothing delivered synchronously at publish time');
  await published;
  await deliveredOnEvery([a, b], 2);
  for (const node of [a, b]) assert.deepEqual(keptOn(node), [[1, 'from outside'], [2, 'from A']], node.nodeId);
  assert.equal(a.node.deliveries.length, 2);
  assert.equal(outsider.node.deliveries.length, 0);
});

test('many kept messages published at once from two nodes: every node delivers offsets 1…N once each, in order, with the same frames', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const nodes = await cluster(t, redis, 3);
  const [a, b] = nodes as [BrokerNode, BrokerNode];
  const PER_NODE = 100;
  const results = await Promise.all([
    ...Array.from({ length: PER_NODE }, (_, index) => a.broker.publish(kept(`a${index}`))),
    ...Array.from({ length: PER_NODE }, (_, index) => b.broker.publish(kept(`b${index}`))),
  ]);
  assert.deepEqual(results.map((result) => result.position?.offset).sort((x, y) => (x ?? 0) - (y ?? 0)), Array.from({ length: 2 * PER_NODE }, (_, index) => index + 1));
  // Each publisher's own messages got growing offsets (publish order per publisher).
  for (const prefix of ['a', 'b']) {
    const offsets = results.filter((_, index) => (index < PER_NODE) === (prefix === 'a')).map((result) => result.position?.offset ?? 0);
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y));
  }
  await deliveredOnEvery(nodes, 2 * PER_NODE);
  const reference = keptOn(a);
  assert.deepEqual(reference.map(([offset]) => offset), Array.from({ length: 2 * PER_NODE }, (_, index) => index + 1));
  for (const node of nodes) assert.deepEqual(keptOn(node), reference, node.nodeId);
});

test('the position hash and the stream are written with their TTLs, and the stream is trimmed to exactly `size` entries with offsets as ids', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a] = (await cluster(t, redis, 1)) as [BrokerNode];
  let epoch = '';
  for (let index = 1; index <= 5; index++) epoch = (await a.broker.publish(kept(`m${index}`, { history: { size: 3, ttl: 30 } }))).position?.epoch ?? '';

  assert.deepEqual(await redis.client.hgetall(keys.position()), { epoch, offset: '5' });
  const positionTtl = await redis.client.pttl(keys.position());
  assert.ok(positionTtl > POSITION_TTL_MS - 60_000 && positionTtl <= POSITION_TTL_MS, `position PTTL ${positionTtl}`);
  const streamTtl = await redis.client.pttl(keys.history());
  assert.ok(streamTtl > 25_000 && streamTtl <= 30_000, `stream PTTL ${streamTtl}`);
  const entries = await redis.client.xrange(keys.history(), '-', '+');
  assert.deepEqual(
    entries.map(([id, fields]) => [id, fields]),
    [3, 4, 5].map((offset) => [`${offset}-0`, ['f', `${frameOf(`m${offset}`).slice(0, -1)},"offset":${offset}}`]]),
  );

  // A larger size keeps more from then on; a smaller one trims at once.
  await a.broker.publish(kept('m6', { history: { size: 4, ttl: 30 } }));
  assert.equal(await redis.client.xlen(keys.history()), 4);
  await a.broker.publish(kept('m7', { history: { size: 2, ttl: 30 } }));
  assert.deepEqual((await redis.client.xrange(keys.history(), '-', '+')).map(([id]) => id), ['6-0', '7-0']);
});

test('history reads: since (exclusive), until, limit, the newest `limit` without since (oldest first), and limit 0 for the position alone', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  for (let index = 1; index <= 10; index++) await a.broker.publish(kept(`m${index}`));
  const epoch = (await redis.client.hget(keys.position(), 'epoch')) ?? '';
  await deliveredOnEvery([b], 10);
  const delivered = new Map(b.node.deliveries.map((delivery) => [delivery.position?.offset, frameText(delivery)]));

  const read = async (since: number | null, until: number | null, limit: number) => {
    const page = await b.broker.history(CHANNEL, { since, until, limit });
    assert.equal(page.epoch, epoch);
    assert.equal(page.offset, 10);
    // Each stored message is the frame its subscribers received.
    for (const message of page.messages) assert.equal(message.frame, delivered.get(message.offset));
    return page.messages.map((message) => message.offset);
  };
  assert.deepEqual(await read(null, null, 3), [8, 9, 10]);
  assert.deepEqual(await read(null, null, 1000), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(await read(2, null, 3), [3, 4, 5]);
  assert.deepEqual(await read(0, null, 2), [1, 2]);
  assert.deepEqual(await read(2, 4, 10), [3, 4]);
  assert.deepEqual(await read(null, 6, 2), [5, 6]);
  assert.deepEqual(await read(9, null, 10), [10]);
  assert.deepEqual(await read(10, null, 10), []);
  assert.deepEqual(await read(42, null, 10), []);
  assert.deepEqual(await read(null, null, 0), []);
  assert.deepEqual(await read(3, null, 0), []);
});

test('a read of a channel with no history yet creates its epoch (offset 0), and the first publish uses that epoch', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  const page = await b.broker.history(CHANNEL, { since: null, until: null, limit: 10 });
  assert.equal(page.offset, 0);
  assert.deepEqual(page.messages, []);
  assert.deepEqual(await redis.client.hgetall(keys.position()), { epoch: page.epoch, offset: '0' });
  assert.ok((await redis.client.pttl(keys.position())) > POSITION_TTL_MS - 60_000);
  // A second read, on another node, answers the same epoch.
  assert.equal((await a.broker.history(CHANNEL, { since: 0, until: null, limit: 10 })).epoch, page.epoch);
  assert.deepEqual((await a.broker.publish(kept('first'))).position, { epoch: page.epoch, offset: 1 });
});

test('after FLUSHALL the history starts a new epoch, whether a read or a publish comes first', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  const other = 'chat.room.2';
  const before = (await a.broker.publish(kept('one'))).position;
  const otherBefore = (await a.broker.publish(kept('one', { channel: other }))).position;
  await a.broker.publish(kept('two'));
  assert.ok(before && otherBefore);

  await redis.client.flushall();
  const read = await b.broker.history(CHANNEL, { since: null, until: null, limit: 10 });
  assert.notEqual(read.epoch, before.epoch);
  assert.equal(read.offset, 0);
  assert.deepEqual(read.messages, []);
  assert.deepEqual((await a.broker.publish(kept('three'))).position, { epoch: read.epoch, offset: 1 });

  const otherAfter = (await b.broker.publish(kept('after', { channel: other }))).position;
  assert.equal(otherAfter?.offset, 1);
  assert.notEqual(otherAfter?.epoch, otherBefore.epoch);
  assert.notEqual(otherAfter?.epoch, read.epoch, 'every new epoch is a new string');
});

test('a reader that delivered further than the store in the same epoch makes it start a new epoch (the store lost messages); other readers do not', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  for (const text of ['one', 'two', 'three']) await a.broker.publish(kept(text));
  const epoch = (await redis.client.hget(keys.position(), 'epoch')) ?? '';

  // Up to date, behind, or from another epoch: nothing changes.
  for (const seen of [{ epoch, offset: 3 }, { epoch, offset: 1 }, { epoch: 'another', offset: 99 }]) {
    const page = await b.broker.history(CHANNEL, { since: 0, until: null, limit: 10, seen });
    assert.equal(page.epoch, epoch, JSON.stringify(seen));
    assert.equal(page.messages.length, 3);
  }

  // Ahead of the store: as after Redis came back from an older snapshot.
  const page = await b.broker.history(CHANNEL, { since: 0, until: null, limit: 10, seen: { epoch, offset: 5 } });
  assert.notEqual(page.epoch, epoch);
  assert.equal(page.offset, 3, 'the offset keeps counting from what the store has');
  assert.deepEqual(page.messages, [], 'what the old epoch kept is dropped');
  assert.equal(await redis.client.exists(keys.history()), 0);
  assert.deepEqual((await a.broker.publish(kept('four'))).position, { epoch: page.epoch, offset: 4 });
  assert.deepEqual((await b.broker.history(CHANNEL, { since: 3, until: null, limit: 10 })).messages.map((message) => message.offset), [4]);
});

test('a publisher that delivered further than the store in the same epoch makes the publish start a new epoch, never reuse an offset', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a] = (await cluster(t, redis, 1)) as [BrokerNode];
  for (const text of ['one', 'two', 'three']) await a.broker.publish(kept(text));
  const epoch = (await redis.client.hget(keys.position(), 'epoch')) ?? '';
  // Up to date: the same epoch goes on.
  assert.deepEqual((await a.broker.publish({ ...kept('four'), seen: { epoch, offset: 3 } })).position, { epoch, offset: 4 });
  // As after Redis came back from an older snapshot: offset 4 was delivered, the store says 2.
  await redis.client.hset(keys.position(), 'offset', 2);
  const after = (await a.broker.publish({ ...kept('five'), seen: { epoch, offset: 4 } })).position;
  assert.notEqual(after?.epoch, epoch);
  assert.deepEqual((await a.broker.history(CHANNEL, { since: null, until: null, limit: 10 })).messages.map((message) => message.offset), [after?.offset]);
});

test('kept messages with recipients are counted like any other, and recipients and exclude reach every node', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startBroker(t, redis, { nodeId: 'excludeA' });
  const b = await startBroker(t, redis, { nodeId: 'excludeB' });
  await a.broker.join(CHANNEL, { connectionId: 'excludeA-1', userId: 'alice' });
  await b.broker.join(CHANNEL, { connectionId: 'excludeB-1', userId: 'alice' });
  await b.broker.join(CHANNEL, { connectionId: 'excludeB-2', userId: 42 });

  const keptResult = await a.broker.publish(kept('to alice', { recipients: ['alice'], exclude: 'excludeB-1' }));
  assert.equal(keptResult.count, 2);
  assert.equal((await a.broker.publish(kept('to nobody', { recipients: [] }))).count, 0);
  const liveResult = await a.broker.publish(live('typing', { recipients: ['42', 'alice'], exclude: 'excludeB-2' }));
  assert.deepEqual(liveResult, { count: 3, position: null });
  assert.deepEqual(await a.broker.publish(live('leave event', { exclude: 'excludeB-2' })), { count: 3, position: null });

  for (const node of [a, b]) await until(() => node.node.deliveries.length >= 4, GENEROUS_MS, `4 deliveries on ${node.nodeId}`);
  await sleep(QUIET_MS);
  const summary = (deliveries: Delivery[]) =>
    deliveries.map((delivery) => ({
      message: (JSON.parse(frameText(delivery)) as { message: string }).message,
      recipients: delivery.recipients,
      exclude: delivery.exclude,
      offset: delivery.position?.offset ?? null,
    }));
  const expected = [
    { message: 'to alice', recipients: ['alice'], exclude: 'excludeB-1', offset: 1 },
    { message: 'to nobody', recipients: [], exclude: null, offset: 2 },
    { message: 'typing', recipients: ['42', 'alice'], exclude: 'excludeB-2', offset: null },
    { message: 'leave event', recipients: null, exclude: 'excludeB-2', offset: null },
  ];
  assert.deepEqual(summary(b.node.deliveries), expected);
  // On A the live ones were delivered at publish time, the kept ones from the echo.
  assert.deepEqual(summary(a.node.deliveries).sort((x, y) => x.message.localeCompare(y.message)), [...expected].sort((x, y) => x.message.localeCompare(y.message)));
});

test('a stream found ahead of its position (the position rolled back on its own) is dropped at the next publish, in a new epoch', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a] = (await cluster(t, redis, 1)) as [BrokerNode];
  for (const text of ['one', 'two', 'three']) await a.broker.publish(kept(text));
  const epoch = (await redis.client.hget(keys.position(), 'epoch')) ?? '';
  await redis.client.hset(keys.position(), 'offset', '1');
  const position = (await a.broker.publish(kept('again'))).position;
  assert.equal(position?.offset, 2);
  assert.notEqual(position?.epoch, epoch);
  assert.deepEqual((await redis.client.xrange(keys.history(), '-', '+')).map(([id]) => id), ['2-0']);
  await until(() => keptOn(a).length === 4, GENEROUS_MS, 'the fourth delivery');
  assert.deepEqual(a.node.deliveries.at(-1)?.position, position);
});
