// `npm run bench` (and `npm run bench -- --quick`): drives Switchboard, Socket.IO, a
// hand-written `ws` loop and a frame-once `ws` server, each as its own process, with the
// same client processes over loopback, and reports the figures side by side from one run.
// The history scenario (Switchboard's fan-out with history off and on): history.mjs; the
// Pusher scenario (its fan-out to native and to Pusher-protocol subscribers): pusher.mjs.
//
// Flags: --quick (fewer messages and runs); --servers=a,b (only those servers: switchboard,
// socketio, ws-loop, frame-once; cross-node, history and pusher need switchboard);
// --only=a,b (only those scenarios: fanout, latency, idle, handshakes, cross-node, history,
// pusher — e.g. `--only=pusher`). Results go to bench/results/{quick,full}-latest.json,
// partial ones too (`only` in the file says which scenarios ran).
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { historyScenario, historyTable } from './history.mjs';
import { format } from './lib/format.mjs';
import { cpuSeconds, freePort, rssBytes, sleep, waitForPort } from './lib/processes.mjs';
import { pusherScenario, pusherTable } from './pusher.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const quick = process.argv.includes('--quick');
const listFlag = (name) => process.argv.find((argument) => argument.startsWith(`--${name}=`))?.slice(name.length + 3).split(',');
const only = listFlag('servers');
const scenarios = listFlag('only');
const SCENARIOS = ['fanout', 'latency', 'idle', 'handshakes', 'cross-node', 'history', 'pusher'];
const unknown = scenarios?.filter((name) => !SCENARIOS.includes(name)) ?? [];
if (unknown.length > 0) throw new Error(`--only: no scenario ${unknown.join(', ')} (there are ${SCENARIOS.join(', ')})`);
const runs = (scenario) => scenarios === undefined || scenarios.includes(scenario);
const SECRET = 'benchmark-secret-0123456789abcdef0123456789abcdef';
const CHANNEL = 'bench';

const SERVERS = ['switchboard', 'socketio', 'ws-loop', 'frame-once'].filter((kind) => only === undefined || only.includes(kind));
// history: Switchboard's fan-out with history off and on, interleaved `rounds` times each
// (the order alternating), on one node and on two nodes through Redis; medians reported.
// pusher: the same fan-out to native and to Pusher-protocol subscribers, interleaved likewise.
const PLAN = quick
  ? {
      fanout: [{ subscribers: 1000, messages: 400 }, { subscribers: 10000, messages: 20 }],
      latency: { subscribers: 1000, rate: 50, seconds: 3 },
      idle: 10000,
      handshakeSeconds: 2,
      history: { subscribers: 1000, messages: 1000, rounds: 3 },
      pusher: { subscribers: 1000, messages: 1000, rounds: 3 },
    }
  : {
      fanout: [{ subscribers: 1000, messages: 4000 }, { subscribers: 10000, messages: 300 }],
      latency: { subscribers: 1000, rate: 50, seconds: 15 },
      idle: 10000,
      handshakeSeconds: 10,
      history: { subscribers: 1000, messages: 4000, rounds: 5 },
      pusher: { subscribers: 1000, messages: 4000, rounds: 3 },
    };

async function startServer(kind, extraEnv = {}) {
  const port = await freePort();
  const child =
    kind === 'switchboard'
      ? spawn(process.execPath, ['--', join(root, 'dist/cli/main.js'), 'start'], {
          stdio: ['ignore', 'ignore', 'inherit'],
          env: {
            ...process.env,
            WS_HOST: '127.0.0.1',
            WS_PORT: String(port),
            WS_MAX_MESSAGES_PER_MINUTE: '0',
            WS_MAX_BUFFERED_BYTES: String(64 * 1024 * 1024),
            WS_MAX_CHANNELS_PER_CONNECTION: '10',
            WS_LOG_LEVEL: 'error',
            TOKEN_SECRET: SECRET,
            ...extraEnv,
          },
        })
      : spawn(process.execPath, kind === 'socketio' ? [join(here, 'servers/socketio.mjs'), String(port), SECRET] : [join(here, 'servers/ws-servers.mjs'), kind, String(port), SECRET], {
          stdio: ['ignore', 'ignore', 'inherit'],
        });
  // A server that exits at start (a bad setting) fails the scenario at once.
  let onExit;
  const exited = new Promise((_, reject) => {
    onExit = (code) => reject(new Error(`${kind} exited with code ${code} before listening`));
    child.once('exit', onExit);
  });
  try {
    await Promise.race([waitForPort(port), exited]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    child.off('exit', onExit);
  }
  return {
    kind,
    port,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
}

function forkClient(script, args) {
  const child = fork(join(here, 'clients', script), args.map(String), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`${script} exited with code ${code}`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        if (message.error) reject(new Error(message.error));
        else resolve(message);
      });
    });
  return {
    child,
    next,
    /** Ends the process even when it no longer answers (a failed run). */
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    async ask(command) {
      const reply = next();
      child.send(command);
      return reply;
    },
    exit() {
      if (child.connected) child.send({ cmd: 'exit' });
    },
  };
}

