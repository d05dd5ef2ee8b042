/**
 * Requests in flight, matched to their replies by `id`. A reply is handled synchronously, as
 * it is read, so that what follows it on the socket (the messages a resuming subscribe
 * replays) is seen after it. Each request has a deadline; a lost connection fails them all.
 */
import { SwitchboardError } from './errors.js';
import type { Frame } from './types.js';

type Callback = (error: SwitchboardError | null, frame?: Frame) => void;

export class Requests {
  private _pending = new Map<number, { done: Callback; timer: ReturnType<typeof setTimeout> }>();
  private _last = 0;

  constructor(private _timeout: number) {}

  /** A new request's id; `done` runs once, with the reply, an error frame's error, or a TIMEOUT. */
  add(action: string, done: Callback): number {
    const id = ++this._last;
    const timer = setTimeout(() => {
      this._pending.delete(id);
      done(new SwitchboardError('TIMEOUT', `${action}: no reply within ${this._timeout} ms`));
    }, this._timeout);
    this._pending.set(id, { done, timer });
    return id;
  }

  /** Settles the request a reply answers; false when it answers none (a late reply, or no id). */
  reply(frame: Frame): boolean {
    const request = frame.id === undefined ? undefined : this._pending.get(frame.id);
    if (request === undefined) return false;
    this._pending.delete(frame.id as number);
    clearTimeout(request.timer);
    request.done(frame.success === false ? errorOf(frame) : null, frame);
    return true;
  }

  failAll(error: SwitchboardError): void {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const { done, timer } of pending) {
      clearTimeout(timer);
      done(error);
    }
  }
}

/** The SwitchboardError an error frame carries. */
export function errorOf(frame: Frame): SwitchboardError {
  return new SwitchboardError(frame.code ?? 'ERROR', frame.error ?? 'request failed', frame.retry_after);
}
