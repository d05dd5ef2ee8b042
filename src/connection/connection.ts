/**
 * Per-connection state, kept in our own object rather than patched onto `ws`.
 *
 * Most connections sit idle most of the time, so a connection holds only what an idle one
 * needs: what it shares with the others is one object (ConnectionContext), and its rate
 * limiter, request queue, channel set and `data` are made on first use. It listens to its
 * socket itself (SwitchboardSocket.listen), without a closure per event.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { WebSocket, type RawData } from 'ws';
import { CloseCode, CloseReason } from '../codes.js';
import type { NodeStats } from '../metrics/stats.js';
import { FrameBatch, type BacklogLimit } from '../transport/frame-batch.js';
import type { FlushScheduler } from '../transport/flush-scheduler.js';
import { PreparedFrame } from '../transport/prepared-frame.js';
import type { SocketListener, SwitchboardSocket } from '../transport/switchboard-socket.js';
import type { StreamPosition } from '../history/history.js';
import type { ChannelName, ConnectionId, UserId } from '../types.js';
import type { Identity } from '../auth/tokens.js';
import type { ConnectionInfo } from './connection-info.js';
import { RateLimiter, UNLIMITED } from './rate-limiter.js';
import { RequestQueue, type QueueOwner, type Task } from './request-queue.js';
import type { Wire } from './wire.js';

export interface ConnectionLimits {
  maxMessagesPerMinute: number;
  maxBufferedBytes: number;
}

/**
 * What a connection tells the layer that owns it (the hub): one object for all of its
 * connections, each call naming the connection, so that no connection needs closures of its own.
 */
export interface ConnectionEvents {
  /** The outbound backlog passed maxBufferedBytes. */
  slowConsumer(connection: Connection): void;
  /** The connection started closing; it must receive and count for nothing more. */
  closing(connection: Connection): void;
  /** A data frame arrived. */
  frame(connection: Connection, data: RawData, isBinary: boolean): void;
  /** `ws` reported an error on the socket (it closes the socket itself). */
  error(connection: Connection, error: Error & { code?: string }): void;
  /** The socket has closed. */
  closed(connection: Connection, code: number, reason: Buffer): void;
}

/** What every connection of a hub shares: one object, rather than the same fields in each connection. */
export interface ConnectionContext {
  readonly limits: ConnectionLimits;
  readonly logger: Logger;
  readonly stats: NodeStats;
  readonly flushScheduler: FlushScheduler;
  readonly events: ConnectionEvents;
}

/** The protocol a connection speaks: its wire format, and what it hears of the connection. */
export interface ConnectionProtocol {
  /** The protocol's wire format. */
  readonly wire: Wire;
  /** A data frame arrived (a throw closes that connection with 1011, nothing else). */
  frame(connection: Connection, data: RawData, isBinary: boolean): void;
  /** The connection has closed; it is already out of every channel. */
  closed(connection: Connection, close: { code: number; reason: string }): void;
}

/** How long a closing connection may take to answer our close frame before it is cut. */
export const CLOSE_GRACE_MS = 2000;

/** The roles of a connection without any (anonymous, or a token without roles): one array for all. */
const NO_ROLES: readonly string[] = Object.freeze([]);

/** A live message kept back while the connection's subscription replays the history. */
export interface HeldFrame {
  readonly position: StreamPosition | null;
  readonly frame: PreparedFrame;
}

export class Connection implements ConnectionInfo, BacklogLimit, SocketListener, QueueOwner {
  userId: UserId | null = null;
  role: string | null = null;
  roles: readonly string[] = NO_ROLES;
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
  readonly wire: Wire;
  private heldBytes = 0;
  /** Made on first use, as are the three below. */
  private channelSet: Set<ChannelName> | null = null;
  private appData: Record<string, unknown> | null = null;
  private limiter: RateLimiter | null = null;
  private queue: RequestQueue | null = null;

  /** Frames on their way to the socket; after each batch it checks that the client keeps up. */
  private readonly output: FrameBatch;

  constructor(
    readonly id: ConnectionId,
    readonly socket: SwitchboardSocket,
    readonly ip: string,
    readonly request: { readonly url: string; readonly headers: IncomingHttpHeaders },
    private readonly context: ConnectionContext,
    /** The protocol it speaks, told of its frames and of its close. */
    readonly protocol: ConnectionProtocol,
  ) {
    this.wire = protocol.wire;
    this.lastSeen = Date.now();
    this.output = new FrameBatch(socket, context.flushScheduler, this);
  }

  /** The channels it is in (the set is made on first use). */
  get channels(): Set<ChannelName> {
    return (this.channelSet ??= new Set());
  }

