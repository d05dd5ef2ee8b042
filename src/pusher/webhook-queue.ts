/**
 * The webhook sender's parts (SPEC §10; the sender is in webhooks.ts): its bounded FIFO, one
 * POST with a timeout, and the backoff between attempts.
 */

/**
 * A FIFO holding at most `capacity` items: pushing past it drops the oldest. Taking from the
 * head and dropping are O(1) amortized (a moving head index, compacted now and then), so a
 * queue held full by a dead receiver costs nothing per dropped item.
 */
export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Appends `item`; returns how many of the oldest items were dropped to make room (0 or 1). */
  push(item: T): number {
    if (this.capacity <= 0) return 1;
    let dropped = 0;
    if (this.length >= this.capacity) {
      this.head += 1;
      dropped = 1;
    }
    this.items.push(item);
    this.compact();
    return dropped;
  }

  /** Removes and returns up to `max` items from the head, oldest first. */
  take(max: number): T[] {
    const end = Math.min(this.items.length, this.head + Math.max(0, max));
    const taken = this.items.slice(this.head, end);
    this.head = end;
    this.compact();
    return taken;
  }

  /** Empties the queue; returns how many items it held. */
  clear(): number {
    const count = this.length;
    this.items = [];
    this.head = 0;
    return count;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The wait before retry number `attempt` (1 for the first retry): `baseMs * 2^(attempt-1)`,
 * capped at `maxMs`, then jittered to 50–100 % of that so that senders do not retry in step.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Resolves after `ms`, or at once when `signal` aborts; its timer does not keep the process alive. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Why a request failed, in a few words: `timed out after 10000 ms`, `fetch failed: ECONNREFUSED`. */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = cause?.code ?? cause?.message;
  return typeof detail === 'string' ? `${error.message}: ${detail}` : error.message;
}

/**
 * One POST of `body` with global fetch, given up after `timeoutMs` (headers and all) or when
 * `cancel` aborts. Null when answered 2xx, else why not (`HTTP 500`, a timeout, a network
 * error). Never rejects. Redirects are not followed: a 3xx is a failure, as a misconfigured
 * URL should be seen rather than have its POST turned into a GET.
 */
export async function postOnce(url: string, body: string, headers: Record<string, string>, timeoutMs: number, cancel: AbortSignal): Promise<string | null> {
  try {
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), cancel]);
    const response = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
    // The answer's body is not read; cancel it to free the connection.
    await response.body?.cancel().catch(() => undefined);
    return response.ok ? null : `HTTP ${response.status}`;
  } catch (error) {
    return describeFailure(error, timeoutMs);
  }
}
