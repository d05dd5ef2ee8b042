// Switchboard at scale, one node (run.mjs registers these as 'scale' and 'huge-channel'):
//
// - scaleScenario: `connections` WebSocket connections (50,000) to one node. First the idle
//   memory: the growth of the resident memory of all the node's processes once every
//   connection is open and idle, divided by the connections. Then each connection joins a
//   channel of its own and receives one message a second on it for `seconds`: server CPU,
//   delivery latency, deliveries counted against expected, event-loop max.
// - hugeChannelScenario: one channel with `subscribers` subscribers (100,000); a publisher
//   sends `messages` messages; deliveries per second until every subscriber has every
//   message, and meanwhile how fast the node answers another client's WebSocket pings and
//   native `ping` requests (every 10 ms, on a probe connection per worker process).
//
// One process may hold only as many sockets as its open-file limit allows (20,000 in the
// container these were written in, which root cannot raise), and one loopback source address
// only ~28,000 connections to one server port (ephemeral ports 32768–60999). So the clients
// are spread over processes of at most CLIENTS_PER_PROCESS connections, each from its own
// source address, and the node gets the fewest worker processes (WS_WORKER_NUM) that hold
// the connections; the tables say so. Without Redis the workers reach each other through
// the primary process (src/cli/workers.ts).
//
// How the scale scenario publishes: the native protocol refuses a message to a channel its
// sender is not subscribed to (NOT_SUBSCRIBED), and the HTTP APIs are too slow to carry
// 50,000 messages a second on two cores (POST /api/publish: ~9,000 requests/s; Pusher's
// batch_events, 10 events a request: ~31,000 events/s, with nothing delivered). So
// PUBLISHERS WebSocket connections, in two processes, each subscribed to its share of the
// channels, publish to them round-robin, spread evenly over each second, as a backend
// holding WebSocket connections would. The server's CPU figure includes what those
// publishes cost it: reading each, a `message_sent` ack and the echo to the publisher.
import { readFileSync } from 'node:fs';
import { format } from './lib/format.mjs';
import { cpuSeconds, rssBytes } from './lib/processes.mjs';

/** The most connections one client process opens (each is a file; the limit is per process). */
const CLIENTS_PER_PROCESS = 15_000;
/** Files a Switchboard process needs besides its connections (its own HEADROOM, src/cli/open-file-limit.ts). */
const SERVER_HEADROOM = 64;
/** node:cluster hands connections to workers round-robin, but not exactly evenly: a margin. */
const WORKER_FILL = 0.9;
const PUBLISHERS = 6;
const PROBE_INTERVAL_MS = 10;

/** This process's soft limit on open files (the servers and clients it starts inherit it); Infinity when unlimited or unknown. */
function openFileLimit() {
  try {
    const match = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match === null || match[1] === 'unlimited' ? Infinity : Number(match[1]);
  } catch {
    return Infinity;
  }
}

/** The fewest worker processes that hold `connections` under the open-file limit (1: a single process). */
function workersFor(connections, limit) {
  const perProcess = (limit - SERVER_HEADROOM) * WORKER_FILL;
  return connections <= limit - SERVER_HEADROOM ? 1 : Math.ceil(connections / perProcess);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, samples: sorted.length };
}

/** Waits (up to 20 s) until the node's primary and all its workers run, so that a baseline counts them all. */
async function allProcesses(ctx, server, workers) {
  const wanted = workers === 1 ? 1 : workers + 1;
  for (let waited = 0; (await server.pids()).length < wanted && waited < 20_000; waited += 100) await ctx.sleep(100);
}

const sumOver = async (server, measure) => (await server.pids()).reduce((sum, pid) => sum + measure(pid), 0);

/** Per-node connection counts from the HTTP API (`WS_API_KEY` set), or null. */
async function connectionsPerNode(server, apiKey) {
  try {
    const response = await fetch(`http://127.0.0.1:${server.port}/api/stats`, { headers: { authorization: `Bearer ${apiKey}` } });
    const stats = await response.json();
    return stats.nodes.map((node) => node.connections);
  } catch {
    return null;
  }
}

