/** A small typed event emitter: the client has no dependencies, not even an EventEmitter. */
type Listener<T> = (value: T) => void;

export class Emitter<Events> {
  private _listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {};

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    (this._listeners[event] ??= new Set()).add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this._listeners[event]?.delete(listener);
  }

  /**
   * @internal
   * A listener that throws must not stop the others nor the client's own bookkeeping: its
   * error is thrown again from a fresh task, where the runtime reports it.
   */
  _emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const listener of [...(this._listeners[event] ?? [])]) {
      try {
        listener(value);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }
}
