/**
 * Presence across nodes through a real redis-server (SPEC §2, §4, §6; issue 12), end to
 * end: real WebSocket clients on two or three nodes that share one Redis. The `presence`
 * action lists the members of every node from any node (users and connections counted
 * cluster-wide), join/leave events reach the subscribers of the other nodes,
 * GET /api/channels/NAME lists the same members on every node, and the members of a node
 * killed with SIGKILL (a real `switchboard start` process) are announced as gone, once
 * each, to the subscribers of the surviving nodes.
 *
 * An event that must NOT arrive is proven absent by a later event from the same node that
 * must: one node's presence events of a channel travel the same path, in order.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import type { ChannelRule } from '../../src/channels/rules.js';
import type { AuthOptions } from '../../src/config/options.js';
import type { HandlerOptions } from '../../src/handler.js';
import { cliEnv, spawnCli, tempDir } from '../helpers/cli.js';
import { TestClient, type Frame } from '../helpers/client.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { GENEROUS_MS, PREFIX, QUIET_MS, SECRET, SHORT_TIMINGS, connectionId, keys, receivedAtLeast, sleep, startNode } from '../helpers/redis-nodes.js';
import type { TestServer } from '../helpers/server.js';

const API_KEY = 'presence-redis-test-api-key';
/** No heartbeat pings among the frames, no rate limit, the HTTP API on. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY };
/** Long enough for anything that must happen through Redis and the liveness checks; never a bound asserted on. */
const DEAD_NODE_WAIT_MS = 60_000;
/** How every node here, the CLI one included, verifies tokens. */
const AUTH: AuthOptions = { secret: SECRET, publicKey: null, issuer: null, audience: null };

const ROOM = 'room.lobby';
const RULES: ChannelRule[] = [
  { pattern: 'room.*', subscribe: ['*'], publish: ['*'], presence: true },
  { pattern: 'plain.*', subscribe: ['*'], publish: ['*'] },
];

async function node(t: TestContext, redis: TestRedis, options: HandlerOptions = {}): Promise<TestServer> {
  return startNode(t, redis, { ...QUIET, ...options });
}

/** A client of `url`; `user` null is anonymous, otherwise a token for that user id signed with SECRET. */
async function client(t: TestContext, url: string, user: string | number | null = null): Promise<TestClient> {
  const options = user === null ? {} : { headers: { Authorization: `Bearer ${await mintToken(AUTH, { userId: user, role: 'user', ttlSeconds: 3600 })}` } };
  const connected = await TestClient.connect(url, options);
  t.after(() => connected.close());
  assert.equal(connected.welcome.authenticated, user !== null);
  return connected;
}

async function subscribed(subscriber: TestClient, channel: string): Promise<void> {
  const ack = await subscriber.subscribe(channel);
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
}

const isPresenceEvent = (frame: Frame): boolean => frame.action === 'join' || frame.action === 'leave';
const isEvent = (action: 'join' | 'leave', channel: string, id: string) => (frame: Frame) => frame.action === action && frame.channel === channel && frame.connection_id === id;
const eventsAbout = (observer: TestClient, channel: string, id: string): Frame[] => observer.received((frame) => isPresenceEvent(frame) && frame.channel === channel && frame.connection_id === id);

type MemberRow = { connection_id: unknown; user_id: unknown };
const byId = (a: MemberRow, b: MemberRow): number => String(a.connection_id).localeCompare(String(b.connection_id));
const rows = (members: readonly MemberRow[]): MemberRow[] => members.map(({ connection_id, user_id }) => ({ connection_id, user_id })).sort(byId);
const memberOf = (member: TestClient, userId: string | number | null): MemberRow => ({ connection_id: connectionId(member), user_id: userId });

async function presence(reader: TestClient, channel: string): Promise<Frame> {
  const reply = await reader.request('presence', { channel });
  assert.equal(reply.success, true, `presence ${channel}: ${JSON.stringify(reply)}`);
  return reply;
}

/** The `presence` action answered on a node: its members (sorted), users and connections. */
async function presenceSummary(reader: TestClient, channel: string): Promise<{ members: MemberRow[]; users: unknown; connections: unknown }> {
  const reply = await presence(reader, channel);
  return { members: rows(reply.members as MemberRow[]), users: reply.users, connections: reply.connections };
}

