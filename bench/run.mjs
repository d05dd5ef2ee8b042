// `npm run bench` (and `npm run bench -- --quick`): drives Switchboard, Socket.IO, a
// hand-written `ws` loop and a frame-once `ws` server, each as its own process, with the
// same client processes over loopback, and reports the figures side by side from one run.
// Every server process runs with lib/loop-monitor.mjs preloaded, and every table gives the
// largest event-loop delay over each measured part ("event loop max ms").
// Switchboard only: the history scenario (fan-out with history off and on): history.mjs; the
// Pusher scenario (fan-out to native and to Pusher-protocol subscribers): pusher.mjs; the
// features scenario (fan-out plain and with every feature on): features.mjs; 'scale' and
// 'huge-channel': scale.mjs, and 'scale-floor' (the scale scenario's shape against frame-once,
// in one process): scale-floor.mjs, both through lib/scale-scenarios.mjs. At the end, a table
// of every event-loop delay over 50 ms with what it was made of (lib/stall-table.mjs).
//
// Flags: --quick (fewer messages and runs); --servers=a,b (only those servers: switchboard,
// socketio, ws-loop, frame-once; cross-node, history, pusher, features, scale, scale-floor and
// huge-channel need switchboard); --only=a,b (only those scenarios: fanout, latency, idle,
// handshakes, cross-node, history, pusher, features, scale, scale-floor, huge-channel — e.g.
// `--only=pusher`). Results go to
// bench/results/{quick,full}-latest.json, partial ones too (`only` in the file says which
// scenarios ran).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { featuresScenario, featuresTable } from './features.mjs';
import { historyScenario, historyTable } from './history.mjs';
import { burst, crossNode, fanout } from './lib/fanout-runs.mjs';
import { overTarget, setScenarioLabel } from './lib/loop-delay.mjs';
import { handshakes, idleMemory, latency } from './lib/per-server-scenarios.mjs';
import { runScaleScenario, SCALE_SCENARIOS } from './lib/scale-scenarios.mjs';
import { startServer } from './lib/server-processes.mjs';
import { crossNodeTable, serverTable } from './lib/server-tables.mjs';
import { BENCH_DIR } from './lib/settings.mjs';
import { stallTable } from './lib/stall-table.mjs';
import { pusherScenario, pusherTable } from './pusher.mjs';

const quick = process.argv.includes('--quick');
const listFlag = (name) => process.argv.find((argument) => argument.startsWith(`--${name}=`))?.slice(name.length + 3).split(',');
const only = listFlag('servers');
const scenarios = listFlag('only');
const SCENARIOS = ['fanout', 'latency', 'idle', 'handshakes', 'cross-node', 'history', 'pusher', 'features', 'scale', 'scale-floor', 'huge-channel'];
const unknown = scenarios?.filter((name) => !SCENARIOS.includes(name)) ?? [];
if (unknown.length > 0) throw new Error(`--only: no scenario ${unknown.join(', ')} (there are ${SCENARIOS.join(', ')})`);
const runs = (scenario) => scenarios === undefined || scenarios.includes(scenario);

const SERVERS = ['switchboard', 'socketio', 'ws-loop', 'frame-once'].filter((kind) => only === undefined || only.includes(kind));
// history: Switchboard's fan-out with history off and on, interleaved `rounds` times each
// (the order alternating), on one node and on two nodes through Redis; medians reported.
// pusher: the same fan-out to native and to Pusher-protocol subscribers, interleaved likewise;
// features: the same fan-out plain and with every feature on, interleaved likewise.
// scale, scale-floor, huge-channel: the plans bench/scale.mjs and bench/scale-floor.mjs are given.
const PLAN = quick
  ? {
      fanout: [{ subscribers: 1000, messages: 400 }, { subscribers: 10000, messages: 20 }],
      latency: { subscribers: 1000, rate: 50, seconds: 3 },
      idle: 10000,
      handshakeSeconds: 2,
      history: { subscribers: 1000, messages: 1000, rounds: 3 },
      pusher: { subscribers: 1000, messages: 1000, rounds: 3 },
      features: { subscribers: 1000, messages: 1000, rounds: 3 },
      scale: { connections: 50000, seconds: 5 },
      'scale-floor': { connections: 15000, seconds: 5 },
      'huge-channel': { subscribers: 100000, messages: 5 },
    }
  : {
      fanout: [{ subscribers: 1000, messages: 4000 }, { subscribers: 10000, messages: 300 }],
      latency: { subscribers: 1000, rate: 50, seconds: 15 },
      idle: 10000,
      handshakeSeconds: 10,
      history: { subscribers: 1000, messages: 4000, rounds: 5 },
      pusher: { subscribers: 1000, messages: 4000, rounds: 3 },
      features: { subscribers: 1000, messages: 4000, rounds: 5 },
      scale: { connections: 50000, seconds: 20 },
      'scale-floor': { connections: 15000, seconds: 10 },
      'huge-channel': { subscribers: 100000, messages: 20 },
    };

