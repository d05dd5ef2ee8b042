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

  /** `payload`: the frame's text, or its UTF-8 bytes (as they arrive from another node). */
  constructor(payload: string | Buffer) {
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
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
    if (typeof payload === 'string') wire.write(payload, headerLength, 'utf8');
    else payload.copy(wire, headerLength);
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

/** Limits a FrameBatch watches on behalf of its connection. */
export interface BacklogLimit {
  /** Bytes queued here plus bytes `ws` and the kernel have not sent yet. */
  maxBytes: number;
  /** Called when the backlog passes `maxBytes` (the connection closes as a slow consumer). */
  onOverflow: () => void;
}

/**
 * The frames waiting for one socket until the end of the event-loop turn. Each
 * connection owns one for its whole life, so queueing allocates nothing but the
 * array slot.
 */
export class FrameBatch {
  private frames: Buffer[] = [];
  private pendingBytes = 0;
  private queued = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly limit: BacklogLimit | null = null,
  ) {
    // ws closes a socket itself too (answering the peer's close frame, or 1009): whatever
    // is queued must go out before its close frame, never be dropped after it.
    if (typeof socket.close === 'function') {
      const close = socket.close.bind(socket);
      socket.close = (code?: number, reason?: string | Buffer): void => {
        this.flush();
        close(code, reason);
      };
    }
  }

  /** Queues a frame; returns false when the socket is not open. */
  push(frame: PreparedFrame): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    this.frames.push(frame.wire);
    this.pendingBytes += frame.wire.length;
    if (!this.queued) {
      this.queued = true;
      dirty.push(this);
      scheduleFlush();
    }
    // A burst that fills a whole backlog's worth within one turn is written at once rather
    // than held here: memory stays bounded, and the kernel, not this queue, tells whether
    // the client keeps up (the check after every write).
    if (this.limit !== null && this.pendingBytes >= this.limit.maxBytes) this.flush();
    return true;
  }

  /** Writes what is queued now. */
  flush(): void {
    if (this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.pendingBytes = 0;
    this.write(frames);
  }

  /** Forgets what is queued: for a socket being cut, or a slow consumer about to be closed. */
  discard(): void {
    this.frames = [];
    this.pendingBytes = 0;
  }

  private write(frames: Buffer[]): void {
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return;
    const raw = rawSocketOf(socket);
    if (raw === null) {
      for (const frame of frames) socket.send(payloadOf(frame), { binary: false });
    } else if (frames.length === 1) {
      raw.write(frames[0]);
    } else {
      raw.cork();
      try {
        for (const frame of frames) raw.write(frame);
      } finally {
        raw.uncork();
      }
    }
    if (this.limit !== null && socket.bufferedAmount > this.limit.maxBytes) this.limit.onOverflow();
  }

  /** Called at the end of the turn by flushSome. */
  flushQueued(): void {
    this.queued = false;
    this.flush();
  }
}

/**
 * Sockets written per event-loop turn at most. A fan-out to 100,000 subscribers is
 * written over several turns, so timers, new connections and other clients' frames are
 * served in between instead of waiting for the whole write-out.
 */
export const FLUSH_CHUNK = 4096;

/** Batches with frames queued, in the order they were first queued. */
let dirty: FrameBatch[] = [];
let flushScheduled = false;

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushSome);
}

function flushSome(): void {
  flushScheduled = false;
  const batches = dirty;
  const end = Math.min(batches.length, FLUSH_CHUNK);
  // Batches queued while flushing go to a fresh list, after the ones still waiting here.
  dirty = end < batches.length ? batches.slice(end) : [];
  for (let index = 0; index < end; index++) {
    const batch = batches[index] as FrameBatch;
    try {
      batch.flushQueued();
    } catch (error) {
      // One broken socket must not keep the others from their frames, nor end the process.
      batch.discard();
      process.emitWarning(`switchboard: writing to a socket failed: ${String(error)}`);
    }
  }
  if (dirty.length > 0) scheduleFlush();
}