/** GET /api/channels/NAME on a node: members with their node ids, sorted. */
async function apiMembers(server: TestServer, channel: string): Promise<Array<MemberRow & { node: unknown }>> {
  const body = assertJson(await apiRequest(`${server.httpUrl}/api/channels/${channel}`, API_KEY, 'GET'), 200);
  assert.equal(body.channel, channel);
  const members = body.members as Array<MemberRow & { node: unknown }>;
  assert.equal(body.subscribers, members.length);
  return members.map(({ connection_id, user_id, node: at }) => ({ connection_id, user_id, node: at })).sort(byId);
}

test('two nodes: presence from either node lists the members of both, with users and connections counted cluster-wide; join and leave reach the other node; GET /api/channels/NAME agrees on both', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await node(t, redis, { channels: { rules: RULES } });
  const b = await node(t, redis, { channels: { rules: RULES } });

  const aliceOnA = await client(t, a.url, 'alice');
  const bobOnB = await client(t, b.url, 'bob');
  const aliceOnB = await client(t, b.url, 'alice');
  const anonymousOnA = await client(t, a.url);
  const readerOnB = await client(t, b.url, 'reader');

  await subscribed(aliceOnA, ROOM);
  await subscribed(bobOnB, ROOM);
  const bobJoined = await aliceOnA.next(isEvent('join', ROOM, connectionId(bobOnB)), GENEROUS_MS);
  assert.deepEqual(bobJoined, { action: 'join', channel: ROOM, connection_id: connectionId(bobOnB), user_id: 'bob' }, 'the connection id and user id only');
  await subscribed(aliceOnB, ROOM);
  await aliceOnA.next(isEvent('join', ROOM, connectionId(aliceOnB)), GENEROUS_MS);
  await bobOnB.next(isEvent('join', ROOM, connectionId(aliceOnB)), GENEROUS_MS);
  // Once alice's join from B has reached A: a member that subscribes on A after it never hears it.
  await subscribed(anonymousOnA, ROOM);
  // Each hears every other member's join, from whichever node, and never its own.
  await aliceOnA.next(isEvent('join', ROOM, connectionId(anonymousOnA)), GENEROUS_MS);
  const anonymousJoined = await bobOnB.next(isEvent('join', ROOM, connectionId(anonymousOnA)), GENEROUS_MS);
  assert.deepEqual(anonymousJoined, { action: 'join', channel: ROOM, connection_id: connectionId(anonymousOnA), user_id: null });
  await aliceOnB.next(isEvent('join', ROOM, connectionId(anonymousOnA)), GENEROUS_MS);
  for (const member of [aliceOnA, bobOnB, aliceOnB, anonymousOnA]) assert.deepEqual(eventsAbout(member, ROOM, connectionId(member)), [], 'nothing about itself');
  // Those that joined before bob heard bob's join once; later members never heard it.
  assert.equal(eventsAbout(aliceOnA, ROOM, connectionId(bobOnB)).length, 1);
  assert.deepEqual(eventsAbout(aliceOnB, ROOM, connectionId(bobOnB)), []);

  const everyone = rows([memberOf(aliceOnA, 'alice'), memberOf(bobOnB, 'bob'), memberOf(aliceOnB, 'alice'), memberOf(anonymousOnA, null)]);
  for (const reader of [anonymousOnA, readerOnB, aliceOnA]) {
    assert.deepEqual(await presenceSummary(reader, ROOM), { members: everyone, users: 2, connections: 4 }, 'alice twice and bob are 2 users; the anonymous member counts as a connection only');
  }
  assert.deepEqual((await a.handler.presence(ROOM)).connections, 4);
  assert.deepEqual((await b.handler.presence(ROOM)).users, 2);
  const apiOnA = await apiMembers(a, ROOM);
  assert.deepEqual(apiOnA, await apiMembers(b, ROOM), 'GET /api/channels/NAME lists the same members on both nodes');
  assert.deepEqual(rows(apiOnA), everyone);
  for (const row of apiOnA) {
    const onA = [aliceOnA, anonymousOnA].some((member) => connectionId(member) === row.connection_id);
    assert.equal(row.node, onA ? a.handler.nodeId : b.handler.nodeId, `the node of ${String(row.connection_id)}`);
  }

  // bob unsubscribes on B: the members on A and on B hear it; bob does not.
  await bobOnB.request('unsubscribe', { channel: ROOM });
  const bobLeft = await aliceOnA.next(isEvent('leave', ROOM, connectionId(bobOnB)), GENEROUS_MS);
  assert.deepEqual(bobLeft, { action: 'leave', channel: ROOM, connection_id: connectionId(bobOnB), user_id: 'bob' });
  await anonymousOnA.next(isEvent('leave', ROOM, connectionId(bobOnB)), GENEROUS_MS);
  await aliceOnB.next(isEvent('leave', ROOM, connectionId(bobOnB)), GENEROUS_MS);

  // alice disconnects from B without unsubscribing: a leave everywhere.
  aliceOnB.close();
  await aliceOnB.closed;
  await aliceOnA.next(isEvent('leave', ROOM, connectionId(aliceOnB)), GENEROUS_MS);
  await anonymousOnA.next(isEvent('leave', ROOM, connectionId(aliceOnB)), GENEROUS_MS);

  const remaining = rows([memberOf(aliceOnA, 'alice'), memberOf(anonymousOnA, null)]);
  assert.deepEqual(await presenceSummary(readerOnB, ROOM), { members: remaining, users: 1, connections: 2 });
  assert.deepEqual(await presenceSummary(aliceOnA, ROOM), { members: remaining, users: 1, connections: 2 });
  assert.deepEqual(await apiMembers(a, ROOM), await apiMembers(b, ROOM));
  assert.deepEqual(rows(await apiMembers(b, ROOM)), remaining);

  // A later event from B proves that nothing else came from B meanwhile: each event once.
  const lateOnB = await client(t, b.url, 'late');
  await subscribed(lateOnB, ROOM);
  await aliceOnA.next(isEvent('join', ROOM, connectionId(lateOnB)), GENEROUS_MS);
  await anonymousOnA.next(isEvent('join', ROOM, connectionId(lateOnB)), GENEROUS_MS);
  for (const observer of [aliceOnA, anonymousOnA]) {
    for (const gone of [bobOnB, aliceOnB]) {
      assert.deepEqual(
        eventsAbout(observer, ROOM, connectionId(gone)).map((frame) => frame.action),
        observer === aliceOnA ? ['join', 'leave'] : ['leave'],
        `${connectionId(observer)} about ${connectionId(gone)}`,
      );
    }
  }
  for (const frame of aliceOnA.received(isPresenceEvent)) assert.deepEqual(Object.keys(frame).sort(), ['action', 'channel', 'connection_id', 'user_id'], 'never token claims');
});

