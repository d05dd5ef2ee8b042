/**
 * Per-connection state, kept in our own object rather than patched onto `ws`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { CloseCode, CloseReason } from '../codes.js';
import type { NodeStats } from '../metrics/stats.js';
import { FrameBatch } from '../transport/frame-batch.js';
import type { FlushScheduler } from '../transport/flush-scheduler.js';
import { PreparedFrame } from '../transport/prepared-frame.js';
import type { SwitchboardSocket } from '../transport/switchboard-socket.js';
import type { StreamPosition } from '../history/history.js';
import type { ChannelName, ConnectionId, UserId } from '../types.js';
import type { Identity } from '../auth/tokens.js';
import type { ConnectionInfo } from './connection-info.js';
import { RateLimiter } from './rate-limiter.js';
import type { Wire } from './wire.js';


export interface ConnectionLimits {
  maxMessagesPerMinute: number;
  maxBufferedBytes: number;
}

/** What a connection tells the layer that owns it. */
export interface ConnectionEvents {
  /** The outbound backlog passed maxBufferedBytes. */
  slowConsumer(connection: Connection): void;
  /** The connection started closing; it must receive and count for nothing more. */
  closing(connection: Connection): void;
}

/** How long a closing connection may take to answer our close frame before it is cut. */
export const CLOSE_GRACE_MS = 2000;

/**
 * Requests waiting behind a slow (async) one. Past this many the socket stops being read,
 * so TCP pushes back on the client instead of memory growing here.
 */
const PAUSE_AT_PENDING = 32;

type Task = () => void | Promise<void>;

/** A live message kept back while the connection's subscription replays the history. */
export interface HeldFrame {
  readonly position: StreamPosition | null;
  readonly frame: PreparedFrame;
}

export class Connection implements ConnectionInfo {
  readonly channels = new Set<ChannelName>();
  readonly data: Record<string, unknown> = {};
  readonly rateLimiter: RateLimiter;
  userId: UserId | null = null;
  role: string | null = null;
  roles: string[] = [];
  authenticated = false;
  tokenExpiresAt: number | null = null;
  /** Last time anything (frames, pongs) arrived, in ms. */
  lastSeen: number;
  /** JSON pings sent and not yet answered; only that many JSON pongs go uncounted by the rate limit. */
  unansweredPings = 0;
  /** The close code, once the connection started closing (ours, or the one ws chose). */
  closeCode: number | null = null;
  /** When set, the time (ms) after which a connection that has not finished closing is cut. */
  closeDeadline: number | null = null;
  /**
   * Channels whose live messages are kept back while a subscribe replays what the client
   * missed (null when none: the fan-out loop checks only that).
   */
  holding: Map<ChannelName, HeldFrame[]> | null = null;
  /** What this connection tells the other members of a channel about itself (JSON text), by channel; made on first use. */
  memberInfo: Map<ChannelName, string> | null = null;
  /** How deliveries are rendered for this connection: its protocol's wire format. */
  wire: Wire;
  private heldBytes = 0;

