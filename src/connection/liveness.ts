/**
 * Heartbeat, inactivity timeouts (SPEC §3) and token expiry (SPEC §5) with two timers for
 * the whole node, never one per connection: the heartbeat pings everyone, the sweep
 * closes the silent and the expired and cuts connections that did not finish closing.
 */
import { CloseCode } from '../codes.js';
import { PreparedFrame } from '../transport/prepared-frame.js';
import type { Connection } from './connection.js';

const MAX_BANKED_PINGS = 2;

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
    this.heartbeatTimer = null;
    this.sweepTimer = null;
  }

  /** Sends the JSON ping (framed once for everyone) and a WebSocket ping control frame. */
  private heartbeat(): void {
    if (this.connections.size === 0) return;
    let frame: PreparedFrame | null = null;
    for (const connection of this.connections.values()) {
      if (!connection.isOpen) continue;
      if (connection.wire.heartbeat) connection.sendPrepared((frame ??= new PreparedFrame(this.heartbeatFrame())));
      // A client cannot bank free pongs by ignoring pings for a long time.
      connection.unansweredPings = Math.min(connection.unansweredPings + 1, MAX_BANKED_PINGS);
      connection.socket.ping();
    }
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
