// One fan-out burst (a publisher, many subscribers, server CPU time and the servers' largest
// event-loop delay over the burst), on one fresh server or across two Switchboard nodes
// through Redis. What the fan-out, cross-node, history, Pusher and features scenarios measure.
import { forkClient, subscriberProcesses, waitForDeliveries } from './client-processes.mjs';
import { cpuSeconds, sleep } from './processes.mjs';
import { startRedis, startServer } from './server-processes.mjs';
import { CHANNEL } from './settings.mjs';
import { benchToken } from './tokens.mjs';

/**
 * A burst of `messages` from one publisher connected to `publishTo`, to `subscribers`
 * connections on `subscribeTo`; CPU seconds measured for each of `pids`, and the largest
 * event-loop delay (ms) of each server handle of `servers`, over the burst only.
 * `authenticated`: the subscribers and the publisher (role `user`) connect with tokens.
 * The client processes are ended however the run ends.
 */
export async function burst({ publishTo, subscribeTo, pids, servers = [], subscribers, messages, sampleEvery = 0, authenticated = false }) {
  const clients = [];
  try {
    clients.push(...(await subscriberProcesses(subscribeTo, subscribers, CHANNEL, sampleEvery, { authenticated })));
    const groups = [...clients];
    const token = authenticated ? await benchToken('publisher', 'user') : '-';
    const publisher = forkClient('publisher.mjs', [publishTo.kind, publishTo.port, CHANNEL, token]);
    clients.push(publisher);
    await publisher.next();
    const expected = subscribers * messages;
    for (const server of servers) await server.resetLoopMax();
    const cpuBefore = pids.map(cpuSeconds);
    const started = performance.now();
    // The publisher waits for the echo of each message: it would wait forever for a server that died.
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('the publisher did not finish its burst in 300 s')), 300_000);
    });
    await Promise.race([publisher.ask({ cmd: 'burst', messages, window: Math.max(2, Math.floor(20000 / subscribers)) }), timeout]).finally(() => clearTimeout(timer));
    const { deliveries, sampled } = await waitForDeliveries(groups, expected, 120_000);
    const seconds = (performance.now() - started) / 1000;
    const cpu = pids.map((pid, index) => cpuSeconds(pid) - cpuBefore[index]);
    const loopMaxMs = [];
    for (const server of servers) loopMaxMs.push(await server.loopMax());
    return { deliveries, expected, seconds, cpu, sampled, loopMaxMs };
  } finally {
    for (const client of clients) client.exit();
    await sleep(100);
    for (const client of clients) client.kill();
  }
}

/**
 * One burst on a fresh `kind` server. `subscriberKind`: the subscribers' raw-client protocol,
 * when not the server's own (`pusher`); `authenticated`: clients connect with tokens.
 */
export async function fanout(kind, { subscribers, messages }, { env = {}, sampleEvery = 0, subscriberKind = kind, authenticated = false } = {}) {
  const server = await startServer(kind, env);
  try {
    const subscribeTo = { ...server, kind: subscriberKind };
    const run = await burst({ publishTo: server, subscribeTo, pids: [server.pid], servers: [server], subscribers, messages, sampleEvery, authenticated });
    const { deliveries, expected, seconds, cpu, sampled, loopMaxMs } = run;
    return {
      deliveriesPerSecond: deliveries / seconds,
      complete: deliveries >= expected,
      cpuMicrosPerDelivery: (cpu[0] * 1e6) / Math.max(1, deliveries),
      loopMaxMs: loopMaxMs[0],
      ...(sampleEvery > 0 && { sampled }),
    };
  } finally {
    await server.stop();
  }
}

/**
 * Fan-out across two Switchboard nodes through Redis: the publisher on node A, every
 * subscriber on node B, so each message crosses Redis once and is framed once on B.
 * Null when no redis-server is installed.
 */
export async function crossNode({ subscribers, messages }, { env: extraEnv = {}, sampleEvery = 0 } = {}) {
  const redis = await startRedis();
  if (redis === null) return null;
  const env = { REDIS_ENABLED: 'true', REDIS_PORT: String(redis.port), ...extraEnv };
  const nodes = [];
  try {
    nodes.push(await startServer('switchboard', env));
    nodes.push(await startServer('switchboard', env));
    const [a, b] = nodes;
    const run = await burst({ publishTo: a, subscribeTo: b, pids: [a.pid, b.pid, redis.pid], servers: [a, b], subscribers, messages, sampleEvery });
    const { deliveries, expected, seconds, cpu, sampled, loopMaxMs } = run;
    const perDelivery = (used) => (used * 1e6) / Math.max(1, deliveries);
    return {
      deliveriesPerSecond: deliveries / seconds,
      complete: deliveries >= expected,
      cpuMicrosPerDelivery: { publishingNode: perDelivery(cpu[0]), subscribingNode: perDelivery(cpu[1]), redis: perDelivery(cpu[2]) },
      loopMaxMs: { publishingNode: loopMaxMs[0], subscribingNode: loopMaxMs[1] },
      ...(sampleEvery > 0 && { sampled }),
    };
  } finally {
    for (const node of nodes) await node.stop();
    await redis.stop();
  }
}
