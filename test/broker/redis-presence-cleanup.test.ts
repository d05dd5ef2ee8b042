/**
 * Presence when a node dies (SPEC §4, §6; issue 12): the survivor that cleans a dead
 * node's memberships out of Redis tells its own node which members it removed, per
 * channel (LocalNode.membersGone, `everywhere`), so that every node sends leave events
 * for them. Each member is reported once, cluster-wide, by the one cleaner that removed
 * it. At the broker level: bare RedisBrokers on one real redis-server; the dying one is
 * cut off from Redis for good (its connections killed, never reconnecting), as a SIGKILL
 * would leave it, and stops beating.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Member } from '../../src/broker/broker.js';
import { startRedis, until } from '../helpers/redis.js';
import { CHANNEL, GENEROUS_MS, SHORT_TIMINGS, keys, sleep, startBroker, type BrokerNode } from '../helpers/redis-nodes.js';

const OTHER = 'chat.room.2';

/** Every membersGone call of the survivors, as [node, channel, sorted members, everywhere]. */
function reports(survivors: readonly BrokerNode[]) {
  return survivors.flatMap(({ nodeId, node }) =>
    node.gone.map(({ channel, members, everywhere }) => ({
      node: nodeId,
      channel,
      members: [...members].sort((x, y) => x.connectionId.localeCompare(y.connectionId)),
      everywhere,
    })),
  );
}

test('the members of a node that died are reported gone by exactly one survivor, per channel, with their user ids', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startBroker(t, redis, { nodeId: 'survivA1', tuning: SHORT_TIMINGS });
  const b = await startBroker(t, redis, { nodeId: 'survivB1', tuning: SHORT_TIMINGS });
  const dying = await startBroker(t, redis, { nodeId: 'dyingNod', tuning: SHORT_TIMINGS });
  await a.broker.join(CHANNEL, { connectionId: 'survivA1-1', userId: 'alice' });
  await b.broker.join(OTHER, { connectionId: 'survivB1-1', userId: 'bob' });
  const inChannel: Member[] = [
    { connectionId: 'dyingNod-1', userId: 'carol' },
    { connectionId: 'dyingNod-2', userId: 42 },
    { connectionId: 'dyingNod-3', userId: '42' },
    { connectionId: 'dyingNod-4', userId: null },
  ];
  for (const member of inChannel) await dying.broker.join(CHANNEL, member);
  await dying.broker.join(OTHER, { connectionId: 'dyingNod-1', userId: 'carol' });
  // One that left before the node died is not reported.
  await dying.broker.join(OTHER, { connectionId: 'dyingNod-5', userId: 'dave' });
  await dying.broker.leave(OTHER, 'dyingNod-5');

  await dying.die();
  await until(async () => (await redis.client.hlen(keys.members())) === 1 && (await redis.client.hlen(keys.members(OTHER))) === 1, GENEROUS_MS, 'the dead node to be cleaned out');
  await until(() => reports([a, b]).length >= 2, GENEROUS_MS, 'the cleaner to report both channels');
  // Several more checks by both survivors: nobody reports them again.
  await sleep(SHORT_TIMINGS.checkIntervalMs! * 5);

  const found = reports([a, b]);
  assert.equal(found.length, 2, JSON.stringify(found));
  const cleaner = found[0]?.node;
  assert.ok(found.every((report) => report.node === cleaner && report.everywhere), 'one cleaner, telling every node');
  const byChannel = Object.fromEntries(found.map((report) => [report.channel, report.members]));
  assert.deepEqual(byChannel, { [CHANNEL]: inChannel, [OTHER]: [{ connectionId: 'dyingNod-1', userId: 'carol' }] });
  // The survivors' own members stay, and so do the users counts of the others.
  assert.deepEqual(await redis.client.hgetall(keys.users()), { alice: '1' });
  assert.deepEqual(await redis.client.hgetall(keys.users(OTHER)), { bob: '1' });
  assert.equal(dying.node.gone.length, 0);
});

test('a node whose members a survivor already removed reports nothing when cleaned out again, and a node that left cleanly is never reported', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await startBroker(t, redis, { nodeId: 'survivA1', tuning: SHORT_TIMINGS });
  const leaving = await startBroker(t, redis, { nodeId: 'leavingN', tuning: SHORT_TIMINGS });
  await leaving.broker.join(CHANNEL, { connectionId: 'leavingN-1', userId: 'erin' });
  await leaving.broker.close();
  assert.equal(await redis.client.hlen(keys.members()), 0);

  // A dead node whose channel entries were removed already (by a cleaner that died before
  // it got to the node's index): its index is still there, but nothing is left to report.
  await redis.client.sadd(keys.nodeMembers('ghostNod'), `${CHANNEL} ghostNod-1`);
  await redis.client.hset(keys.nodes(), 'ghostNod', JSON.stringify({ id: 'ghostNod', updated: 0 }));
  await until(async () => (await redis.client.exists(keys.nodeMembers('ghostNod'))) === 0, GENEROUS_MS, 'the ghost node to be cleaned out');
  await sleep(SHORT_TIMINGS.checkIntervalMs! * 3);
  assert.deepEqual(a.node.gone, []);
});
