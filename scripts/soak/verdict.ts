/**
 * Pass or fail, and why. The run fails on any lost, duplicated or reordered message, any
 * close the soak did not ask for, any connection that could not be opened, any publish not
 * acknowledged, any error frame, a server that does not end with every connection gone and
 * exit 0 on SIGTERM, an error in its log, or memory growth:
 *
 * Growth compares two readings of the server taken right after a forced full garbage
 * collection (inspector.ts), with the same connections held: at the end of the warm-up
 * (connections held, churn and publishing running for a while, so that caches, pools and
 * JIT code have reached their working size) and at the end, after the traffic stopped and a
 * quiet period. Forced collections leave only what is alive, so the two heaps compare
 * closely: the live heap may not grow by more than HEAP_GROWTH_RATIO of the first reading
 * AND more than HEAP_GROWTH_FLOOR (the floor keeps a small heap's few megabytes of code and
 * inline caches from failing a short run). Resident memory, which also holds socket buffers
 * and allocator slack that the collector does not return, gets a looser limit of the same
 * form. A slow leak shorter runs cannot see is what the long run is for: the report gives
 * the growth per churned connection and per thousand deliveries too.
 */
import type { Accounting } from './accounting.js';
import type { SoakOptions } from './args.js';
import type { ClientCounters } from './ipc.js';
import { quantileBound } from './latency.js';
import type { Sample } from './sampler.js';

export const HEAP_GROWTH_RATIO = 0.1;
export const HEAP_GROWTH_FLOOR = 8 * 1024 * 1024;
export const RSS_GROWTH_RATIO = 0.2;
export const RSS_GROWTH_FLOOR = 32 * 1024 * 1024;

export interface SoakInputs {
  readonly options: SoakOptions;
  readonly phases: { readonly rampSeconds: number; readonly warmupSeconds: number; readonly steadySeconds: number; readonly quietSeconds: number };
  readonly server: { readonly settings: Readonly<Record<string, string>>; readonly exit: { code: number | null; signal: string | null }; readonly logPath: string; readonly logProblems: { warnings: number; errors: number; first: string[] } };
  readonly subscribers: ClientCounters;
  readonly publishersCounters: ClientCounters;
  readonly publishes: { readonly sent: number; readonly acked: number; readonly refused: number; readonly unanswered: number };
  readonly accounting: Accounting;
  /** Subscriber connections held when the final reading was taken, by the clients' count. */
  readonly heldAtEnd: number;
  readonly baseline: Sample;
  readonly final: Sample;
  /** The server read once every client had closed (its connection count should be 0). */
  readonly afterClose: Sample;
  readonly samples: readonly Sample[];
  readonly scrapeFailures: number;
  readonly redis: { readonly usedMemoryBaseline: number; readonly usedMemoryFinal: number; readonly keysAfterClose: number } | null;
}

export interface Growth {
  readonly baseline: number;
  readonly final: number;
  readonly growth: number;
  readonly limit: number;
  readonly exceeded: boolean;
}

export interface SoakResult extends SoakInputs {
  readonly passed: boolean;
  readonly failures: readonly string[];
  readonly warnings: readonly string[];
  readonly memory: {
    readonly heap: Growth;
    readonly rss: Growth;
    readonly heapGrowthPerChurnedConnection: number | null;
    readonly heapGrowthPerThousandDeliveries: number | null;
    /** Slope of the (uncollected) heap readings over the second half of the run, bytes per minute: for information. */
    readonly heapSlopePerMinute: number | null;
  };
  /**
   * Event-loop delay over the traffic (warm-up, steady, quiet: the intervals of forced
   * collections left out), and the worst of the ramp-up and of the final mass close apart.
   */
  readonly eventLoop: {
    readonly maxMs: number | null;
    readonly p99WorstMs: number | null;
    readonly p99MedianMs: number | null;
    readonly rampMaxMs: number | null;
    readonly closingMaxMs: number | null;
  };
  /** Bucket bounds (latency.ts) of delivery latency, and of the time to open (to the subscribe ack) and to close a connection. */
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null };
  readonly openMs: { readonly p50: number | null; readonly p99: number | null; readonly max: number | null };
  readonly closeMs: { readonly p50: number | null; readonly p99: number | null; readonly max: number | null };
}

