/**
 * Frame once, write many (the fan-out hot path).
 *
 * `ws` frames every `send()` on its own: option handling, a header allocation and two
 * socket writes per subscriber. For a message delivered to N sockets we build the
 * complete WebSocket frame (header + payload) once and hand the same Buffer to each
 * socket. This is the only module that reaches below `ws`'s public API; when the
 * internals are not what we expect (a compressed connection, a queued send, another
 * `ws` version) it falls back to `socket.send()`.
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

/** The internals of `ws` we rely on, checked at run time before every use. */
interface WsInternals {
  _socket?: Duplex & { writableLength: number };
  _sender?: { _state?: number; _queue?: unknown[]; _bufferedBytes?: number };
  _extensions?: Record<string, unknown>;
}

const SENDER_IDLE = 0;
const OPCODE_TEXT = 0x01;

export class PreparedFrame {
  /** The whole frame as it goes on the wire. */
  readonly wire: Buffer;
  /** The payload alone, for the fallback path. */
  readonly payload: Buffer;

  constructor(text: string) {
    this.payload = Buffer.from(text, 'utf8');
    const length = this.payload.length;
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const wire = Buffer.allocUnsafe(headerLength + length);
    wire[0] = 0x80 | OPCODE_TEXT; // FIN + text, unmasked (RFC 6455 §5.2: servers never mask)
    if (length < 126) {
      wire[1] = length;
    } else if (length < 65536) {
      wire[1] = 126;
      wire.writeUInt16BE(length, 2);
    } else {
      wire[1] = 127;
      wire.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
      wire.writeUInt32BE(length >>> 0, 6);
    }
    this.payload.copy(wire, headerLength);
    this.wire = wire;
  }
}

function canWriteDirectly(internals: WsInternals): boolean {
  const sender = internals._sender;
  const socket = internals._socket;
  return (
    socket !== undefined &&
    socket !== null &&
    sender !== undefined &&
    sender._state === SENDER_IDLE &&
    Array.isArray(sender._queue) &&
    sender._queue.length === 0 &&
    // permessage-deflate would need the payload compressed per connection.
    (internals._extensions === undefined || Object.keys(internals._extensions).length === 0)
  );
}

/** Writes a prepared frame to an open socket. Returns false when the socket is not open. */
export function writePreparedFrame(socket: WebSocket, frame: PreparedFrame): boolean {
  if (socket.readyState !== WebSocket.OPEN) return false;
  const internals = socket as unknown as WsInternals;
  if (canWriteDirectly(internals)) {
    (internals._socket as Duplex).write(frame.wire);
  } else {
    socket.send(frame.payload, { binary: false });
  }
  return true;
}
