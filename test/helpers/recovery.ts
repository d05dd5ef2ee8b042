/**
 * Shared pieces of the one-node recovery tests (recovery.test.ts, recovery-race.test.ts):
 * a server with history on every channel (quiet: no heartbeat, no rate limit, the HTTP
 * API on with API_KEY), a client closed after the test, and a subscribe whose ack is
 * checked. Not a test file (the runner takes only *.test.ts).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { HandlerOptions } from '../../src/handler.js';
import { TestClient, type Frame } from './client.js';
import { startServer, type TestServer } from './server.js';

export const API_KEY = 'recovery-test-api-key';
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY };

/** A server with history (size 100, ttl 3600 unless `options` says otherwise), closed after the test. */
export async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, history: { size: 100, ttl: 3600 }, ...options });
  t.after(() => server.close());
  return server;
}

export async function connect(t: TestContext, server: TestServer): Promise<TestClient> {
  const client = await TestClient.connect(server.url);
  t.after(() => client.close());
  return client;
}

export async function subscribed(client: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await client.request('subscribe', { channel, ...extra });
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  assert.equal(ack.action, 'subscribe');
  assert.equal(ack.channel, channel);
  return ack;
}
