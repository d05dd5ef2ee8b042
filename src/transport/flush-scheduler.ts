/**
 * Writes the handler's FrameBatches at the end of the event-loop turn, in the order they
 * were first queued, and counts which path each write took: a `ws` update that broke the
 * fast path would otherwise only show as lower throughput.
 */
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { writeFrames } from './fast-write.js';

/**
 * Sockets written per event-loop turn at most. A fan-out to 100,000 subscribers is
 * written over several turns, so timers, new connections and other clients' frames are
 * served in between instead of waiting for the whole write-out.
 */
export const FLUSH_CHUNK = 4096;

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
    while (this.dirty.length > 0) this.flushBatches(this.dirty.length);
    if (this.nextTurn !== null) clearImmediate(this.nextTurn);
    this.nextTurn = null;
  }

  private scheduleTurn(): void {
    this.nextTurn ??= setImmediate(this.onTurn);
  }

  private flushChunk(): void {
    this.nextTurn = null;
    this.flushBatches(FLUSH_CHUNK);
    if (this.dirty.length > 0) this.scheduleTurn();
  }

  private flushBatches(limit: number): void {
    const batches = this.dirty;
    const end = Math.min(batches.length, limit);
    // Batches queued while flushing go to a fresh list, after the ones still waiting here.
    this.dirty = end < batches.length ? batches.slice(end) : [];
    for (let index = 0; index < end; index++) {
      const batch = batches[index] as ScheduledBatch;
      try {
        batch.flushQueued();
      } catch (error) {
        // One broken socket must not keep the others from their frames, nor end the process.
        batch.discard();
        this.logger.error({ err: error }, 'writing to a socket failed; its queued frames were dropped');
      }
    }
  }
}
