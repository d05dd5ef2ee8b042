/**
 * Shared pieces of the client SDK tests (test/client/*.test.ts): a real server on a chosen
 * port (to restart one on the same port), clients of the SDK closed before their servers,
 * waiting for an SDK event, recording what a client went through, a raw `ws` server for the
 * misbehaving-server tests, and the HTTP API's disconnect. Not a test file.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { Client, type SwitchboardError } from '../../client/src/index.js';
import type { Emitter } from '../../client/src/emitter.js';
import type { ClientOptions, State } from '../../client/src/types.js';
import { WebSocketHandler, type HandlerOptions } from '../../src/handler.js';
import { createServer } from '../../src/http/server.js';
import { apiRequest, type HttpAnswer } from './http.js';
import type { TestServer } from './server.js';

export const WAIT_MS = 10_000;
export const API_KEY = 'sdk-test-api-key';
export const SECRET = 'sdk-test-secret-of-at-least-32-bytes-long!!';
/** Fast reconnects, so that the suite stays quick. */
export const FAST = { minDelay: 20, maxDelay: 200 };
/** No heartbeat pings in the way, no rate limit, the HTTP API on. */
export const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY };

/** `ws`'s WebSocket, as a Node 20 application passes it to the client. */
export const NodeWebSocket = WebSocket;

/**
 * Undoes what a test set up, last first, after it: clients are closed before the servers
 * they talk to (a server closed first would send them reconnecting for nothing).
 */
export class Scope {
  private readonly undo: Array<() => unknown> = [];

  constructor(t: TestContext) {
    t.after(async () => {
      for (const step of this.undo.reverse()) await step();
    });
  }

  defer(step: () => unknown): void {
    this.undo.push(step);
  }

  /** A Switchboard server on 127.0.0.1 (port 0: any free one); `setup` registers hooks and actions. */
  async server(options: HandlerOptions = {}, setup?: (handler: WebSocketHandler) => void, port = 0): Promise<TestServer> {
    const handler = new WebSocketHandler({ shutdownTimeout: 1, logger: pino({ level: 'silent' }), ...QUIET, ...options });
    setup?.(handler);
    const server = createServer({ host: '127.0.0.1', port }, handler);
    const address = await server.listen();
    const running: TestServer = {
      server,
      handler,
      url: address.url,
      httpUrl: `http://127.0.0.1:${address.port}`,
      port: address.port,
      close: () => server.close(),
    };
    this.defer(() => server.close());
    return running;
  }

  /** A client of the SDK (fast reconnects, `ws` as its WebSocket), closed after the test. */
  client(url: string, options: ClientOptions = {}): Client {
    const client = new Client(url, { WebSocket: NodeWebSocket, reconnect: FAST, ...options });
    this.defer(() => client.close());
    return client;
  }

  /** A raw `ws` server on 127.0.0.1, for the tests that need a server that misbehaves. */
  async rawServer(): Promise<{ wss: WebSocketServer; url: string }> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    this.defer(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of wss.clients) socket.terminate();
          wss.close(() => resolve());
        }),
    );
    const { port } = wss.address() as { port: number };
    return { wss, url: `ws://127.0.0.1:${port}/` };
  }
}

/**
 * The next `event` from `emitter` whose value matches; rejects after `timeoutMs`. Only
 * events emitted after the call count.
 */
export function next<E, K extends keyof E>(emitter: Emitter<E>, event: K, predicate: (value: E[K]) => boolean = () => true, timeoutMs = WAIT_MS): Promise<E[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching '${String(event)}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = emitter.on(event, (value) => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/** Waits until the client is in `state` (at once when it already is). */
export async function reach(client: Client, state: State, timeoutMs = WAIT_MS): Promise<void> {
  if (client.state === state) return;
  await next(client, 'state', (value) => value === state, timeoutMs);
}

/** What a client went through: its states in order, its errors, its disconnects. */
export interface Trace {
  states: State[];
  errors: SwitchboardError[];
  disconnects: Array<{ code: number; reason: string }>;
}

export function record(client: Client): Trace {
  const seen: Trace = { states: [], errors: [], disconnects: [] };
  client.on('state', (state) => seen.states.push(state));
  client.on('error', (error) => seen.errors.push(error));
  client.on('disconnected', (close) => seen.disconnects.push(close));
  return seen;
}

/** Cuts a connection off from the server side, with POST /api/disconnect (README, HTTP API). */
export async function disconnectViaApi(server: TestServer, connectionId: string | null): Promise<HttpAnswer> {
  assert.ok(connectionId !== null, 'the client is connected');
  return apiRequest(`${server.httpUrl}/api/disconnect`, API_KEY, 'POST', { connection_id: connectionId });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and the function that settles it: to hold a token function until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
