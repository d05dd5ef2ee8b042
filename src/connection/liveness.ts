/**
 * Heartbeat, inactivity timeouts (SPEC §3) and token expiry (SPEC §5) with two timers for
 * the whole node, never one per connection: the heartbeat pings everyone, the sweep
 * closes the silent and the expired and cuts connections that did not finish closing.
 *
 * A beat goes out in slices of BEAT_SLICE connections, a little apart, so that neither the
 * beat nor the burst of pongs it brings back holds the event loop for long: at 50,000
 * connections, pinging everyone in one go kept other clients waiting for over a second.
 */
import { CloseCode } from '../codes.js';
import { OPCODE_PING, PreparedFrame } from '../transport/prepared-frame.js';
import type { Connection } from './connection.js';

const MAX_BANKED_PINGS = 2;
/** Connections pinged in one slice of a beat. */
export const BEAT_SLICE = 1000;
/** Time between two slices of a beat at most; a beat spreads over half the interval at most. */
const MAX_SLICE_GAP_MS = 50;
/** The WebSocket ping, framed once: it goes out in the same write as the JSON ping. */
const PING = new PreparedFrame('', OPCODE_PING);

export interface LivenessOptions {
  /** Seconds between pings. */
  heartbeatInterval: number;
  /** Seconds of silence before a connection is closed with 4008. */
  connectionTimeout: number;
}

/**
 * The native protocol's heartbeat frame (sent beside a WebSocket ping), built once per beat
 * for every connection whose wire takes it; what is sent before a timeout close is the wire's.
 */
export type HeartbeatFrame = () => string;

export class Liveness {
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** The next slice of the beat under way. */
  private sliceTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly connections: ReadonlyMap<string, Connection>,
    private readonly options: LivenessOptions,
    private readonly heartbeatFrame: HeartbeatFrame,
  ) {}

  start(): void {
    if (this.heartbeatTimer !== null) return;
    const { heartbeatInterval, connectionTimeout } = this.options;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), heartbeatInterval * 1000).unref();
    // Fine enough that a timeout fires within a quarter of the shorter period (at most 1 s late).
    const sweepMs = Math.min(1000, Math.max(50, (Math.min(connectionTimeout, heartbeatInterval) * 1000) / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs).unref();
  }

  stop(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    if (this.sliceTimer !== null) clearTimeout(this.sliceTimer);
    this.heartbeatTimer = null;
    this.sweepTimer = null;
    this.sliceTimer = null;
  }

  /**
   * Sends the JSON ping (framed once for everyone) and a WebSocket ping control frame, a
   * slice of connections at a time. A connection keeps its place in the map, so each is
   * pinged once an interval, at the same point of the beat.
   */
  private heartbeat(): void {
    if (this.connections.size === 0 || this.sliceTimer !== null) return;
    const slices = Math.ceil(this.connections.size / BEAT_SLICE);
    const gapMs = Math.min(MAX_SLICE_GAP_MS, (this.options.heartbeatInterval * 1000) / 2 / slices);
    const remaining = this.connections.values();
    let frame: PreparedFrame | null = null;
    const slice = (): void => {
      this.sliceTimer = null;
      let pinged = 0;
      for (let next = remaining.next(); !next.done; next = remaining.next()) {
        const connection = next.value;
        if (!connection.isOpen) continue;
        if (connection.wire.heartbeat) connection.sendPrepared((frame ??= new PreparedFrame(this.heartbeatFrame())));
        connection.sendPrepared(PING);
        // A client cannot bank free pongs by ignoring pings for a long time.
        connection.unansweredPings = Math.min(connection.unansweredPings + 1, MAX_BANKED_PINGS);
        if (++pinged === BEAT_SLICE) {
          this.sliceTimer = setTimeout(slice, gapMs).unref();
          return;
        }
      }
    };
    slice();
  }

  private sweep(): void {
    const now = Date.now();
    const timeoutMs = this.options.connectionTimeout * 1000;
    for (const connection of this.connections.values()) {
      if (connection.closeDeadline !== null) {
        if (now >= connection.closeDeadline) connection.terminate();
        continue;
      }
      if (!connection.isOpen) continue;
      if (connection.tokenExpiresAt !== null && now >= connection.tokenExpiresAt) {
        // SPEC §5: an expired token closes the connection unless `auth` renewed it first.
        connection.close(CloseCode.TOKEN_EXPIRED);
      } else if (now - connection.lastSeen >= timeoutMs) {
        const { timeout } = connection.wire;
        connection.sendText(timeout.frame);
        connection.close(timeout.code);
      }
    }
  }
}
