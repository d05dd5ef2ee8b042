/**
 * The WebSocket class the handler's WebSocketServer creates (its documented `WebSocket`
 * option), so that frames queued in this turn go out before the close frame whoever
 * closes the socket, instead of being dropped after it.
 *
 * `ws` closes a socket itself when it answers the peer's close frame (`receiverOnConclude`)
 * and after a frame it refuses, e.g. 1009 for an oversized one (`receiverOnError`). In
 * ws 8.23 both call `websocket.close(...)` on the instance (lib/websocket.js), so this
 * override runs for them just as for our own closes. Its other ways out (`terminate()`,
 * the close timer, a socket that ended or failed) send no close frame, and so nothing
 * queued could be written before one anyway.
 *
 * It also tells its owner (the connection) what it emits, as calls on one object instead
 * of a listener closure per event and socket: idle connections are most of a server's
 * memory, and five listeners cost each of them closures and a bigger table of listeners.
 */
import { WebSocket, type RawData } from 'ws';

/** Frames held back until the end of the event-loop turn. */
export interface PendingFrames {
  flush(): void;
}

/** What the owner of a socket hears of it, in place of listeners. */
export interface SocketListener {
  /** A data frame arrived (`message`). */
  socketMessage(data: RawData, isBinary: boolean): void;
  /** A ping or a pong arrived. */
  socketAlive(): void;
  /** `ws` reported an error (it closes the socket itself); never thrown as an unhandled 'error'. */
  socketError(error: Error): void;
  /** The socket has closed (`close`). */
  socketClosed(code: number, reason: Buffer): void;
}

export class SwitchboardSocket extends WebSocket {
  private pendingFrames: PendingFrames | null = null;
  private listener: SocketListener | null = null;

  /** Makes every close of this socket write `frames` first. */
  flushBeforeClose(frames: PendingFrames): void {
    this.pendingFrames = frames;
  }

  /**
   * Tells `listener` of every message, ping, pong, error and close from now on, before
   * any listener added with on(). An 'error' it hears is handled, as with a listener.
   */
  listen(listener: SocketListener): void {
    this.listener = listener;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (this.listener === null || !tell(this.listener, event, args)) return super.emit(event, ...args);
    // Heard: an 'error' nobody else listens to is not unhandled (EventEmitter would throw it).
    if (event !== 'error' || this.listenerCount('error') > 0) super.emit(event, ...args);
    return true;
  }

  override close(code?: number, data?: string | Buffer): void {
    try {
      this.pendingFrames?.flush();
    } finally {
      // Also after a failed write: ws's own closing handshake must go on.
      super.close(code, data);
    }
  }
}

/** Tells `listener` of one event; false for an event it does not hear. */
function tell(listener: SocketListener, event: string | symbol, args: unknown[]): boolean {
  switch (event) {
    case 'message':
      listener.socketMessage(args[0] as RawData, args[1] as boolean);
      return true;
    case 'ping':
    case 'pong':
      listener.socketAlive();
      return true;
    case 'error':
      listener.socketError(args[0] as Error);
      return true;
    case 'close':
      listener.socketClosed(args[0] as number, args[1] as Buffer);
      return true;
    default:
      return false;
  }
}
