/**
 * The HTTP API (SPEC §7) across a cluster: nodes that share one real redis-server answer
 * for the whole cluster. POST /api/publish reaches subscribers on every node; /api/stats,
 * /api/channels[/NAME] count and list every node's connections; POST /api/disconnect
 * closes matching connections wherever they are. While Redis is down, the cluster views
 * answer 503 and publishing still reaches the local subscribers. Single-node behaviour and
 * the refusals (401, 404, 400) are in test/http/api.test.ts.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import type { HandlerOptions } from '../../src/handler.js';
import { eventually, settle, type TestClient } from '../helpers/client.js';
import { apiRequest, assertErrorBody, assertJson, type HttpAnswer } from '../helpers/http.js';
import { startRedis, until, type TestRedis } from '../helpers/redis.js';
import type { TestServer } from '../helpers/server.js';
import {
  CHANNEL,
  GENEROUS_MS,
  QUIET_MS,
  SHORT_TIMINGS,
  connect,
  connectionId,
  keys,
  isMessage,
  messagesOn,
  receivedAtLeast,
  sleep,
  startNode,
  subscribeAll,
  waitUntilDown,
} from '../helpers/redis-nodes.js';

const KEY = 'cluster-api-key';
const CLOSED = { code: 1000, reason: 'disconnected by server' };

/**
 * A node of the test's Redis with the HTTP API on. Short liveness timings: the other
 * nodes' figures in /api/stats are the ones they published at their last check.
 */
function apiNode(t: TestContext, redis: TestRedis, options: HandlerOptions = {}): Promise<TestServer> {
  return startNode(t, redis, { apiKey: KEY, brokerTuning: SHORT_TIMINGS, ...options });
}

function api(node: TestServer, method: string, path: string, body?: unknown): Promise<HttpAnswer> {
  return apiRequest(`${node.httpUrl}${path}`, KEY, method, body);
}

async function ok(answer: Promise<HttpAnswer>): Promise<Record<string, unknown>> {
  return assertJson(await answer, 200);
}

interface Stats {
  connections: number;
  channels: number;
  nodes: Array<{ id: string; connections: number; channels: number; ready: boolean; uptime: number }>;
}

/**
 * Polls GET `path` on `node` until `check` holds on its 200 body. Other nodes' figures
 * in /api/stats are the ones they last published (every check interval), hence the polling.
 */
async function getWhen<T>(node: TestServer, path: string, check: (body: T) => boolean, what: string): Promise<T> {
  let last: T | null = null;
  await until(
    async () => {
      last = (await ok(api(node, 'GET', path))) as T;
      return check(last);
    },
    GENEROUS_MS,
    `${what}; last answer: ${JSON.stringify(last)}`,
  );
  return last as unknown as T;
}

const byId = (a: { connection_id: string }, b: { connection_id: string }): number => (a.connection_id < b.connection_id ? -1 : 1);

test('POST /api/publish on node A reaches the subscribers on A and on B once each, with sender null, and counts them all', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const onA = await connect(t, a);
  const onB = [await connect(t, b), await connect(t, b, 'bob')];
  await subscribeAll([onA, ...onB]);

  assert.deepEqual(await ok(api(a, 'POST', '/api/publish', { channel: CHANNEL, message: 'from the backend' })), { success: true, recipients_count: 3 });
  for (const client of [onA, ...onB]) {
    const [frame] = await receivedAtLeast(client, isMessage(CHANNEL, 'from the backend'));
    assert.equal(frame?.sender, null);
    assert.equal(frame?.user_id, null);
  }
  await sleep(QUIET_MS);
  for (const client of [onA, ...onB]) assert.equal(messagesOn(client).length, 1, `${connectionId(client)} got it once`);
});

