/**
 * A WebSocket client written by hand over a raw TCP socket, for peers that a real
 * client library would never be: one that stops reading (a slow consumer) or that
 * never answers anything (a dead peer). Only what those tests need: the handshake,
 * masked text frames out, unfragmented frames in.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Frame } from './client.js';

const DEFAULT_WAIT_MS = 5000;
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455 §1.3

export const Opcode = { TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

/** Encodes one client frame (FIN set, masked as RFC 6455 §5.3 requires of clients). */
export function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.alloc(headerLength + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, headerLength);
  for (let index = 0; index < length; index++) {
    frame[headerLength + 4 + index] = (payload[index] as number) ^ (mask[index % 4] as number);
  }
  return frame;
}

/** Splits complete server frames off the front of `buffer`; returns them and the rest. */
function decodeServerFrames(buffer: Buffer): { frames: RawFrame[]; rest: Buffer } {
  const frames: RawFrame[] = [];
  let offset = 0;
  while (buffer.length - offset >= 2) {
    const opcode = (buffer[offset] as number) & 0x0f;
    let length = (buffer[offset + 1] as number) & 0x7f;
    let headerLength = 2;
    if (length === 126) {
      if (buffer.length - offset < 4) break;
      length = buffer.readUInt16BE(offset + 2);
      headerLength = 4;
    } else if (length === 127) {
      if (buffer.length - offset < 10) break;
      length = Number(buffer.readBigUInt64BE(offset + 2));
      headerLength = 10;
    }
    if (buffer.length - offset < headerLength + length) break;
    frames.push({ opcode, payload: buffer.subarray(offset + headerLength, offset + headerLength + length) });
    offset += headerLength + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

export class RawWebSocket {
  /** Every frame received so far (while reading), in order. */
  readonly frames: RawFrame[] = [];
  private buffer: Buffer;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: Socket,
    leftover: Buffer,
  ) {
    this.buffer = leftover;
    this.consume();
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.consume();
    });
  }

  /**
   * Opens a TCP connection to 127.0.0.1:`port` and performs the opening handshake by hand.
   * Rejects when the server answers anything but 101 with a valid Sec-WebSocket-Accept.
   */
  static connect(port: number, path = '/', headers: Record<string, string> = {}): Promise<RawWebSocket> {
    const key = randomBytes(16).toString('base64');
    const expectedAccept = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      let received = Buffer.alloc(0);
      const fail = (error: Error): void => {
        socket.destroy();
        reject(error);
      };
      const onData = (chunk: Buffer): void => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        // Stop the flow before handing the socket over, so no byte after the head is lost.
        socket.pause();
        socket.off('data', onData);
        socket.off('error', fail);
        const head = received.subarray(0, end).toString('latin1');
        const [statusLine = '', ...headerLines] = head.split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(statusLine)) return fail(new Error(`handshake refused: ${statusLine}`));
        const accept = headerLines.find((line) => line.toLowerCase().startsWith('sec-websocket-accept:'));
        if (accept?.slice(accept.indexOf(':') + 1).trim() !== expectedAccept) return fail(new Error('bad Sec-WebSocket-Accept'));
        const client = new RawWebSocket(socket, received.subarray(end + 4));
        socket.resume();
        resolve(client);
      };
      socket.on('data', onData);
      socket.once('error', fail);
      socket.once('connect', () => {
        const lines = [
          `GET ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
          ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
        ];
        socket.write(lines.join('\r\n') + '\r\n\r\n');
      });
      // Errors after the handshake (a reset when the server cuts us) are expected.
      socket.on('error', () => undefined);
    });
  }

  sendText(text: string): void {
    this.socket.write(encodeClientFrame(Opcode.TEXT, Buffer.from(text, 'utf8')));
  }

  send(frame: unknown): void {
    this.sendText(JSON.stringify(frame));
  }

  /** Waits for a text frame, received since the connection opened, whose JSON matches. */
  async nextJson(predicate: (frame: Frame) => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const frame of this.frames) {
        if (frame.opcode !== Opcode.TEXT) continue;
        const parsed = JSON.parse(frame.payload.toString('utf8')) as Frame;
        if (predicate(parsed)) return parsed;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no matching frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Stops reading from the socket for good: the kernel buffers fill and the server's backlog grows. */
  stopReading(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private consume(): void {
    const { frames, rest } = decodeServerFrames(this.buffer);
    this.buffer = Buffer.from(rest);
    if (frames.length === 0) return;
    this.frames.push(...frames);
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
