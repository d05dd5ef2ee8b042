/**
 * `npm run chaos`: real Redis (single, Sentinel, Cluster) and real Switchboard nodes, with
 * publishers and subscribers on every node, while Redis, a Redis master and a node are
 * SIGKILLed and started again; counts what was lost, duplicated and reordered per channel
 * kind. Progress goes to stderr, the table to stdout. See options.ts for the flags.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { missingRedis } from '../../test/helpers/redis-topology.js';
import { parseOptions, USAGE, UsageError, type ChaosOptions } from './options.js';
import { buildReport, formatReport, type ChaosReport } from './report.js';
import { LONG, runTopology, SHORT, type TopologyResult } from './run.js';

async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const startedAt = new Date();
  const logs = options.logs === null ? mkdtempSync(join(tmpdir(), 'switchboard-chaos-')) : resolve(options.logs);
  mkdirSync(logs, { recursive: true });
  const results: TopologyResult[] = [];
  const errors: { topology: string; error: string }[] = [];
  for (const topology of options.topologies) {
    try {
      results.push(await runTopology(topology, options.short ? SHORT : LONG, logs));
    } catch (error) {
      errors.push({ topology, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  }
  const report = buildReport(options, startedAt, results, errors);
  if (options.logs === null && report.ok) rmSync(logs, { recursive: true, force: true });
  else console.error(`chaos: the nodes' logs are in ${logs}`);
  return report;
}

async function main(): Promise<number> {
  let options: ChaosOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message !== '') console.error(`chaos: ${error.message}`);
    console.error(USAGE);
    return 2;
  }
  const missing = missingRedis();
  if (missing !== null) {
    console.error(`chaos: ${missing}; it needs redis-server and redis-cli`);
    return 1;
  }
  const report = await runChaos(options);
  console.log(formatReport(report));
  if (options.json !== null) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.ok ? 0 : 1;
}

// Interrupted: exit through process.exit, so that the exit hooks kill every Redis and node started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
process.exit(await main());