test('POST /api/publish with recipients on node A reaches the listed users on B only, and counts them cluster-wide', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const aliceOnA = await connect(t, a, 'alice');
  const aliceOnB = await connect(t, b, 'alice');
  const bobOnB = await connect(t, b, 'bob');
  const user7OnB = await connect(t, b, 7);
  await subscribeAll([aliceOnA, aliceOnB, bobOnB, user7OnB]);

  assert.deepEqual(await ok(api(a, 'POST', '/api/publish', { channel: CHANNEL, message: 'private', recipients: ['alice', 7] })), { success: true, recipients_count: 3 });
  for (const client of [aliceOnA, aliceOnB, user7OnB]) await receivedAtLeast(client, isMessage(CHANNEL, 'private'));
  await sleep(QUIET_MS);
  await settle(bobOnB);
  assert.deepEqual(messagesOn(bobOnB), []);
});

test('GET /api/stats on node A counts the connections and channels of both nodes and lists both nodes, ready', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const onA = await connect(t, a);
  const onB = [await connect(t, b), await connect(t, b), await connect(t, b)];
  await subscribeAll([onA], 'only.on.a');
  await subscribeAll(onB, 'only.on.b');
  await subscribeAll([onA, onB[0] as TestClient], CHANNEL);

  const stats = await getWhen<Stats>(
    a,
    '/api/stats',
    (body) => body.connections === 4 && body.nodes.find((node) => node.id === b.handler.nodeId)?.channels === 2,
    "A to count B's three connections and two channels",
  );
  assert.equal(stats.channels, 3, 'only.on.a, only.on.b and the shared channel, counted once');
  assert.deepEqual(stats.nodes.map((node) => node.id).sort(), [a.handler.nodeId, b.handler.nodeId].sort());
  const nodeA = stats.nodes.find((node) => node.id === a.handler.nodeId);
  const nodeB = stats.nodes.find((node) => node.id === b.handler.nodeId);
  assert.equal(nodeA?.connections, 1);
  assert.equal(nodeB?.connections, 3);
  assert.equal(nodeA?.channels, 2);
  assert.equal(nodeB?.channels, 2);
  for (const node of stats.nodes) {
    assert.equal(node.ready, true);
    assert.equal(typeof node.uptime, 'number');
  }

  // B's answer is the same cluster.
  const fromB = await getWhen<Stats>(b, '/api/stats', (body) => body.connections === 4, 'B to count A\'s connection');
  assert.equal(fromB.nodes.length, 2);
  assert.equal(fromB.channels, 3);
});

/**
 * How soon after a node is ready another node's /api/stats must show it ready: generous
 * for a slow machine, yet well short of the production check interval (3 s), at which the
 * node would report anyway.
 */
const READY_REPORT_MS = 2000;

test('GET /api/stats on node B shows node A ready right after A becomes ready, with the production check interval', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const b = await startNode(t, redis, { apiKey: KEY });
  const a = await startNode(t, redis, { apiKey: KEY });
  assert.equal(a.handler.notReadyReason(), null, 'node A is ready once started');

  const deadline = Date.now() + READY_REPORT_MS;
  for (;;) {
    const stats = (await ok(api(b, 'GET', '/api/stats'))) as unknown as Stats;
    if (stats.nodes.some((node) => node.id === a.handler.nodeId && node.ready)) break;
    assert.ok(Date.now() < deadline, `node B did not show node A ready within ${READY_REPORT_MS} ms; last answer: ${JSON.stringify(stats)}`);
    await sleep(50);
  }
});

test('GET /api/stats lists a third node once it runs, and forgets it once it has left', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const c = await apiNode(t, redis);
  const ids = (stats: Stats): string[] => stats.nodes.map((node) => node.id).sort();
  await getWhen<Stats>(a, '/api/stats', (body) => body.nodes.length === 3, 'three nodes');
  assert.deepEqual(ids(await ok(api(a, 'GET', '/api/stats')) as unknown as Stats), [a, b, c].map((node) => node.handler.nodeId).sort());
  await c.close();
  await getWhen<Stats>(a, '/api/stats', (body) => ids(body).join() === [a, b].map((node) => node.handler.nodeId).sort().join(), 'the node that left to be gone');
});