const results = {};
const perServer = ['fanout', 'latency', 'idle', 'handshakes'].filter(runs);
for (const kind of perServer.length > 0 ? SERVERS : []) {
  process.stderr.write(`${kind}: `);
  const result = {};
  const step = async (name, measure) => {
    if (!runs(name)) return;
    setScenarioLabel(`${kind}, ${name}`);
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

const switchboard = (scenario) => SERVERS.includes('switchboard') && runs(scenario);
let crossNodeResult = null;
let historyResult = null;
let pusherResult = null;
let featuresResult = null;
const scaleRuns = {};
const oneNode = (plan, options) => fanout('switchboard', plan, options);
if (switchboard('cross-node')) {
  setScenarioLabel('switchboard, two nodes through Redis');
  process.stderr.write('switchboard, two nodes through Redis: ');
  crossNodeResult = await crossNode(PLAN.fanout[0]);
  process.stderr.write(crossNodeResult === null ? 'skipped (no redis-server)\n' : 'done\n');
}
setScenarioLabel('switchboard, history');
if (switchboard('history')) historyResult = await historyScenario(PLAN.history, { oneNode, twoNodes: crossNode });
setScenarioLabel('switchboard, Pusher');
if (switchboard('pusher')) pusherResult = await pusherScenario(PLAN.pusher, { oneNode });
setScenarioLabel('switchboard, every feature on / plain');
if (switchboard('features')) featuresResult = await featuresScenario(PLAN.features, { startServer, burst });
for (const name of Object.keys(SCALE_SCENARIOS)) {
  setScenarioLabel(`switchboard, ${name}`);
  if (switchboard(name)) scaleRuns[name] = await runScaleScenario(name, PLAN[name], quick);
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const single = results.switchboard?.[`fanout${PLAN.fanout[0].subscribers}`]?.deliveriesPerSecond;
const tables = [
  serverTable(results, SERVERS, PLAN, runs),
  crossNodeResult === null ? '' : crossNodeTable(crossNodeResult, PLAN.fanout[0].subscribers, single),
  historyResult === null ? '' : historyTable(historyResult),
  pusherResult === null ? '' : pusherTable(pusherResult),
  featuresResult === null ? '' : featuresTable(featuresResult),
  ...Object.values(scaleRuns).map((run) => run?.table ?? ''),
  stallTable(overTarget),
];
const table = [...tables.map((text) => text.trim()).filter((text) => text !== ''), `${quick ? 'Quick run' : 'Full run'} on ${machine}.`].join('\n\n');
console.log(table);
mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
const file = join(BENCH_DIR, 'results', `${quick ? 'quick' : 'full'}-latest.json`);
const scaleResults = Object.fromEntries(Object.keys(SCALE_SCENARIOS).map((name) => [name, scaleRuns[name]?.result ?? null]));
const saved = { date: new Date().toISOString(), machine, quick, plan: PLAN, results, crossNode: crossNodeResult, history: historyResult, pusher: pusherResult, features: featuresResult, ...scaleResults, loopOverTarget: overTarget, only: scenarios ?? null };
writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
console.log(`\nJSON results: ${file}`);