test('two nodes, a channel whose rule has no presence: NOT_ENABLED from either node, and no join or leave crosses nodes', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await node(t, redis, { channels: { rules: RULES } });
  const b = await node(t, redis, { channels: { rules: RULES } });
  const onA = await client(t, a.url, 'alice');
  const onB = await client(t, b.url, 'bob');
  await subscribed(onA, 'plain.room');
  await subscribed(onA, ROOM);
  await subscribed(onB, 'plain.room');
  await subscribed(onB, ROOM);
  // The join on the presence channel came after B's subscribe to the plain one, through the same path.
  await onA.next(isEvent('join', ROOM, connectionId(onB)), GENEROUS_MS);
  assert.deepEqual(onA.received((frame) => isPresenceEvent(frame) && frame.channel === 'plain.room'), []);
  for (const reader of [onA, onB]) {
    const reply = await reader.request('presence', { channel: 'plain.room' });
    assert.equal(reply.code, 'NOT_ENABLED', JSON.stringify(reply));
  }
  // Still counted cluster-wide by the API (membership is tracked whatever presence says).
  assert.equal((await apiMembers(a, 'plain.room')).length, 2);
});

test('a node killed with SIGKILL (a real `switchboard start` process): the subscribers on the surviving nodes receive one leave for each of its members on presence channels, and presence no longer lists them', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  // The survivors check the others every 300 ms; the victim, a real CLI process, keeps the
  // production liveness TTL (10 s: the CLI has no setting for it), so its members go once
  // that key has expired.
  const b = await node(t, redis, { presence: true, brokerTuning: SHORT_TIMINGS });
  const c = await node(t, redis, { presence: true, brokerTuning: SHORT_TIMINGS });
  const victim = spawnCli(t, ['start'], {
    cwd: tempDir(t),
    env: cliEnv({
      WS_HOST: '127.0.0.1',
      WS_PORT: '0',
      WS_MAX_MESSAGES_PER_MINUTE: '0',
      WS_HEARTBEAT_INTERVAL: '3600',
      WS_PRESENCE: 'true',
      TOKEN_SECRET: SECRET,
      REDIS_ENABLED: 'true',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      REDIS_PREFIX: PREFIX,
    }),
  });
  const victimUrl = await victim.listeningUrl();

  const survivorOnB = await client(t, b.url, 'survivor-b');
  const survivorOnC = await client(t, c.url, 'survivor-c');
  await subscribed(survivorOnB, ROOM);
  await subscribed(survivorOnB, 'room.second');
  await subscribed(survivorOnC, ROOM);

  const victor1 = await client(t, victimUrl, 'victor');
  const victor2 = await client(t, victimUrl, 'victor');
  const anonymous = await client(t, victimUrl);
  const victims: Array<[TestClient, string | null]> = [
    [victor1, 'victor'],
    [victor2, 'victor'],
    [anonymous, null],
  ];
  for (const [member] of victims) await subscribed(member, ROOM);
  await subscribed(victor1, 'room.second');
  const deadNode = connectionId(victor1).slice(0, connectionId(victor1).lastIndexOf('-'));
  assert.ok((await redis.client.hkeys(keys.nodes())).includes(deadNode), `the CLI node ${deadNode} is registered`);
  for (const [member] of victims) {
    await survivorOnB.next(isEvent('join', ROOM, connectionId(member)), GENEROUS_MS);
    await survivorOnC.next(isEvent('join', ROOM, connectionId(member)), GENEROUS_MS);
  }
  await survivorOnB.next(isEvent('join', 'room.second', connectionId(victor1)), GENEROUS_MS);
  const before = await presenceSummary(survivorOnC, ROOM);
  assert.equal(before.connections, 5);
  assert.equal(before.users, 3);

  await victim.kill();

  // In no particular order: the cleaner announces them as it finds them.
  for (const observer of [survivorOnB, survivorOnC]) {
    for (const [member, userId] of victims) {
      const [left] = await receivedAtLeast(observer, isEvent('leave', ROOM, connectionId(member)), 1, DEAD_NODE_WAIT_MS);
      assert.deepEqual(left, { action: 'leave', channel: ROOM, connection_id: connectionId(member), user_id: userId });
    }
  }
  await receivedAtLeast(survivorOnB, isEvent('leave', 'room.second', connectionId(victor1)), 1, DEAD_NODE_WAIT_MS);

  // Several liveness checks of both survivors later, still once each: only the survivor that removed them announced them.
  await sleep(10 * (SHORT_TIMINGS.checkIntervalMs ?? 300) + QUIET_MS);
  for (const observer of [survivorOnB, survivorOnC]) {
    for (const [member] of victims) {
      assert.deepEqual(
        eventsAbout(observer, ROOM, connectionId(member)).map((frame) => frame.action),
        ['join', 'leave'],
        `${connectionId(observer)} about ${connectionId(member)}`,
      );
    }
  }
  assert.deepEqual(eventsAbout(survivorOnB, 'room.second', connectionId(victor1)).map((frame) => frame.action), ['join', 'leave']);
  assert.deepEqual(eventsAbout(survivorOnC, 'room.second', connectionId(victor1)), [], 'not a subscriber of room.second');
  assert.deepEqual(eventsAbout(survivorOnB, ROOM, connectionId(survivorOnC)).map((frame) => frame.action), ['join'], 'nothing about the survivors');

  const survivors = rows([memberOf(survivorOnB, 'survivor-b'), memberOf(survivorOnC, 'survivor-c')]);
  assert.deepEqual(await presenceSummary(survivorOnB, ROOM), { members: survivors, users: 2, connections: 2 });
  assert.deepEqual(await presenceSummary(survivorOnC, ROOM), { members: survivors, users: 2, connections: 2 });
  assert.deepEqual(rows(await apiMembers(c, 'room.second')), [memberOf(survivorOnB, 'survivor-b')]);
  assert.deepEqual(await apiMembers(b, ROOM), await apiMembers(c, ROOM));
});