test('GET /api/channels on node A counts the subscribers on both nodes, most subscribed first', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const onA = [await connect(t, a), await connect(t, a)];
  const onB = [await connect(t, b), await connect(t, b), await connect(t, b)];
  await subscribeAll([onA[0] as TestClient, ...onB], CHANNEL); // 1 on A + 3 on B
  await subscribeAll(onB.slice(0, 2), 'only.on.b'); // 2 on B
  await subscribeAll(onA.slice(0, 1), 'only.on.a'); // 1 on A

  assert.deepEqual(await ok(api(a, 'GET', '/api/channels')), {
    channels: [
      { channel: CHANNEL, subscribers: 4 },
      { channel: 'only.on.b', subscribers: 2 },
      { channel: 'only.on.a', subscribers: 1 },
    ],
  });

  // A channel whose subscribers on B all left is gone from A's list (within a second: the
  // list is computed at most once a second per node).
  for (const client of onB.slice(0, 2)) assert.equal((await client.request('unsubscribe', { channel: 'only.on.b' })).success, true);
  const expected = { channels: [{ channel: CHANNEL, subscribers: 4 }, { channel: 'only.on.a', subscribers: 1 }] };
  await until(async () => JSON.stringify(await ok(api(a, 'GET', '/api/channels'))) === JSON.stringify(expected), GENEROUS_MS, 'only.on.b to leave the list');
});

test("GET /api/channels/NAME on node A lists the members on B with B's node id and their user ids", async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const anonymousOnA = await connect(t, a);
  const aliceOnB = await connect(t, b, 'alice');
  const numericOnB = await connect(t, b, 42);
  await subscribeAll([anonymousOnA, aliceOnB, numericOnB]);

  const body = (await ok(api(a, 'GET', `/api/channels/${encodeURIComponent(CHANNEL)}`))) as { channel: string; subscribers: number; members: Array<{ connection_id: string }> };
  assert.equal(body.channel, CHANNEL);
  assert.equal(body.subscribers, 3);
  assert.deepEqual(
    [...body.members].sort(byId),
    [
      { connection_id: connectionId(anonymousOnA), user_id: null, node: a.handler.nodeId },
      { connection_id: connectionId(aliceOnB), user_id: 'alice', node: b.handler.nodeId },
      { connection_id: connectionId(numericOnB), user_id: 42, node: b.handler.nodeId },
    ].sort(byId),
  );
  assert.deepEqual(await ok(api(a, 'GET', '/api/channels/never.used')), { channel: 'never.used', subscribers: 0, members: [] });
});

test("POST /api/disconnect with a user_id on node A closes that user's connections on A, B and C with 1000 and answers the total", async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const c = await apiNode(t, redis);
  await getWhen<Stats>(a, '/api/stats', (body) => body.nodes.length === 3, 'A to see all three nodes');
  const alice = [await connect(t, a, 'alice'), await connect(t, b, 'alice'), await connect(t, b, 'alice'), await connect(t, c, 'alice')];
  const others = [await connect(t, a, 'bob'), await connect(t, b), await connect(t, c, 'alice2')];
  await subscribeAll([...alice, ...others]);

  assert.deepEqual(await ok(api(a, 'POST', '/api/disconnect', { user_id: 'alice' })), { success: true, disconnected: 4 });
  for (const client of alice) assert.deepEqual(await client.closed, CLOSED, connectionId(client));
  for (const client of others) await settle(client);
  // The memberships went with the connections, on every node.
  const left = await getWhen<{ subscribers: number }>(a, `/api/channels/${CHANNEL}`, (body) => body.subscribers === 3, "alice's memberships to be gone");
  assert.equal(left.subscribers, 3);
  // Nobody left to close.
  assert.deepEqual(await ok(api(b, 'POST', '/api/disconnect', { user_id: 'alice' })), { success: true, disconnected: 0 });
});