  /** Frames on their way to the socket; after each batch it checks that the client keeps up. */
  private readonly output: FrameBatch;
  private busy = false;
  private pending: Task[] = [];
  private paused = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly id: ConnectionId,
    readonly socket: SwitchboardSocket,
    readonly ip: string,
    readonly request: { readonly url: string; readonly headers: IncomingHttpHeaders },
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
    private readonly events: ConnectionEvents,
    private readonly stats: NodeStats,
    flushScheduler: FlushScheduler,
    wire: Wire,
  ) {
    this.wire = wire;
    this.rateLimiter = new RateLimiter(limits.maxMessagesPerMinute);
    this.lastSeen = Date.now();
    this.output = new FrameBatch(socket, flushScheduler, { maxBytes: limits.maxBufferedBytes, onOverflow: () => this.events.slowConsumer(this) });
  }

  /** Takes on the identity of a verified token (at the handshake or by the `auth` action). */
  authenticate(identity: Identity): void {
    this.userId = identity.userId;
    this.role = identity.role;
    this.roles = identity.roles;
    this.authenticated = true;
    this.tokenExpiresAt = identity.expiresAt;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN && this.closeCode === null;
  }

  /** The user id as recipients lists compare it. */
  get userKey(): string | null {
    return this.userId === null ? null : String(this.userId);
  }

  send(frame: object): void {
    if (!this.isOpen) return;
    if ((frame as { type?: unknown }).type === 'error') this.stats.errorSent(String((frame as { code?: unknown }).code));
    this.push(new PreparedFrame(JSON.stringify(frame)));
  }

  sendText(text: string): void {
    if (!this.isOpen) return;
    // Through the same per-turn batch as channel messages, so that frames keep their order.
    this.push(new PreparedFrame(text));
  }

  /** Queues a frame built once for many connections. */
  sendPrepared(frame: PreparedFrame): void {
    if (this.closeCode !== null) return;
    this.push(frame);
  }

  /** Keeps live messages on `channel` back until release(): a subscribe that replays history. */
  hold(channel: ChannelName): void {
    (this.holding ??= new Map()).set(channel, []);
  }

  /**
   * Keeps a delivered frame back while `channel` is held; false when it is not. What is
   * held counts against maxBufferedBytes, as the outbound backlog does.
   */
  holdFrame(channel: ChannelName, position: StreamPosition | null, frame: PreparedFrame): boolean {
    const held = this.holding?.get(channel);
    if (held === undefined) return false;
    held.push({ position, frame });
    this.heldBytes += frame.wire.length;
    if (this.heldBytes > this.limits.maxBufferedBytes) this.events.slowConsumer(this);
    return true;
  }

  /** How many frames are held on `channel` now. */
  heldCount(channel: ChannelName): number {
    return this.holding?.get(channel)?.length ?? 0;
  }

  /** Stops holding `channel`; returns what was held, in delivery order. */
  release(channel: ChannelName): HeldFrame[] {
    const held = this.holding?.get(channel);
    if (held === undefined) return [];
    this.holding?.delete(channel);
    if (this.holding?.size === 0) this.holding = null;
    for (const { frame } of held) this.heldBytes -= frame.wire.length;
    return held;
  }

  private push(frame: PreparedFrame): void {
    if (!this.output.push(frame)) return;
    this.stats.framesSent++;
    this.stats.bytesSent += frame.wire.length;
  }

  /**
   * Closes with `code`. The peer gets `graceMs` to complete the closing handshake;
   * after that the handler's sweep cuts the socket, so dead peers do not linger.
   */
  close(code: number = CloseCode.NORMAL, reason?: string, graceMs: number = CLOSE_GRACE_MS): void {
    if (this.closeCode !== null || this.socket.readyState >= WebSocket.CLOSING) return;
    this.markClosing(code, graceMs);
    const text = reason ?? (CloseReason as Record<number, string | undefined>)[code] ?? '';
    try {
      // The replies queued in this turn go out before the close frame, not after it (or never).
      this.output.flush();
      this.socket.close(code, text);
    } catch (error) {
      this.logger.debug({ err: error, connection: this.id }, 'close failed; terminating');
      this.socket.terminate();
    }
  }

  /**
   * Records that the connection is closing (also when `ws` closes it itself, e.g. 1009):
   * it leaves its channels at once, its queued requests are dropped, and it is cut if it
   * has not finished closing within `graceMs`.
   */
  markClosing(code: number, graceMs: number = CLOSE_GRACE_MS): void {
    if (this.closeCode !== null) return;
    this.closeCode = code;
    this.closeDeadline = Date.now() + graceMs;
    this.pending = [];
    try {
      this.events.closing(this);
    } catch (error) {
      this.logger.error({ err: error, connection: this.id }, 'cleaning up a closing connection failed');
    }
  }

  /** Drops the frames not yet written: a slow consumer gets its close frame, not its backlog. */
  dropUnsentFrames(): void {
    this.holding = null;
    this.heldBytes = 0;
    this.output.discard();
  }

  /** Cuts the socket at once, without a closing handshake. */
  terminate(): void {
    this.output.discard();
    this.socket.terminate();
  }

  /**
   * Runs this connection's requests one at a time, in arrival order, so an async hook
   * on `subscribe` finishes before the `message` sent right after it is handled.
   * Synchronous tasks run at once. Nothing is queued once the connection is closing.
   */
  enqueue(task: Task): void {
    if (this.closeCode !== null) return;
    if (!this.busy) {
      this.execute(task);
      return;
    }
    this.pending.push(task);
    if (!this.paused && this.pending.length >= PAUSE_AT_PENDING) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** Resolves once no request of this connection is running or waiting. */
  idle(): Promise<void> {
    if (!this.busy && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private execute(task: Task): void {
    const result = task();
    if (result === undefined) return;
    this.busy = true;
    result.then(
      () => this.next(),
      (error: unknown) => {
        this.logger.error({ err: error, connection: this.id }, 'request task failed');
        this.next();
      },
    );
  }

  /** Runs pending tasks until one goes async (it calls back here when it settles). */
  private next(): void {
    this.busy = false;
    while (!this.busy) {
      const task = this.pending.shift();
      if (task === undefined) break;
      this.execute(task);
    }
    if (this.paused && this.pending.length < PAUSE_AT_PENDING / 2) {
      this.paused = false;
      if (this.socket.readyState === WebSocket.OPEN) this.socket.resume();
    }
    if (!this.busy && this.pending.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }


}
