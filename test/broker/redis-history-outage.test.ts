/**
 * History through the Redis broker while Redis is down, frozen or restarted (SPEC §4, §6;
 * issue 12), at the broker level (see redis-history.test.ts): a kept message is never
 * given an offset while Redis is out of reach, the node is told reconnected() once it is
 * subscribed again, and what it missed meanwhile is in the history.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterUnavailableError } from '../../src/errors.js';
import { startRedis, until } from '../helpers/redis.js';
import {
  CHANNEL,
  GENEROUS_MS,
  QUIET_MS,
  brokerCluster as cluster,
  deliveredOnEvery,
  frameText,
  kept,
  keptOn,
  killConnectionsOf,
  live,
  sleep,
  type BrokerNode,
} from '../helpers/redis-nodes.js';

test('while Redis is down a kept publish is refused with ClusterUnavailableError and delivered nowhere; reads are refused; live messages still reach local subscribers', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  await a.broker.publish(kept('before'));
  await deliveredOnEvery([a, b], 1);

  await redis.stop();
  await until(() => a.broker.notReadyReason() !== null && b.broker.notReadyReason() !== null, GENEROUS_MS, 'the brokers to notice Redis is down');
  await assert.rejects(a.broker.publish(kept('during the outage')), (error: unknown) => {
    assert.ok(error instanceof ClusterUnavailableError);
    assert.match(error.message, /history needs Redis/);
    return true;
  });
  await assert.rejects(b.broker.history(CHANNEL, { since: null, until: null, limit: 10 }), ClusterUnavailableError);
  assert.deepEqual(await a.broker.publish(live('live, local only')), { count: 1, position: null });

  await redis.start();
  await until(() => a.broker.notReadyReason() === null && b.broker.notReadyReason() === null, GENEROUS_MS, 'the brokers to be back');
  const after = await b.broker.publish(kept('after'));
  assert.equal(after.position?.offset, 1, 'Redis restarted empty: a new epoch');
  await deliveredOnEvery([a, b], 2);
  for (const node of [a, b]) assert.deepEqual(keptOn(node).map(([, message]) => message), ['before', 'after'], node.nodeId);
  assert.equal(a.node.deliveries.filter((delivery) => frameText(delivery).includes('during the outage')).length, 0);
});

test('a kept publish whose script call fails in flight (Redis frozen past the command timeout) rejects with ClusterUnavailableError', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a] = (await cluster(t, redis, 1, { commandTimeoutMs: 300 })) as [BrokerNode];
  const pid = Number(/process_id:(\d+)/.exec(await redis.client.info('server'))?.[1]);
  assert.ok(pid > 0);
  process.kill(pid, 'SIGSTOP');
  let frozen = true;
  t.after(() => {
    if (frozen) process.kill(pid, 'SIGCONT');
  });
  await assert.rejects(a.broker.publish(kept('frozen')), (error: unknown) => {
    assert.ok(error instanceof ClusterUnavailableError);
    assert.match(error.message, /unknown/);
    return true;
  });
  await assert.rejects(a.broker.history(CHANNEL, { since: null, until: null, limit: 1 }), ClusterUnavailableError);
  process.kill(pid, 'SIGCONT');
  frozen = false;
});

test('the node is told reconnected() once after each resync, once it is subscribed again; with persistence the history survives Redis restarts', async (t) => {
  const redis = await startRedis(t, [], { persistent: true });
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  assert.equal(a.node.reconnects, 1, 'after the first sync');
  await a.broker.publish(kept('one'));
  await deliveredOnEvery([a, b], 1);

  for (let restart = 1; restart <= 2; restart++) {
    await redis.stop();
    await until(() => a.broker.notReadyReason() !== null && b.broker.notReadyReason() !== null, GENEROUS_MS, 'the brokers to notice Redis is down');
    await redis.start();
    await until(() => a.node.reconnects === 1 + restart && b.node.reconnects === 1 + restart, GENEROUS_MS, `reconnected() after restart ${restart}`);
    assert.equal(a.broker.notReadyReason(), null);
    // Subscribed again by then: a kept message published now reaches both.
    await b.broker.publish(kept(`after restart ${restart}`));
    await deliveredOnEvery([a, b], 1 + restart);
  }
  await sleep(QUIET_MS);
  assert.equal(a.node.reconnects, 3);
  assert.equal(b.node.reconnects, 3);
  // With persistence, the history survived both restarts: same epoch, offsets continue.
  const page = await a.broker.history(CHANNEL, { since: null, until: null, limit: 10 });
  assert.deepEqual(page.messages.map((message) => message.offset), [1, 2, 3]);
  assert.ok(a.node.deliveries.every((delivery) => delivery.position?.epoch === page.epoch));
});

test('without persistence a Redis restart loses the history, and the epoch changes', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a] = (await cluster(t, redis, 1)) as [BrokerNode];
  const before = (await a.broker.publish(kept('one'))).position;
  await redis.stop();
  await until(() => a.broker.notReadyReason() !== null, GENEROUS_MS, 'the broker to notice Redis is down');
  await redis.start();
  await until(() => a.broker.notReadyReason() === null, GENEROUS_MS, 'the broker to be back');
  const page = await a.broker.history(CHANNEL, { since: 0, until: null, limit: 10, seen: before });
  assert.notEqual(page.epoch, before?.epoch);
  assert.equal(page.offset, 0);
  assert.deepEqual(page.messages, []);
});

test('kept messages a node missed while cut off are all in the history it reads after reconnected(): with what it delivered, none missing, none twice', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const [a, b] = (await cluster(t, redis, 2)) as [BrokerNode, BrokerNode];
  let published = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      await b.broker.publish(kept(`m${++published}`));
      await sleep(5);
    }
  })();
  await until(() => keptOn(a).length >= 20, GENEROUS_MS, 'A to deliver some');
  await killConnectionsOf(redis, a.nodeId);
  await until(() => a.node.reconnects === 2, GENEROUS_MS, 'A to resync');
  // What the hub does: read from the last offset it delivered before the gap (live
  // messages may have come since it subscribed again, skipping what passed meanwhile).
  const seen = new Map(keptOn(a));
  let last = 0;
  while (seen.has(last + 1)) last++;
  const page = await a.broker.history(CHANNEL, { since: last, until: null, limit: 1000 });
  assert.ok(page.messages.length > 0 && page.messages[0]?.offset === last + 1, 'A missed some while cut off, and the history has them');
  await sleep(200);
  publishing = false;
  await publisher;
  await until(() => keptOn(a).at(-1)?.[0] === published, GENEROUS_MS, 'A to deliver the last one');
  await sleep(QUIET_MS);
  const live = keptOn(a);
  for (const [offset, message] of live) assert.equal(seen.get(offset) ?? message, message);
  const recovered = new Map([...seen, ...page.messages.map((message): [number, string] => [message.offset, (JSON.parse(message.frame) as { message: string }).message]), ...live]);
  assert.deepEqual([...recovered.keys()].sort((x, y) => x - y), Array.from({ length: published }, (_, index) => index + 1));
  for (const [offset, message] of recovered) assert.equal(message, `m${offset}`);
  // Live deliveries stayed in offset order, skipping what passed during the outage.
  const offsets = live.map(([offset]) => offset);
  assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y));
  assert.equal(new Set(offsets).size, offsets.length, 'no live message twice');
});
