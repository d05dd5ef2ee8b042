/**
 * Pusher webhooks (SPEC §10): `channel_occupied`, `channel_vacated`, `member_added`,
 * `member_removed` and `client_event`, POSTed to `PUSHER_WEBHOOK_URL` as Pusher does it, so
 * that a receiver using a Pusher SDK's `webhook(...).isValid()` accepts them:
 *
 *   POST <url>
 *   Content-Type: application/json
 *   X-Pusher-Key: <key>
 *   X-Pusher-Signature: hex(HMAC-SHA256(secret, body))
 *
 *   {"time_ms": <ms>, "events": [...]}
 *
 * A failing receiver never slows delivery: send() only queues (it never throws, blocks or
 * awaits the network); events sent within `batchMs` of each other go in one request (at
 * most `maxBatch` events); one request is in flight at a time, so batches arrive in order. A
 * failed request (network error, timeout, non-2xx) is retried with the same body after an
 * exponential backoff with jitter, up to `retries` times, then its events are dropped and
 * counted. The queue is bounded: past `maxQueue` events the oldest are dropped, counted, and
 * logged once per burst. No timer of the sender keeps the process alive, except close()'s
 * own deadline while the caller awaits it.
 */
import type { Logger } from 'pino';
import { webhookHeaders } from './signatures.js';
import { BoundedQueue, backoffMs, pause, postOnce } from './webhook-queue.js';

/** One of Pusher's webhook events, as it goes in `events`. */
export type PusherWebhookEvent =
  | { name: 'channel_occupied' | 'channel_vacated'; channel: string }
  | { name: 'member_added' | 'member_removed'; channel: string; user_id: string }
  | {
      name: 'client_event';
      channel: string;
      event: string;
      /** The event's data as Pusher sends it: a string (JSON-encode anything else). */
      data: string;
      socket_id: string;
      /** The sender's user id, on presence channels. */
      user_id?: string;
    };

export interface WebhookSenderTuning {
  /** Events sent within this many ms of the first queued one go in one request. Default 50. */
  batchMs?: number;
  /** Most events in one request. Default 100. */
  maxBatch?: number;
  /** Most events waiting (besides the batch being delivered); past it the oldest are dropped. Default 10 000. */
  maxQueue?: number;
  /** Retries of a failed request before its events are dropped (so `retries + 1` attempts). Default 5. */
  retries?: number;
  /** First backoff; the nth retry waits about `retryBaseMs * 2^(n-1)` (50–100 %, jittered). Default 500. */
  retryBaseMs?: number;
  /** Cap of one backoff. Default 30 000. */
  retryMaxMs?: number;
  /** Timeout of one request, headers and all. Default 10 000. */
  timeoutMs?: number;
}

export interface WebhookSenderOptions extends WebhookSenderTuning {
  /** The receiver: an http: or https: URL. */
  url: string;
  /** The app key, sent as `X-Pusher-Key`. */
  key: string;
  /** The app secret, which signs the body. */
  secret: string;
  logger: Logger;
}

/** Counters since the sender was made, for /metrics. */
export interface WebhookStats {
  /** Events in requests the receiver answered with a 2xx. */
  sentEvents: number;
  /** Requests the receiver answered with a 2xx. */
  sentBatches: number;
  /** Requests that failed: network error, timeout or non-2xx (each retry counts). */
  failedAttempts: number;
  /** Events given up on: past the queue's bound, after the last retry, left at close(), or not JSON-serializable. */
  droppedEvents: number;
  /** Events waiting or being delivered now. */
  queuedEvents: number;
}

export const WEBHOOK_DEFAULTS: Readonly<Required<WebhookSenderTuning>> = Object.freeze({
  batchMs: 50,
  maxBatch: 100,
  maxQueue: 10_000,
  retries: 5,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  timeoutMs: 10_000,
});

/** A tuning value, checked: a finite number at least `min` (an integer when `integer`). */
function tune(options: WebhookSenderTuning, name: keyof WebhookSenderTuning, min: number, integer = false): number {
  const value = options[name] ?? WEBHOOK_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new RangeError(`WebhookSender: ${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${String(value)}`);
  }
  return value;
}

