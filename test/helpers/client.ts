/**
 * A real WebSocket client (the `ws` package) that records every frame it receives, so
 * tests can wait for a specific frame and also assert that nothing else arrived.
 */
import { WebSocket, type ClientOptions } from 'ws';

export type Frame = Record<string, unknown>;

export interface CloseInfo {
  code: number;
  reason: string;
}

const DEFAULT_WAIT_MS = 5000;

export class TestClient {
  readonly socket: WebSocket;
  /** Every frame received so far, parsed. */
  readonly frames: Frame[] = [];
  readonly closed: Promise<CloseInfo>;
  /** Resolves when the socket is open (rejects on a refused handshake). */
  readonly opened: Promise<void>;
  private waiters: Array<{ predicate: (frame: Frame) => boolean; resolve: (frame: Frame) => void; from: number }> = [];
  private cursor = 0;
  private nextId = 1;

  constructor(url: string, options: ClientOptions = {}) {
    this.socket = new WebSocket(url, options);
    this.socket.on('message', (data, isBinary) => {
      const frame = JSON.parse(isBinary ? '{}' : (data as Buffer).toString('utf8')) as Frame;
      this.frames.push(frame);
      const index = this.frames.length - 1;
      this.waiters = this.waiters.filter((waiter) => {
        if (index >= waiter.from && waiter.predicate(frame)) {
          waiter.resolve(frame);
          return false;
        }
        return true;
      });
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
      this.socket.once('unexpected-response', (_request, response) => {
        reject(new Error(`handshake refused with HTTP ${response.statusCode}`));
      });
    });
    // Errors after open are reported through `closed`.
    this.socket.on('error', () => undefined);
  }

  /** Connects and waits for the welcome frame. */
  static async connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const client = new TestClient(url, options);
    await client.opened;
    await client.next((frame) => frame.action === 'welcome');
    return client;
  }

  get welcome(): Frame {
    const frame = this.frames.find((candidate) => candidate.action === 'welcome');
    if (frame === undefined) throw new Error('no welcome frame yet');
    return frame;
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(data, { binary: options.binary ?? typeof data !== 'string' });
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  /**
   * Waits for the next frame (after those already consumed by `next`) that matches.
   * Rejects after `timeoutMs`.
   */
  next(predicate: (frame: Frame) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    for (let index = this.cursor; index < this.frames.length; index++) {
      const frame = this.frames[index] as Frame;
      if (predicate(frame)) {
        this.cursor = index + 1;
        return Promise.resolve(frame);
      }
    }
    const from = this.frames.length;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.resolve !== done);
        reject(new Error(`no matching frame within ${timeoutMs} ms; received: ${JSON.stringify(this.frames.slice(this.cursor))}`));
      }, timeoutMs);
      const done = (frame: Frame): void => {
        clearTimeout(timer);
        this.cursor = this.frames.indexOf(frame) + 1;
        resolve(frame);
      };
      this.waiters.push({ predicate, resolve: done, from });
    });
  }

  /** Sends a request with a fresh id and waits for the reply (ack or error) carrying that id. */
  async request(action: string, data?: unknown): Promise<Frame> {
    const id = this.nextId++;
    this.send(data === undefined ? { action, id } : { action, data, id });
    return this.next((frame) => frame.id === id);
  }

  async subscribe(channel: string): Promise<Frame> {
    return this.request('subscribe', { channel });
  }

  async publish(channel: string, message: unknown, extra: Record<string, unknown> = {}): Promise<Frame> {
    return this.request('message', { channel, message, ...extra });
  }

  /** Frames received so far that match. */
  received(predicate: (frame: Frame) => boolean): Frame[] {
    return this.frames.filter(predicate);
  }

  close(code = 1000): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close(code);
  }
}

export const isMessageOn = (channel: string) => (frame: Frame) => frame.action === 'message' && frame.channel === channel;

/** Waits until `condition` holds, polling; rejects after `timeoutMs`. For state that has no event to wait on. */
export async function eventually(condition: () => boolean, timeoutMs = DEFAULT_WAIT_MS, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A round trip that proves every frame sent before it was processed. */
export async function settle(client: TestClient): Promise<void> {
  const reply = await client.request('ping');
  if (reply.action !== 'pong') throw new Error(`expected pong, got ${JSON.stringify(reply)}`);
}