async function subscriberProcesses(server, total, channel, sampleEvery) {
  const processes = total >= 5000 ? 2 : 1;
  const groups = Array.from({ length: processes }, (_, index) =>
    forkClient('subscribers.mjs', [server.kind, server.port, Math.round(total / processes), channel, sampleEvery, `127.0.1.${index + 1}`]),
  );
  try {
    await Promise.all(groups.map((group) => group.next()));
  } catch (error) {
    for (const group of groups) group.kill();
    throw error;
  }
  return groups;
}

async function countDeliveries(groups) {
  const replies = await Promise.all(groups.map((group) => group.ask({ cmd: 'count' })));
  const sampled = { decoded: 0, withOffset: 0, outOfSequence: 0 };
  for (const reply of replies) for (const key of Object.keys(sampled)) sampled[key] += reply.sampled?.[key] ?? 0;
  return { deliveries: replies.reduce((sum, reply) => sum + reply.deliveries, 0), latencies: replies.flatMap((reply) => reply.latencies), sampled };
}

async function waitForDeliveries(groups, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let counted = { deliveries: 0, latencies: [], sampled: null };
  const latencies = [];
  while (Date.now() < deadline) {
    counted = await countDeliveries(groups);
    latencies.push(...counted.latencies);
    if (counted.deliveries >= expected) break;
    await sleep(20);
  }
  return { deliveries: counted.deliveries, latencies, sampled: counted.sampled };
}

/**
 * A burst of `messages` from one publisher connected to `publishTo`, to `subscribers`
 * connections on `subscribeTo`; CPU seconds measured for each of `pids` over the burst.
 * The client processes are ended however the run ends.
 */
async function burst({ publishTo, subscribeTo, pids, subscribers, messages, sampleEvery = 0 }) {
  const clients = [];
  try {
    clients.push(...(await subscriberProcesses(subscribeTo, subscribers, CHANNEL, sampleEvery)));
    const groups = [...clients];
    const publisher = forkClient('publisher.mjs', [publishTo.kind, publishTo.port, CHANNEL]);
    clients.push(publisher);
    await publisher.next();
    const expected = subscribers * messages;
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
    return { deliveries, expected, seconds, cpu, sampled };
  } finally {
    for (const client of clients) client.exit();
    await sleep(100);
    for (const client of clients) client.kill();
  }
}

/** One burst on a fresh `kind` server; `subscriberKind`: the subscribers' raw-client protocol, when not the server's own (`pusher`). */
async function fanout(kind, { subscribers, messages }, { env = {}, sampleEvery = 0, subscriberKind = kind } = {}) {
  const server = await startServer(kind, env);
  try {
    const subscribeTo = { ...server, kind: subscriberKind };
    const { deliveries, expected, seconds, cpu, sampled } = await burst({ publishTo: server, subscribeTo, pids: [server.pid], subscribers, messages, sampleEvery });
    return {
      deliveriesPerSecond: deliveries / seconds,
      complete: deliveries >= expected,
      cpuMicrosPerDelivery: (cpu[0] * 1e6) / Math.max(1, deliveries),
      ...(sampleEvery > 0 && { sampled }),
    };
  } finally {
    await server.stop();
  }
}

