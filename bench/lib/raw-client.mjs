// A WebSocket client over a raw TCP socket, cheap enough that the benchmark measures the
// servers and not the clients: it counts delivery frames by a byte prefix and decodes
// payloads only when asked (sampled connections, control traffic).
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';

const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/**
 * The Pusher app the bench starts Switchboard with in the Pusher scenario (bench/pusher.mjs):
 * its environment, and the key a `pusher` client puts in its path.
 */
export const PUSHER_BENCH_APP = { PUSHER_APP_ID: 'bench', PUSHER_APP_KEY: 'bench-key', PUSHER_APP_SECRET: 'bench-secret-0123456789abcdef' };

/** Per server kind: the upgrade path, the words of its protocol, and what a delivery looks like. */
export const PROTOCOLS = {
  switchboard: jsonProtocol(),
  // Switchboard's Pusher endpoint (protocol 7), as pusher-js speaks it; subscribe only (the publisher stays native).
  pusher: {
    path: () => `/app/${PUSHER_BENCH_APP.PUSHER_APP_KEY}?protocol=7&client=js&version=8.4.0`,
    handshake: async (client) => {
      await client.waitFor((text) => text.startsWith('{"event":"pusher:connection_established"'));
    },
    subscribe: async (client, channel) => {
      client.sendText(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
      const reply = await client.waitFor((text) => text.includes('"pusher_internal:subscription_succeeded"') || text.includes('"pusher:subscription_error"') || text.includes('"pusher:error"'));
      if (!reply.includes('"pusher_internal:subscription_succeeded"')) throw new Error(`Pusher subscribe refused: ${reply}`);
      return reply;
    },
    publishText: () => {
      throw new Error('a Pusher client publishes nothing in the bench');
    },
    // A native publish `{t, pad}` arrives as `{"event":"message","channel":…,"data":"<the message as JSON>"}`.
    deliveryPrefix: Buffer.from('{"event":"message"'),
    // No offsets on the Pusher wire.
    decode: (text) => ({ message: JSON.parse(JSON.parse(text).data), offset: undefined }),
    onControlText: (client, text) => {
      if (text.startsWith('{"event":"pusher:ping"')) client.sendText('{"event":"pusher:pong","data":{}}');
    },
  },
  'ws-loop': jsonProtocol(),
  'frame-once': jsonProtocol(),
  socketio: {
    path: (token) => `/socket.io/?EIO=4&transport=websocket${token ? `&token=${token}` : ''}`,
    // Engine.IO open packet '0{...}', then we connect the default namespace ('40') and wait for its '40{sid}'.
    handshake: async (client) => {
      await client.waitFor((text) => text.startsWith('0{'));
      client.sendText('40');
      await client.waitFor((text) => text.startsWith('40'));
    },
    subscribe: async (client, channel) => {
      client.sendText(`421${JSON.stringify(['subscribe', channel])}`);
      return client.waitFor((text) => text.startsWith('431'));
    },
    publishText: (channel, message) => `42${JSON.stringify(['message', { channel, message }])}`,
    deliveryPrefix: Buffer.from('42["message"'),
    // No history in this protocol: never an offset.
    decode: (text) => ({ message: JSON.parse(text.slice(2))[1].message, offset: undefined }),
    // Engine.IO heartbeat: the server sends '2', the client must answer '3'.
    onControlText: (client, text) => {
      if (text === '2') client.sendText('3');
    },
  },
};

function jsonProtocol() {
  return {
    path: (token) => (token ? `/?token=${token}` : '/'),
    handshake: async (client) => {
      await client.waitFor((text) => text.startsWith('{"action":"welcome"'));
    },
    // A refused subscribe (`{"type":"error","success":false,…,"action":"subscribe"}`, e.g. FORBIDDEN
    // under a channels file) fails the connection, and with it the run.
    subscribe: async (client, channel) => {
      client.sendText(JSON.stringify({ action: 'subscribe', data: { channel }, id: 1 }));
      const reply = await client.waitFor((text) => text.includes('"action":"subscribe"'));
      if (!reply.startsWith('{"success":true')) throw new Error(`subscribe to ${channel} refused: ${reply}`);
      return reply;
    },
    publishText: (channel, message) => JSON.stringify({ action: 'message', data: { channel, message } }),
    // A delivery starts with this prefix whatever follows: on a channel with history the
    // frame ends with `,"offset":N` (and `"message_sent"` acks do not match: the quote).
    deliveryPrefix: Buffer.from('{"action":"message"'),
    decode: (text) => {
      const frame = JSON.parse(text);
      return { message: frame.message, offset: frame.offset };
    },
    onControlText: () => undefined,
  };
}

function maskFrame(opcode, payload) {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, headerLength);
  for (let index = 0; index < length; index++) frame[headerLength + 4 + index] = payload[index] ^ mask[index & 3];
  return frame;
}

