/**
 * Rolling-window rate limit (SPEC §3): at most `limit` frames in any `windowMs`.
 *
 * Keeps the times of the last `limit` accepted frames in a ring, so the decision is
 * exact (no doubled burst at a window edge, unlike GEMVC's fixed window) and the wait
 * until the next accepted frame is known precisely: it is when the oldest of those
 * frames leaves the window. The ring is allocated on first use, so idle connections
 * cost nothing.
 */
export class RateLimiter {
  private stamps: Float64Array | null = null;
  private next = 0;
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
    this.stamps ??= new Float64Array(this.limit);
    if (this.filled < this.limit) {
      this.stamps[this.next] = nowMs;
      this.next = (this.next + 1) % this.limit;
      this.filled++;
      this.refusedInARow = 0;
      return 0;
    }
    // Ring is full: `next` points at the oldest accepted frame.
    const oldest = this.stamps[this.next] as number;
    const freeAt = oldest + this.windowMs;
    if (nowMs >= freeAt) {
      this.stamps[this.next] = nowMs;
      this.next = (this.next + 1) % this.limit;
      this.refusedInARow = 0;
      return 0;
    }
    this.refusedInARow++;
    return freeAt - nowMs;
  }

  /** Frames refused since the last accepted one; used to detect a client that keeps flooding. */
  get refusedSinceLastAccepted(): number {
    return this.refusedInARow;
  }
}
