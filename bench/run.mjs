// `npm run bench` (and `npm run bench -- --quick`): drives Switchboard, Socket.IO, a
// hand-written `ws` loop and a frame-once `ws` server, each as its own process, with the
// same client processes over loopback, and reports the figures side by side from one run.
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const quick = process.argv.includes('--quick');
const only = process.argv.find((argument) => argument.startsWith('--servers='))?.slice('--servers='.length).split(',');
const SECRET = 'benchmark-secret-0123456789abcdef0123456789abcdef';
const CHANNEL = 'bench';

const SERVERS = ['switchboard', 'socketio', 'ws-loop', 'frame-once'].filter((kind) => only === undefined || only.includes(kind));
const PLAN = quick
  ? { fanout: [{ subscribers: 1000, messages: 400 }, { subscribers: 10000, messages: 20 }], latency: { subscribers: 1000, rate: 50, seconds: 3 }, idle: 10000, handshakeSeconds: 2 }
  : { fanout: [{ subscribers: 1000, messages: 4000 }, { subscribers: 10000, messages: 300 }], latency: { subscribers: 1000, rate: 50, seconds: 15 }, idle: 10000, handshakeSeconds: 10 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on port ${port}`);
}

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
  await waitForPort(port);
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

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssBytes(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match[1]) * 1024;
}

function forkClient(script, args) {
  const child = fork(join(here, 'clients', script), args.map(String), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () =>
    new Promise((resolve, reject) => {
      child.once('message', (message) => (message.error ? reject(new Error(message.error)) : resolve(message)));
    });
  return {
    child,
    next,
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
  await Promise.all(groups.map((group) => group.next()));
  return groups;
}

async function countDeliveries(groups) {
  const replies = await Promise.all(groups.map((group) => group.ask({ cmd: 'count' })));
  return { deliveries: replies.reduce((sum, reply) => sum + reply.deliveries, 0), latencies: replies.flatMap((reply) => reply.latencies) };
}

async function waitForDeliveries(groups, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let counted = { deliveries: 0, latencies: [] };
  const latencies = [];
  while (Date.now() < deadline) {
    counted = await countDeliveries(groups);
    latencies.push(...counted.latencies);
    if (counted.deliveries >= expected) break;
    await sleep(20);
  }
  return { deliveries: counted.deliveries, latencies };
}

async function fanout(kind, { subscribers, messages }) {
  const server = await startServer(kind);
  try {
    const groups = await subscriberProcesses(server, subscribers, CHANNEL, 0);
    const publisher = forkClient('publisher.mjs', [kind, server.port, CHANNEL]);
    await publisher.next();
    const expected = subscribers * messages;
    const cpuBefore = cpuSeconds(server.pid);
    const started = performance.now();
    const window = Math.max(2, Math.floor(20000 / subscribers));
    await publisher.ask({ cmd: 'burst', messages, window });
    const { deliveries } = await waitForDeliveries(groups, expected, 120_000);
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(server.pid) - cpuBefore;
    for (const group of [...groups, publisher]) group.exit();
    return { deliveriesPerSecond: deliveries / seconds, complete: deliveries >= expected, cpuMicrosPerDelivery: (cpu * 1e6) / Math.max(1, deliveries) };
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
async function crossNode({ subscribers, messages }) {
  const redis = await startRedis();
  if (redis === null) return null;
  const env = { REDIS_ENABLED: 'true', REDIS_PORT: String(redis.port) };
  const nodes = [];
  try {
    nodes.push(await startServer('switchboard', env), await startServer('switchboard', env));
    const [a, b] = nodes;
    const groups = await subscriberProcesses(b, subscribers, CHANNEL, 0);
    const publisher = forkClient('publisher.mjs', ['switchboard', a.port, CHANNEL]);
    await publisher.next();
    const expected = subscribers * messages;
    const pids = [a.pid, b.pid, redis.pid];
    const cpuBefore = pids.map(cpuSeconds);
    const started = performance.now();
    await publisher.ask({ cmd: 'burst', messages, window: Math.max(2, Math.floor(20000 / subscribers)) });
    const { deliveries } = await waitForDeliveries(groups, expected, 120_000);
    const seconds = (performance.now() - started) / 1000;
    const cpu = pids.map((pid, index) => cpuSeconds(pid) - cpuBefore[index]);
    for (const group of [...groups, publisher]) group.exit();
    return {
      deliveriesPerSecond: deliveries / seconds,
      complete: deliveries >= expected,
      cpuMicrosPerDelivery: { publishingNode: (cpu[0] * 1e6) / deliveries, subscribingNode: (cpu[1] * 1e6) / deliveries, redis: (cpu[2] * 1e6) / deliveries },
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
for (const kind of SERVERS) {
  process.stderr.write(`${kind}: `);
  const result = {};
  for (const plan of PLAN.fanout) {
    result[`fanout${plan.subscribers}`] = await fanout(kind, plan);
    process.stderr.write('.');
  }
  result.latency = await latency(kind, PLAN.latency);
  process.stderr.write('.');
  result.idle = await idleMemory(kind, PLAN.idle);
  process.stderr.write('.');
  result.handshakes = await handshakes(kind, PLAN.handshakeSeconds);
  process.stderr.write(' done\n');
  results[kind] = result;
}

let crossNodeResult = null;
if (SERVERS.includes('switchboard')) {
  process.stderr.write('switchboard, two nodes through Redis: ');
  crossNodeResult = await crossNode(PLAN.fanout[0]);
  process.stderr.write(crossNodeResult === null ? 'skipped (no redis-server)\n' : 'done\n');
}

const format = (value, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—');
const rows = [
  ...PLAN.fanout.flatMap(({ subscribers }) => [
    [`fan-out deliveries/s, ${subscribers.toLocaleString('en-US')} subscribers (higher is better)`, (r) => r[`fanout${subscribers}`].deliveriesPerSecond, 0, true, (r) => (r[`fanout${subscribers}`].complete ? '' : ' (incomplete)')],
    [`server CPU µs per delivery, ${subscribers.toLocaleString('en-US')} subscribers (lower is better)`, (r) => r[`fanout${subscribers}`].cpuMicrosPerDelivery, 2, false],
  ]),
  [`latency p50 ms at ${PLAN.latency.rate} msg/s × ${PLAN.latency.subscribers} subscribers`, (r) => r.latency.p50, 2, false],
  [`latency p99 ms`, (r) => r.latency.p99, 2, false],
  [`latency max ms`, (r) => r.latency.max, 2, false],
  [`memory per idle connection, bytes (${PLAN.idle.toLocaleString('en-US')} connections)`, (r) => r.idle.bytesPerConnection, 0, false],
  [`JWT handshakes/s`, (r) => r.handshakes.perSecond, 0, true],
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
  const single = results.switchboard[`fanout${PLAN.fanout[0].subscribers}`].deliveriesPerSecond;
  const { deliveriesPerSecond, complete, cpuMicrosPerDelivery: cpu } = crossNodeResult;
  crossNodeTable =
    `\n\n| Switchboard across two nodes through Redis, ${PLAN.fanout[0].subscribers.toLocaleString('en-US')} subscribers on the other node | value |\n|---|---|\n` +
    `| fan-out deliveries/s | ${format(deliveriesPerSecond)}${complete ? '' : ' (incomplete)'} (${format(deliveriesPerSecond / single, 2)}× one node) |\n` +
    `| CPU µs per delivery: publishing node / subscribing node / redis-server | ${format(cpu.publishingNode, 2)} / ${format(cpu.subscribingNode, 2)} / ${format(cpu.redis, 2)} |`;
}
const table = `${lines.join('\n')}${crossNodeTable}\n\n${quick ? 'Quick run' : 'Full run'} on ${machine}.`;
console.log(table);
mkdirSync(join(here, 'results'), { recursive: true });
const file = join(here, 'results', `${quick ? 'quick' : 'full'}-latest.json`);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, quick, plan: PLAN, results, crossNode: crossNodeResult }, null, 2)}\n`);
console.log(`\nJSON results: ${file}`);
