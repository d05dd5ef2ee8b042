/**
 * Delivery latency (publisher's send to subscriber's receipt) as counts in fixed buckets:
 * constant memory however long the run, and buckets from several processes add up.
 */

/** Upper bounds of the buckets in milliseconds; the last bucket takes everything above. */
export const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000] as const;

export function emptyHistogram(): number[] {
  return new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
}

export function observe(histogram: number[], ms: number): void {
  let index = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  if (index === -1) index = LATENCY_BOUNDS_MS.length;
  histogram[index] = (histogram[index] ?? 0) + 1;
}

export function mergeInto(total: number[], part: readonly number[]): void {
  part.forEach((count, index) => (total[index] = (total[index] ?? 0) + count));
}

/**
 * The bucket bound under which `quantile` of the samples fall ("≤ 5 ms"), or null without
 * samples; Infinity when it is in the open last bucket.
 */
export function quantileBound(histogram: readonly number[], quantile: number): number | null {
  const total = histogram.reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let index = 0; index < histogram.length; index++) {
    seen += histogram[index] ?? 0;
    if (seen >= quantile * total) return LATENCY_BOUNDS_MS[index] ?? Infinity;
  }
  return Infinity;
}
