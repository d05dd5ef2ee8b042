/**
 * The server over time, from its own GET /metrics (prom-client's default metrics beside
 * Switchboard's): resident memory, heap, external memory, connections, CPU, and event-loop
 * delay. prom-client resets its event-loop histogram at every scrape, so each sample's
 * delay figures cover the interval since the previous one; the interval in which the soak
 * forced a garbage collection is marked and left out of the delay figures (the collection
 * is the soak's doing, not the server's). prom-client's monitor (monitorEventLoopDelay) ticks
 * every 10 ms and records the time between ticks, so the delay is that time less the 10 ms.
 */
import { forceGc } from './inspector.js';
import { monotonicMs } from './tracker.js';

export interface Sample {
  /** Seconds since the soak started. */
  readonly at: number;
  readonly phase: string;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly connections: number;
  readonly channels: number;
  /** Event-loop delay over the interval, in seconds, beyond the monitor's tick (null when the interval had no measurement). */
  readonly lagMax: number | null;
  readonly lagP99: number | null;
  /** Server CPU over the interval, in cores (1 = one core busy). */
  readonly cpu: number | null;
  readonly deliveries: number;
  /** This reading follows a forced full collection (and its interval's delay includes it). */
  readonly forcedGc: boolean;
  /** The server's closes so far by close code, and its refused handshakes by reason. */
  readonly closesByCode: Record<string, number>;
  readonly refusals: Record<string, number>;
}

const SCRAPE_TIMEOUT_MS = 10_000;
/** prom-client's default resolution of monitorEventLoopDelay, in seconds. */
const MONITOR_TICK_S = 0.01;

/** Prometheus' text format, the series without labels: name → value. */
export function parsePrometheus(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.includes('{')) continue;
    const [name, value] = line.split(' ');
    if (name !== undefined && value !== undefined) values.set(name, Number(value));
  }
  return values;
}

/** One labelled counter of Prometheus' text format: label value → value. */
export function labelledSeries(text: string, name: string, label: string): Record<string, number> {
  const series: Record<string, number> = {};
  const pattern = new RegExp(`^${name}\\{[^}]*${label}="([^"]*)"[^}]*\\} (\\S+)$`, 'gm');
  for (const [, value, count] of text.matchAll(pattern)) if (value !== undefined) series[value] = Number(count);
  return series;
}

function finiteOrNull(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}

/** A delay figure of the monitor, less its tick; null when the interval had no tick. */
function delay(value: number | undefined): number | null {
  const seconds = finiteOrNull(value);
  return seconds === null || seconds === 0 ? null : Math.max(0, seconds - MONITOR_TICK_S);
}

export class Sampler {
  readonly samples: Sample[] = [];
  /** Scrapes that failed (server too busy to answer in time, or gone). */
  failures = 0;
  phase = 'start';
  private timer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private lastCpu: { at: number; seconds: number } | null = null;

  constructor(
    private readonly port: number,
    private readonly inspectorPort: number,
    private readonly startedAt: number,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.serialized(() => this.scrape(false).catch(() => this.failures++)), intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Closes the current interval, forces a full collection, and reads the server right after it. */
  measureAfterGc(): Promise<Sample> {
    return this.serialized(async () => {
      await this.scrape(false).catch(() => this.failures++);
      await forceGc(this.inspectorPort);
      return this.scrape(true);
    });
  }

  /** One reading now, outside the schedule. */
  sampleNow(): Promise<Sample> {
    return this.serialized(() => this.scrape(false));
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async scrape(forcedGc: boolean): Promise<Sample> {
    const response = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
    const text = await response.text();
    const metrics = parsePrometheus(text);
    const read = (name: string): number => metrics.get(name) ?? Number.NaN;
    const now = monotonicMs();
    const cpuSeconds = read('process_cpu_seconds_total');
    const cpu = this.lastCpu === null ? null : (cpuSeconds - this.lastCpu.seconds) / ((now - this.lastCpu.at) / 1000);
    this.lastCpu = { at: now, seconds: cpuSeconds };
    const sample: Sample = {
      at: Math.round((now - this.startedAt) / 100) / 10,
      phase: this.phase,
      rss: read('process_resident_memory_bytes'),
      heapUsed: read('nodejs_heap_size_used_bytes'),
      heapTotal: read('nodejs_heap_size_total_bytes'),
      external: read('nodejs_external_memory_bytes'),
      connections: read('switchboard_connections'),
      channels: read('switchboard_channels'),
      lagMax: delay(metrics.get('nodejs_eventloop_lag_max_seconds')),
      lagP99: metrics.get('nodejs_eventloop_lag_max_seconds') === 0 ? null : delay(metrics.get('nodejs_eventloop_lag_p99_seconds')),
      cpu: finiteOrNull(cpu ?? undefined),
      deliveries: read('switchboard_deliveries_total'),
      forcedGc,
      closesByCode: labelledSeries(text, 'switchboard_closes_total', 'code'),
      refusals: labelledSeries(text, 'switchboard_handshake_refusals_total', 'reason'),
    };
    this.samples.push(sample);
    return sample;
  }
}
