/**
 * Shared pieces of the one-node history tests (history.test.ts, history-access.test.ts):
 * servers with or without history (quiet: no heartbeat, no rate limit, the HTTP API on
 * with an API key), channel rules with and without history, clients closed after the test,
 * subscribing, publishing from the application, reading history, the offsets and messages
 * of frames, a refusal's error frame, and the HTTP API. Not a test file (the runner takes
 * only *.test.ts).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { ChannelRule } from '../../src/channels/rules.js';
import type { ErrorCode } from '../../src/codes.js';
import type { HandlerOptions } from '../../src/handler.js';
import { TestClient, type Frame } from './client.js';
import { apiRequest } from './http.js';
import { startServer, type TestServer } from './server.js';

const API_KEY = 'history-test-api-key';
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY };
export const WAIT_MS = 10_000;

export const RULES: ChannelRule[] = [
  { pattern: 'feed.*', subscribe: ['*'], publish: ['*'], history: { size: 100, ttl: 3600 } },
  { pattern: 'admin.*', subscribe: ['admin'], publish: ['admin'], history: { size: 100, ttl: 3600 } },
  { pattern: 'plain.*', subscribe: ['*'], publish: ['*'] },
];

export async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, ...options });
  t.after(() => server.close());
  return server;
}

/** A server with history on every channel (no channels file). */
export const startWithHistory = (t: TestContext, size = 100, ttl = 3600): Promise<TestServer> => start(t, { history: { size, ttl } });

export async function connect(t: TestContext, server: TestServer): Promise<TestClient> {
  const client = await TestClient.connect(server.url);
  t.after(() => client.close());
  return client;
}

export async function subscribed(client: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await client.request('subscribe', { channel, ...extra });
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  return ack;
}

/** Publishes `count` messages from the application, `${prefix}${i}` for i = 1..count; returns their offsets. */
export async function publishMany(server: TestServer, channel: string, count: number, prefix = 'm'): Promise<number[]> {
  const offsets: number[] = [];
  for (let index = 1; index <= count; index++) {
    const { position } = await server.handler.publishMessage(channel, `${prefix}${index}`);
    assert.ok(position !== null, 'a message on a history channel has a position');
    offsets.push(position.offset);
  }
  return offsets;
}

export async function historyOf(client: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const reply = await client.request('history', { channel, ...extra });
  assert.equal(reply.success, true, `history ${channel}: ${JSON.stringify(reply)}`);
  assert.equal(reply.action, 'history');
  assert.equal(reply.channel, channel);
  return reply;
}

export const offsetsIn = (frames: readonly Frame[]): unknown[] => frames.map((frame) => frame.offset);
export const messagesIn = (frames: readonly Frame[]): unknown[] => frames.map((frame) => frame.message);

export function assertRefused(reply: Frame, code: ErrorCode, action: string): void {
  assert.equal(reply.type, 'error', `expected ${code}: ${JSON.stringify(reply)}`);
  assert.equal(reply.success, false);
  assert.equal(reply.code, code);
  assert.equal(reply.action, action);
  assert.equal(typeof reply.error, 'string');
  assert.notEqual(reply.error, '');
}

/** A request to the server's HTTP API with API_KEY. */
export const api = (server: TestServer, path: string, method = 'GET', body?: unknown) => apiRequest(`${server.httpUrl}${path}`, API_KEY, method, body);
