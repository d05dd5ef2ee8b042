/**
 * Messages per second over the last few seconds, from a counter that only grows: sampled
 * once a second into a small ring, so a rate costs nothing on the hot path and nothing
 * grows.
 */
/** A rate to two decimals: what a dashboard shows. */
export function roundRate(value: number): number {
  return Math.round(value * 100) / 100;
}

export class RateMeter {
  private readonly samples: Array<{ at: number; value: number }> = [];

  constructor(
    private readonly read: () => number,
    private readonly windowSamples = 5,
  ) {}

  /** Takes a sample; call about once a second. */
  sample(now = Date.now()): void {
    this.samples.push({ at: now, value: this.read() });
    if (this.samples.length > this.windowSamples + 1) this.samples.shift();
  }

  /** Per second over the samples held (0 before there are two). */
  perSecond(now = Date.now()): number {
    const oldest = this.samples[0];
    if (oldest === undefined) return 0;
    const seconds = (now - oldest.at) / 1000;
    if (seconds <= 0) return 0;
    return Math.max(0, (this.read() - oldest.value) / seconds);
  }
}
