/**
 * Writes the handler's FrameBatches at the end of the event-loop turn, in the order they
 * were first queued, and counts which path each write took: a `ws` update that broke the
 * fast path would otherwise only show as lower throughput.
 *
 * Two lanes: a batch holding a reply (an ack, an error, a pong: what a client waits for)
 * is written before the batches holding only channel messages, so that while a fan-out to
 * 100,000 subscribers is written out over many turns, other clients' requests are still
 * answered in the next turn rather than after the whole write-out. One socket's frames
 * always leave in the order they were queued: only sockets overtake each other.
 */
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { writeFrames } from './fast-write.js';

/**
 * Sockets written per event-loop turn at most, and the time a turn's writing may take
 * (checked every FLUSH_CHECK_EVERY sockets). A fan-out to 100,000 subscribers is written
 * over several turns, so timers, pings, new connections and other clients' frames are
 * served in between instead of waiting for the whole write-out. The time matters where a
 * write system call is slow (a virtual machine: 15-20 µs each), or 4,096 of them would hold
 * the event loop for 80 ms.
 */
export const FLUSH_CHUNK = 4096;
export const FLUSH_BUDGET_MS = 10;
export const FLUSH_CHECK_EVERY = 64;

/** What the scheduler needs of a batch (a FrameBatch): its turn, and dropping what it holds. */
export interface ScheduledBatch {
  flushQueued(): void;
  discard(): void;
}

/** The lanes, in the order they are written. */
const REPLIES = 0;
const MESSAGES = 1;

export class FlushScheduler {
  /** Batches with frames queued, in the order they were first queued: those with replies, then the others. */
  private readonly lanes: [ScheduledBatch[], ScheduledBatch[]] = [[], []];
  private nextTurn: NodeJS.Immediate | null = null;
  private fast = 0;
  private fallback = 0;
  /** One callback for every turn, not a closure per turn (each would live until its turn). */
  private readonly onTurn = (): void => this.flushChunk();

  constructor(private readonly logger: Logger) {}

  /** Socket writes that went straight to the TCP socket (one per flushed batch). */
  get fastWrites(): number {
    return this.fast;
  }

  /** Socket writes that went through `ws`'s `send()`, one frame at a time. */
  get fallbackWrites(): number {
    return this.fallback;
  }

  /**
   * Flushes `batch` at the end of this turn, or a later one when many are waiting; in the
   * replies' lane when it holds a `reply`. A batch may be listed in both lanes (a reply came
   * while it waited with messages): the first turn to reach it writes everything it holds.
   */
  schedule(batch: ScheduledBatch, reply = false): void {
    this.lanes[reply ? REPLIES : MESSAGES].push(batch);
    this.scheduleTurn();
  }

  /** Every write of this scheduler's batches comes through here, so that the counts are complete. */
  write(socket: WebSocket, frames: readonly Buffer[]): void {
    if (writeFrames(socket, frames) === 'fast') this.fast++;
    else this.fallback++;
  }

  /**
   * Writes out whatever is still queued and cancels the pending turn, so that nothing of
   * this scheduler runs after its handler has closed. A frame queued later is flushed at
   * the end of its turn as usual.
   */
  stop(): void {
    for (const lane of [REPLIES, MESSAGES] as const) while (this.lanes[lane].length > 0) this.flushLane(lane, Infinity, Infinity);
    if (this.nextTurn !== null) clearImmediate(this.nextTurn);
    this.nextTurn = null;
  }

  private scheduleTurn(): void {
    this.nextTurn ??= setImmediate(this.onTurn);
  }

  private flushChunk(): void {
    this.nextTurn = null;
    const deadline = performance.now() + FLUSH_BUDGET_MS;
    const left = FLUSH_CHUNK - this.flushLane(REPLIES, FLUSH_CHUNK, deadline);
    if (left > 0 && performance.now() <= deadline) this.flushLane(MESSAGES, left, deadline);
    if (this.lanes[REPLIES].length > 0 || this.lanes[MESSAGES].length > 0) this.scheduleTurn();
  }

  /** Flushes up to `limit` batches of a lane, in order, stopping early once `deadline` has passed; returns how many. */
  private flushLane(lane: typeof REPLIES | typeof MESSAGES, limit: number, deadline: number): number {
    const batches = this.lanes[lane];
    const end = Math.min(batches.length, limit);
    // Batches queued while flushing go to a fresh list, after the ones still waiting here.
    this.lanes[lane] = [];
    let index = 0;
    while (index < end) {
      const batch = batches[index++] as ScheduledBatch;
      try {
        batch.flushQueued();
      } catch (error) {
        // One broken socket must not keep the others from their frames, nor end the process.
        batch.discard();
        this.logger.error({ err: error }, 'writing to a socket failed; its queued frames were dropped');
      }
      if (index % FLUSH_CHECK_EVERY === 0 && performance.now() > deadline) break;
    }
    if (index < batches.length) {
      const rest = batches.slice(index);
      const added = this.lanes[lane];
      this.lanes[lane] = added.length === 0 ? rest : rest.concat(added);
    }
    return index;
  }
}
