/**
 * User ids keep their token's JSON type across Redis nodes: a token with `user_id: 42`
 * shows 42 and one with `user_id: "42"` shows "42", in the welcome frame, in channel
 * messages and in GET /api/channels/NAME on any node, while `recipients` still compare
 * them as strings. The members hash holds them as JSON; a value written by a node of an
 * older version (a plain string) still reads, and is still counted down when that node
 * dies.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { apiRequest, assertJson } from '../helpers/http.js';
import { startRedis, until, type TestRedis } from '../helpers/redis.js';
import type { TestServer } from '../helpers/server.js';
import { CHANNEL, GENEROUS_MS, SHORT_TIMINGS, connect, connectionId, isMessage, keys, receivedAtLeast, startNode, subscribeAll } from '../helpers/redis-nodes.js';

const KEY = 'user-id-api-key';

interface Members {
  members: Array<{ connection_id: string; user_id: unknown; node: string }>;
}

function apiNode(t: TestContext, redis: TestRedis): Promise<TestServer> {
  return startNode(t, redis, { apiKey: KEY, brokerTuning: SHORT_TIMINGS });
}

async function members(node: TestServer, channel: string = CHANNEL): Promise<Members['members']> {
  const body = assertJson(await apiRequest(`${node.httpUrl}/api/channels/${encodeURIComponent(channel)}`, KEY, 'GET'), 200) as unknown as Members;
  return [...body.members].sort((a, b) => (a.connection_id < b.connection_id ? -1 : 1));
}

test('a numeric user id on node A and a string one of the same digits on node B show as 42 and "42" everywhere, and recipients "42" reach both', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const b = await apiNode(t, redis);
  const numeric = await connect(t, a, 42);
  const text = await connect(t, b, '42');
  assert.equal(numeric.welcome.user_id, 42);
  assert.equal(text.welcome.user_id, '42');
  await subscribeAll([numeric, text]);

  const expected = [
    { connection_id: connectionId(numeric), user_id: 42, node: a.handler.nodeId },
    { connection_id: connectionId(text), user_id: '42', node: b.handler.nodeId },
  ].sort((x, y) => (x.connection_id < y.connection_id ? -1 : 1));
  assert.deepEqual(await members(a), expected);
  assert.deepEqual(await members(b), expected);
  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(numeric)]: '42', [connectionId(text)]: '"42"' });
  assert.deepEqual(await redis.client.hgetall(keys.users()), { '42': '2' });

  // Each node's messages carry its sender's id as the token has it.
  assert.equal((await text.publish(CHANNEL, 'from "42"', { recipients: ['42'] })).recipients_count, 2);
  const [fromText] = await receivedAtLeast(numeric, isMessage(CHANNEL, 'from "42"'));
  assert.equal(fromText?.user_id, '42');
  assert.equal((await numeric.publish(CHANNEL, 'from 42')).recipients_count, 2);
  const [fromNumeric] = await receivedAtLeast(text, isMessage(CHANNEL, 'from 42'));
  assert.equal(fromNumeric?.user_id, 42);
});

test('a user id that JSON escapes is counted under the id itself, and counted down when it leaves', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const userId = 'say "hi" \\ é';
  const client = await connect(t, a, userId);
  await subscribeAll([client]);
  assert.equal(await redis.client.hget(keys.members(), connectionId(client)), JSON.stringify(userId));
  assert.deepEqual(await redis.client.hgetall(keys.users()), { [userId]: '1' });
  assert.deepEqual((await members(a)).map((member) => member.user_id), [userId]);
  assert.equal((await client.request('unsubscribe', { channel: CHANNEL })).success, true);
  await until(async () => (await redis.client.exists(keys.members(), keys.users())) === 0, GENEROUS_MS, "the channel's hashes to be emptied");
});

test("members written by a node of the older format (plain strings) read as strings, and are counted down when that node is cleaned out", async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await apiNode(t, redis);
  const bob = await connect(t, a, 'bob');
  await subscribeAll([bob]);

  // An older node: its members hold user ids as plain strings, counted in the users hash.
  const old = 'oldnode1';
  await redis.client.set(keys.nodeAlive(old), '1', 'PX', 60_000);
  await redis.client.hset(keys.nodes(), old, JSON.stringify({ id: old, ready: true, updated: Date.now() }));
  await redis.client.hset(keys.members(), `${old}-1`, 'bob', `${old}-2`, 'x y', `${old}-3`, '');
  await redis.client.hincrby(keys.users(), 'bob', 1);
  await redis.client.hincrby(keys.users(), 'x y', 1);
  await redis.client.sadd(keys.nodeMembers(old), `${CHANNEL} ${old}-1`, `${CHANNEL} ${old}-2`, `${CHANNEL} ${old}-3`);
  assert.deepEqual(await redis.client.hgetall(keys.users()), { bob: '2', 'x y': '1' });

  assert.deepEqual(await members(a), [
    { connection_id: connectionId(bob), user_id: 'bob', node: a.handler.nodeId },
    { connection_id: `${old}-1`, user_id: 'bob', node: old },
    { connection_id: `${old}-2`, user_id: 'x y', node: old },
    { connection_id: `${old}-3`, user_id: null, node: old },
  ].sort((x, y) => (x.connection_id < y.connection_id ? -1 : 1)));

  // The older node dies: node A removes its members, and the users it counted with them.
  await redis.client.del(keys.nodeAlive(old));
  await until(async () => (await redis.client.exists(keys.nodeMembers(old))) === 0, GENEROUS_MS, 'node A to clean out the dead node');
  assert.deepEqual(await redis.client.hgetall(keys.members()), { [connectionId(bob)]: '"bob"' });
  assert.deepEqual(await redis.client.hgetall(keys.users()), { bob: '1' });
});
