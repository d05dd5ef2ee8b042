/**
 * A Redis Cluster that refuses commands while every connection of the node stays up (SPEC
 * §6 "Beyond one Redis"): a master stops answering (SIGSTOP) and its replica may not take
 * over, so after the node timeout the other masters answer CLUSTERDOWN to everything. The
 * node hears of the outage only from those refusals (refusals.ts): the live messages Redis
 * refused are held with the rest of the outage's and reach the other node once the
 * cluster is whole again, each once and in order. Were a refusal taken for a message that
 * may have run, those messages would be dropped and the count below would miss them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { until } from '../helpers/redis.js';
import { QUIET_MS, connect, messagesOn, receivedAtLeast, sleep } from '../helpers/redis-nodes.js';
import { redisCommand } from '../helpers/redis-topology.js';
import { clusterFor } from '../helpers/redis-topology-test.js';
import { RECOVERY_MS, TOPOLOGY_TUNING, channelsOn, clusterRedis, logOf, readyAgain, topologyNode } from '../helpers/redis-topology-nodes.js';

test('CLUSTERDOWN while the connections stay up: the live messages Redis refused are held, and reach the other node once the cluster is whole, each once and in order', async (t) => {
  const cluster = await clusterFor(t);
  if (cluster === null) return;
  const [victim, other] = (await cluster.masters()) as [string, string, string];
  const [channel] = (await channelsOn(cluster, [other], 'live.refused')) as [string];
  // The watchdog would drop the frozen master's connections, and the node would hold
  // everything from then on whatever the refusals: here it waits longer than the test.
  const brokerTuning = { ...TOPOLOGY_TUNING, silenceTimeoutMs: 10 * RECOVERY_MS };
  const a = await topologyNode(t, clusterRedis(cluster), { brokerTuning });
  const b = await topologyNode(t, clusterRedis(cluster), { brokerTuning });
  const sender = await connect(t, a);
  const receiver = await connect(t, b);
  for (const client of [sender, receiver]) assert.equal((await client.subscribe(channel)).success, true);
  for (const replica of await cluster.replicasOf(victim)) await redisCommand(replica, 'CONFIG', 'SET', 'cluster-replica-no-failover', 'yes');

  const acked: number[] = [];
  const refusedAcks: unknown[] = [];
  let stopping = false;
  const publishing = (async () => {
    for (let n = 1; !stopping; n++) {
      const ack = await sender.publish(channel, { n });
      if (ack.action === 'message_sent') acked.push(n);
      else refusedAcks.push(ack);
      await sleep(10);
    }
  })();
  t.after(async () => {
    stopping = true;
    await publishing.catch(() => undefined);
  });
  await until(() => acked.length >= 20, RECOVERY_MS, 'messages to flow before the master freezes');
  assert.deepEqual(refusedAcks, []);

  cluster.pause(victim);
  t.after(() => cluster.resume(victim));
  const refusal = (): boolean => a.lines.some((line) => /^Redis unavailable .*: CLUSTERDOWN\b/.test(String(line.msg)));
  await until(refusal, RECOVERY_MS, `A to hear CLUSTERDOWN from a publish; its log: ${logOf(a)}`);
  const heldFrom = acked.length;
  await until(() => acked.length >= heldFrom + 30, RECOVERY_MS, 'more messages acknowledged while the cluster is down');
  cluster.resume(victim);
  await readyAgain(a, b);
  const after = acked.length;
  await until(() => acked.length >= after + 20, RECOVERY_MS, 'messages to flow again');
  stopping = true;
  await publishing;

  const last = acked.at(-1) as number;
  await receivedAtLeast(receiver, (frame) => frame.action === 'message' && frame.channel === channel && (frame.message as { n?: number }).n === last, 1, RECOVERY_MS);
  await sleep(QUIET_MS);
  assert.deepEqual(refusedAcks, [], 'a live message is acknowledged, held or not');
  const got = messagesOn(receiver, channel).map((frame) => (frame.message as { n: number }).n);
  assert.deepEqual(got, acked, `B got every acknowledged message once, in order (${acked.length}, of which about ${acked.length - heldFrom - 20} were refused or held)`);
  assert.ok(a.lines.some((line) => String(line.msg).startsWith('Redis is back') && Number(line.sent) > 0), `A sent held messages after the cluster came back: ${logOf(a)}`);
});
