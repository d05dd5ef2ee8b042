/**
 * What one connection received on one channel, compact enough to keep for every connection
 * of a long run: the range of sequence numbers, the holes in it, and what came twice or out
 * of order. Whether a hole is a loss is decided later (accounting.ts), against the times
 * the publisher sent and saw each message acknowledged.
 */

/**
 * Milliseconds on the system's monotonic clock (CLOCK_MONOTONIC, the same in every process
 * of the machine), so that times taken in the client processes and in the publishers compare.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** One connection's view of one channel, as it is sent to the main process. */
export interface StreamRecord {
  readonly channel: number;
  /** When the subscribe ack arrived: messages sent after this must reach the connection. */
  readonly subscribedAt: number;
  /**
   * When the soak asked the connection to close (or, for a close nobody asked for, when it
   * closed): messages acknowledged before this must have reached it.
   */
  readonly closedAt: number;
  /** First and last sequence number received (0 when none). */
  readonly first: number;
  readonly last: number;
  readonly received: number;
  /** Sequence numbers missing between `first` and `last`, as inclusive ranges. */
  readonly gaps: ReadonlyArray<readonly [number, number]>;
  readonly duplicates: number;
  readonly reordered: number;
}

/** Counts one channel's sequence numbers as they arrive on one connection. */
export class StreamTracker {
  private first = 0;
  private last = 0;
  private received = 0;
  private readonly gaps: Array<[number, number]> = [];
  private duplicates = 0;
  private reordered = 0;

  /** When the subscribe ack arrived; Infinity until it does. */
  subscribedAt = Infinity;

  constructor(readonly channel: number) {}

  /** Takes one sequence number; says whether it came in order, twice, or late. */
  receive(seq: number): 'ok' | 'duplicate' | 'reordered' {
    let outcome: 'ok' | 'reordered' = 'ok';
    if (this.received === 0) {
      this.first = this.last = seq;
    } else if (seq === this.last + 1) {
      this.last = seq;
    } else if (seq > this.last) {
      this.gaps.push([this.last + 1, seq - 1]);
      this.last = seq;
    } else if (seq < this.first) {
      // Later than messages sent after it: out of order, and the hole it leaves is a gap.
      outcome = 'reordered';
      if (seq + 1 <= this.first - 1) this.gaps.unshift([seq + 1, this.first - 1]);
      this.first = seq;
    } else if (this.fillGap(seq)) {
      outcome = 'reordered';
    } else {
      this.duplicates++;
      return 'duplicate';
    }
    if (outcome === 'reordered') this.reordered++;
    this.received++;
    return outcome;
  }

  /** Removes `seq` from the gap holding it; false when no gap does (it came before). */
  private fillGap(seq: number): boolean {
    const index = this.gaps.findIndex(([from, to]) => seq >= from && seq <= to);
    if (index === -1) return false;
    const [from, to] = this.gaps[index]!;
    const rest: Array<[number, number]> = [];
    if (from <= seq - 1) rest.push([from, seq - 1]);
    if (seq + 1 <= to) rest.push([seq + 1, to]);
    this.gaps.splice(index, 1, ...rest);
    return true;
  }

  record(closedAt: number): StreamRecord {
    return {
      channel: this.channel,
      subscribedAt: this.subscribedAt,
      closedAt,
      first: this.first,
      last: this.last,
      received: this.received,
      gaps: this.gaps.map(([from, to]) => [from, to] as const),
      duplicates: this.duplicates,
      reordered: this.reordered,
    };
  }
}
