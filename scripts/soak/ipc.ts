/**
 * What the main process and the client processes say to each other over the fork's IPC
 * channel, and the figures a client process keeps.
 */
import type { StreamRecord } from './tracker.js';

/** What a client process is started with (in SOAK_CLIENT_CONFIG, as JSON). */
export interface ClientProcessConfig {
  readonly url: string;
  readonly secret: string;
  readonly channels: number;
  readonly heartbeatMs: number;
  /** This process's index and how many there are: it owns global connection indices ≡ index (mod processes). */
  readonly processIndex: number;
  readonly processes: number;
  /** Lifetime of the tokens the connections present, in seconds: longer than the run. */
  readonly tokenTtlSeconds: number;
}

export type MainToClient =
  /** Open this many connections, at most `rate` per second; answered by `opened`. */
  | { readonly type: 'open'; readonly count: number; readonly rate: number }
  /** Close this many held connections normally and open as many new ones (on the same channels). */
  | { readonly type: 'churn'; readonly count: number }
  | { readonly type: 'progress' }
  /** Close every connection normally; answered by `finished`. */
  | { readonly type: 'finish' };

export type ClientToMain =
  | { readonly type: 'opened'; readonly opened: number; readonly failed: number }
  | { readonly type: 'progress'; readonly counters: ClientCounters }
  | { readonly type: 'finished'; readonly counters: ClientCounters; readonly records: readonly StreamRecord[] }
  /** Something that ends the run (EMFILE): one line for the user. */
  | { readonly type: 'fatal'; readonly message: string };

/** A close the soak did not ask for. */
export interface UnexpectedClose {
  readonly code: number;
  readonly reason: string;
  /** Monotonic time of the close (tracker.ts's monotonicMs). */
  readonly at: number;
  readonly user: string;
}

/** The figures of a process holding connections (or of the publishers). */
export interface ClientCounters {
  /** Connections open and subscribed now. */
  held: number;
  /** Connections that reached the subscribed state, in all. */
  opened: number;
  /** Connections the churn closed (normally). */
  churned: number;
  /** Connections that failed before they were subscribed, and the first few reasons. */
  connectFailures: number;
  connectFailureReasons: string[];
  delivered: number;
  duplicates: number;
  reordered: number;
  /** JSON pings answered with a JSON pong (WebSocket pings are answered by ws itself). */
  pingsAnswered: number;
  /**
   * Times a connection heard nothing from the server for twice the heartbeat interval, when
   * the client SDK would take the server for gone and reconnect.
   */
  serverSilences: number;
  /** Error frames received, by code. */
  errorFrames: Record<string, number>;
  unexpectedCloses: number;
  /** The first unexpected closes in detail (the count above has them all). */
  unexpectedCloseSamples: UnexpectedClose[];
  unexpectedClosesByCode: Record<string, number>;
  /** Delivery latency buckets (latency.ts). */
  latency: number[];
  /** Time from starting a connection to its last subscribe ack, and from asking it to close to its close (latency.ts buckets). */
  openMs: number[];
  closeMs: number[];
  /** Opens and closes that took longer than SLOW_MS, the first few, with where the time went. */
  slow: string[];
  /** At the last progress report: connections being opened and being closed, and the age of the oldest of each (ms). */
  opening: number;
  oldestOpeningMs: number;
  closing: number;
  oldestClosingMs: number;
}

/** An open or a close slower than this is described in `slow`. */
export const SLOW_MS = 5000;

/** Unexpected closes and connect failures kept in detail per process; the rest are counted. */
export const SAMPLES_KEPT = 20;