  /** A copy of its channels, to leave them one by one (made without a set of its own when it has none). */
  channelList(): ChannelName[] {
    return this.channelSet === null ? [] : [...this.channelSet];
  }

  /** Free-form state for the application (made on first use). */
  get data(): Record<string, unknown> {
    return (this.appData ??= {});
  }

  /** Its rate limit (made on its first frame; without a limit, one shared limiter that accepts everything). */
  get rateLimiter(): RateLimiter {
    if (this.limiter !== null) return this.limiter;
    const limit = this.context.limits.maxMessagesPerMinute;
    if (limit === 0) return UNLIMITED;
    return (this.limiter = new RateLimiter(limit));
  }

  /** Takes on the identity of a verified token (at the handshake or by the `auth` action). */
  authenticate(identity: Identity): void {
    this.userId = identity.userId;
    this.role = identity.role;
    this.roles = identity.roles.length === 0 ? NO_ROLES : identity.roles;
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

  /**
   * Sends a reply: written before other sockets' channel messages queued in this turn
   * (flush-scheduler.ts), unless `afterMessages` (a publish's ack, which follows the
   * deliveries to this node's subscribers).
   */
  send(frame: object, afterMessages = false): void {
    if (!this.isOpen) return;
    if ((frame as { type?: unknown }).type === 'error') this.context.stats.errorSent(String((frame as { code?: unknown }).code));
    this.push(new PreparedFrame(JSON.stringify(frame)), !afterMessages);
  }

  sendText(text: string): void {
    if (!this.isOpen) return;
    // Through the same per-turn batch as channel messages, so that frames keep their order.
    this.push(new PreparedFrame(text), true);
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
    if (this.heldBytes > this.maxBufferedBytes) this.context.events.slowConsumer(this);
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

  /** A `reply` is what the client asked for: written before other sockets' channel messages (flush-scheduler.ts). */
  private push(frame: PreparedFrame, reply = false): void {
    if (!this.output.push(frame, reply)) return;
    const stats = this.context.stats;
    stats.framesSent++;
    stats.bytesSent += frame.wire.length;
  }

  /** BacklogLimit: the most bytes its frames may wait for the client, queued here or unsent below. */
  get maxBufferedBytes(): number {
    return this.context.limits.maxBufferedBytes;
  }

  /** BacklogLimit: the outbound backlog passed maxBufferedBytes. */
  backlogOverflowed(): void {
    this.context.events.slowConsumer(this);
  }

  // ---- SocketListener: what its socket emits, told to the hub -------------------------

  socketMessage(data: RawData, isBinary: boolean): void {
    this.context.events.frame(this, data, isBinary);
  }

  /** A ping or a pong arrived. */
  socketAlive(): void {
    this.lastSeen = Date.now();
  }

  socketError(error: Error & { code?: string }): void {
    this.context.events.error(this, error);
  }

  socketClosed(code: number, reason: Buffer): void {
    this.context.events.closed(this, code, reason);
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
      this.context.logger.debug({ err: error, connection: this.id }, 'close failed; terminating');
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
    this.queue?.clear();
    try {
      this.context.events.closing(this);
    } catch (error) {
      this.context.logger.error({ err: error, connection: this.id }, 'cleaning up a closing connection failed');
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
   * on `subscribe` finishes before the `message` sent right after it is handled; a
   * `pipelined` one (a publish) may start while the replies of the ones before it are in
   * flight (request-queue.ts). Synchronous tasks run at once. Nothing is queued once the
   * connection is closing.
   */
  enqueue(task: Task, pipelined = false): void {
    if (this.closeCode !== null) return;
    if (this.queue !== null) {
      this.queue.enqueue(task, pipelined);
      return;
    }
    const result = task();
    if (result !== undefined) (this.queue = new RequestQueue(this)).track(result);
  }

  /** Resolves once no request of this connection is running, waiting or has its reply in flight. */
  idle(): Promise<void> {
    return this.queue === null ? Promise.resolve() : this.queue.idle();
  }

  /** QueueOwner: too many requests wait. */
  pauseReading(): void {
    this.socket.pause();
  }

  /** QueueOwner. */
  resumeReading(): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.resume();
  }

  /** QueueOwner. */
  taskFailed(error: unknown): void {
    this.context.logger.error({ err: error, connection: this.id }, 'request task failed');
  }

  /** QueueOwner: idle again, the queue goes until a request next goes async. */
  queueIdle(queue: RequestQueue): void {
    if (this.queue === queue) this.queue = null;
  }
}
