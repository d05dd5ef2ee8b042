/**
 * One topology's chaos run: Redis, the nodes (each behind a balancer), a publisher and two
 * subscribers per node (one straight to its node, one through the balancer) on channels
 * with and without history; steady traffic, then the faults one after the other, each
 * followed by a wait for every node to be ready again and every client to be subscribed
 * again; then a quiet period and the counts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollFor, sleep } from '../../test/helpers/redis-topology.js';
import { analyse, type Analysis } from './analysis.js';
import { Balancer } from './balancer.js';
import { plan } from './faults.js';
import { Ledger, now } from './ledger.js';
import { SwitchboardNode } from './nodes.js';
import type { Topology } from './options.js';
import { startChaosRedis, type ChaosRedis } from './topologies.js';
import { ChaosPublisher, ChaosSubscriber, type ChannelSpec } from './traffic.js';

export interface Timings {
  /** short: one Redis fault (the CI form); long: two. */
  readonly form: 'short' | 'long';
  readonly nodes: number;
  readonly channelsPerKind: number;
  /** Between two publishes of one publisher on one channel. */
  readonly publishEveryMs: number;
  /** Traffic before the first fault and after each recovery. */
  readonly settleMs: number;
  /** How long a killed process stays down. */
  readonly outageMs: number;
  /** Silence after the last publish before counting. */
  readonly quietMs: number;
}

export const SHORT: Timings = { form: 'short', nodes: 2, channelsPerKind: 3, publishEveryMs: 100, settleMs: 2000, outageMs: 2000, quietMs: 2000 };
export const LONG: Timings = { form: 'long', nodes: 3, channelsPerKind: 3, publishEveryMs: 100, settleMs: 15_000, outageMs: 5000, quietMs: 5000 };

/** How long nodes and clients get to come back after a fault before it counts as a failure. */
const RECOVERY_MS = 60_000;

export interface PhaseReport {
  readonly name: string;
  /** From the start of the fault until every node answered /readyz 200; null: not within RECOVERY_MS. */
  readonly readyAfterMs: number | null;
  /** Until every client was subscribed again; null: not within RECOVERY_MS. */
  readonly clientsBackAfterMs: number | null;
}

export interface TopologyResult {
  readonly topology: Topology;
  readonly nodes: number;
  readonly channels: readonly ChannelSpec[];
  readonly phases: readonly PhaseReport[];
  readonly analysis: Analysis;
  readonly events: readonly { at: number; phase: string; what: string }[];
  /** Why this topology's run failed (empty: it passed). */
  readonly failures: string[];
  readonly wireExamples: readonly string[];
}

