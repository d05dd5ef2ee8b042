/**
 * `switchboard start` with WS_WORKER_NUM > 1 and no Redis (SPEC §1, §6; issue 5): a
 * node:cluster primary forks workers that share one port, and relays messages between
 * them. A message published on any worker reaches every subscriber on every worker
 * exactly once and in order, `recipients_count` and `recipients` work cluster-wide, and
 * the HTTP API and /metrics answer for every worker. Crashes, stopping, configuration and
 * workers with Redis are in workers-lifecycle.test.ts.
 *
 * Everything here runs the built CLI (dist/cli/main.js) as real child processes, through
 * test/helpers/workers.ts: each test works in its own temp directory, and every
 * switchboard process whose working directory it is (the primary and its workers) is
 * SIGKILLed after the test, even when the test fails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientOptions } from 'ws';
import { mintToken } from '../../src/auth/tokens.js';
import { DEFAULTS } from '../../src/config/options.js';
import { isMessageOn, type TestClient } from '../helpers/client.js';
import { GENEROUS_MS, waitUntil } from '../helpers/cli.js';
import {
  TEST_TIMEOUT_MS,
  childrenOf,
  connect,
  connectAcross,
  drain,
  getStatus,
  httpBase,
  isOpen,
  messagesOn,
  nodeOf,
  publish,
  serverEnv,
  startCluster,
  subscribeAll,
} from '../helpers/workers.js';

// ---------------------------------------------------------------------------------------
// Several workers without Redis: the primary relays (SPEC §6)
// ---------------------------------------------------------------------------------------

test('with WS_WORKER_NUM=3 the primary runs three worker processes and clients land on more than one of them', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { cli, url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  assert.equal(childrenOf(cli.pid).length, 3, 'three worker processes');
  const clients = await connectAcross(t, url, 2);
  assert.ok(new Set(clients.map(nodeOf)).size >= 2);
  const ids = clients.map((client) => client.welcome.connection_id);
  assert.equal(new Set(ids).size, ids.length, `connection ids are unique across workers: ${ids.join(', ')}`);
});

test('with 3 workers and no Redis, 200 messages published on one worker reach every subscriber on every worker exactly once and in order', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.relay';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 3);
  await subscribeAll(clients, channel);
  const publisher = clients[0] as TestClient;
  const count = 200;
  // Sent back to back, not one at a time, so that ordering is really put to the test.
  const acks = await Promise.all(Array.from({ length: count }, (_unused, seq) => publisher.publish(channel, { seq })));
  for (const ack of acks) assert.equal(ack.action, 'message_sent', `ack: ${JSON.stringify(ack)}`);
  await drain(publisher, channel, clients, 'end');
  const expected = [...Array.from({ length: count }, (_unused, seq) => ({ seq })), { marker: 'end' }];
  for (const client of clients) {
    assert.deepEqual(messagesOn(client, channel), expected, `client on worker ${nodeOf(client)}: every message once, in publish order`);
  }
});

test('with 3 workers and no Redis, recipients_count in the publisher\'s ack counts the subscribers on every worker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.count';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 3);
  // One client that never subscribes: it must not count.
  const bystander = await connect(t, url);
  await subscribeAll(clients, channel);
  for (const publisher of clients) {
    const ack = await publish(publisher, channel, { from: publisher.welcome.connection_id });
    assert.equal(ack.recipients_count, clients.length, `published on worker ${nodeOf(publisher)}`);
  }
  await drain(clients[0] as TestClient, channel, clients, 'end');
  assert.deepEqual(bystander.received(isMessageOn(channel)), [], 'a client that did not subscribe receives nothing');
});

test('with 3 workers and no Redis, a subscriber that disconnects from another worker stops counting in recipients_count', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.leave';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 2);
  await subscribeAll(clients, channel);
  const publisher = clients[0] as TestClient;
  const leaver = clients.find((client) => nodeOf(client) !== nodeOf(publisher));
  assert.ok(leaver !== undefined);
  assert.equal((await publish(publisher, channel, 'before')).recipients_count, clients.length);
  leaver.close();
  await leaver.closed;
  // The leave reaches the primary asynchronously: poll.
  let last: unknown = null;
  await waitUntil(
    async () => {
      last = (await publish(publisher, channel, 'probe')).recipients_count;
      return last === clients.length - 1;
    },
    GENEROUS_MS,
    `recipients_count to drop to ${clients.length - 1} (last: ${String(last)})`,
  );
});

test('with 3 workers and no Redis, a message with recipients reaches only that user\'s connections on every worker, and recipients_count counts them all', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.private';
  const secret = 'workers-test-secret-of-at-least-32-bytes!';
  const auth = { ...DEFAULTS.auth, secret };
  const tokenFor = (userId: number): Promise<string> => mintToken(auth, { userId, role: 'user', ttlSeconds: 3600 });
  const authAs = async (userId: number): Promise<ClientOptions> => ({ headers: { Authorization: `Bearer ${await tokenFor(userId)}` } });
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3', TOKEN_SECRET: secret }));

  const publisher = await connect(t, url, await authAs(7));
  // Alice (42) on at least two workers, one of them not the publisher's.
  const alice = await connectAcross(t, url, 2, await authAs(42), (clients) => clients.some((client) => nodeOf(client) !== nodeOf(publisher)));
  const bob = await connectAcross(t, url, 2, await authAs(43));
  const anonymous = await connectAcross(t, url, 2);
  for (const client of alice) assert.equal(client.welcome.user_id, 42);
  for (const client of bob) assert.equal(client.welcome.user_id, 43);
  const everyone = [publisher, ...alice, ...bob, ...anonymous];
  await subscribeAll(everyone, channel);

  // User ids compare as strings: a number and its string both address user 42.
  for (const recipients of [[42], ['42']]) {
    const ack = await publish(publisher, channel, { for: recipients }, { recipients });
    assert.equal(ack.recipients_count, alice.length, `recipients ${JSON.stringify(recipients)}: alice's connections on every worker`);
  }
  await drain(publisher, channel, everyone, 'end');
  for (const client of alice) {
    assert.deepEqual(messagesOn(client, channel), [{ for: [42] }, { for: ['42'] }, { marker: 'end' }], `alice on worker ${nodeOf(client)}`);
  }
  for (const client of [publisher, ...bob, ...anonymous]) {
    assert.deepEqual(messagesOn(client, channel), [{ marker: 'end' }], `${String(client.welcome.user_id)} on worker ${nodeOf(client)} gets only the broadcast`);
  }
});

// ---------------------------------------------------------------------------------------
// The HTTP API and /metrics answer for every worker (SPEC §7)
// ---------------------------------------------------------------------------------------

test('with 3 workers and no Redis, the HTTP API answers for every worker: stats, channels, members, publish and disconnect', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const secret = 'workers-api-test-secret-of-at-least-32-bytes';
  const auth = { secret, publicKey: null, issuer: null, audience: null };
  const key = 'workers-api-key';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3', TOKEN_SECRET: secret, WS_API_KEY: key }));
  const token = await mintToken(auth, { userId: 42, role: 'user', ttlSeconds: 3600 });
  // Clients of user 42 on at least two workers, and anonymous ones too.
  const users = await connectAcross(t, url, 2, { headers: { Authorization: `Bearer ${token}` } });
  const anonymous = await connectAcross(t, url, 2);
  await subscribeAll([...users, ...anonymous], 'chat.api');
  const api = async (path: string, body?: object): Promise<Record<string, unknown>> => {
    const response = await fetch(`${httpBase(url).replace(/\/$/, '')}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${key}` },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    assert.equal(response.status, 200, `${path}: ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const total = users.length + anonymous.length;

  // Asked several times: whichever worker takes the request answers for all three.
  for (let round = 0; round < 3; round++) {
    const stats = await api('/api/stats');
    assert.equal(stats.connections, total);
    assert.equal((stats.nodes as unknown[]).length, 3);
    assert.deepEqual(await api('/api/channels'), { channels: [{ channel: 'chat.api', subscribers: total }] });
  }
  const members = (await api('/api/channels/chat.api')).members as Array<{ connection_id: string; user_id: string | number | null; node: string }>;
  assert.deepEqual(members.map((member) => member.connection_id).sort(), [...users, ...anonymous].map((client) => String(client.welcome.connection_id)).sort());
  assert.equal(members.filter((member) => member.user_id === 42).length, users.length);

  assert.deepEqual(await api('/api/publish', { channel: 'chat.api', message: 'from the backend' }), { success: true, recipients_count: total });
  for (const client of [...users, ...anonymous]) await client.next((frame) => frame.action === 'message' && frame.message === 'from the backend');

  assert.deepEqual(await api('/api/disconnect', { user_id: 42 }), { success: true, disconnected: users.length });
  for (const client of users) {
    const close = await client.closed;
    assert.equal(close.code, 1000);
    assert.equal(close.reason, 'disconnected by server');
  }
  assert.ok(anonymous.every(isOpen), 'the other connections stay open');
});

test('with 2 workers and no Redis, a numeric user id and a string one of the same digits show as 42 and "42" in welcome and in /api/channels/NAME on every worker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const secret = 'workers-user-id-secret-of-at-least-32-bytes';
  const auth = { secret, publicKey: null, issuer: null, audience: null };
  const key = 'workers-user-id-key';
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '2', TOKEN_SECRET: secret, WS_API_KEY: key }));
  const as = async (userId: string | number): Promise<ClientOptions> => ({ headers: { Authorization: `Bearer ${await mintToken(auth, { userId, role: 'user', ttlSeconds: 3600 })}` } });
  // Each user on both workers: whichever worker answers, the other's members come through the relay.
  const numeric = await connectAcross(t, url, 2, await as(42));
  const text = await connectAcross(t, url, 2, await as('42'));
  for (const client of numeric) assert.equal(client.welcome.user_id, 42);
  for (const client of text) assert.equal(client.welcome.user_id, '42');
  await subscribeAll([...numeric, ...text], 'chat.ids');

  const expected = [...numeric.map((client) => [client.welcome.connection_id, 42]), ...text.map((client) => [client.welcome.connection_id, '42'])].sort();
  for (let round = 0; round < 4; round++) {
    const response = await fetch(`${httpBase(url).replace(/\/$/, '')}/api/channels/chat.ids`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(response.status, 200);
    const { members } = (await response.json()) as { members: Array<{ connection_id: string; user_id: unknown }> };
    assert.deepEqual(members.map((member) => [member.connection_id, member.user_id]).sort(), expected, `round ${round}`);
  }
  // Recipients still compare as strings: '42' addresses both users' connections on both workers.
  const ack = await publish(text[0]!, 'chat.ids', 'to 42', { recipients: ['42'] });
  assert.equal(ack.recipients_count, numeric.length + text.length);
});

test('with 3 workers, /metrics on the shared port answers for all workers on every scrape', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { url } = await startCluster(t, serverEnv({ WS_WORKER_NUM: '3' }));
  const clients = await connectAcross(t, url, 3);
  await subscribeAll(clients, 'chat.metrics');
  await publish(clients[0] as TestClient, 'chat.metrics', 'counted');
  await drain(clients[0] as TestClient, 'chat.metrics', clients, 'counted');
  const sample = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  // A fresh connection each time, so that successive scrapes reach successive workers.
  for (let scrape = 0; scrape < 4; scrape++) {
    const answer = await getStatus(`${httpBase(url).replace(/\/$/, '')}/metrics`);
    assert.equal(answer.status, 200);
    assert.equal(sample(answer.body, 'switchboard_connections'), clients.length, 'connections of every worker');
    // Two messages: 'counted' and drain()'s marker.
    assert.equal(sample(answer.body, 'switchboard_messages_published_total'), 2);
    assert.equal(sample(answer.body, 'switchboard_deliveries_total'), 2 * clients.length, 'one delivery per subscriber and message, on whichever worker');
    assert.equal(sample(answer.body, 'switchboard_ready'), 1);
  }
});
