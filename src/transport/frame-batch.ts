/**
 * The frames waiting for one socket until the end of the event-loop turn, so that a
 * burst of messages costs the socket one writev instead of one system call per message.
 */
import { WebSocket } from 'ws';
import type { FlushScheduler } from './flush-scheduler.js';
import type { PreparedFrame } from './prepared-frame.js';
import type { SwitchboardSocket } from './switchboard-socket.js';

/** Limits a FrameBatch watches on behalf of its connection. */
export interface BacklogLimit {
  /** Bytes queued here plus bytes `ws` and the kernel have not sent yet. */
  maxBytes: number;
  /** Called when the backlog passes `maxBytes` (the connection closes as a slow consumer). */
  onOverflow: () => void;
}

/**
 * Each connection owns one for its whole life, so queueing allocates nothing but the
 * array slot.
 */
export class FrameBatch {
  private frames: Buffer[] = [];
  private pendingBytes = 0;
  /** Whether the scheduler holds this batch for the end of the turn. */
  private queued = false;

  constructor(
    private readonly socket: SwitchboardSocket,
    private readonly scheduler: FlushScheduler,
    private readonly limit: BacklogLimit | null = null,
  ) {
    socket.flushBeforeClose(this);
  }

  /** Queues a frame; returns false when the socket is not open. */
  push(frame: PreparedFrame): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    this.frames.push(frame.wire);
    this.pendingBytes += frame.wire.length;
    if (!this.queued) {
      this.queued = true;
      this.scheduler.schedule(this);
    }
    // A burst that fills a whole backlog's worth within one turn is written at once rather
    // than held here: memory stays bounded, and the kernel, not this queue, tells whether
    // the client keeps up (the check after every write).
    if (this.limit !== null && this.pendingBytes >= this.limit.maxBytes) this.flush();
    return true;
  }

  /** Writes what is queued now. */
  flush(): void {
    if (this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.pendingBytes = 0;
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return;
    this.scheduler.write(socket, frames);
    if (this.limit !== null && socket.bufferedAmount > this.limit.maxBytes) this.limit.onOverflow();
  }

  /** Forgets what is queued: for a socket being cut, or a slow consumer about to be closed. */
  discard(): void {
    this.frames = [];
    this.pendingBytes = 0;
  }

  /** The scheduler's turn has come for this batch. */
  flushQueued(): void {
    this.queued = false;
    this.flush();
  }
}