export class WebhookSender {
  private readonly url: string;
  /** The URL without credentials or query, for logs. */
  private readonly target: string;
  private readonly key: string;
  private readonly secret: string;
  private readonly logger: Logger;
  private readonly tuning: Required<WebhookSenderTuning>;
  /** Events waiting, each already JSON-encoded. */
  private readonly queue: BoundedQueue<string>;
  private readonly counters = { sentEvents: 0, sentBatches: 0, failedAttempts: 0, droppedEvents: 0 };
  /** Events in the batch being delivered. */
  private inFlight = 0;
  /** Events dropped for the queue's bound since the burst began (0: no burst). */
  private overflowBurst = 0;
  private batchTimer: NodeJS.Timeout | null = null;
  /** The delivery loop, while it runs. */
  private running: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  /** Aborted when close()'s deadline passes: cancels the request in flight and any backoff. */
  private readonly stopper = new AbortController();

  constructor(options: WebhookSenderOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new TypeError(`WebhookSender: url is not a URL: ${JSON.stringify(options.url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`WebhookSender: url must be http: or https:, got ${parsed.protocol}`);
    }
    this.url = options.url;
    this.target = `${parsed.origin}${parsed.pathname}`;
    this.key = options.key;
    this.secret = options.secret;
    this.logger = options.logger;
    this.tuning = {
      batchMs: tune(options, 'batchMs', 0),
      maxBatch: tune(options, 'maxBatch', 1, true),
      maxQueue: tune(options, 'maxQueue', 1, true),
      retries: tune(options, 'retries', 0, true),
      retryBaseMs: tune(options, 'retryBaseMs', 0),
      retryMaxMs: tune(options, 'retryMaxMs', 0),
      timeoutMs: tune(options, 'timeoutMs', 1),
    };
    this.queue = new BoundedQueue(this.tuning.maxQueue);
  }

  /** A snapshot of the counters. */
  get stats(): WebhookStats {
    return { ...this.counters, queuedEvents: this.queue.length + this.inFlight };
  }

  /**
   * Queues `event` for the receiver and returns at once: never throws, never waits for the
   * network. A no-op once close() was called.
   */
  send(event: PusherWebhookEvent): void {
    if (this.closing !== null) return;
    try {
      // Encoded now: a snapshot of the event, and a bad one is refused here, not in a batch.
      const json: unknown = JSON.stringify(event);
      if (typeof json !== 'string' || !json.startsWith('{')) throw new TypeError('not a JSON object');
      const dropped = this.queue.push(json);
      if (dropped > 0) this.overflowed(dropped);
      if (this.running !== null) return; // the loop takes it when the request in flight is done
      if (this.queue.length >= this.tuning.maxBatch) {
        this.clearBatchTimer();
        this.startLoop();
      } else if (this.batchTimer === null) {
        this.batchTimer = setTimeout(() => {
          this.batchTimer = null;
          this.startLoop();
        }, this.tuning.batchMs);
        this.batchTimer.unref();
      }
    } catch (error) {
      this.counters.droppedEvents += 1;
      try {
        this.logger.warn({ err: error, webhook: this.target }, 'webhook event dropped: it does not encode as a JSON object');
      } catch {
        // send() never throws, not even for a failing logger.
      }
    }
  }

  /**
   * Stops taking events and tries to deliver those queued (retries included) within
   * `timeoutMs`; then cancels what is left, counts it dropped and stops every timer.
   * Resolves, never rejects; calling it again returns the same promise.
   */
  close(timeoutMs = 5_000): Promise<void> {
    this.closing ??= this.flushThenStop(timeoutMs);
    return this.closing;
  }

  private async flushThenStop(timeoutMs: number): Promise<void> {
    this.clearBatchTimer();
    if (this.queue.length > 0) this.startLoop();
    if (this.running !== null) {
      let deadline: NodeJS.Timeout | undefined;
      // Not unref'd: the caller awaits close(), and it ends by timeoutMs at the latest.
      await Promise.race([this.running, new Promise<void>((resolve) => (deadline = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(deadline);
    }
    this.stopper.abort();
    await this.running;
    const left = this.queue.clear();
    if (left > 0) {
      this.counters.droppedEvents += left;
      this.logger.warn({ webhook: this.target, dropped: left }, 'webhook sender closed: undelivered events dropped');
    }
    this.endOverflowBurst(true);
  }

  private clearBatchTimer(): void {
    if (this.batchTimer !== null) clearTimeout(this.batchTimer);
    this.batchTimer = null;
  }

  private startLoop(): void {
    if (this.running !== null || this.queue.length === 0 || this.stopper.signal.aborted) return;
    this.running = this.loop();
  }

  /** Delivers batch after batch, one request at a time, until the queue is empty or close() gives up. */
  private async loop(): Promise<void> {
    // `running` is cleared in the same step as the queue is last seen empty, so that no send()
    // can queue an event in between that neither the loop nor a new batch timer would take.
    await Promise.resolve();
    while (this.queue.length > 0 && !this.stopper.signal.aborted) {
      const batch = this.queue.take(this.tuning.maxBatch);
      this.inFlight = batch.length;
      try {
        this.endOverflowBurst(false);
        await this.deliver(batch);
      } catch (error) {
        // Not expected (deliver catches its failures); never let the loop die with events queued.
        this.counters.droppedEvents += batch.length;
        this.logger.error({ err: error, webhook: this.target, dropped: batch.length }, 'webhook batch dropped: unexpected error');
      } finally {
        this.inFlight = 0;
      }
    }
    this.running = null;
  }

  /** POSTs one batch, retrying with backoff; the same body (and time_ms) on every attempt. */
  private async deliver(batch: readonly string[]): Promise<void> {
    const body = `{"time_ms":${Date.now()},"events":[${batch.join(',')}]}`;
    const headers = webhookHeaders(this.key, this.secret, body);
    for (let attempt = 1; ; attempt += 1) {
      const failure = await postOnce(this.url, body, headers, this.tuning.timeoutMs, this.stopper.signal);
      if (failure === null) {
        this.counters.sentEvents += batch.length;
        this.counters.sentBatches += 1;
        return;
      }
      if (this.stopper.signal.aborted) {
        this.counters.droppedEvents += batch.length;
        this.logger.warn({ webhook: this.target, dropped: batch.length }, 'webhook sender closed: batch in flight dropped');
        return;
      }
      this.counters.failedAttempts += 1;
      if (attempt > this.tuning.retries) {
        this.counters.droppedEvents += batch.length;
        this.logger.warn({ webhook: this.target, attempts: attempt, reason: failure, dropped: batch.length }, 'webhook batch dropped: every attempt failed');
        return;
      }
      const delayMs = backoffMs(attempt, this.tuning.retryBaseMs, this.tuning.retryMaxMs);
      this.logger.debug({ webhook: this.target, attempt, reason: failure, retryInMs: delayMs }, 'webhook request failed; retrying');
      await pause(delayMs, this.stopper.signal);
    }
  }

  private overflowed(dropped: number): void {
    this.counters.droppedEvents += dropped;
    if (this.overflowBurst === 0) {
      this.logger.warn(
        { webhook: this.target, maxQueue: this.tuning.maxQueue },
        'webhook queue full: dropping the oldest events until it drains (the receiver is too slow or down)',
      );
    }
    this.overflowBurst += dropped;
  }

  /** Ends a burst of drops (logging its total) once the queue is down to half its bound, or at close. */
  private endOverflowBurst(closing: boolean): void {
    if (this.overflowBurst === 0 || (!closing && this.queue.length > this.tuning.maxQueue / 2)) return;
    this.logger.warn({ webhook: this.target, dropped: this.overflowBurst }, 'webhook queue overflow over: the oldest events were dropped');
    this.overflowBurst = 0;
  }
}
