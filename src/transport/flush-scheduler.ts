/**
 * Writes the handler's FrameBatches at the end of the event-loop turn, in the order they
 * were first queued, and counts which path each write took: a `ws` update that broke the
 * fast path would otherwise only show as lower throughput.
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

export class FlushScheduler {
  /** Batches with frames queued, in the order they were first queued. */
  private dirty: ScheduledBatch[] = [];
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

  /** Flushes `batch` at the end of this turn, or a later one when many are waiting. */
  schedule(batch: ScheduledBatch): void {
    this.dirty.push(batch);
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
    while (this.dirty.length > 0) this.flushBatches(this.dirty.length, Infinity);
    if (this.nextTurn !== null) clearImmediate(this.nextTurn);
    this.nextTurn = null;
  }

  private scheduleTurn(): void {
    this.nextTurn ??= setImmediate(this.onTurn);
  }

  private flushChunk(): void {
    this.nextTurn = null;
    this.flushBatches(FLUSH_CHUNK, FLUSH_BUDGET_MS);
    if (this.dirty.length > 0) this.scheduleTurn();
  }

  /** Flushes up to `limit` batches, in order, stopping early once `budgetMs` has passed. */
  private flushBatches(limit: number, budgetMs: number): void {
    const batches = this.dirty;
    const end = Math.min(batches.length, limit);
    // Batches queued while flushing go to a fresh list, after the ones still waiting here.
    this.dirty = [];
    const deadline = performance.now() + budgetMs;
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
      this.dirty = this.dirty.length === 0 ? rest : rest.concat(this.dirty);
    }
  }
}
