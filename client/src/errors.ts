/**
 * What a request or a subscription rejects with, and what `error` events carry. `code` is the
 * server's error code (FORBIDDEN, RATE_LIMITED, ...) or one of the client's own:
 * DISCONNECTED (not connected, or the connection was lost before the reply), TIMEOUT (no reply
 * within `requestTimeout`), UNAUTHORIZED (the server refused the token at the handshake),
 * NO_WEBSOCKET (no WebSocket constructor in this runtime), INVALID_URL (the WebSocket refused the
 * URL), TOKEN (the token function failed), UNSUBSCRIBED (`ready` of a subscription ended before
 * its first ack), CLOSED (`ready` of a subscription when the client was closed first).
 */
export class SwitchboardError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** RATE_LIMITED: seconds until the server accepts a frame again. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'SwitchboardError';
  }
}
