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
 */
import { WebSocket } from 'ws';

/** Frames held back until the end of the event-loop turn. */
export interface PendingFrames {
  flush(): void;
}

export class SwitchboardSocket extends WebSocket {
  private pendingFrames: PendingFrames | null = null;

  /** Makes every close of this socket write `frames` first. */
  flushBeforeClose(frames: PendingFrames): void {
    this.pendingFrames = frames;
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
