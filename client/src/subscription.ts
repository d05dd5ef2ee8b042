/**
 * One channel the client follows. It survives reconnects: after each one it subscribes again
 * with `since`/`epoch` of the last message it saw, so that the server replays what was missed,
 * and it drops any message whose offset it has already seen.
 */
import { Emitter } from './emitter.js';
import { SwitchboardError } from './errors.js';
import type { Frame, HistoryResult, Message, PresenceResult, PublishResult, Subscribed, SubscriptionEvents } from './types.js';

/** What a subscription needs of its client. */
export interface Link {
  /** Sends a request; `done` runs synchronously with the reply, or with an error. */
  _send(action: string, data: object, done?: (error: SwitchboardError | null, frame?: Frame) => void): void;
  _call(action: string, data: object): Promise<Frame>;
  _forget(subscription: Subscription): void;
  readonly state: string;
}

/** Server errors after which a subscribe is tried again rather than given up. */
const TRANSIENT = ['INTERNAL_ERROR', 'RATE_LIMITED'];

export class Subscription extends Emitter<SubscriptionEvents> {
  /** The first subscribe ack; rejects when the server refuses the subscription. */
  readonly ready: Promise<Subscribed>;
  private _settle!: (value: Subscribed) => void;
  private _refuse!: (error: SwitchboardError) => void;
  private _epoch?: string;
  /** The offset of the last message seen (or the position the server reported). */
  private _offset?: number;
  private _active = true;
  private _retry?: ReturnType<typeof setTimeout>;

  /** @internal made by `client.subscribe()` */
  constructor(
    private _link: Link,
    readonly channel: string,
  ) {
    super();
    this.ready = new Promise<Subscribed>((resolve, reject) => {
      this._settle = resolve;
      this._refuse = reject;
    });
    // Nobody has to await it: an unobserved refusal is reported through `error`.
    this.ready.catch(() => undefined);
  }

  /** Publishes on this channel (the connection must be subscribed, so await `ready` first). */
  publish(message: unknown, options: { recipients?: (string | number)[]; ephemeral?: boolean } = {}): Promise<PublishResult> {
    return this._link._call('message', { channel: this.channel, message, ...options }) as Promise<never>;
  }

  presence(): Promise<PresenceResult> {
    return this._link._call('presence', { channel: this.channel }) as Promise<never>;
  }

  history(query: { since?: number; limit?: number } = {}): Promise<HistoryResult> {
    return this._link._call('history', { channel: this.channel, ...query }) as Promise<never>;
  }

  /** Stops following the channel, here and (when connected) on the server. */
  unsubscribe(): void {
    if (!this._active) return;
    this._stop();
    if (this._link.state === 'connected') this._link._send('unsubscribe', { channel: this.channel });
  }

  /** @internal Sends the subscribe, resuming from the last message seen. */
  _subscribe(): void {
    clearTimeout(this._retry);
    const resume = this._epoch !== undefined && this._offset !== undefined ? { since: this._offset, epoch: this._epoch } : {};
    this._link._send('subscribe', { channel: this.channel, ...resume }, (error, ack) => {
      if (!this._active) return;
      if (error !== null) return this._failed(error);
      const { recovered = false, epoch, offset } = ack as Frame;
      if (epoch !== undefined && !recovered) this._moveTo(epoch, offset);
      const subscribed = { recovered, epoch, offset };
      this._settle(subscribed);
      this._emit('subscribed', subscribed);
    });
  }

  /** @internal The client closed for good: a `ready` still waiting rejects. */
  _closed(error: SwitchboardError): void {
    this._refuse(error);
  }

  /** @internal A frame for this channel. */
  _frame(frame: Frame): void {
    if (!this._active) return;
    const { action, offset } = frame;
    if (action === 'message') {
      if (offset !== undefined) {
        if (this._offset !== undefined && offset <= this._offset) return;
        this._offset = offset;
      }
      this._emit('message', frame as unknown as Message);
    } else if (action === 'join' || action === 'leave') {
      this._emit(action, frame as never);
    } else if (action === 'position') {
      // The server could not deliver every message (history lost): start again from its position.
      this._moveTo(frame.epoch as string, offset);
      this._emit('subscribed', { recovered: false, epoch: frame.epoch, offset });
    } else if (action === 'unsubscribe' && frame.success === undefined) {
      // The server took the channel away (a renewed token with fewer roles); not the ack of ours.
      this._end(new SwitchboardError('FORBIDDEN', `${this.channel}: ${frame.reason ?? 'unsubscribed by the server'}`));
    }
  }

  /** A new epoch starts at the server's position; in the same one, never go back. */
  private _moveTo(epoch: string, offset: number | undefined): void {
    if (epoch !== this._epoch || this._offset === undefined || (offset ?? 0) > this._offset) this._offset = offset;
    this._epoch = epoch;
  }

  private _failed(error: SwitchboardError): void {
    // Lost with the connection: the next connect subscribes again. A timeout too: try again.
    if (error.code === 'DISCONNECTED') return;
    if (error.code === 'TIMEOUT' || TRANSIENT.includes(error.code)) {
      this._retry = setTimeout(() => this._link.state === 'connected' && this._subscribe(), (error.retryAfter ?? 1) * 1000);
      return;
    }
    this._end(error);
  }

  private _end(error: SwitchboardError): void {
    this._refuse(error);
    this._stop();
    this._emit('error', error);
  }

  private _stop(): void {
    this._active = false;
    clearTimeout(this._retry);
    this._link._forget(this);
    // No ack counts after this: a `ready` still waiting would wait for ever.
    this._refuse(new SwitchboardError('UNSUBSCRIBED', `${this.channel}: unsubscribed before the server's ack`));
  }
}
