/**
 * GET /metrics (SPEC §7): this node's figures in Prometheus' text format, with
 * prom-client. Values are read from NodeStats and the handler when Prometheus scrapes,
 * so the hot path never touches prom-client.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { NodeStats } from './stats.js';

/** What the metrics read from the node besides its counters. */
export interface MetricsSource {
  readonly stats: NodeStats;
  readonly connectionCount: number;
  readonly channelCount: number;
  /** Null when the node is ready (Redis reachable, when enabled, and not shutting down). */
  notReadyReason(): string | null;
  /** Whether the broker reaches the rest of the cluster (always, for a single process). */
  brokerReady(): boolean;
  /** Whether the node uses Redis at all. */
  readonly usesRedis: boolean;
  /** Socket writes by path: straight to the TCP socket (`fast`), or through ws's send() (`fallback`). */
  readonly socketWrites: { readonly fast: number; readonly fallback: number };
}

/** How a gauge sums over worker processes (counters are summed). */
type Aggregator = 'sum' | 'max' | 'min';

/** A counter whose value is the number `read()` gives at scrape time. */
function counterOf(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A labelled counter read from a map of label value → count. */
function labelledCounterOf(registry: Registry, name: string, help: string, label: string, read: () => ReadonlyMap<string, number>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of read()) this.inc({ [label]: value }, count);
    },
  });
}

function gaugeOf(registry: Registry, name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): void {
  new Gauge({
    name,
    help,
    aggregator,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A registry with Switchboard's metrics and Node's own (event-loop lag, memory, GC). */
export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  const { stats } = source;
  gaugeOf(registry, 'switchboard_connections', 'WebSocket connections open on this node', () => source.connectionCount);
  gaugeOf(registry, 'switchboard_channels', 'Channels with at least one subscriber on this node', () => source.channelCount);
  counterOf(registry, 'switchboard_frames_received_total', 'Frames received from clients', () => stats.framesReceived);
  counterOf(registry, 'switchboard_frames_sent_total', 'Frames written to clients (replies, channel messages, pings)', () => stats.framesSent);
  counterOf(registry, 'switchboard_received_bytes_total', 'Bytes of the frames received from clients', () => stats.bytesReceived);
  counterOf(registry, 'switchboard_sent_bytes_total', 'Bytes of the frames written to clients', () => stats.bytesSent);
  counterOf(registry, 'switchboard_messages_published_total', 'Messages published on this node, by clients and by the application', () => stats.messagesPublished);
  counterOf(registry, 'switchboard_deliveries_total', 'Channel messages handed to subscribers on this node (one per subscriber)', () => stats.deliveries);
  counterOf(registry, 'switchboard_rate_limited_total', 'Frames refused with RATE_LIMITED', () => stats.rateLimited);
  labelledCounterOf(registry, 'switchboard_errors_total', 'Error frames sent to clients, by error code', 'code', () => stats.errors);
  labelledCounterOf(registry, 'switchboard_handshake_refusals_total', 'WebSocket handshakes refused, by reason', 'reason', () => stats.refusals);
  // A ws update that broke the fast path would show only as lower throughput; here it shows by name.
  labelledCounterOf(registry, 'switchboard_socket_writes_total', 'Socket writes of queued frames, by path: fast (one writev to the TCP socket) or fallback (ws send() per frame)', 'path', () => {
    const { fast, fallback } = source.socketWrites;
    return new Map([
      ['fast', fast],
      ['fallback', fallback],
    ]);
  });
  labelledCounterOf(registry, 'switchboard_closes_total', 'Connections closed, by close code (unknown codes as "other")', 'code', () => stats.closes);
  gaugeOf(registry, 'switchboard_ready', '1 while the node is ready (/readyz answers 200), else 0', () => (source.notReadyReason() === null ? 1 : 0), 'min');
  if (source.usesRedis) {
    gaugeOf(registry, 'switchboard_redis_up', '1 while Redis is reachable and this node is registered in it, else 0', () => (source.brokerReady() ? 1 : 0), 'min');
  }
  gaugeOf(registry, 'switchboard_uptime_seconds', 'Seconds since this node started', () => (Date.now() - stats.startedAt) / 1000, 'max');
  // nodejs_eventloop_lag_seconds (and its percentiles), heap, GC, file descriptors.
  collectDefaultMetrics({ register: registry });
  return registry;
}