export class RawClient {
  /**
   * @param {{ port: number, kind: keyof PROTOCOLS, token?: string, decodeAll?: boolean, localAddress?: string }} options
   */
  constructor(options) {
    this.protocol = PROTOCOLS[options.kind];
    this.options = options;
    this.deliveries = 0;
    this.decodeAll = options.decodeAll ?? false;
    /**
     * Called, when decodeAll is set, with each delivered message's decoded `message` and
     * its `offset` (a number on a channel with history, undefined otherwise).
     */
    this.onMessage = null;
    /** Called, when set, with the text of every frame that is not a delivery (replies, presence events). */
    this.onControl = null;
    this.waiters = [];
    this.pending = null;
    this.upgraded = false;
    this.closed = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const { port, token, localAddress } = this.options;
      const socket = tcpConnect({ port, host: '127.0.0.1', ...(localAddress && { localAddress }) });
      this.socket = socket;
      socket.setNoDelay(true);
      const key = randomBytes(16).toString('base64');
      socket.once('connect', () => {
        socket.write(
          `GET ${this.protocol.path(token)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      let head = Buffer.alloc(0);
      const onData = (chunk) => {
        if (!this.upgraded) {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end === -1) return;
          const status = head.subarray(0, head.indexOf('\r\n')).toString();
          if (!status.includes(' 101 ')) {
            socket.destroy();
            reject(new Error(`handshake refused: ${status}`));
            return;
          }
          this.upgraded = true;
          const rest = head.subarray(end + 4);
          head = null;
          this.protocol
            .handshake(this)
            .then(() => resolve(this))
            .catch(reject);
          if (rest.length > 0) this.onBytes(rest);
          return;
        }
        this.onBytes(chunk);
      };
      socket.on('data', onData);
      socket.on('error', (error) => {
        if (!this.upgraded) reject(error);
      });
      socket.on('close', () => {
        this.closed = true;
      });
    });
  }

  onBytes(chunk) {
    let buffer = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    const prefix = this.protocol.deliveryPrefix;
    while (buffer.length - offset >= 2) {
      const opcode = buffer[offset] & 0x0f;
      let length = buffer[offset + 1] & 0x7f;
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
      const start = offset + headerLength;
      const end = start + length;
      offset = end;
      if (opcode === OP_TEXT) {
        const isDelivery = length >= prefix.length && buffer.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
        if (isDelivery) {
          this.deliveries++;
          if (this.decodeAll && this.onMessage !== null) {
            const { message, offset } = this.protocol.decode(buffer.toString('utf8', start, end));
            this.onMessage(message, offset);
          }
        } else {
          const text = buffer.toString('utf8', start, end);
          this.protocol.onControlText(this, text);
          if (this.onControl !== null) this.onControl(text);
          this.waiters = this.waiters.filter((waiter) => !(waiter.predicate(text) && (waiter.resolve(text), true)));
        }
      } else if (opcode === OP_PING) {
        this.socket.write(maskFrame(OP_PONG, buffer.subarray(start, end)));
      } else if (opcode === OP_CLOSE) {
        this.socket.end();
      }
    }
    this.pending = offset < buffer.length ? buffer.subarray(offset) : null;
  }

  waitFor(predicate, timeoutMs = 30_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a frame')), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
      });
    });
  }

  sendText(text) {
    this.socket.write(maskFrame(OP_TEXT, Buffer.from(text)));
  }

  /** Resolves with the server's reply (its text); rejects when the server refuses. */
  subscribe(channel) {
    return this.protocol.subscribe(this, channel);
  }

  publish(channel, message) {
    this.sendText(this.protocol.publishText(channel, message));
  }

  close() {
    this.socket.destroy();
  }
}

/** Runs `task` over `items` with at most `limit` at a time. */
export async function inBatches(items, limit, task) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]);
  });
  await Promise.all(workers);
}
