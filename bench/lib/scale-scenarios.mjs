// The 'scale' (50,000 connections) and 'huge-channel' (100,000 subscribers on one channel)
// scenarios live in bench/scale.mjs, and 'scale-floor' (the scale scenario against frame-once)
// in bench/scale-floor.mjs; run.mjs reaches them only through here. A module is imported
// when one of its scenarios runs. Its interface: a scenario function (ctx, plan) resolves
// with a result (what the JSON keeps); a table function (result) gives its Markdown table.
// ctx = { startServer, forkClient, sleep, quick, root, SECRET, CHANNEL }.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { forkClient } from './client-processes.mjs';
import { sleep } from './processes.mjs';
import { startServer } from './server-processes.mjs';
import { BENCH_DIR, CHANNEL, ROOT, SECRET } from './settings.mjs';

/** Per scenario name (in run.mjs's SCENARIOS and PLAN): its functions, their file (scale.mjs unless `file` says) and its title. */
export const SCALE_SCENARIOS = {
  scale: {
    run: 'scaleScenario',
    table: 'scaleTable',
    title: 'Switchboard with 50,000 connections',
  },
  'scale-floor': {
    run: 'scaleFloorScenario',
    table: 'scaleFloorTable',
    title: 'The scale scenario against frame-once, in one process',
    file: 'scale-floor.mjs',
  },
  'huge-channel': {
    run: 'hugeChannelScenario',
    table: 'hugeChannelTable',
    title: 'Switchboard with 100,000 subscribers on one channel',
  },
};

/**
 * Runs scenario `name` (of scale.mjs, or of its `file`) with `plan`. Resolves with { result, table }: the
 * result (or { error } when the scenario failed, so that the other scenarios' figures are
 * still printed and kept) and its table; null when bench/scale.mjs does not exist.
 */
export async function runScaleScenario(name, plan, quick) {
  const scenario = SCALE_SCENARIOS[name];
  const failed = (error) => ({ result: { error }, table: `| ${scenario.title} | value |\n|---|---|\n| result | failed: ${error} |` });
  process.stderr.write(`switchboard, ${name}: `);
  const file = scenario.file ?? 'scale.mjs';
  if (!existsSync(join(BENCH_DIR, file))) {
    process.stderr.write(`skipped (no bench/${file} yet)\n`);
    return null;
  }
  try {
    const module = await import(`../${file}`);
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
