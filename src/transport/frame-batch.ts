/**
 * The frames waiting for one socket until the end of the event-loop turn, so that a
 * burst of messages costs the socket one writev instead of one system call per message.
 */
import { WebSocket } from 'ws';
import type { FlushScheduler } from './flush-scheduler.js';
import type { PreparedFrame } from './prepared-frame.js';
import type { SwitchboardSocket } from './switchboard-socket.js';

/**
 * The limit a FrameBatch watches on behalf of its connection (the connection itself, so
 * that a batch needs no object nor closure of its own for it).
 */
export interface BacklogLimit {
  /** Bytes queued here plus bytes `ws` and the kernel have not sent yet. */
  readonly maxBufferedBytes: number;
  /** Called when the backlog passes `maxBufferedBytes` (the connection closes as a slow consumer). */
  backlogOverflowed(): void;
}

const NOT_QUEUED = 0;
const WITH_MESSAGES = 1;
const WITH_REPLIES = 2;

/**
 * Each connection owns one for its whole life. Its list of frames exists only while
 * frames wait (within a turn), not while the connection is idle.
 */
export class FrameBatch {
  private frames: Buffer[] | null = null;
  private pendingBytes = 0;
  /** Whether the scheduler holds this batch for the end of the turn: not, with messages only, or in the replies' lane. */
  private queued: 0 | 1 | 2 = NOT_QUEUED;

  constructor(
    private readonly socket: SwitchboardSocket,
    private readonly scheduler: FlushScheduler,
    private readonly limit: BacklogLimit | null = null,
  ) {
    socket.flushBeforeClose(this);
  }

  /**
   * Queues a frame; returns false when the socket is not open. A `reply` (what the client
   * asked for) puts the batch in the scheduler's first lane.
   */
  push(frame: PreparedFrame, reply = false): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    // Not `[frame.wire]`: arrays from that literal live until the end of the turn, so V8 may
    // decide to allocate them in the old generation, which then fills with garbage and
    // full GCs slow a fan-out to many sockets down 2-3×. An empty literal grown by push()
    // keeps its elements young.
    (this.frames ??= []).push(frame.wire);
    this.pendingBytes += frame.wire.length;
    if (this.queued === NOT_QUEUED || (reply && this.queued === WITH_MESSAGES)) {
      this.queued = reply ? WITH_REPLIES : WITH_MESSAGES;
      this.scheduler.schedule(this, reply);
    }
    // A burst that fills a whole backlog's worth within one turn is written at once rather
    // than held here: memory stays bounded, and the kernel, not this queue, tells whether
    // the client keeps up (the check after every write).
    if (this.limit !== null && this.pendingBytes >= this.limit.maxBufferedBytes) this.flush();
    return true;
  }

  /** Writes what is queued now. */
  flush(): void {
    const frames = this.frames;
    if (frames === null) return;
    this.frames = null;
    this.pendingBytes = 0;
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return;
    this.scheduler.write(socket, frames);
    if (this.limit !== null && socket.bufferedAmount > this.limit.maxBufferedBytes) this.limit.backlogOverflowed();
  }

  /** Forgets what is queued: for a socket being cut, or a slow consumer about to be closed. */
  discard(): void {
    this.frames = null;
    this.pendingBytes = 0;
  }

  /** The scheduler's turn has come for this batch. */
  flushQueued(): void {
    this.queued = NOT_QUEUED;
    this.flush();
  }
}
