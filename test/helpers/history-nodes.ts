/**
 * Shared pieces of the history tests across nodes (history-redis.test.ts,
 * history-redis-race.test.ts): in-process nodes sharing a real redis-server with history
 * on every channel (quiet: no heartbeat, no rate limit, the HTTP API on with API_KEY),
 * clients closed after the test, a subscribe whose ack must carry the epoch and offset,
 * and the messages and offsets a client received. Not a test file (the runner takes only
 * *.test.ts).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { HandlerOptions } from '../../src/handler.js';
import { TestClient, isMessageOn, type Frame } from './client.js';
import type { TestRedis } from './redis.js';
import { CHANNEL, startNode } from './redis-nodes.js';
import type { TestServer } from './server.js';

export const API_KEY = 'history-redis-test-api-key';
/** No heartbeat pings among the frames, no rate limit, the HTTP API on, history on every channel. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY, history: { size: 10_000, ttl: 3600 } };

/** A node sharing `redis`, with history on every channel, closed after the test. */
export async function historyNode(t: TestContext, redis: TestRedis, options: HandlerOptions = {}): Promise<TestServer> {
  return startNode(t, redis, { ...QUIET, ...options });
}

export async function client(t: TestContext, url: string): Promise<TestClient> {
  const connected = await TestClient.connect(url);
  t.after(() => connected.close());
  return connected;
}

export async function subscribed(subscriber: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await subscriber.request('subscribe', { channel, ...extra });
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.epoch, 'string', JSON.stringify(ack));
  assert.equal(typeof ack.offset, 'number', JSON.stringify(ack));
  return ack;
}

export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_unused, index) => from + index);
export const messagesOf = (subscriber: TestClient, channel = CHANNEL): Frame[] => subscriber.received(isMessageOn(channel));
export const offsetsOf = (subscriber: TestClient, channel = CHANNEL): unknown[] => messagesOf(subscriber, channel).map((frame) => frame.offset);