/** A redis-server on a free port, without persistence; null when none is installed. */
async function startRedis() {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitForPort(port);
  return {
    port,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
}

/**
 * Fan-out across two Switchboard nodes through Redis: the publisher on node A, every
 * subscriber on node B, so each message crosses Redis once and is framed once on B.
 */
async function crossNode({ subscribers, messages }, { env: extraEnv = {}, sampleEvery = 0 } = {}) {
  const redis = await startRedis();
  if (redis === null) return null;
  const env = { REDIS_ENABLED: 'true', REDIS_PORT: String(redis.port), ...extraEnv };
  const nodes = [];
  try {
    nodes.push(await startServer('switchboard', env));
    nodes.push(await startServer('switchboard', env));
    const [a, b] = nodes;
    const { deliveries, expected, seconds, cpu, sampled } = await burst({ publishTo: a, subscribeTo: b, pids: [a.pid, b.pid, redis.pid], subscribers, messages, sampleEvery });
    const perDelivery = (used) => (used * 1e6) / Math.max(1, deliveries);
    return {
      deliveriesPerSecond: deliveries / seconds,
      complete: deliveries >= expected,
      cpuMicrosPerDelivery: { publishingNode: perDelivery(cpu[0]), subscribingNode: perDelivery(cpu[1]), redis: perDelivery(cpu[2]) },
      ...(sampleEvery > 0 && { sampled }),
    };
  } finally {
    for (const node of nodes) await node.stop();
    await redis.stop();
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function latency(kind, { subscribers, rate, seconds }) {
  const server = await startServer(kind);
  try {
    const groups = await subscriberProcesses(server, subscribers, CHANNEL, 20);
    const publisher = forkClient('publisher.mjs', [kind, server.port, CHANNEL]);
    await publisher.next();
    await publisher.ask({ cmd: 'rate', rate, seconds });
    const { latencies } = await waitForDeliveries(groups, subscribers * Math.round(rate * seconds), 30_000);
    for (const group of [...groups, publisher]) group.exit();
    const sorted = latencies.sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, samples: sorted.length };
  } finally {
    await server.stop();
  }
}

async function idleMemory(kind, connections) {
  const server = await startServer(kind);
  try {
    await sleep(500);
    const before = rssBytes(server.pid);
    const groups = await subscriberProcesses(server, connections, '-', 0);
    await sleep(2000);
    const after = rssBytes(server.pid);
    for (const group of groups) group.exit();
    return { bytesPerConnection: (after - before) / connections };
  } finally {
    await server.stop();
  }
}

async function handshakes(kind, seconds) {
  const server = await startServer(kind);
  try {
    const token = await new SignJWT({ user_id: 1, role: 'user' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const client = forkClient('handshakes.mjs', [kind, server.port, token, seconds, 32]);
    const { accepted, failed } = await client.next();
    return { perSecond: accepted / seconds, failed };
  } finally {
    await server.stop();
  }
}

const results = {};
const perServer = ['fanout', 'latency', 'idle', 'handshakes'].filter(runs);
for (const kind of perServer.length > 0 ? SERVERS : []) {
  process.stderr.write(`${kind}: `);
  const result = {};
  const step = async (name, measure) => {
    if (!runs(name)) return;
    await measure();
    process.stderr.write('.');
  };
  for (const plan of PLAN.fanout) await step('fanout', async () => (result[`fanout${plan.subscribers}`] = await fanout(kind, plan)));
  await step('latency', async () => (result.latency = await latency(kind, PLAN.latency)));
  await step('idle', async () => (result.idle = await idleMemory(kind, PLAN.idle)));
  await step('handshakes', async () => (result.handshakes = await handshakes(kind, PLAN.handshakeSeconds)));
  process.stderr.write(' done\n');
  results[kind] = result;
}

let crossNodeResult = null;
let historyResult = null;
let pusherResult = null;
const oneNode = (plan, options) => fanout('switchboard', plan, options);
if (SERVERS.includes('switchboard') && runs('cross-node')) {
  process.stderr.write('switchboard, two nodes through Redis: ');
  crossNodeResult = await crossNode(PLAN.fanout[0]);
  process.stderr.write(crossNodeResult === null ? 'skipped (no redis-server)\n' : 'done\n');
}
if (SERVERS.includes('switchboard') && runs('history')) historyResult = await historyScenario(PLAN.history, { oneNode, twoNodes: crossNode });
if (SERVERS.includes('switchboard') && runs('pusher')) pusherResult = await pusherScenario(PLAN.pusher, { oneNode });

const rows = [
  ...(!runs('fanout') ? [] : PLAN.fanout.flatMap(({ subscribers }) => [
    [`fan-out deliveries/s, ${subscribers.toLocaleString('en-US')} subscribers (higher is better)`, (r) => r[`fanout${subscribers}`].deliveriesPerSecond, 0, true, (r) => (r[`fanout${subscribers}`].complete ? '' : ' (incomplete)')],
    [`server CPU µs per delivery, ${subscribers.toLocaleString('en-US')} subscribers (lower is better)`, (r) => r[`fanout${subscribers}`].cpuMicrosPerDelivery, 2, false],
  ])),
  ...(!runs('latency') ? [] : [
    [`latency p50 ms at ${PLAN.latency.rate} msg/s × ${PLAN.latency.subscribers} subscribers`, (r) => r.latency.p50, 2, false],
    [`latency p99 ms`, (r) => r.latency.p99, 2, false],
    [`latency max ms`, (r) => r.latency.max, 2, false],
  ]),
  ...(!runs('idle') ? [] : [[`memory per idle connection, bytes (${PLAN.idle.toLocaleString('en-US')} connections)`, (r) => r.idle.bytesPerConnection, 0, false]]),
  ...(!runs('handshakes') ? [] : [[`JWT handshakes/s`, (r) => r.handshakes.perSecond, 0, true]]),
];
const header = ['scenario', ...SERVERS, ...(results.switchboard && results.socketio ? ['Switchboard ÷ Socket.IO'] : []), ...(results.switchboard && results['frame-once'] ? ['Switchboard ÷ frame-once'] : [])];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const [label, pick, digits, , note] of rows) {
  const cells = SERVERS.map((kind) => `${format(pick(results[kind]), digits)}${note ? note(results[kind]) : ''}`);
  const ratio = (other) => (results.switchboard && results[other] ? [`${format(pick(results.switchboard) / pick(results[other]), 2)}×`] : []);
  lines.push(`| ${[label, ...cells, ...ratio('socketio'), ...ratio('frame-once')].join(' | ')} |`);
}
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
let crossNodeTable = '';
if (crossNodeResult !== null) {
  const single = results.switchboard?.[`fanout${PLAN.fanout[0].subscribers}`]?.deliveriesPerSecond;
  const { deliveriesPerSecond, complete, cpuMicrosPerDelivery: cpu } = crossNodeResult;
  crossNodeTable =
    `\n\n| Switchboard across two nodes through Redis, ${PLAN.fanout[0].subscribers.toLocaleString('en-US')} subscribers on the other node | value |\n|---|---|\n` +
    `| fan-out deliveries/s | ${format(deliveriesPerSecond)}${complete ? '' : ' (incomplete)'}${single === undefined ? '' : ` (${format(deliveriesPerSecond / single, 2)}× one node)`} |\n` +
    `| CPU µs per delivery: publishing node / subscribing node / redis-server | ${format(cpu.publishingNode, 2)} / ${format(cpu.subscribingNode, 2)} / ${format(cpu.redis, 2)} |`;
}
const tables = [rows.length > 0 && Object.keys(results).length > 0 ? lines.join('\n') : '', crossNodeTable, historyResult === null ? '' : historyTable(historyResult), pusherResult === null ? '' : pusherTable(pusherResult)];
const table = [...tables.map((text) => text.trim()).filter((text) => text !== ''), `${quick ? 'Quick run' : 'Full run'} on ${machine}.`].join('\n\n');
console.log(table);
mkdirSync(join(here, 'results'), { recursive: true });
const file = join(here, 'results', `${quick ? 'quick' : 'full'}-latest.json`);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, quick, plan: PLAN, results, crossNode: crossNodeResult, history: historyResult, pusher: pusherResult, only: scenarios ?? null }, null, 2)}\n`);
console.log(`\nJSON results: ${file}`);