function growth(baseline: number, final: number, ratio: number, floor: number): Growth {
  const limit = Math.max(floor, baseline * ratio);
  return { baseline, final, growth: final - baseline, limit, exceeded: final - baseline > limit };
}

/** Least-squares slope of y over x (per unit of x), or null with fewer than 3 points. */
function slope(points: ReadonlyArray<readonly [number, number]>): number | null {
  if (points.length < 3) return null;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
  let numerator = 0;
  let denominator = 0;
  for (const [x, y] of points) {
    numerator += (x - meanX) * (y - meanY);
    denominator += (x - meanX) ** 2;
  }
  return denominator === 0 ? null : numerator / denominator;
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? null;
}

function sum(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const total = { ...a };
  for (const [key, count] of Object.entries(b)) total[key] = (total[key] ?? 0) + count;
  return total;
}

function quantiles(histogram: readonly number[]): { p50: number | null; p99: number | null; max: number | null } {
  return { p50: quantileBound(histogram, 0.5), p99: quantileBound(histogram, 0.99), max: quantileBound(histogram, 1) };
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

export function judge(inputs: SoakInputs): SoakResult {
  const { accounting, subscribers, publishersCounters, publishes, options, baseline, final } = inputs;
  const heap = growth(baseline.heapUsed, final.heapUsed, HEAP_GROWTH_RATIO, HEAP_GROWTH_FLOOR);
  const rss = growth(baseline.rss, final.rss, RSS_GROWTH_RATIO, RSS_GROWTH_FLOOR);
  const failures: string[] = [];
  const warnings: string[] = [];
  const fail = (condition: boolean, text: string): void => void (condition && failures.push(text));
  const unexpected = subscribers.unexpectedCloses + publishersCounters.unexpectedCloses;
  const errorFrames = sum(subscribers.errorFrames, publishersCounters.errorFrames);
  const expectedServerConnections = inputs.heldAtEnd + options.publishers;

  fail(accounting.lost > 0, `${accounting.lost} messages lost (on ${accounting.connectionsWithLoss} connections)`);
  fail(accounting.duplicates > 0, `${accounting.duplicates} messages delivered twice`);
  fail(accounting.reordered > 0, `${accounting.reordered} messages out of order`);
  fail(unexpected > 0, `${unexpected} unexpected closes (${JSON.stringify(sum(subscribers.unexpectedClosesByCode, publishersCounters.unexpectedClosesByCode))} by code)`);
  fail(subscribers.connectFailures + publishersCounters.connectFailures > 0, `${subscribers.connectFailures + publishersCounters.connectFailures} connections failed to open: ${subscribers.connectFailureReasons.slice(0, 3).join('; ')}`);
  fail(publishes.refused + publishes.unanswered > 0, `${publishes.refused} publishes refused and ${publishes.unanswered} never answered`);
  fail(Object.keys(errorFrames).length > 0, `error frames received: ${JSON.stringify(errorFrames)}`);
  fail(inputs.heldAtEnd !== options.connections, `${inputs.heldAtEnd} of ${options.connections} connections held at the end`);
  fail(final.connections !== expectedServerConnections, `the server counted ${final.connections} connections at the end where ${expectedServerConnections} were open`);
  fail(inputs.afterClose.connections !== 0, `the server still counted ${inputs.afterClose.connections} connections after every client had closed`);
  fail(inputs.server.exit.code !== 0, `the server exited with ${inputs.server.exit.signal ?? `code ${inputs.server.exit.code}`} on SIGTERM`);
  fail(inputs.server.logProblems.errors > 0, `${inputs.server.logProblems.errors} error lines in the server log (${inputs.server.logPath})`);
  fail(heap.exceeded, `heap grew ${mb(heap.growth)} (${mb(heap.baseline)} → ${mb(heap.final)} after forced GC), over the limit of ${mb(heap.limit)}`);
  fail(rss.exceeded, `resident memory grew ${mb(rss.growth)} (${mb(rss.baseline)} → ${mb(rss.final)}), over the limit of ${mb(rss.limit)}`);
  if (subscribers.serverSilences + publishersCounters.serverSilences > 0) {
    warnings.push(`${subscribers.serverSilences + publishersCounters.serverSilences} times a connection heard nothing for 2 heartbeat intervals (the client SDK would have reconnected)`);
  }
  if (inputs.server.logProblems.warnings > 0) warnings.push(`${inputs.server.logProblems.warnings} warning lines in the server log (${inputs.server.logPath})`);
  const otherCloses = Object.entries(inputs.afterClose.closesByCode).filter(([code, closes]) => code !== '1000' && closes > 0);
  if (otherCloses.length > 0) warnings.push(`the server counted closes other than 1000: ${JSON.stringify(Object.fromEntries(otherCloses))}`);
  const refusals = Object.entries(inputs.afterClose.refusals).filter(([, refused]) => refused > 0);
  if (refusals.length > 0) warnings.push(`the server refused handshakes: ${JSON.stringify(Object.fromEntries(refusals))}`);
  if (inputs.scrapeFailures > 0) warnings.push(`${inputs.scrapeFailures} scrapes of /metrics failed`);

  const traffic = new Set(['warm-up', 'steady', 'quiet']);
  const delaySamples = inputs.samples.filter((sample) => !sample.forcedGc && traffic.has(sample.phase));
  const maxes = delaySamples.map((sample) => sample.lagMax).filter((value): value is number => value !== null);
  const worstOf = (phase: string): number | null => {
    const values = inputs.samples.filter((sample) => sample.phase === phase && !sample.forcedGc && sample.lagMax !== null).map((sample) => sample.lagMax ?? 0);
    return values.length === 0 ? null : Math.max(...values) * 1000;
  };
  const p99s = delaySamples.map((sample) => sample.lagP99).filter((value): value is number => value !== null);
  const steady = inputs.samples.filter((sample) => sample.phase === 'steady' && !sample.forcedGc);
  const secondHalf = steady.slice(Math.floor(steady.length / 2));
  // Over less than two minutes the collector's sawtooth is all a slope would show.
  const spanMinutes = ((secondHalf[secondHalf.length - 1]?.at ?? 0) - (secondHalf[0]?.at ?? 0)) / 60;
  const heapSlope = spanMinutes >= 2 ? slope(secondHalf.map((sample) => [sample.at / 60, sample.heapUsed] as const)) : null;
  const p99Median = median(p99s);
  const totalLatency = subscribers.latency.map((count, index) => count + (publishersCounters.latency[index] ?? 0));
  return {
    ...inputs,
    passed: failures.length === 0,
    failures,
    warnings,
    memory: {
      heap,
      rss,
      heapGrowthPerChurnedConnection: subscribers.churned > 0 ? heap.growth / subscribers.churned : null,
      heapGrowthPerThousandDeliveries: accounting.delivered > 0 ? (heap.growth * 1000) / accounting.delivered : null,
      heapSlopePerMinute: heapSlope,
    },
    eventLoop: {
      maxMs: maxes.length > 0 ? Math.max(...maxes) * 1000 : null,
      p99WorstMs: p99s.length > 0 ? Math.max(...p99s) * 1000 : null,
      p99MedianMs: p99Median === null ? null : p99Median * 1000,
      rampMaxMs: worstOf('ramp'),
      closingMaxMs: worstOf('closing'),
    },
    latencyMs: { p50: quantileBound(totalLatency, 0.5), p99: quantileBound(totalLatency, 0.99) },
    openMs: quantiles(subscribers.openMs),
    closeMs: quantiles(subscribers.closeMs),
  };
}
