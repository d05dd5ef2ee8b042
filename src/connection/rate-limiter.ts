/**
 * Rolling-window rate limit (SPEC §3): at most `limit` frames in any `windowMs`.
 *
 * Keeps the times of the last `limit` accepted frames in a ring, so the decision is
 * exact (no doubled burst at a window edge, unlike GEMVC's fixed window) and the wait
 * until the next accepted frame is known precisely: it is when the oldest of those
 * frames leaves the window. The ring starts small and grows only as frames arrive, so
 * memory follows what a connection actually sends, not how high the limit is set.
 */
const INITIAL_CAPACITY = 8;

export class RateLimiter {
  private stamps: Float64Array | null = null;
  /** Index of the oldest stored stamp. */
  private head = 0;
  private filled = 0;
  /** Frames refused since the last accepted one. */
  private refusedInARow = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError('limit must be a non-negative integer');
  }

  /**
   * Records a frame at `nowMs`. Returns 0 when it is accepted, otherwise the number of
   * milliseconds until a frame would be accepted (always > 0).
   */
  take(nowMs: number): number {
    if (this.limit === 0) return 0;
    let stamps = this.stamps ?? (this.stamps = new Float64Array(Math.min(this.limit, INITIAL_CAPACITY)));
    // Forget frames that left the window.
    while (this.filled > 0 && nowMs - (stamps[this.head] as number) >= this.windowMs) {
      this.head = (this.head + 1) % stamps.length;
      this.filled--;
    }
    if (this.filled >= this.limit) {
      this.refusedInARow++;
      return (stamps[this.head] as number) + this.windowMs - nowMs;
    }
    if (this.filled === stamps.length) stamps = this.grow(stamps);
    stamps[(this.head + this.filled) % stamps.length] = nowMs;
    this.filled++;
    this.refusedInARow = 0;
    return 0;
  }

  /** Frames refused since the last accepted one; used to detect a client that keeps flooding. */
  get refusedSinceLastAccepted(): number {
    return this.refusedInARow;
  }

  private grow(stamps: Float64Array): Float64Array {
    const grown = new Float64Array(Math.min(this.limit, stamps.length * 2));
    for (let index = 0; index < this.filled; index++) grown[index] = stamps[(this.head + index) % stamps.length] as number;
    this.head = 0;
    this.stamps = grown;
    return grown;
  }
}

/**
 * The limiter of every connection when there is no limit (0): at limit 0 a limiter keeps
 * no state (take() returns at once), so one serves them all.
 */
export const UNLIMITED = new RateLimiter(0);
