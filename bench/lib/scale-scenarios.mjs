// The 'scale' (50,000 connections) and 'huge-channel' (100,000 subscribers on one channel)
// scenarios live in bench/scale.mjs, written separately; run.mjs reaches them only through
// here. The module is imported when one of them runs, so the bench works without it. Its
// interface: scaleScenario(ctx, plan) and hugeChannelScenario(ctx, plan) resolve with a result
// (what the JSON keeps); scaleTable(result) and hugeChannelTable(result) give its Markdown
// table. ctx = { startServer, forkClient, sleep, quick, root, SECRET, CHANNEL }.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { forkClient } from './client-processes.mjs';
import { sleep } from './processes.mjs';
import { startServer } from './server-processes.mjs';
import { BENCH_DIR, CHANNEL, ROOT, SECRET } from './settings.mjs';

/** Per scenario name (in run.mjs's SCENARIOS and PLAN): its functions in scale.mjs and its title. */
export const SCALE_SCENARIOS = {
  scale: {
    run: 'scaleScenario',
    table: 'scaleTable',
    title: 'Switchboard with 50,000 connections',
  },
  'huge-channel': {
    run: 'hugeChannelScenario',
    table: 'hugeChannelTable',
    title: 'Switchboard with 100,000 subscribers on one channel',
  },
};

/**
 * Runs scenario `name` of scale.mjs with `plan`. Resolves with { result, table }: the
 * result (or { error } when the scenario failed, so that the other scenarios' figures are
 * still printed and kept) and its table; null when bench/scale.mjs does not exist.
 */
export async function runScaleScenario(name, plan, quick) {
  const scenario = SCALE_SCENARIOS[name];
  const failed = (error) => ({ result: { error }, table: `| ${scenario.title} | value |\n|---|---|\n| result | failed: ${error} |` });
  process.stderr.write(`switchboard, ${name}: `);
  if (!existsSync(join(BENCH_DIR, 'scale.mjs'))) {
    process.stderr.write('skipped (no bench/scale.mjs yet)\n');
    return null;
  }
  try {
    const module = await import('../scale.mjs');
    const ctx = { startServer, forkClient, sleep, quick, root: ROOT, SECRET, CHANNEL };
    const result = await module[scenario.run](ctx, plan);
    process.stderr.write(' done\n');
    return { result, table: module[scenario.table](result) };
  } catch (error) {
    const message = String(error?.message ?? error);
    process.stderr.write(` failed: ${message}\n`);
    return failed(message);
  }
}