test('POST /api/disconnect with the connection_id of a connection on node B, sent to A, closes exactly that one', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  await getWhen<Stats>(a, '/api/stats', (body) => body.nodes.length === 2, 'A to see B');
  const target = await connect(t, b, 'alice');
  const sameUserOnB = await connect(t, b, 'alice');
  const onA = await connect(t, a, 'alice');

  assert.deepEqual(await ok(api(a, 'POST', '/api/disconnect', { connection_id: connectionId(target) })), { success: true, disconnected: 1 });
  assert.deepEqual(await target.closed, CLOSED);
  await settle(sameUserOnB);
  await settle(onA);
  await eventually(() => b.handler.connectionCount === 1, GENEROUS_MS, 'the closed connection to be gone from B');
  assert.equal(a.handler.connectionCount, 1);
  assert.deepEqual(await ok(api(a, 'POST', '/api/disconnect', { connection_id: connectionId(target) })), { success: true, disconnected: 0 });
});

test('while Redis is down, /api/channels answers 503 with an error body and /api/publish still reaches the local subscribers', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const onA = [await connect(t, a), await connect(t, a, 'alice')];
  const onB = await connect(t, b);
  await subscribeAll([...onA, onB]);
  assert.equal((await ok(api(a, 'POST', '/api/publish', { channel: CHANNEL, message: 'before' }))).recipients_count, 3);

  await redis.stop();
  await waitUntilDown(a);

  for (const path of ['/api/channels', `/api/channels/${CHANNEL}`]) {
    const answer = await api(a, 'GET', path);
    assertErrorBody(answer, 503);
    assert.match((JSON.parse(answer.body) as { error: string }).error, /redis/i, path);
  }
  assert.deepEqual(await ok(api(a, 'POST', '/api/publish', { channel: CHANNEL, message: 'during the outage' })), { success: true, recipients_count: 2 });
  for (const client of onA) await receivedAtLeast(client, isMessage(CHANNEL, 'during the outage'));
  assert.deepEqual(await ok(api(a, 'POST', '/api/publish', { channel: CHANNEL, message: 'to alice', recipients: ['alice'] })), { success: true, recipients_count: 1 });
  await receivedAtLeast(onA[1] as TestClient, isMessage(CHANNEL, 'to alice'));
  // A bad body is still a 400, not a 503.
  assertErrorBody(await api(a, 'POST', '/api/publish', { channel: CHANNEL }), 400);
});

test(
  'a Redis that stops answering (frozen, connection still open): /api/channels answers 503 with an error body, not 500',
  async (t) => {
    const redis = await startRedis(t, ['--enable-debug-command', 'local']);
    if (!redis) return;
    // A command timeout well within the freeze: the query fails on it, not on a dropped connection.
    const a = await apiNode(t, redis, { brokerTuning: { ...SHORT_TIMINGS, commandTimeoutMs: 500 } });
    await subscribeAll([await connect(t, a)]);
    const freezer = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 0 });
    freezer.on('error', () => undefined);
    t.after(() => freezer.disconnect());
    const frozen = freezer.call('DEBUG', 'SLEEP', '2').catch(() => undefined);
    await sleep(200);
    const answer = await api(a, 'GET', '/api/channels');
    await frozen;
    assertErrorBody(answer, 503);
  },
);

test('POST /api/disconnect lists a live node that did not answer in time as unanswered', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  // A node that beats (its liveness key is there, and a fresh report) but never answers:
  // as one whose connection to Redis's pub/sub is down would.
  const ghost = 'ghost001';
  await redis.client.set(keys.nodeAlive(ghost), '1', 'PX', 60_000);
  await redis.client.hset(keys.nodes(), ghost, JSON.stringify({ id: ghost, ready: true, updated: Date.now() }));

  const answer = await ok(api(a, 'POST', '/api/disconnect', { user_id: 'nobody' }));
  assert.deepEqual(answer, { success: true, disconnected: 0, unanswered: [ghost] });
  // Only the owner of a connection id is asked: the ghost is not, for one of A's.
  const local = await connect(t, a);
  assert.deepEqual(await ok(api(a, 'POST', '/api/disconnect', { connection_id: connectionId(local) })), { success: true, disconnected: 1 });
});
