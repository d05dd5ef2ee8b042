/**
 * The short form of `npm run chaos` (what CI runs), one topology per test: real Redis
 * (single with AOF, Sentinel, Cluster), two real nodes from dist/, publishers and
 * subscribers on both, while Redis or a Redis master and then a node are SIGKILLed and
 * started again. A channel with history loses, duplicates and reorders nothing, and every
 * node is ready again on its own. Needs `npm run build` first (npm test does it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ChaosReport } from '../../scripts/chaos/report.js';
import { CLI_PATH, cliEnv, tempDir } from '../helpers/cli.js';
import { redisAvailable } from '../helpers/redis-topology-test.js';

const MAIN = fileURLToPath(new URL('../../scripts/chaos/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A whole short run of one topology, its Redis coming up included: generous on a busy machine. */
const RUN_MS = 170_000;

async function chaos(t: TestContext, topology: string): Promise<{ code: number | null; report: ChaosReport; output: string }> {
  const dir = tempDir(t);
  const json = join(dir, 'chaos.json');
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--topology', topology, '--short', '--json', json, '--logs', join(dir, 'logs')], {
    cwd: ROOT,
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.ok(existsSync(json), `the run wrote no JSON (exit ${code}):\n${output}`);
  return { code, report: JSON.parse(readFileSync(json, 'utf8')) as ChaosReport, output };
}

// The three at once: one after the other they would take most of the runner's two minutes per file.
describe('chaos', { concurrency: true }, () => {
  for (const topology of ['single', 'sentinel', 'cluster']) {
    test(`chaos, short form, ${topology}: nothing lost, duplicated or reordered with history; every node ready again`, { timeout: RUN_MS }, async (t) => {
      if (!redisAvailable(t)) return;
      assert.ok(existsSync(CLI_PATH), 'dist/cli/main.js is missing: run npm run build first');
      const { code, report, output } = await chaos(t, topology);
      assert.deepEqual(report.errors, [], output);
      const [result] = report.topologies;
      assert.ok(result !== undefined, output);
      assert.equal(result.topology, topology);
      assert.deepEqual(result.failures, [], output);
      // One Redis fault and one node kill, each recovered from.
      assert.equal(result.phases.length, 2, output);
      for (const phase of result.phases) {
        assert.notEqual(phase.readyAfterMs, null, `${phase.name}: a node was not ready again\n${output}`);
        assert.notEqual(phase.clientsBackAfterMs, null, `${phase.name}: a client was not subscribed again\n${output}`);
      }
      const history = result.totals.find((row) => row.kind === 'history');
      assert.ok(history !== undefined);
      assert.ok(history.sent > 0 && history.expected > 0, `no traffic on the history channels:\n${output}`);
      assert.equal(history.lost, 0, output);
      assert.equal(history.duplicated, 0, output);
      assert.equal(history.reordered, 0, output);
      const live = result.totals.find((row) => row.kind === 'live');
      assert.ok(live !== undefined && live.sent > 0 && live.expected > 0, `no traffic on the live channels:\n${output}`);
      assert.equal(report.ok, true, output);
      assert.equal(code, 0, output);
    });
  }
});
