/**
 * Shared pieces of the one-node presence tests (presence.test.ts,
 * presence-events.test.ts): servers with presence on every channel or with channel rules
 * (a channels file in a temporary directory), quiet (no heartbeat, no rate limit, the HTTP
 * API on with API_KEY) and signing tokens with SECRET; clients anonymous or signed in,
 * closed after the test; subscribing; a join/leave event matcher; the presence action's
 * reply and its members in a comparable order. Not a test file (the runner takes only
 * *.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import type { ChannelRule } from '../../src/channels/rules.js';
import type { HandlerOptions } from '../../src/handler.js';
import { TestClient, type Frame } from './client.js';
import { startServer, type TestServer } from './server.js';

export const SECRET = 'presence-test-secret-of-at-least-32-bytes-long';
export const API_KEY = 'presence-test-api-key';
/** No heartbeat pings (extra frames), no rate limit. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, auth: { secret: SECRET }, apiKey: API_KEY };
export const WAIT_MS = 10_000;

export const RULES: ChannelRule[] = [
  { pattern: 'room.*', subscribe: ['*'], publish: ['*'], presence: true },
  { pattern: 'secret.*', subscribe: ['admin'], publish: ['admin'], presence: true },
  { pattern: 'plain.*', subscribe: ['*'], publish: ['*'] },
];

export async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, ...options });
  t.after(() => server.close());
  return server;
}

/** A server with presence on every channel (no channels file). */
export const startWithPresence = (t: TestContext): Promise<TestServer> => start(t, { presence: true });

/** A channels file holding `rules`, in a temporary directory removed after the test. */
export async function channelsFile(t: TestContext, rules: readonly ChannelRule[]): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'switchboard-presence-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'channels.json');
  await writeFile(path, JSON.stringify({ rules }));
  return path;
}

/** Connects; `user` null is anonymous, otherwise a token minted for that user id (and role). */
export async function connect(t: TestContext, server: TestServer, user: string | number | null = null, role: string | null = 'user'): Promise<TestClient> {
  const options = user === null ? {} : { headers: { Authorization: `Bearer ${await mintToken(server.handler.options.auth, { userId: user, role, ttlSeconds: 3600 })}` } };
  const client = await TestClient.connect(server.url, options);
  t.after(() => client.close());
  assert.equal(client.welcome.authenticated, user !== null);
  return client;
}

export const idOf = (client: TestClient): string => client.welcome.connection_id as string;

export async function subscribed(client: TestClient, channel: string): Promise<void> {
  const ack = await client.subscribe(channel);
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
}

/** Matches the `join` or `leave` event of one connection on one channel. */
export const isEvent = (action: 'join' | 'leave', channel: string, connectionId: string) => (frame: Frame) =>
  frame.action === action && frame.channel === channel && frame.connection_id === connectionId;

/** The reply to the presence action, checked to be a success for that channel. */
export async function presenceOf(client: TestClient, channel: string): Promise<Frame> {
  const reply = await client.request('presence', { channel });
  assert.equal(reply.success, true, `presence ${channel}: ${JSON.stringify(reply)}`);
  assert.equal(reply.action, 'presence');
  assert.equal(reply.channel, channel);
  return reply;
}

export type MemberRow = { connection_id: unknown; user_id: unknown };
/** Members as connection id and user id only, sorted by connection id. */
export const sortedMembers = (members: readonly MemberRow[]): MemberRow[] =>
  members.map(({ connection_id, user_id }) => ({ connection_id, user_id })).sort((a, b) => String(a.connection_id).localeCompare(String(b.connection_id)));

