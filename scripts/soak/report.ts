/**
 * The soak's output: a Markdown table (ready for RELIABILITY.md), the verdict with its
 * reasons and the growth rule in words, and the whole result as JSON with `--json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HEAP_GROWTH_FLOOR, HEAP_GROWTH_RATIO, RSS_GROWTH_FLOOR, RSS_GROWTH_RATIO, type Growth, type SoakResult } from './verdict.js';

const count = (value: number): string => value.toLocaleString('en-US');
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const signedMb = (bytes: number): string => `${bytes >= 0 ? '+' : '−'}${mb(Math.abs(bytes))}`;
const ms = (value: number | null): string => (value === null ? '—' : `${value.toFixed(1)} ms`);
const bound = (value: number | null): string => (value === null ? '—' : value === Infinity ? '> 10 s' : `≤ ${value} ms`);

function growthCell(figure: Growth): string {
  return `${mb(figure.baseline)} → ${mb(figure.final)} (${signedMb(figure.growth)}; limit ${signedMb(figure.limit)})`;
}

/** Mean of the samples' CPU over the traffic phases, in cores. */
function meanCpu(result: SoakResult): string {
  const values = result.samples.filter((sample) => (sample.phase === 'warm-up' || sample.phase === 'steady') && sample.cpu !== null).map((sample) => sample.cpu ?? 0);
  if (values.length === 0) return '—';
  return `${((values.reduce((sum, value) => sum + value, 0) / values.length) * 100).toFixed(0)}% of a core`;
}

export function formatReport(result: SoakResult): string {
  const { options, phases, accounting, subscribers, publishersCounters, publishes, memory, eventLoop } = result;
  const unexpected = subscribers.unexpectedCloses + publishersCounters.unexpectedCloses;
  const broker = options.redis ? 'Redis broker' : 'embedded broker';
  const rows: Array<[string, string]> = [
    ['connections held', `${count(result.heldAtEnd)} of ${count(options.connections)} (+${options.publishers} publishers), over ${options.processes} client processes`],
    ['ramp-up', `${phases.rampSeconds.toFixed(1)} s at ≤ ${options.rampRate}/s`],
    ['churned (closed normally, replaced)', `${count(subscribers.churned)} (${options.churn}% per 10 s)`],
    ['connections that failed to open', count(subscribers.connectFailures + publishersCounters.connectFailures)],
    ['messages published / acknowledged', `${count(publishes.sent)} / ${count(publishes.acked)}${publishes.refused + publishes.unanswered > 0 ? ` (${publishes.refused} refused, ${publishes.unanswered} unanswered)` : ''}`],
    ['deliveries due / received', `${count(accounting.expected)} / ${count(accounting.delivered)}`],
    ['lost', count(accounting.lost)],
    ['duplicated', count(accounting.duplicates)],
    ['reordered', count(accounting.reordered)],
    ['unexpected closes', unexpected === 0 ? '0' : `${unexpected} ${JSON.stringify(subscribers.unexpectedClosesByCode)}`],
    ['heartbeats (JSON pings answered)', count(subscribers.pingsAnswered + publishersCounters.pingsAnswered)],
    ['delivery latency p50 / p99', `${bound(result.latencyMs.p50)} / ${bound(result.latencyMs.p99)}`],
    ['time to open (to the subscribe ack) p50 / p99 / max', `${bound(result.openMs.p50)} / ${bound(result.openMs.p99)} / ${bound(result.openMs.max)}`],
    ['time to close a churned connection (close handshake) p50 / p99 / max', `${bound(result.closeMs.p50)} / ${bound(result.closeMs.p99)} / ${bound(result.closeMs.max)}`],
    ['server heap used after forced GC (warm-up end → end)', growthCell(memory.heap)],
    ['server RSS after forced GC (warm-up end → end)', growthCell(memory.rss)],
    ['heap slope, second half (uncollected readings)', memory.heapSlopePerMinute === null ? '—' : `${signedMb(memory.heapSlopePerMinute)}/min`],
    ['event-loop delay with traffic: max / p99 (worst 5 s) / p99 (median 5 s)', `${ms(eventLoop.maxMs)} / ${ms(eventLoop.p99WorstMs)} / ${ms(eventLoop.p99MedianMs)}`],
    ['event-loop delay max: ramp-up / closing every connection at once', `${ms(eventLoop.rampMaxMs)} / ${ms(eventLoop.closingMaxMs)}`],
    ['server CPU (mean, traffic phases)', meanCpu(result)],
    ['server connections after every client closed', count(result.afterClose.connections)],
    ['server closes by code', JSON.stringify(result.afterClose.closesByCode)],
    ['server exit on SIGTERM', result.server.exit.signal ?? `code ${result.server.exit.code}`],
  ];
  if (result.redis !== null) {
    rows.push(['Redis used memory (warm-up end → end)', `${mb(result.redis.usedMemoryBaseline)} → ${mb(result.redis.usedMemoryFinal)}`]);
    rows.push(['Redis keys after every client closed', count(result.redis.keysAfterClose)]);
  }
  const lines = [
    `Switchboard soak: ${count(options.connections)} connections, ${options.minutes} min of traffic (warm-up ${phases.warmupSeconds} s, steady ${phases.steadySeconds} s, quiet ${phases.quietSeconds} s), ` +
      `${options.publishRate} msg/s on ${options.channels} channels from ${options.publishers} publishers, heartbeat ${options.heartbeat} s, JWT auth, ${broker}`,
    '',
    '| figure | value |',
    '|---|---|',
    ...rows.map(([name, value]) => `| ${name} | ${value} |`),
    '',
    `Growth rule: the server's live heap, read right after a forced full GC at the end of the warm-up and again at the end (after a quiet period, same connections held), ` +
      `may grow by at most ${HEAP_GROWTH_RATIO * 100}% or ${mb(HEAP_GROWTH_FLOOR)}, whichever is more; resident memory by at most ${RSS_GROWTH_RATIO * 100}% or ${mb(RSS_GROWTH_FLOOR)}.`,
    ...(memory.heapGrowthPerChurnedConnection === null ? [] : [`Heap growth per churned connection: ${memory.heapGrowthPerChurnedConnection.toFixed(0)} bytes; per 1,000 deliveries: ${(memory.heapGrowthPerThousandDeliveries ?? 0).toFixed(0)} bytes (noise, unless the run is long).`]),
    'Event-loop delay: prom-client\'s figures less its 10 ms tick, per 5 s interval; the intervals of the forced collections are left out.',
    ...result.warnings.map((warning) => `warning: ${warning}`),
  ];
  const slow = [...subscribers.slow, ...publishersCounters.slow];
  if (slow.length > 0) lines.push(`slow opens and closes (first ${Math.min(slow.length, 10)}):`, ...slow.slice(0, 10).map((line) => `  ${line}`));
  if (accounting.lossSamples.length > 0) lines.push(`first losses: ${JSON.stringify(accounting.lossSamples.slice(0, 5))}`);
  const closes = [...subscribers.unexpectedCloseSamples, ...publishersCounters.unexpectedCloseSamples];
  if (closes.length > 0) lines.push(`first unexpected closes: ${JSON.stringify(closes.slice(0, 5))}`);
  if (result.server.logProblems.first.length > 0) lines.push(`server log (${result.server.logPath}):`, ...result.server.logProblems.first.map((line) => `  ${line}`));
  lines.push('', result.passed ? 'RESULT: PASS' : `RESULT: FAIL\n${result.failures.map((failure) => `  - ${failure}`).join('\n')}`);
  return lines.join('\n');
}

export function writeJson(path: string, result: SoakResult): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
}
