/**
 * The Redis topologies the reliability tests and `npm run chaos` stand on
 * (test/helpers/redis-topology*.ts) do what they say: a single Redis keeps what it
 * acknowledged across a SIGKILL with AOF, Sentinel fails over and takes the old master
 * back as a replica, and a Cluster of three masters serves keys and sharded pub/sub on
 * each and fails a killed master over to its replica.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { pollFor, redisCommand, splitAddress, TOPOLOGY_MS } from '../helpers/redis-topology.js';
import { clusterFor, sentinelFor, singleRedisFor } from '../helpers/redis-topology-test.js';

test('a single Redis with AOF keeps its data across a SIGKILL; a wiped one starts empty', async (t) => {
  const redis = await singleRedisFor(t, { persistent: true });
  if (redis === null) return;
  assert.equal(await redisCommand(redis.address, 'SET', 'kept', 'yes'), 'OK');
  await redis.kill();
  assert.equal(redis.running, false);
  await assert.rejects(redisCommand(redis.address, 'PING'));
  await redis.start();
  assert.equal(await redisCommand(redis.address, 'GET', 'kept'), 'yes');
  await redis.start({ wipe: true });
  assert.equal(await redisCommand(redis.address, 'GET', 'kept'), null);
});

test('Sentinel: a killed master is replaced by its replica, and comes back as a replica', { timeout: 4 * TOPOLOGY_MS }, async (t) => {
  const sentinel = await sentinelFor(t, { replicas: 1 });
  if (sentinel === null) return;
  const client = new Redis({ sentinels: sentinel.sentinels.map(splitAddress), name: sentinel.name, maxRetriesPerRequest: 20 });
  client.on('error', () => undefined);
  t.after(() => client.disconnect());
  assert.equal(await client.set('before', '1'), 'OK');
  // Acknowledged by the replica too, so that the failover cannot lose it.
  assert.equal(await client.call('WAIT', 1, 5000), 1);

  const oldMaster = await sentinel.killMaster();
  const newMaster = await sentinel.waitForFailover(oldMaster);
  assert.notEqual(newMaster, oldMaster);
  assert.equal(await sentinel.masterAddress(), newMaster);
  assert.equal(await redisCommand(newMaster, 'GET', 'before'), '1');
  // The client finds the new master through the sentinels.
  await pollFor(async () => (await client.set('after', '2')) === 'OK', 30_000, 'a write through the sentinels after the failover');

  await sentinel.restart(oldMaster);
  const role = (await redisCommand(oldMaster, 'ROLE')) as [string, string, number];
  assert.equal(role[0], 'slave');
  assert.equal(`${role[1]}:${role[2]}`, newMaster);
  await pollFor(async () => (await redisCommand(oldMaster, 'GET', 'after')) === '2', 30_000, 'the old master to replicate the new one');
});

test('Cluster: keys and sharded pub/sub on all three masters, and a master failover', async (t) => {
  const cluster = await clusterFor(t);
  if (cluster === null) return;
  const masters = await cluster.masters();
  assert.equal(masters.length, 3);
  assert.equal(cluster.nodes.length, 6);

  // A key, and a shard channel, on each master.
  const keyOn = new Map<string, string>();
  for (let index = 0; keyOn.size < 3; index++) {
    const key = `key.${index}`;
    const master = await cluster.masterForKey(key);
    if (!keyOn.has(master)) keyOn.set(master, key);
  }
  const client = new Cluster(cluster.nodes.map(splitAddress), { shardedSubscribers: true, redisOptions: { maxRetriesPerRequest: 20 } });
  const subscriber = new Cluster(cluster.nodes.map(splitAddress), { shardedSubscribers: true });
  for (const redis of [client, subscriber]) redis.on('error', () => undefined);
  t.after(() => {
    client.disconnect();
    subscriber.disconnect();
  });
  for (const [master, key] of keyOn) {
    assert.equal(await client.set(key, master), 'OK');
    assert.equal(await redisCommand(master, 'GET', key), master, `${key} is stored on ${master}`);
  }
  const heard: string[] = [];
  subscriber.on('smessage', (channel: string, message: string) => heard.push(`${channel}=${message}`));
  const channels = [...keyOn.values()];
  for (const channel of channels) await subscriber.ssubscribe(channel);
  for (const channel of channels) await client.spublish(channel, 'hello');
  await pollFor(() => heard.length === channels.length, 20_000, 'a sharded message on every master');
  assert.deepEqual(heard.sort(), channels.map((channel) => `${channel}=hello`).sort());

  const [victim, victimKey] = [...keyOn][0] as [string, string];
  assert.equal(await redisCommand(victim, 'WAIT', 1, 5000), 1);
  await cluster.killMaster(victim);
  const promoted = await cluster.waitForFailover(victim);
  assert.notEqual(promoted, victim);
  assert.equal(await cluster.masterForKey(victimKey), promoted);
  assert.equal(await redisCommand(promoted, 'GET', victimKey), victim, 'the replica had the key');
  assert.equal((await cluster.masters()).length, 3);

  await cluster.restart(victim);
  const role = (await redisCommand(victim, 'ROLE')) as [string, string, number];
  assert.equal(role[0], 'slave');
  assert.equal(`${role[1]}:${role[2]}`, promoted);
});
