/**
 * Frame once, write many, and coalesce (the fan-out hot path).
 *
 * `ws` frames every `send()` on its own: option handling, a header allocation and one
 * or two socket writes per subscriber and message. Here a message delivered to N
 * sockets is framed once (header + payload in one Buffer) and the same bytes are handed
 * to every socket. Frames for one socket are not written at once but collected until
 * the end of the event-loop turn and written together (one writev), so a burst of
 * messages costs each socket one system call instead of one per message.
 *
 * This is the only module that reaches below `ws`'s public API. When the internals are
 * not what we expect (a compressed connection, a send `ws` has queued, another `ws`
 * version) it flushes what it holds for that socket and falls back to `socket.send()`,
 * so the order of frames is kept either way.
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

/** The internals of `ws` we rely on, checked at run time before every use. */
interface WsInternals {
  _socket?: Duplex;
  _sender?: { _state?: number; _queue?: unknown[] };
  _extensions?: Record<string, unknown>;
}

const SENDER_IDLE = 0;
const OPCODE_TEXT = 0x01;

/** The payload of a complete unmasked frame: what follows its 2-, 4- or 10-byte header. */
function payloadOf(wire: Buffer): Buffer {
  const length = (wire[1] as number) & 0x7f;
  return wire.subarray(length < 126 ? 2 : length === 126 ? 4 : 10);
}

export class PreparedFrame {
  /** The whole frame as it goes on the wire. */
  readonly wire: Buffer;

  constructor(text: string) {
    const length = Buffer.byteLength(text);
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
    wire.write(text, headerLength, 'utf8');
    this.wire = wire;
  }

  /** The payload alone, for the fallback path. */
  get payload(): Buffer {
    return payloadOf(this.wire);
  }
}

function rawSocketOf(socket: WebSocket): Duplex | null {
  const internals = socket as unknown as WsInternals;
  const sender = internals._sender;
  const raw = internals._socket;
  const usable =
    raw !== undefined &&
    raw !== null &&
    sender !== undefined &&
    sender._state === SENDER_IDLE &&
    Array.isArray(sender._queue) &&
    sender._queue.length === 0 &&
    // permessage-deflate would need the payload compressed per connection.
    (internals._extensions === undefined || Object.keys(internals._extensions).length === 0);
  return usable ? raw : null;
}

interface Batch {
  frames: Buffer[];
  /** Called once the batch was handed to the socket (the owner checks its backlog). */
  afterFlush: (() => void) | null;
}

const batches = new Map<WebSocket, Batch>();
let flushScheduled = false;

function writeBatch(socket: WebSocket, batch: Batch): void {
  if (socket.readyState !== WebSocket.OPEN) return;
  const raw = rawSocketOf(socket);
  if (raw === null) {
    for (const frame of batch.frames) socket.send(payloadOf(frame), { binary: false });
  } else if (batch.frames.length === 1) {
    raw.write(batch.frames[0]);
  } else {
    raw.cork();
    for (const frame of batch.frames) raw.write(frame);
    raw.uncork();
  }
  batch.afterFlush?.();
}

function flushAll(): void {
  flushScheduled = false;
  for (const [socket, batch] of batches) {
    batches.delete(socket);
    writeBatch(socket, batch);
  }
}

/**
 * Writes what is held for this socket now (before a close frame, or before a frame that
 * must go through `ws`).
 */
export function flushFrames(socket: WebSocket): void {
  const batch = batches.get(socket);
  if (batch === undefined) return;
  batches.delete(socket);
  writeBatch(socket, batch);
}

/** Forgets what is held for a socket that is being cut. */
export function discardFrames(socket: WebSocket): void {
  batches.delete(socket);
}

/**
 * Queues a prepared frame for an open socket; it is written at the end of this
 * event-loop turn together with the socket's other frames. Returns false when the
 * socket is not open.
 */
export function writePreparedFrame(socket: WebSocket, frame: PreparedFrame, afterFlush: (() => void) | null = null): boolean {
  if (socket.readyState !== WebSocket.OPEN) return false;
  let batch = batches.get(socket);
  if (batch === undefined) {
    batch = { frames: [], afterFlush };
    batches.set(socket, batch);
  }
  batch.frames.push(frame.wire);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
  return true;
}