/** The server for `connections` (plus `extra` of the bench's own): its environment and why. */
function serverPlan(connections, extraEnv, forcedWorkers) {
  const limit = openFileLimit();
  const workers = forcedWorkers ?? workersFor(connections, limit);
  const apiKey = 'bench-scale-api-key-0123456789abcdef';
  const env = {
    WS_WORKER_NUM: String(workers),
    // Both 0 (no limit) by default; set so that no environment of the bench can refuse connections.
    WS_MAX_CONNECTIONS: '0',
    WS_MAX_CONNECTIONS_PER_IP: '0',
    WS_MAX_MESSAGES_PER_MINUTE: '0',
    WS_API_KEY: apiKey,
    ...extraEnv,
  };
  const why =
    forcedWorkers !== undefined ? `${workers} worker${workers === 1 ? '' : 's'}, as the plan asked` : workers === 1 ? 'one process' : `${workers} workers: this machine's open-file limit is ${limit} per process`;
  return { env, workers, apiKey, limit, why };
}

/**
 * Calls of openConnections so far: each call's clients take source addresses of their own, since
 * the previous run's ~50,000 closed connections stay in TIME_WAIT for a minute and an address's
 * ports bound before connecting (as a source address makes them) collide with theirs.
 */
let opens = 0;

/** Subscriber processes for `total` connections on `channel` (`%`: the connection's index; `-`: none). */
async function openConnections(ctx, server, total, channel, sampleEvery, baseSubnet) {
  const subnet = baseSubnet + 10 * (opens++ % 24);
  const processes = Math.ceil(total / CLIENTS_PER_PROCESS);
  const groups = [];
  for (let k = 0; k < processes; k++) {
    const first = Math.round((k * total) / processes);
    const count = Math.round(((k + 1) * total) / processes) - first;
    groups.push(ctx.forkClient('scale-subscribers.mjs', [server.port, first, count, channel, sampleEvery, `127.0.${subnet}.${k + 1}`]));
  }
  const replies = await Promise.all(groups.map((group) => group.next().catch((error) => ({ failed: 1, firstError: error.message }))));
  const failed = replies.reduce((sum, reply) => sum + reply.failed, 0);
  if (failed > 0) {
    const opened = replies.reduce((sum, reply) => sum + (reply.opened ?? 0), 0);
    for (const group of groups) group.kill();
    throw new Error(`${failed} of ${total} connections failed (${opened} opened): ${replies.find((reply) => reply.failed > 0).firstError}`);
  }
  const retried = replies.reduce((sum, reply) => sum + reply.retried.count, 0);
  const firstRetry = replies.find((reply) => reply.retried.firstError !== null)?.retried.firstError ?? null;
  return { groups, retried: { count: retried, firstError: firstRetry } };
}

async function countDeliveries(groups) {
  const replies = await Promise.all(groups.map((group) => group.ask({ cmd: 'count' })));
  return {
    deliveries: replies.reduce((sum, reply) => sum + reply.deliveries, 0),
    closed: replies.reduce((sum, reply) => sum + reply.closed, 0),
    undecoded: replies.reduce((sum, reply) => sum + reply.undecoded, 0),
    latencies: replies.flatMap((reply) => reply.latencies),
  };
}

/** Polls until `expected` deliveries are counted or `deadline` (ms since the epoch) passes. */
async function waitForDeliveries(ctx, groups, expected, deadline) {
  const latencies = [];
  let counted;
  for (;;) {
    counted = await countDeliveries(groups);
    latencies.push(...counted.latencies);
    if (counted.deliveries >= expected || Date.now() > deadline) break;
    await ctx.sleep(20);
  }
  return { ...counted, latencies, at: performance.now() };
}

async function finish(ctx, clients, server) {
  for (const client of clients) client.exit();
  await ctx.sleep(300);
  for (const client of clients) client.kill();
  await server?.stop();
}

