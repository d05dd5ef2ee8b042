/**
 * Redis Cluster (SPEC §6 "Beyond one Redis"): two in-process nodes configured with the
 * seed nodes of a real cluster of three masters and three replicas
 * (test/helpers/redis-topology-cluster.ts), real WebSocket clients.
 *
 * - Channels whose slots are on each of the three masters: every message reaches every
 *   subscriber on both nodes once, recipients_count counts both nodes, offsets count up
 *   per channel, presence lists the members of both nodes.
 * - Pub/sub is sharded: each node holds one SSUBSCRIBE per channel, on the master that owns
 *   the channel's slot, and nothing uses classic SUBSCRIBE.
 * - key-slot.ts agrees with CLUSTER KEYSLOT.
 * - A master fails over: both nodes are ready again on their own, every channel flows
 *   again, a subscriber of a history channel on the failed master ends with every
 *   acknowledged message once, in order (or was told what was lost), and the old master
 *   rejoins as a replica without breaking anything.
 * - A promoted replica that lacks writes its master acknowledged (asynchronous
 *   replication): the history starts a new epoch and every subscriber is told.
 *
 * The tests that leave the cluster as it was share one; the failover tests take one each.
 */
import assert from 'node:assert/strict';
import { after, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { keySlot } from '../../src/broker/redis/key-slot.js';
import type { TestClient } from '../helpers/client.js';
import { until } from '../helpers/redis.js';
import { QUIET_MS, connect, connectionId, isMessage, isNotReady, keys, messagesOn, receivedAtLeast, sleep } from '../helpers/redis-nodes.js';
import { redisCommand, splitAddress } from '../helpers/redis-topology.js';
import { startCluster, type ClusterTopology } from '../helpers/redis-topology-cluster.js';
import { clusterFor, redisAvailable } from '../helpers/redis-topology-test.js';
import { Publisher, RECOVERY_MS, assertEveryAckedOnce, channelsOn, clusterRedis, cutOffReplicas, deliveredUpTo, logOf, readyAgain, topologyNode, type TopologyNode } from '../helpers/redis-topology-nodes.js';

/** The shared cluster (each test with channels of its own): started by the first test that asks, stopped after the last. */
let calm: Promise<ClusterTopology> | null = null;
after(async () => {
  if (calm !== null) await (await calm).stopAll();
});

async function calmCluster(t: TestContext): Promise<ClusterTopology | null> {
  if (!redisAvailable(t)) return null;
  calm ??= startCluster();
  return calm;
}

/** Each of `clients` got exactly `texts` on `channel`, in that order, once each. */
function assertGot(clients: readonly TestClient[], channel: string, texts: readonly string[]): void {
  for (const [index, client] of clients.entries()) {
    assert.deepEqual(
      messagesOn(client, channel).map((frame) => frame.message),
      texts,
      `client ${index} on ${channel}`,
    );
  }
}

/** A message from each node on each channel reaches every client, once. */
async function flowEverywhere(nodes: readonly TopologyNode[], clients: readonly TestClient[], senders: readonly TestClient[], channels: readonly string[], label: string): Promise<void> {
  for (const channel of channels) {
    for (const [index, sender] of senders.entries()) {
      const ack = await sender.publish(channel, `${label} from ${index}`);
      assert.equal(ack.action, 'message_sent', `${label} on ${channel} from sender ${index}: ${JSON.stringify(ack)}; logs: ${nodes.map(logOf).join(' || ')}`);
      assert.equal(ack.recipients_count, clients.length, `${label} on ${channel}: counted on both nodes`);
    }
    for (const client of clients) for (const index of senders.keys()) await receivedAtLeast(client, isMessage(channel, `${label} from ${index}`));
  }
  await sleep(QUIET_MS);
  for (const channel of channels) {
    for (const [index, client] of clients.entries()) {
      const got = messagesOn(client, channel).filter((frame) => String(frame.message).startsWith(`${label} from`));
      assert.equal(got.length, senders.length, `client ${index} got each ${label} message on ${channel} once: ${JSON.stringify(got)}`);
    }
  }
}

test('channels on each of the three masters: messages reach the subscribers on both nodes once, recipients_count counts both nodes, offsets count up per channel, presence lists both nodes', async (t) => {
  const cluster = await calmCluster(t);
  if (cluster === null) return;
  const masters = await cluster.masters();
  assert.equal(masters.length, 3);
  const channels = await channelsOn(cluster, masters, 'hist.room');
  const a = await topologyNode(t, clusterRedis(cluster));
  const b = await topologyNode(t, clusterRedis(cluster));
  const onA = [await connect(t, a, 'alice'), await connect(t, a)];
  const onB = [await connect(t, b, 'bob')];
  const everyone = [...onA, ...onB];
  for (const channel of channels) {
    for (const client of everyone) {
      const ack = await client.subscribe(channel);
      assert.equal(ack.success, true, JSON.stringify(ack));
      assert.equal(typeof ack.epoch, 'string', `${channel} has history: ${JSON.stringify(ack)}`);
    }
  }

  for (const channel of channels) {
    const first = await onA[0]!.publish(channel, 'from A');
    const second = await onB[0]!.publish(channel, 'from B');
    const third = await onA[1]!.publish(channel, 'from A again');
    for (const [index, ack] of [first, second, third].entries()) {
      assert.equal(ack.action, 'message_sent', JSON.stringify(ack));
      assert.equal(ack.recipients_count, 3, `${channel}: the three subscribers on both nodes`);
      assert.equal(ack.offset, index + 1, `${channel}: offsets count up from 1 in each channel`);
    }
  }
  for (const channel of channels) for (const client of everyone) await receivedAtLeast(client, isMessage(channel, 'from A again'));
  await sleep(QUIET_MS);
  for (const channel of channels) {
    assertGot(everyone, channel, ['from A', 'from B', 'from A again']);
    for (const client of everyone) assert.deepEqual(messagesOn(client, channel).map((frame) => frame.offset), [1, 2, 3], `offsets on ${channel}`);
  }

  const expected = [
    { connection_id: connectionId(onA[0]!), user_id: 'alice' },
    { connection_id: connectionId(onA[1]!), user_id: null },
    { connection_id: connectionId(onB[0]!), user_id: 'bob' },
  ].sort((x, y) => x.connection_id.localeCompare(y.connection_id));
  for (const channel of channels) {
    for (const client of [onA[1]!, onB[0]!]) {
      const presence = await client.request('presence', { channel });
      assert.equal(presence.success, true, JSON.stringify(presence));
      const members = (presence.members as Array<{ connection_id: string; user_id: unknown }>).sort((x, y) => x.connection_id.localeCompare(y.connection_id));
      assert.deepEqual(members, expected, `presence on ${channel}`);
      assert.equal(presence.connections, 3);
      assert.equal(presence.users, 2);
    }
  }
});

test('pub/sub is sharded: each node holds one SSUBSCRIBE per channel on the master owning its slot (SHARDNUMSUB), none elsewhere, and no classic SUBSCRIBE anywhere', async (t) => {
  const cluster = await calmCluster(t);
  if (cluster === null) return;
  const masters = await cluster.masters();
  const channels = await channelsOn(cluster, masters, 'live.room');
  const a = await topologyNode(t, clusterRedis(cluster));
  const b = await topologyNode(t, clusterRedis(cluster));
  // Two clients on A: still one subscription for A.
  const clients = [await connect(t, a), await connect(t, a), await connect(t, b)];
  for (const channel of channels) for (const client of clients) assert.equal((await client.subscribe(channel)).success, true);

  const shardNumsub = async (address: string, pubChannel: string): Promise<number> => Number(((await redisCommand(address, 'PUBSUB', 'SHARDNUMSUB', pubChannel)) as [string, number])[1]);
  const numsub = async (address: string, pubChannel: string): Promise<number> => Number(((await redisCommand(address, 'PUBSUB', 'NUMSUB', pubChannel)) as [string, number])[1]);
  for (const [index, channel] of channels.entries()) {
    const pubChannel = keys.pub(channel);
    const owner = masters[index] as string;
    assert.equal(await cluster.masterForKey(pubChannel), owner);
    for (const master of masters) {
      assert.equal(await shardNumsub(master, pubChannel), master === owner ? 2 : 0, `SHARDNUMSUB ${pubChannel} on ${master} (the owner is ${owner})`);
    }
    for (const address of cluster.nodes) assert.equal(await numsub(address, pubChannel), 0, `NUMSUB ${pubChannel} on ${address}`);
  }
  for (const address of cluster.nodes) assert.deepEqual(await redisCommand(address, 'PUBSUB', 'CHANNELS'), [], `no classic subscription at all on ${address}`);
  const shardChannels = new Set<string>();
  for (const master of masters) for (const name of (await redisCommand(master, 'PUBSUB', 'SHARDCHANNELS')) as string[]) shardChannels.add(name);
  for (const channel of channels) assert.ok(shardChannels.has(keys.pub(channel)), `${keys.pub(channel)} among the shard channels ${JSON.stringify([...shardChannels])}`);

  // The node's last subscriber leaves: its subscription goes, the other node's stays.
  for (const client of clients.slice(0, 2)) for (const channel of channels) assert.equal((await client.request('unsubscribe', { channel })).success, true);
  for (const [index, channel] of channels.entries()) {
    await until(async () => (await shardNumsub(masters[index] as string, keys.pub(channel))) === 1, RECOVERY_MS, `A's SSUBSCRIBE to ${channel} to go`);
  }
});

test('keySlot (key-slot.ts) equals CLUSTER KEYSLOT: plain names, hash tags, the empty tag {}, nested braces, unicode', async (t) => {
  const cluster = await calmCluster(t);
  if (cluster === null) return;
  const names = [
    '',
    'chat.room.1',
    'sbtest:{chat.room.1}:pub',
    'websocket:{chat.room.1}:history',
    'websocket:node:{AbCdEfGh}:alive',
    'foo',
    '{foo}',
    'a{foo}b',
    '{foo}{bar}',
    '{}',
    '{}foo',
    'x{}y{z}',
    '{}{z}',
    '{',
    '}',
    '}{',
    'a}b{c',
    'foo{',
    'foo{bar',
    '{{a}}',
    'a{b{c}d}e',
    '{a}}',
    '{{}}',
    'ü',
    'sbtest:{café.menü}:pub',
    '{日本語}:チャンネル',
    'チャンネル{日本語}',
    '😀',
    '{😀}:pub',
    'emoji.😀.{🚀}',
    '\u0000{\u0001}',
  ];
  // And some random ones, with braces and characters of every UTF-8 length.
  const alphabet = ['a', 'Z', '0', '.', ':', '{', '}', '{', '}', 'é', 'ß', '€', '日', '😀', ' '];
  for (let index = 0; index < 300; index++) {
    const length = 1 + Math.floor(Math.random() * 16);
    names.push(Array.from({ length }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join(''));
  }
  const redis = new Redis({ ...splitAddress(cluster.nodes[0] as string), maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  t.after(() => redis.disconnect());
  const pipeline = redis.pipeline();
  for (const name of names) pipeline.cluster('KEYSLOT', name);
  const replies = (await pipeline.exec()) ?? [];
  assert.equal(replies.length, names.length);
  for (const [index, name] of names.entries()) {
    const [error, slot] = replies[index] as [Error | null, unknown];
    assert.equal(error, null);
    assert.equal(keySlot(name), slot, `slot of ${JSON.stringify(name)}`);
  }
});

test('a master fails over: both nodes are ready again on their own, every channel flows again, a subscriber of a history channel on that master ends with every acknowledged message once, in order, and the old master rejoins as a replica', async (t) => {
  const cluster = await clusterFor(t);
  if (cluster === null) return;
  const masters = await cluster.masters();
  const victim = masters[0] as string;
  const [kept] = (await channelsOn(cluster, [victim], 'hist.failover')) as [string];
  const live = await channelsOn(cluster, masters, 'live.failover');
  const history = await channelsOn(cluster, masters, 'hist.other');
  const everyChannel = [...live, ...history];
  const a = await topologyNode(t, clusterRedis(cluster));
  const b = await topologyNode(t, clusterRedis(cluster));
  const publisherClient = await connect(t, a);
  const onA = await connect(t, a);
  const onB = await connect(t, b);
  const keptSubscribers = [publisherClient, onA, onB];
  for (const client of keptSubscribers) assert.equal((await client.subscribe(kept)).success, true);
  const clients = [onA, onB];
  for (const channel of everyChannel) for (const client of clients) assert.equal((await client.subscribe(channel)).success, true);
  await flowEverywhere([a, b], clients, clients, everyChannel, 'before');

  const publisher = new Publisher(publisherClient, kept).start();
  t.after(() => publisher.stop());
  await publisher.ackedAfter(0, 20);
  await cluster.killMaster(victim);
  const killedAfter = publisher.last;
  await until(async () => (await isNotReady(a)) && (await isNotReady(b)), RECOVERY_MS, 'both nodes to notice that a master is gone');
  const promoted = await cluster.waitForFailover(victim);
  assert.equal(await cluster.masterForKey(keys.pub(kept)), promoted);
  await readyAgain(a, b);
  await publisher.ackedAfter(killedAfter, 20);
  await flowEverywhere([a, b], clients, clients, everyChannel, 'after the failover');
  // The subscriptions followed the slot to the promoted master.
  const [liveOnPromoted] = live as [string];
  assert.deepEqual(
    await redisCommand(promoted, 'PUBSUB', 'SHARDNUMSUB', keys.pub(kept), keys.pub(liveOnPromoted)),
    [keys.pub(kept), 2, keys.pub(liveOnPromoted), 2],
    'one SSUBSCRIBE per node, on the promoted master',
  );

  await cluster.restart(victim);
  const role = (await redisCommand(victim, 'ROLE')) as [string, string, number];
  assert.deepEqual([role[0], `${role[1]}:${role[2]}`], ['slave', promoted], 'the old master is a replica of the promoted one');
  await publisher.ackedAfter(publisher.last, 20);
  const outcomes = await publisher.stop();
  await readyAgain(a, b);
  await flowEverywhere([a, b], clients, clients, everyChannel, 'after the old master rejoined');

  const lastAcked = publisher.acked().at(-1)?.n as number;
  for (const [index, subscriber] of keptSubscribers.entries()) await deliveredUpTo(subscriber, kept, lastAcked, `subscriber ${index}`);
  await sleep(QUIET_MS);
  const failed = publisher.failed().length;
  t.diagnostic(`${outcomes.length} publishes: ${publisher.acked().length} acknowledged, ${failed} failed during the failover`);
  for (const [index, subscriber] of keptSubscribers.entries()) {
    const notices = assertEveryAckedOnce(subscriber, kept, outcomes, `subscriber ${index} of ${kept} on ${index === 2 ? 'B' : 'A'}`);
    if (notices.length > 0) t.diagnostic(`subscriber ${index}: the promoted replica had lost writes; told by ${notices.length} notices`);
  }
  assert.ok(failed > 0, 'publishes were refused while the nodes were not ready (the failover did reach them)');
});

test('a promoted replica lacks writes its master acknowledged: the history starts a new epoch and every subscriber is told (recovered: false), never left with a silent gap or an offset given twice', async (t) => {
  const cluster = await clusterFor(t);
  if (cluster === null) return;
  const [victim] = await cluster.masters();
  const [kept] = (await channelsOn(cluster, [victim as string], 'hist.lost')) as [string];
  const a = await topologyNode(t, clusterRedis(cluster));
  const b = await topologyNode(t, clusterRedis(cluster));
  const publisherClient = await connect(t, a);
  const subscribers = [publisherClient, await connect(t, a), await connect(t, b)];
  const acks = [];
  for (const client of subscribers) acks.push(await client.subscribe(kept));
  const epochBefore = acks[0]?.epoch as string;

  const publisher = new Publisher(publisherClient, kept).start();
  t.after(() => publisher.stop());
  await publisher.ackedAfter(0, 10);
  await cutOffReplicas(victim as string);
  const cut = publisher.last;
  // Acknowledged by the master alone: the failover loses them.
  await publisher.ackedAfter(cut, 10);
  await cluster.killMaster(victim as string);
  const killedAfter = publisher.last;
  const lostOffset = publisher.acked().at(-1)?.offset as number;
  await cluster.waitForFailover(victim as string);
  await readyAgain(a, b);
  await publisher.ackedAfter(killedAfter, 10);
  const outcomes = await publisher.stop();

  const lastAcked = publisher.acked().at(-1)?.n as number;
  for (const [index, subscriber] of subscribers.entries()) await deliveredUpTo(subscriber, kept, lastAcked, `subscriber ${index}`);
  await sleep(QUIET_MS);
  const fresh = await connect(t, b);
  const now = await fresh.subscribe(kept);
  assert.notEqual(now.epoch, epochBefore, 'the history starts a new epoch');
  for (const [index, subscriber] of subscribers.entries()) {
    const what = `subscriber ${index} on ${index === 2 ? 'B' : 'A'}`;
    const notices = assertEveryAckedOnce(subscriber, kept, outcomes, what);
    assert.ok(notices.length > 0, `${what} was told that messages were lost`);
    for (const notice of notices) assert.equal(notice.epoch, now.epoch, `${what}: the notice names the new epoch`);
  }
  // A client that saw the lost messages and resumes from them is told too.
  const resuming = await connect(t, a);
  const resumed = await resuming.request('subscribe', { channel: kept, since: lostOffset, epoch: epochBefore });
  assert.equal(resumed.recovered, false, JSON.stringify(resumed));
  assert.equal(resumed.epoch, now.epoch);
});
