/**
 * The publishers: a few connections (in the main process) that publish at a steady rate,
 * round-robin over the channels, each message carrying its channel's next sequence number
 * and its send time. Publisher p owns the channels ≡ p (mod publishers) and is subscribed to
 * them (the protocol requires it), so it also checks its own messages like any subscriber.
 * For every message it logs when it was sent and when its `message_sent` ack came: what
 * accounting.ts needs to say which subscribers had to receive it.
 */
import { channelName, SoakConnection, type Frame } from './connection.js';
import type { ClientCounters } from './ipc.js';
import { monotonicMs, type StreamRecord } from './tracker.js';

/** How often the publishing loop runs; each run sends what is due at the rate. */
const TICK_MS = 20;
/** Makes each message about 100 bytes of JSON, a typical small chat or notification payload. */
const PAD = 'x'.repeat(48);

/** One channel's messages, by sequence number − 1. */
export interface PublishLog {
  readonly sentAt: number[];
  /** When each ack came; NaN while none has (or when the publish was refused). */
  readonly ackedAt: number[];
}

export class Publishers {
  readonly logs: PublishLog[];
  /** Publishes refused with an error frame (rate limited, …); they count as not acknowledged. */
  refused = 0;
  /** Publishes acknowledged with `message_sent`. */
  acked = 0;
  private timer: NodeJS.Timeout | null = null;
  private next = 0;

  private constructor(
    private readonly connections: readonly SoakConnection[],
    private readonly channels: number,
  ) {
    this.logs = Array.from({ length: channels }, () => ({ sentAt: [], ackedAt: [] }));
  }

  /** Connects `count` publishers and subscribes each to its channels. */
  static async connect(url: string, sign: (user: string) => Promise<string>, channels: number, count: number, counters: ClientCounters, onFatal: (message: string) => void): Promise<Publishers> {
    let publishers: Publishers | null = null;
    const onReply = (frame: Frame): void => publishers?.reply(frame);
    const connections = await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const owned = Array.from({ length: channels }, (_, channel) => channel).filter((channel) => channel % count === index);
        const user = `soak-publisher-${index}`;
        return new SoakConnection(user, url, await sign(user), owned, { counters, onFatal, onReply });
      }),
    );
    publishers = new Publishers(connections, channels);
    await Promise.all(connections.map((connection) => connection.ready));
    return publishers;
  }

  /** Publishes sent. */
  sent = 0;

  /** Publishes `rate` messages per second in all until `stop`. Never catches up more than a second's worth after a stall. */
  start(rate: number): void {
    if (rate <= 0 || this.timer !== null) return;
    let origin = monotonicMs();
    let published = 0;
    this.timer = setInterval(() => {
      let due = Math.floor(((monotonicMs() - origin) * rate) / 1000) - published;
      if (due > Math.max(1, rate)) {
        origin += ((due - Math.max(1, rate)) * 1000) / rate;
        due = Math.max(1, Math.floor(rate));
      }
      for (; due > 0; due--, published++) this.publishNext();
    }, TICK_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private publishNext(): void {
    const channel = this.next++ % this.channels;
    const connection = this.connections[channel % this.connections.length];
    const log = this.logs[channel];
    // A publisher that was closed cannot publish; its close is reported as unexpected.
    if (connection === undefined || log === undefined || !connection.isOpen) return;
    const seq = log.sentAt.length + 1;
    const sentAt = monotonicMs();
    log.sentAt.push(sentAt);
    this.sent++;
    log.ackedAt.push(Number.NaN);
    connection.send(JSON.stringify({ action: 'message', data: { channel: channelName(channel), message: { s: seq, t: sentAt, pad: PAD } }, id: `${channel}.${seq}` }));
  }

  private reply(frame: Frame): void {
    if (typeof frame.id !== 'string') return;
    const [channel, seq] = frame.id.split('.').map(Number);
    const log = this.logs[channel ?? -1];
    if (log === undefined || seq === undefined || !(seq >= 1 && seq <= log.ackedAt.length)) return;
    if (frame.action === 'message_sent' && frame.success === true && Number.isNaN(log.ackedAt[seq - 1])) {
      log.ackedAt[seq - 1] = monotonicMs();
      this.acked++;
    } else if (frame.type === 'error') {
      this.refused++;
    }
  }

  /** Messages sent and neither acknowledged nor refused yet. */
  get outstanding(): number {
    return this.sent - this.acked - this.refused;
  }

  /** Waits until every message sent was answered, for at most `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = monotonicMs() + timeoutMs;
    while (this.outstanding > 0 && monotonicMs() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  }

  /** Closes the publishers normally; resolves with what they received on their channels. */
  async close(): Promise<StreamRecord[]> {
    this.stop();
    const records = await Promise.all(this.connections.map((connection) => connection.close(false)));
    return records.flat();
  }
}
