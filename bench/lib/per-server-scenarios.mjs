// The scenarios every server runs besides the fan-out: latency at a fixed rate, memory per
// idle connection and JWT handshakes per second, each on a fresh server, each with the
// server's largest event-loop delay over its measured part (`loopMaxMs`).
import { forkClient, subscriberProcesses, waitForDeliveries } from './client-processes.mjs';
import { rssBytes, sleep } from './processes.mjs';
import { startServer } from './server-processes.mjs';
import { CHANNEL } from './settings.mjs';
import { benchToken } from './tokens.mjs';

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `subscribers` on one channel, `rate` messages a second for `seconds`; every 20th subscriber times its messages. */
export async function latency(kind, { subscribers, rate, seconds }) {
  const server = await startServer(kind);
  try {
    const groups = await subscriberProcesses(server, subscribers, CHANNEL, 20);
    const publisher = forkClient('publisher.mjs', [kind, server.port, CHANNEL]);
    await publisher.next();
    await server.resetLoopMax();
    await publisher.ask({ cmd: 'rate', rate, seconds });
    const { latencies } = await waitForDeliveries(groups, subscribers * Math.round(rate * seconds), 30_000);
    const loopMaxMs = await server.loopMax();
    for (const group of [...groups, publisher]) group.exit();
    const sorted = latencies.sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, samples: sorted.length, loopMaxMs };
  } finally {
    await server.stop();
  }
}

/** The growth of resident memory with `connections` idle connections open, per connection; the loop over opening them and 2 s idle. */
export async function idleMemory(kind, connections) {
  const server = await startServer(kind);
  try {
    await sleep(500);
    const before = rssBytes(server.pid);
    await server.resetLoopMax();
    const groups = await subscriberProcesses(server, connections, '-', 0);
    await sleep(2000);
    const after = rssBytes(server.pid);
    const loopMaxMs = await server.loopMax();
    for (const group of groups) group.exit();
    return { bytesPerConnection: (after - before) / connections, loopMaxMs };
  } finally {
    await server.stop();
  }
}

/** 32 clients opening a connection with an HS256 token, waiting for the welcome and closing it, for `seconds`. */
export async function handshakes(kind, seconds) {
  const server = await startServer(kind);
  try {
    const token = await benchToken(1, 'user');
    await server.resetLoopMax();
    const client = forkClient('handshakes.mjs', [kind, server.port, token, seconds, 32]);
    const { accepted, failed } = await client.next();
    const loopMaxMs = await server.loopMax();
    return { perSecond: accepted / seconds, failed, loopMaxMs };
  } finally {
    await server.stop();
  }
}
