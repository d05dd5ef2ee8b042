/**
 * The soak's CI form (scripts/soak/): 2,000 connections held through a minute of
 * heartbeats, churn and publishing against the built server, run as `npm run soak` runs
 * it, as a real process. It must pass: every message that had to arrive arrived, once and
 * in order, no connection was closed unasked, and the server's live heap did not grow.
 * The test reads the verdict from the soak's JSON; the soak's own rules are in verdict.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { account } from '../../scripts/soak/accounting.js';
import { StreamTracker } from '../../scripts/soak/tracker.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface SoakJson {
  passed: boolean;
  failures: string[];
  heldAtEnd: number;
  accounting: { expected: number; delivered: number; lost: number; duplicates: number; reordered: number };
  subscribers: { churned: number; unexpectedCloses: number; connectFailures: number; pingsAnswered: number };
  publishersCounters: { unexpectedCloses: number };
  publishes: { sent: number; acked: number };
}

/** What a connection on channel 0 subscribed at `subscribedAt` and closed at `closedAt` records after receiving `seqs`. */
function received(seqs: readonly number[], subscribedAt: number, closedAt: number) {
  const tracker = new StreamTracker(0);
  tracker.subscribedAt = subscribedAt;
  for (const seq of seqs) tracker.receive(seq);
  return tracker.record(closedAt);
}

// Messages 1..10 on channel 0, sent at 10, 20, … 100 and each acknowledged 5 later.
const LOG = [{ sentAt: Array.from({ length: 10 }, (_, index) => 10 * (index + 1)), ackedAt: Array.from({ length: 10 }, (_, index) => 10 * (index + 1) + 5) }];

test('the soak counts as lost only what was published while the connection was surely subscribed', () => {
  // Subscribed at 25, asked to close at 80: messages 3 (sent 30) to 7 (acked 75) were due.
  assert.equal(account([received([3, 4, 5, 6, 7], 25, 80)], LOG).lost, 0);
  assert.equal(account([received([2, 3, 4, 5, 6, 7, 8], 25, 80)], LOG).lost, 0, 'messages around the edges may come or not');
  const missed = account([received([3, 4, 6, 7], 25, 80)], LOG);
  assert.equal(missed.lost, 1);
  assert.deepEqual(missed.lossSamples[0]?.missing, [[5, 5]]);
  assert.equal(account([received([4, 5, 6, 7], 25, 80)], LOG).lost, 1, 'the first message due is due too');
  assert.equal(account([received([], 25, 80)], LOG).lost, 5);
  // Messages published after the close was asked for, or never acknowledged, are due to nobody.
  const unacknowledged = [{ sentAt: LOG[0]!.sentAt, ackedAt: LOG[0]!.ackedAt.map((at, index) => (index === 4 ? Number.NaN : at)) }];
  assert.equal(account([received([3, 4, 6, 7], 25, 80)], unacknowledged).lost, 0);
});

test('the soak tells a duplicate from a message out of order', () => {
  const result = account([received([3, 5, 4, 5, 6, 7], 25, 80)], LOG);
  assert.equal(result.lost, 0);
  assert.equal(result.reordered, 1);
  assert.equal(result.duplicates, 1);
});

// About 75 s of run (a minute of traffic, the ramp-up, a quiet period, start and stop), inside
// the 120 s that scripts/run-tests.mjs gives a test file; the limit here is for direct runs.
test('2,000 connections through a minute of heartbeats, churn and publishing: nothing lost, no unexpected close, no growth', { timeout: 115_000 }, async (t) => {
  assert.ok(existsSync(join(ROOT, 'dist/cli/main.js')), 'dist/ is missing: run npm run build first (npm test does)');
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-soak-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const jsonPath = join(dir, 'soak.json');
  const env = { ...process.env };
  // The soak's own processes are not test processes.
  delete env.NODE_TEST_CONTEXT;
  // The runner's open-file limit may be lower than 2,000 connections need: raise the soft
  // limit as npm run soak does, or at least to the hard limit.
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" --import tsx scripts/soak/main.ts "$@"';
  const child = spawn('sh', ['-c', script, process.execPath, '--connections', '2000', '--minutes', '1', '--json', jsonPath], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    // The soak stops its server and client processes itself on SIGTERM.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  // The soak's table, in the test's report.
  for (const line of output.split('\n').filter((text) => text.startsWith('|'))) t.diagnostic(line);

  assert.equal(code, 0, `the soak failed:\n${output.slice(-4000)}`);
  const result = JSON.parse(readFileSync(jsonPath, 'utf8')) as SoakJson;
  assert.deepEqual(result.failures, []);
  assert.equal(result.passed, true);
  assert.equal(result.accounting.lost, 0);
  assert.equal(result.accounting.duplicates, 0);
  assert.equal(result.accounting.reordered, 0);
  assert.equal(result.subscribers.unexpectedCloses + result.publishersCounters.unexpectedCloses, 0);
  assert.equal(result.subscribers.connectFailures, 0);
  assert.equal(result.heldAtEnd, 2000);
  // The checks above mean something only if the run did what it says.
  assert.ok(result.publishes.acked > 0 && result.publishes.acked === result.publishes.sent);
  assert.ok(result.accounting.expected > 0 && result.accounting.delivered >= result.accounting.expected);
  assert.ok(result.subscribers.churned > 0, 'no connection was churned');
  assert.ok(result.subscribers.pingsAnswered > 0, 'no heartbeat was answered');
});