export async function runTopology(topology: Topology, timings: Timings, logs: string): Promise<TopologyResult> {
  const dir = join(logs, topology);
  mkdirSync(dir, { recursive: true });
  const ledger = new Ledger();
  const failures: string[] = [];
  const phases: PhaseReport[] = [];
  const started = now();
  const note = (what: string): void => {
    ledger.note(what);
    console.error(`[chaos ${topology} ${((now() - started) / 1000).toFixed(1)}s] ${what}`);
  };

  note('starting Redis');
  const redis: ChaosRedis = await startChaosRedis(topology);
  const nodes: SwitchboardNode[] = [];
  const balancers: Balancer[] = [];
  const clients: (ChaosPublisher | ChaosSubscriber)[] = [];
  const background: Promise<unknown>[] = [];
  try {
    const history = await redis.channelNames('history', timings.channelsPerKind);
    const live = await redis.channelNames('live', timings.channelsPerKind);
    const channels: ChannelSpec[] = [...history.map((name) => ({ name, kind: 'history' as const })), ...live.map((name) => ({ name, kind: 'live' as const }))];
    const channelsFile = join(dir, 'channels.json');
    writeFileSync(channelsFile, JSON.stringify(channelRules()));

    for (let index = 0; index < timings.nodes; index++) nodes.push(await SwitchboardNode.create(index, { redisEnv: redis.env, channelsFile, dir }));
    await Promise.all(nodes.map((node) => node.start()));
    if (!(await allReady(nodes))) throw new Error(`the nodes were not ready at the start (logs in ${dir})`);
    note(`${nodes.length} nodes ready`);

    for (const node of nodes) {
      const balancer = new Balancer(node, nodes);
      await balancer.listen();
      balancers.push(balancer);
      clients.push(new ChaosPublisher(`pub${node.index}`, balancer.url, channels, ledger));
      clients.push(new ChaosSubscriber(`sub${node.index}.direct`, node.url, channels, ledger));
      clients.push(new ChaosSubscriber(`sub${node.index}.balanced`, balancer.url, channels, ledger));
    }
    await pollFor(() => clients.every((client) => client.healthy), RECOVERY_MS, 'every client to connect and subscribe');
    note(`${clients.length} clients subscribed`);

    const publishers = clients.filter((client): client is ChaosPublisher => client instanceof ChaosPublisher);
    for (const publisher of publishers) publisher.start(timings.publishEveryMs);
    await sleep(timings.settleMs);

    const faults = plan(redis.faults(timings.form === 'short', history), nodes);
    for (const [index, fault] of faults.entries()) {
      const name = `${index + 1}. ${fault.name}`;
      // A Redis fault waits for the last one's stragglers (an old master rejoining).
      if (!fault.name.startsWith('node')) await Promise.all(background.splice(0));
      ledger.phase = name;
      note(`fault: ${name}`);
      const from = now();
      await fault.run({
        outageMs: timings.outageMs,
        note,
        fail: (what) => {
          note(what);
          failures.push(`${name}: ${what}`);
        },
        background: (work) => background.push(work),
      });
      const ready = await allReady(nodes);
      const readyAfterMs = ready ? Math.round(now() - from) : null;
      if (!ready) {
        const answers = await Promise.all(nodes.map(async (node) => `${node.name}: ${await node.readyz()}`));
        failures.push(`${name}: a node was not ready again within ${RECOVERY_MS / 1000} s (/readyz ${answers.join('; ')})`);
      }
      const back = await pollFor(() => clients.every((client) => client.healthy), RECOVERY_MS, 'clients').then(
        () => true,
        () => false,
      );
      const clientsBackAfterMs = back ? Math.round(now() - from) : null;
      if (!back) failures.push(`${name}: a client was not subscribed again within ${RECOVERY_MS / 1000} s`);
      phases.push({ name, readyAfterMs, clientsBackAfterMs });
      note(`recovered: nodes ready after ${readyAfterMs ?? 'never'} ms, clients back after ${clientsBackAfterMs ?? 'never'} ms`);
      await sleep(timings.settleMs);
    }

    note('stopping the publishers');
    await Promise.all(publishers.map((publisher) => publisher.stop()));
    await pollFor(() => ledger.quietFor() >= timings.quietMs, RECOVERY_MS, 'the deliveries to stop', 100).catch(() => undefined);
    await Promise.all(background.splice(0));
    if (!(await allReady(nodes))) failures.push('a node was not ready at the end');
    if (!clients.every((client) => client.healthy)) failures.push('a client was not subscribed at the end');

    const analysis = analyse(ledger, ['steady', ...phases.map((phase) => phase.name)]);
    for (const row of analysis.rows) {
      if (row.kind !== 'history') continue;
      for (const field of ['lost', 'duplicated', 'reordered'] as const) {
        if (row[field] > 0) failures.push(`${row.phase}: ${row[field]} ${field} on the channels with history`);
      }
    }
    const wireExamples = ledger.wire.slice(0, 10).map((anomaly) => `${anomaly.phase}: ${anomaly.subscriber} ${anomaly.channel} ${anomaly.what}: ${anomaly.detail}`);
    return { topology, nodes: nodes.length, channels, phases, analysis, events: ledger.events, failures, wireExamples };
  } finally {
    for (const client of clients) client.close();
    await Promise.all(balancers.map((balancer) => balancer.close()));
    await Promise.all(nodes.map((node) => node.kill()));
    await Promise.allSettled(background);
    await redis.stopAll();
  }
}

/** History on the history.* channels only; everyone may subscribe and publish everywhere. */
function channelRules(): unknown {
  return {
    rules: [
      { pattern: 'history.**', subscribe: ['*'], publish: ['*'], history: { size: 100_000, ttl: 3600 } },
      { pattern: '**', subscribe: ['*'], publish: ['*'] },
    ],
  };
}

/** Every node answers /readyz 200 within RECOVERY_MS. */
async function allReady(nodes: readonly SwitchboardNode[]): Promise<boolean> {
  const ready = await Promise.all(nodes.map((node) => node.waitReady(RECOVERY_MS)));
  return ready.every(Boolean);
}
