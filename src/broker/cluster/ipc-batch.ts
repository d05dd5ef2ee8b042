/**
 * The relay's messages between the primary and one worker, gathered per event-loop turn:
 * what one side posts to the other within a turn leaves as one IPC message, `{sb: 'batch',
 * messages}`, in the order posted. Each IPC message costs a serialization, a write system
 * call and an 'message' event at the other end, whatever its size; a worker publishing
 * thousands of messages a second (each one a publish to the relay and a count back) would
 * otherwise spend most of its time on those.
 *
 * A batch holds at most BATCH_MAX messages: the one that fills it sends it at once, so a
 * turn that posts without end cannot grow it without bound.
 */

/** Messages in one batch at most. */
export const BATCH_MAX = 512;

export interface Batch<M> {
  sb: 'batch';
  messages: M[];
}

export class IpcBatcher<M> {
  private queued: M[] = [];
  private turn: NodeJS.Immediate | null = null;
  private readonly onTurn = (): void => this.flush();

  /** @param send sends one IPC message (a batch, or a message alone); errors are its own to handle. */
  constructor(private readonly send: (message: M | Batch<M>) => void) {}

  /** Sends `message` at the end of this turn, after the ones posted before it. */
  post(message: M): void {
    this.queued.push(message);
    if (this.queued.length >= BATCH_MAX) this.flush();
    else this.turn ??= setImmediate(this.onTurn);
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.turn !== null) clearImmediate(this.turn);
    this.turn = null;
    const messages = this.queued;
    if (messages.length === 0) return;
    this.queued = [];
    this.send(messages.length === 1 ? (messages[0] as M) : { sb: 'batch', messages });
  }

  /** Drops what is queued (the peer is gone). */
  discard(): void {
    if (this.turn !== null) clearImmediate(this.turn);
    this.turn = null;
    this.queued = [];
  }
}

/**
 * The messages an IPC message carries: those of a batch, or the message itself. Each one
 * is still checked by the receiver's guard (messages.ts) before it is used.
 */
export function unbatched(message: unknown): readonly unknown[] {
  if (typeof message === 'object' && message !== null && (message as { sb?: unknown }).sb === 'batch') {
    const messages = (message as { messages?: unknown }).messages;
    return Array.isArray(messages) ? messages : [];
  }
  return [message];
}
