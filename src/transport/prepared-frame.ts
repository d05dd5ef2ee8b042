/**
 * Frame once, write many (the fan-out hot path).
 *
 * `ws` frames every `send()` on its own: option handling, a header allocation and one
 * or two socket writes per subscriber and message. Here a message delivered to N
 * sockets is framed once (header + payload in one Buffer) and the same bytes are queued
 * on every socket's FrameBatch.
 */

const OPCODE_TEXT = 0x01;
/** A ping control frame (RFC 6455 §5.5.2): the heartbeat's, queued with the other frames. */
export const OPCODE_PING = 0x09;

/** The payload of a complete unmasked frame: what follows its 2-, 4- or 10-byte header. */
export function payloadOf(wire: Buffer): Buffer {
  const length = (wire[1] as number) & 0x7f;
  return wire.subarray(length < 126 ? 2 : length === 126 ? 4 : 10);
}

export class PreparedFrame {
  /** The whole frame as it goes on the wire. */
  readonly wire: Buffer;

  /**
   * `payload`: the frame's text, or its UTF-8 bytes (as they arrive from another node).
   * `opcode`: text, or OPCODE_PING for a ping (whose payload must stay under 126 bytes).
   */
  constructor(payload: string | Buffer, opcode = OPCODE_TEXT) {
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const wire = Buffer.allocUnsafe(headerLength + length);
    wire[0] = 0x80 | opcode; // FIN + opcode, unmasked (RFC 6455 §5.2: servers never mask)
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
