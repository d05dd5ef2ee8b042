/**
 * Per-connection state, kept in our own object rather than patched onto `ws`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { CloseCode, CloseReason } from '../protocol/codes.js';
import { writePreparedFrame, type PreparedFrame } from '../transport/prepared-frame.js';
import type { ChannelName, ConnectionId, UserId } from '../types.js';
import { RateLimiter } from './rate-limiter.js';

/** What applications see of a connection in hooks and custom actions. */
export interface ConnectionInfo {
  readonly id: ConnectionId;
  /** Remote address of the client socket. */
  readonly ip: string;
  readonly userId: UserId | null;
  readonly role: string | null;
  readonly authenticated: boolean;
  readonly channels: ReadonlySet<ChannelName>;
  /** The handshake request's URL and headers. */
  readonly request: { readonly url: string; readonly headers: IncomingHttpHeaders };
  /** Free-form state for the application. */
  readonly data: Record<string, unknown>;
  /** Sends one JSON frame to this client. */
  send(frame: object): void;
  /** Closes the connection (default 1000). */
  close(code?: number, reason?: string): void;
}

export interface ConnectionLimits {
  maxMessagesPerMinute: number;
  maxBufferedBytes: number;
}

/** What a connection tells the layer that owns it. */
export interface ConnectionEvents {
  /** The outbound backlog passed maxBufferedBytes. */
  slowConsumer(connection: Connection): void;
  /** The server started closing this connection; it must receive nothing more. */
  closing(connection: Connection): void;
}

/** How long a closing connection may take to answer our close frame before it is cut. */
export const CLOSE_GRACE_MS = 2000;

const MAX_PENDING_TASKS = 1024;

type Task = () => void | Promise<void>;

export class Connection implements ConnectionInfo {
  readonly channels = new Set<ChannelName>();
  readonly data: Record<string, unknown> = {};
  readonly rateLimiter: RateLimiter;
  userId: UserId | null = null;
  role: string | null = null;
  authenticated = false;
  /** Last time anything (frames, pongs) arrived, in ms. */
  lastSeen: number;
  /** The close code we chose, when the server closed the connection. */
  closeCode: number | null = null;
  /** When set, the time (ms) after which a connection that has not finished closing is cut. */
  closeDeadline: number | null = null;

  private busy = false;
  private readonly pending: Task[] = [];

  constructor(
    readonly id: ConnectionId,
    readonly socket: WebSocket,
    readonly ip: string,
    readonly request: { readonly url: string; readonly headers: IncomingHttpHeaders },
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
    private readonly events: ConnectionEvents,
  ) {
    this.rateLimiter = new RateLimiter(limits.maxMessagesPerMinute);
    this.lastSeen = Date.now();
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN && this.closeCode === null;
  }

  /** The user id as recipients lists compare it. */
  get userKey(): string | null {
    return this.userId === null ? null : String(this.userId);
  }

  send(frame: object): void {
    this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): void {
    if (!this.isOpen) return;
    this.socket.send(text);
    this.checkBacklog();
  }

  /** Writes a frame built once for many connections. */
  sendPrepared(frame: PreparedFrame): void {
    if (this.closeCode !== null) return;
    if (writePreparedFrame(this.socket, frame)) this.checkBacklog();
  }

  /**
   * Closes with `code`. The peer gets `graceMs` to complete the closing handshake;
   * after that the handler's sweep cuts the socket, so dead peers do not linger.
   */
  close(code: number = CloseCode.NORMAL, reason?: string, graceMs: number = CLOSE_GRACE_MS): void {
    if (this.closeCode !== null || this.socket.readyState >= WebSocket.CLOSING) return;
    this.closeCode = code;
    this.closeDeadline = Date.now() + graceMs;
    this.events.closing(this);
    const text = reason ?? (CloseReason as Record<number, string | undefined>)[code] ?? '';
    try {
      this.socket.close(code, text);
    } catch (error) {
      this.logger.debug({ err: error, connection: this.id }, 'close failed; terminating');
      this.socket.terminate();
    }
  }

  /** Cuts the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.terminate();
  }

  /**
   * Runs this connection's requests one at a time, in arrival order, so an async hook
   * on `subscribe` finishes before the `message` sent right after it is handled.
   * Synchronous tasks run at once; the backlog is bounded.
   */
  enqueue(task: Task): void {
    if (this.busy) {
      if (this.pending.length >= MAX_PENDING_TASKS) {
        this.close(CloseCode.FLOODING, 'too many requests pending');
        return;
      }
      this.pending.push(task);
      return;
    }
    this.execute(task);
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
      if (task === undefined) return;
      this.execute(task);
    }
  }

  private checkBacklog(): void {
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) this.events.slowConsumer(this);
  }
}