export async function scaleScenario(ctx, plan) {
  const { connections, seconds } = plan;
  // `server: 'frame-once'`: the same clients against the bench's frame-once `ws` server (one
  // process, no acks), the floor of one write per delivery on this machine.
  const kind = plan.server ?? 'switchboard';
  const setup = serverPlan(connections + PUBLISHERS, { WS_MAX_CHANNELS_PER_CONNECTION: String(Math.max(100, Math.ceil(connections / PUBLISHERS) + 1)) }, kind === 'switchboard' ? plan.workers : 1);
  if (kind !== 'switchboard') setup.why = `${kind}, one process`;
  const clients = [];
  let server = null;
  const started = performance.now();
  try {
    server = await ctx.startServer(kind, setup.env);
    await allProcesses(ctx, server, setup.workers);
    await ctx.sleep(1000);
    const rssBefore = await sumOver(server, rssBytes);
    const { groups, retried } = await openConnections(ctx, server, connections, '-', 50, 2);
    clients.push(...groups);
    const opened = performance.now();
    await ctx.sleep(3000);
    const rssAfter = await sumOver(server, rssBytes);
    const processes = (await server.pids()).length;
    const perNode = await connectionsPerNode(server, setup.apiKey);

    // Each connection joins `scale.<its index>`; the publishers join theirs.
    const joined = await Promise.all(groups.map((group) => group.ask({ cmd: 'subscribe', channel: 'scale.%' })));
    const refused = joined.reduce((sum, reply) => sum + reply.failed, 0);
    if (refused > 0) throw new Error(`${refused} subscribes failed: ${joined.find((reply) => reply.failed > 0).firstError}`);
    const publishers = [0, 1].map((half) =>
      ctx.forkClient('scale-publishers.mjs', [server.port, connections, 'scale', half * (PUBLISHERS / 2), PUBLISHERS / 2, PUBLISHERS, `127.0.2.${100 + half}`]),
    );
    clients.push(...publishers);
    await Promise.all(publishers.map((publisher) => publisher.next()));
    await countDeliveries(groups);
    const joinedAt = performance.now();

    const expected = connections * seconds;
    const pids = await server.pids();
    await server.resetLoopMax();
    const cpuBefore = pids.map(cpuSeconds);
    const cpuFrom = performance.now();
    const startAt = Date.now() + 200;
    const t0 = performance.now() + 200;
    const sent = await Promise.all(publishers.map((publisher) => publisher.ask({ cmd: 'publish', startAt, seconds })));
    const counted = await waitForDeliveries(ctx, groups, expected, Date.now() + 15_000);
    const cpuUsed = pids.map((pid, index) => cpuSeconds(pid) - cpuBefore[index]);
    const cpu = cpuUsed.reduce((sum, used) => sum + used, 0);
    const loopMax = await server.loopMax();
    const rssLoaded = await sumOver(server, rssBytes);
    const wall = (counted.at - t0) / 1000;
    const echoes = await Promise.all(publishers.map((publisher) => publisher.ask({ cmd: 'count' })));
    return {
      server: kind,
      connections,
      seconds,
      workers: setup.workers,
      openFileLimit: setup.limit,
      serverSetup: setup.why,
      env: setup.env,
      processes,
      connectionsPerNode: perNode,
      handshakesRetried: retried,
      idle: { bytesPerConnection: (rssAfter - rssBefore) / connections, rssBefore, rssAfter },
      published: sent.reduce((sum, reply) => sum + reply.sent, 0),
      publisherLagMaxMs: Math.max(...sent.map((reply) => reply.maxLagMs)),
      publisherEchoes: echoes.reduce((sum, reply) => sum + reply.echoes, 0),
      publisherErrors: echoes.reduce((sum, reply) => sum + reply.errors, 0),
      publisherFirstError: echoes.find((reply) => reply.firstError !== null)?.firstError ?? null,
      deliveries: counted.deliveries,
      expected,
      closedByServer: counted.closed + echoes.reduce((sum, reply) => sum + reply.closed, 0),
      undecoded: counted.undecoded,
      wallSeconds: wall,
      cpuSeconds: cpu,
      cpuSecondsPerProcess: cpuUsed.map((used, index) => ({ pid: pids[index], primary: pids[index] === server.pid && pids.length > 1, seconds: used })),
      deliveredPerSecond: counted.deliveries / wall,
      rssAfterRun: rssLoaded,
      cpuMicrosPerDelivery: (cpu * 1e6) / Math.max(1, counted.deliveries),
      cpuPercentOfCore: (cpu / ((counted.at - cpuFrom) / 1000)) * 100,
      latency: summary(counted.latencies),
      loopMaxMs: loopMax,
      ...(server.lastLoop !== undefined && { loopMaxMsPerProcess: server.lastLoop, stalls: server.lastStalls }),
      phaseSeconds: { connect: (opened - started) / 1000, subscribe: (joinedAt - opened) / 1000 - 3, publish: (counted.at - joinedAt) / 1000 },
      scenarioSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    await finish(ctx, clients, server);
  }
}

export async function hugeChannelScenario(ctx, plan) {
  const { subscribers, messages } = plan;
  const channel = 'huge';
  const setup = serverPlan(subscribers + 1 + 32, {}, plan.workers);
  const clients = [];
  let server = null;
  const started = performance.now();
  try {
    server = await ctx.startServer('switchboard', setup.env);
    await allProcesses(ctx, server, setup.workers);
    const { groups, retried } = await openConnections(ctx, server, subscribers, channel, 0, 3);
    clients.push(...groups);
    const opened = performance.now();
    const perNode = await connectionsPerNode(server, setup.apiKey);
    // At the bench's own priority: its answer times are the server's, not its own wait for a core.
    const probe = ctx.forkClient('probe.mjs', [server.port, setup.workers, '127.0.3.200'], { nice: 0 });
    clients.push(probe);
    const { nodes: probed } = await probe.next();
    const publisher = ctx.forkClient('publisher.mjs', ['switchboard', server.port, channel]);
    clients.push(publisher);
    await publisher.next();
    await ctx.sleep(500);

    const expected = subscribers * messages;
    const pids = await server.pids();
    await server.resetLoopMax();
    const cpuBefore = pids.map(cpuSeconds);
    await probe.ask({ cmd: 'start', intervalMs: PROBE_INTERVAL_MS });
    const t0 = performance.now();
    // As run.mjs's fan-out: a bounded number in flight, the publisher waiting for its echoes.
    const window = Math.max(2, Math.floor(20000 / subscribers));
    const burst = publisher.ask({ cmd: 'burst', messages, window });
    const counted = await waitForDeliveries(ctx, groups, expected, Date.now() + 300_000);
    const cpuUsed = pids.map((pid, index) => cpuSeconds(pid) - cpuBefore[index]);
    const cpu = cpuUsed.reduce((sum, used) => sum + used, 0);
    const answers = await probe.ask({ cmd: 'stop' });
    const loopMax = await server.loopMax();
    const burstDone = await Promise.race([burst.then(() => true), ctx.sleep(5000).then(() => false)]);
    const seconds = (counted.at - t0) / 1000;
    const answered = (measure) => ({ sent: measure.sent, answered: measure.answered, unanswered: measure.unanswered, ...summary(measure.latencies) });
    return {
      subscribers,
      messages,
      workers: setup.workers,
      openFileLimit: setup.limit,
      serverSetup: setup.why,
      env: setup.env,
      connectionsPerNode: perNode,
      handshakesRetried: retried,
      deliveries: counted.deliveries,
      expected,
      closedByServer: counted.closed,
      publisherFinished: burstDone,
      seconds,
      deliveriesPerSecond: counted.deliveries / seconds,
      cpuMicrosPerDelivery: (cpu * 1e6) / Math.max(1, counted.deliveries),
      cpuSecondsPerProcess: cpuUsed.map((used, index) => ({ pid: pids[index], primary: pids[index] === server.pid && pids.length > 1, seconds: used })),
      probedNodes: probed,
      probeTickLagMaxMs: answers.tickLagMax,
      ping: answered(answers.ping),
      request: answered(answers.request),
      loopMaxMs: loopMax,
      ...(server.lastLoop !== undefined && { loopMaxMsPerProcess: server.lastLoop, stalls: server.lastStalls }),
      phaseSeconds: { connectAndSubscribe: (opened - started) / 1000, writeOut: seconds },
      scenarioSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    await finish(ctx, clients, server);
  }
}

const count = (value) => format(value, 0);
const ms = (value) => format(value, 2);
const row = (label, value) => `| ${label} | ${value} |`;
const perNodeText = (perNode) => (perNode === null || perNode.length < 2 ? null : perNode.map(count).join(' / '));
const retriedText = ({ count: n, firstError }) => (n === 0 ? '0' : `${count(n)} (first: ${firstError})`);
const processCount = (n) => `${count(n)} process${n === 1 ? '' : 'es'}`;

/** "% of one core: primary 40 / workers 50, 52, 49" when the node has workers, else null. */
function cpuSplit(result, seconds) {
  const primary = result.cpuSecondsPerProcess.find((process) => process.primary);
  if (primary === undefined) return null;
  const workers = result.cpuSecondsPerProcess.filter((process) => !process.primary);
  const percent = (used) => format((used / seconds) * 100, 0);
  return `primary (accepts, relays between workers) ${percent(primary.seconds)} / workers ${workers.map((worker) => percent(worker.seconds)).join(', ')}`;
}

export function scaleTable(result) {
  const { latency: l } = result;
  const perNode = perNodeText(result.connectionsPerNode);
  const incomplete = result.deliveries < result.expected;
  const split = cpuSplit(result, result.cpuSeconds / (result.cpuPercentOfCore / 100));
  const lines = [
    `| ${result.server === 'switchboard' || result.server === undefined ? 'Switchboard' : result.server}, ${count(result.connections)} connections to one node (${result.serverSetup}) | value |`,
    '|---|---|',
    row(`memory per idle connection, bytes (resident memory growth of the node's ${processCount(result.processes)} ÷ ${count(result.connections)})`, count(result.idle.bytesPerConnection)),
    ...(perNode === null ? [] : [row('connections per worker', perNode)]),
    row(`deliveries counted / expected (1 message a second on each connection's own channel for ${result.seconds} s, counted until all arrived or 15 s after the last send)`, `${count(result.deliveries)} / ${count(result.expected)}${incomplete ? ' (incomplete)' : ''}`),
    row(`deliveries/s over the run (${count(result.connections)} expected)`, count(result.deliveredPerSecond)),
    row('server CPU µs per delivery (all its processes; includes reading each publish, its ack and echo)', format(result.cpuMicrosPerDelivery, 2)),
    row('server CPU, % of one core', format(result.cpuPercentOfCore, 0)),
    ...(split === null ? [] : [row('of which, % of one core', split)]),
    row(`delivery latency p50 / p99 / max, ms (${count(l.samples)} samples, every 50th connection${incomplete ? '; deliveries counted only' : ''})`, `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}`),
    row('event-loop delay max, ms (any of its processes)', ms(result.loopMaxMs ?? NaN)),
    row('resident memory of the node: idle → after the run, MB', `${format(result.idle.rssAfter / 2 ** 20, 0)} → ${format(result.rssAfterRun / 2 ** 20, 0)}`),
    row('connections closed by the server / publisher errors', `${count(result.closedByServer)} / ${count(result.publisherErrors)}`),
    row('time to open the connections / to subscribe them, s', `${format(result.phaseSeconds.connect, 1)} / ${format(result.phaseSeconds.subscribe, 1)}`),
    row('handshakes that failed and were tried again', retriedText(result.handshakesRetried)),
  ];
  const notes = [
    `Published by ${PUBLISHERS} WebSocket connections (2 processes), each subscribed to its share of the channels (a client must be subscribed to publish: NOT_SUBSCRIBED), round-robin and spread evenly over each second; each publish also costs the server an ack and an echo to its publisher (${count(result.publisherEchoes)} echoes). Publisher send lag max ${ms(result.publisherLagMaxMs)} ms.`,
    `Server environment: ${Object.entries(result.env).filter(([name]) => name !== 'WS_API_KEY').map(([name, value]) => `${name}=${value}`).join(', ')} (WS_API_KEY set to read the connections per worker).`,
  ];
  return `${lines.join('\n')}\n\n${notes.join(' ')}`;
}

export function hugeChannelTable(result) {
  const answered = (measure) => `${ms(measure.p99)} / ${ms(measure.max)} (${count(measure.answered)} of ${count(measure.sent)} answered)`;
  const perNode = perNodeText(result.connectionsPerNode);
  const split = cpuSplit(result, result.seconds);
  const lines = [
    `| Switchboard, one channel with ${count(result.subscribers)} subscribers on one node (${result.serverSetup}) | value |`,
    '|---|---|',
    ...(perNode === null ? [] : [row('subscribers per worker', perNode)]),
    row(`fan-out deliveries/s, ${result.messages} messages (until every subscriber has every message)`, `${count(result.deliveriesPerSecond)}${result.deliveries < result.expected ? ` (incomplete: ${count(result.deliveries)} of ${count(result.expected)})` : ''}`),
    row('server CPU µs per delivery (all its processes)', format(result.cpuMicrosPerDelivery, 2)),
    ...(split === null ? [] : [row('server CPU during the write-out, % of one core', split)]),
    row(`during the write-out, every ${PROBE_INTERVAL_MS} ms on a connection to each of ${processCount(result.probedNodes)}: WebSocket ping → pong, p99 / max ms`, answered(result.ping)),
    row('the same: native `ping` request → `pong`, p99 / max ms', answered(result.request)),
    row('event-loop delay max, ms (any of its processes)', ms(result.loopMaxMs ?? NaN)),
    row('subscribers closed by the server', count(result.closedByServer)),
    row('time to open and subscribe the connections / of the write-out, s', `${format(result.phaseSeconds.connectAndSubscribe, 1)} / ${format(result.phaseSeconds.writeOut, 1)}`),
    row('handshakes that failed and were tried again', retriedText(result.handshakesRetried)),
  ];
  const note = `The probe process's own timer lag reached ${ms(result.probeTickLagMaxMs)} ms: latencies up to that may be the probe's, not the server's. An answer still missing 2 s after the write-out counts with its age then.`;
  return `${lines.join('\n')}\n\n${note}`;
}
