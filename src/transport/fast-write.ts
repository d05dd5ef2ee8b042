/**
 * The only module that reaches below `ws`'s public API (which is why package.json pins
 * `ws` to one minor version). Frames already built are written straight to the TCP
 * socket under `ws`, several in one writev, when `ws` has nothing of its own in flight
 * for that socket. When the internals are not what we expect (a compressed connection,
 * a send `ws` has queued, another `ws` version) each payload goes through `socket.send()`
 * instead, which `ws` orders after whatever it holds, so the order of frames is kept
 * either way.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { OPCODE_PING, payloadOf } from './prepared-frame.js';

/** The internals of `ws` 8.23 we rely on, checked at run time before every write. */
interface WsInternals {
  _socket?: Duplex | null;
  _sender?: { _state?: number; _queue?: unknown[] };
  _extensions?: Record<string, unknown>;
}

/** `DEFAULT` in ws/lib/sender.js: not deflating, not waiting for a Blob's bytes. */
const SENDER_IDLE = 0;

/** How a write went out: straight to the TCP socket, or through `socket.send()`. */
export type WritePath = 'fast' | 'fallback';

/** The TCP socket under `socket` when bytes written to it now cannot overtake a frame of ws's; else null. */
export function rawSocketOf(socket: WebSocket): Duplex | null {
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

/** Writes complete unmasked frames to `socket`, in order. */
export function writeFrames(socket: WebSocket, frames: readonly Buffer[]): WritePath {
  const raw = rawSocketOf(socket);
  if (raw === null) {
    for (const frame of frames) {
      if (((frame[0] as number) & 0x0f) === OPCODE_PING) socket.ping(payloadOf(frame));
      else socket.send(payloadOf(frame), { binary: false });
    }
    return 'fallback';
  }
  if (frames.length === 1) {
    raw.write(frames[0]);
  } else {
    raw.cork();
    try {
      for (const frame of frames) raw.write(frame);
    } finally {
      raw.uncork();
    }
  }
  return 'fast';
}
