/**
 * Exponential backoff with full jitter: a random delay up to min(maxDelay, minDelay × 2^attempt),
 * so that clients cut off together do not come back together. It is never under a quarter of
 * minDelay: however the dice fall, a client does not reconnect in a tight loop.
 */
export function backoffDelay(attempt: number, minDelay: number, maxDelay: number): number {
  return Math.max(minDelay / 4, Math.random() * Math.min(maxDelay, minDelay * 2 ** attempt));
}
