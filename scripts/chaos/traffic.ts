/**
 * The clients of a chaos run, all switchboard-client over `ws`, reconnecting on their own
 * (and recovering on channels with history), each reporting to the ledger: publishers that
 * send {p, s} (publisher, sequence number) on every channel at a steady pace, and
 * subscribers that record what they get.
 */
import WebSocket from 'ws';
import { Client, type Subscription } from '../../client/src/index.js';
import type { Kind, Ledger } from './ledger.js';
import { watchedWebSocket } from './wire.js';

export interface ChannelSpec {
  readonly name: string;
  readonly kind: Kind;
}

/** Reconnect soon: a run is minutes, not hours. */
const RECONNECT = { minDelay: 200, maxDelay: 2000 };

/** The client's own error codes: no reply came, so the publish may or may not have been sent. */
const NO_REPLY = new Set(['DISCONNECTED', 'TIMEOUT', 'CLOSED']);

interface Message {
  p: string;
  s: number;
}

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && typeof (value as Message).p === 'string' && typeof (value as Message).s === 'number';
}

export class ChaosSubscriber {
  private readonly client: Client;
  /** Channels subscribed on the current connection. */
  private readonly up = new Set<string>();

  constructor(
    readonly id: string,
    url: string,
    private readonly channels: readonly ChannelSpec[],
    ledger: Ledger,
  ) {
    const watched = watchedWebSocket({ anomaly: (channel, what, detail) => ledger.wireAnomaly(id, channel, what, detail) });
    this.client = new Client(url, { WebSocket: watched, reconnect: RECONNECT });
    this.client.on('state', (state) => {
      if (state === 'connected') return;
      this.up.clear();
      ledger.down(id);
    });
    this.client.on('error', () => undefined);
    this.client.on('disconnected', ({ code, reason }) => ledger.note(`${id} disconnected: ${code} ${reason}`));
    for (const { name, kind } of channels) {
      const subscription = this.client.subscribe(name);
      subscription.on('subscribed', ({ recovered, offset }) => {
        if (this.client.state !== 'connected') return;
        this.up.add(name);
        ledger.subscribed(id, name, kind, recovered, offset);
      });
      subscription.on('message', ({ message, offset }) => {
        if (isMessage(message)) ledger.received(id, name, kind, message.p, message.s, offset);
      });
      subscription.on('error', (error) => ledger.note(`${id}: subscription to ${name} ended: ${error.code} ${error.message}`));
    }
  }

  /** Connected, and subscribed to every channel on this connection. */
  get healthy(): boolean {
    return this.client.state === 'connected' && this.up.size === this.channels.length;
  }

  close(): void {
    this.client.close();
  }
}

export class ChaosPublisher {
  private readonly client: Client;
  private readonly subscriptions = new Map<string, { spec: ChannelSpec; subscription: Subscription; seq: number }>();
  private readonly up = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    readonly id: string,
    url: string,
    channels: readonly ChannelSpec[],
    private readonly ledger: Ledger,
  ) {
    this.client = new Client(url, { reconnect: RECONNECT, WebSocket });
    this.client.on('state', (state) => state !== 'connected' && this.up.clear());
    this.client.on('error', () => undefined);
    this.client.on('disconnected', ({ code, reason }) => ledger.note(`${id} disconnected: ${code} ${reason}`));
    for (const spec of channels) {
      const subscription = this.client.subscribe(spec.name);
      subscription.on('subscribed', () => this.client.state === 'connected' && this.up.add(spec.name));
      this.subscriptions.set(spec.name, { spec, subscription, seq: 0 });
    }
  }

  get healthy(): boolean {
    return this.client.state === 'connected' && this.up.size === this.subscriptions.size;
  }

  /** Publishes on every channel it is subscribed to, every `intervalMs`. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  private tick(): void {
    if (this.client.state !== 'connected') return;
    for (const [name, entry] of this.subscriptions) {
      if (!this.up.has(name)) continue;
      const seq = ++entry.seq;
      const record = this.ledger.publishStarted(this.id, name, entry.spec.kind, seq);
      const done = entry.subscription.publish({ p: this.id, s: seq } satisfies Message).then(
        (ack) => this.ledger.publishSettled(record, 'acked', ack.offset ?? null, null),
        (error: { code?: string }) => {
          const code = error.code ?? 'UNKNOWN';
          this.ledger.publishSettled(record, NO_REPLY.has(code) ? 'unacked' : 'refused', null, code);
        },
      );
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
    }
  }

  /** Stops publishing and waits for every reply still due. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.inFlight]);
  }

  close(): void {
    this.client.close();
  }
}
