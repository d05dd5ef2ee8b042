/**
 * Presence on one node (SPEC §2, §4): the `presence` action (members, `users` counting
 * distinct user ids, `connections`), `join`/`leave` events to the OTHER subscribers on
 * subscribe, unsubscribe, disconnect and sign-in, the events' fields (never token
 * claims), the subscribe right that reading presence needs (not a subscription),
 * NOT_ENABLED, GET /api/channels/NAME and handler.presence(). Real sockets, a real server
 * on 127.0.0.1 and a free port.
 *
 * An event that must NOT arrive is proven absent by a later event that must: presence
 * events of one channel go through the same path in the order they were announced, so
 * once the later one is here, the earlier one would have been too.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import { mintToken } from '../../src/auth/tokens.js';
import type { ChannelRule } from '../../src/channels/rules.js';
import { ErrorCode } from '../../src/codes.js';
import { SwitchboardError } from '../../src/errors.js';
import type { HandlerOptions } from '../../src/handler.js';
import { TestClient, eventually, settle, type Frame } from '../helpers/client.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'presence-test-secret-of-at-least-32-bytes-long';
const API_KEY = 'presence-test-api-key';
/** No heartbeat pings (extra frames), no rate limit. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, auth: { secret: SECRET }, apiKey: API_KEY };
const WAIT_MS = 10_000;

const RULES: ChannelRule[] = [
  { pattern: 'room.*', subscribe: ['*'], publish: ['*'], presence: true },
  { pattern: 'secret.*', subscribe: ['admin'], publish: ['admin'], presence: true },
  { pattern: 'plain.*', subscribe: ['*'], publish: ['*'] },
];

async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, ...options });
  t.after(() => server.close());
  return server;
}

/** A server with presence on every channel (no channels file). */
const startWithPresence = (t: TestContext): Promise<TestServer> => start(t, { presence: true });

async function channelsFile(t: TestContext, rules: readonly ChannelRule[]): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'switchboard-presence-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'channels.json');
  await writeFile(path, JSON.stringify({ rules }));
  return path;
}

/** Connects; `user` null is anonymous, otherwise a token minted for that user id (and role). */
async function connect(t: TestContext, server: TestServer, user: string | number | null = null, role: string | null = 'user'): Promise<TestClient> {
  const options = user === null ? {} : { headers: { Authorization: `Bearer ${await mintToken(server.handler.options.auth, { userId: user, role, ttlSeconds: 3600 })}` } };
  const client = await TestClient.connect(server.url, options);
  t.after(() => client.close());
  assert.equal(client.welcome.authenticated, user !== null);
  return client;
}

const idOf = (client: TestClient): string => client.welcome.connection_id as string;

async function subscribed(client: TestClient, channel: string): Promise<void> {
  const ack = await client.subscribe(channel);
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
}

const isPresenceEvent = (frame: Frame): boolean => frame.action === 'join' || frame.action === 'leave';
const isEvent = (action: 'join' | 'leave', channel: string, connectionId: string) => (frame: Frame) =>
  frame.action === action && frame.channel === channel && frame.connection_id === connectionId;

/** The presence events a client received, as compact tuples. */
const eventsOf = (client: TestClient, channel: string): Array<[unknown, unknown, unknown]> =>
  client.received((frame) => isPresenceEvent(frame) && frame.channel === channel).map((frame) => [frame.action, frame.connection_id, frame.user_id]);

/** The presence events a client received about itself (there must be none). */
const aboutItself = (client: TestClient): Frame[] => client.received((frame) => isPresenceEvent(frame) && frame.connection_id === idOf(client));

async function presenceOf(client: TestClient, channel: string): Promise<Frame> {
  const reply = await client.request('presence', { channel });
  assert.equal(reply.success, true, `presence ${channel}: ${JSON.stringify(reply)}`);
  assert.equal(reply.action, 'presence');
  assert.equal(reply.channel, channel);
  return reply;
}

type MemberRow = { connection_id: unknown; user_id: unknown };
const sortedMembers = (members: readonly MemberRow[]): MemberRow[] =>
  members.map(({ connection_id, user_id }) => ({ connection_id, user_id })).sort((a, b) => String(a.connection_id).localeCompare(String(b.connection_id)));

function assertRefused(reply: Frame, code: ErrorCode, action: string): void {
  assert.equal(reply.type, 'error', `expected ${code}: ${JSON.stringify(reply)}`);
  assert.equal(reply.success, false);
  assert.equal(reply.code, code);
  assert.equal(reply.action, action);
  assert.equal(typeof reply.error, 'string');
  assert.notEqual(reply.error, '');
}

void describe('the presence action', () => {
  void test('lists every member with its connection id and user id; users counts distinct user ids, connections every member', async (t) => {
    const server = await startWithPresence(t);
    const alice1 = await connect(t, server, 'alice');
    const alice2 = await connect(t, server, 'alice');
    const bob = await connect(t, server, 42);
    const anonymous = await connect(t, server);
    const outsider = await connect(t, server, 'carol');
    for (const client of [alice1, alice2, bob, anonymous]) await subscribed(client, 'room.lobby');

    const reply = await presenceOf(outsider, 'room.lobby');
    assert.deepEqual(Object.keys(reply).sort(), ['action', 'channel', 'connections', 'id', 'members', 'success', 'users']);
    const members = reply.members as MemberRow[];
    for (const member of members) assert.deepEqual(Object.keys(member).sort(), ['connection_id', 'user_id'], JSON.stringify(member));
    assert.deepEqual(
      sortedMembers(members),
      sortedMembers([
        { connection_id: idOf(alice1), user_id: 'alice' },
        { connection_id: idOf(alice2), user_id: 'alice' },
        { connection_id: idOf(bob), user_id: 42 },
        { connection_id: idOf(anonymous), user_id: null },
      ]),
    );
    assert.equal(reply.users, 2, 'alice (twice) and 42; the anonymous member is not a user');
    assert.equal(reply.connections, 4);
  });

  void test('an empty channel has no members; a member that left is no longer listed', async (t) => {
    const server = await startWithPresence(t);
    const reader = await connect(t, server, 'reader');
    const empty = await presenceOf(reader, 'room.empty');
    assert.deepEqual(empty.members, []);
    assert.equal(empty.users, 0);
    assert.equal(empty.connections, 0);

    const stays = await connect(t, server, 'stays');
    const unsubscribes = await connect(t, server, 'unsubscribes');
    const disconnects = await connect(t, server, 'disconnects');
    for (const client of [stays, unsubscribes, disconnects]) await subscribed(client, 'room.a');
    assert.equal((await presenceOf(reader, 'room.a')).connections, 3);

    await unsubscribes.request('unsubscribe', { channel: 'room.a' });
    disconnects.close();
    await disconnects.closed;
    await stays.next(isEvent('leave', 'room.a', idOf(disconnects)), WAIT_MS);
    const after = await presenceOf(reader, 'room.a');
    assert.deepEqual(sortedMembers(after.members as MemberRow[]), [{ connection_id: idOf(stays), user_id: 'stays' }]);
    assert.equal(after.users, 1);
    assert.equal(after.connections, 1);
  });

  void test('presence answers with the request id, and INVALID_CHANNEL for a bad name', async (t) => {
    const server = await startWithPresence(t);
    const client = await connect(t, server, 'u');
    client.send({ action: 'presence', data: { channel: 'room.x' }, id: 'p-1' });
    const reply = await client.next((frame) => frame.id === 'p-1');
    assert.equal(reply.success, true);
    assertRefused(await client.request('presence', { channel: 'bad..name' }), ErrorCode.INVALID_CHANNEL, 'presence');
    assertRefused(await client.request('presence', {}), ErrorCode.INVALID_MESSAGE, 'presence');
  });
});

void describe('join and leave events', () => {
  void test('the other subscribers hear join on subscribe, leave on unsubscribe and on disconnect; the member itself hears nothing about itself', async (t) => {
    const server = await startWithPresence(t);
    const first = await connect(t, server, 1);
    const second = await connect(t, server, 2);
    const notSubscribed = await connect(t, server, 3);
    await subscribed(first, 'room.a');

    await subscribed(second, 'room.a');
    const joined = await first.next(isEvent('join', 'room.a', idOf(second)), WAIT_MS);
    assert.deepEqual(joined, { action: 'join', channel: 'room.a', connection_id: idOf(second), user_id: 2 });

    await second.request('unsubscribe', { channel: 'room.a' });
    const left = await first.next(isEvent('leave', 'room.a', idOf(second)), WAIT_MS);
    assert.deepEqual(left, { action: 'leave', channel: 'room.a', connection_id: idOf(second), user_id: 2 });

    // Subscribed again, then gone without unsubscribing.
    await subscribed(second, 'room.a');
    await first.next(isEvent('join', 'room.a', idOf(second)), WAIT_MS);
    // A third member's join proves that `second` heard nothing about itself before it.
    const third = await connect(t, server, 4);
    await subscribed(third, 'room.a');
    await second.next(isEvent('join', 'room.a', idOf(third)), WAIT_MS);
    await first.next(isEvent('join', 'room.a', idOf(third)), WAIT_MS);
    assert.deepEqual(aboutItself(second), []);

    second.close();
    await first.next(isEvent('leave', 'room.a', idOf(second)), WAIT_MS);
    await third.next(isEvent('leave', 'room.a', idOf(second)), WAIT_MS);

    // `third` leaving last: `first` hears it; nobody heard about itself; the outsider heard nothing.
    third.close();
    await first.next(isEvent('leave', 'room.a', idOf(third)), WAIT_MS);
    assert.deepEqual(aboutItself(first), []);
    assert.deepEqual(aboutItself(third), []);
    assert.deepEqual(eventsOf(first, 'room.a'), [
      ['join', idOf(second), 2],
      ['leave', idOf(second), 2],
      ['join', idOf(second), 2],
      ['join', idOf(third), 4],
      ['leave', idOf(second), 2],
      ['leave', idOf(third), 4],
    ]);
    await settle(notSubscribed);
    assert.deepEqual(notSubscribed.received(isPresenceEvent), []);
  });

  void test('events go only to subscribers of that channel', async (t) => {
    const server = await startWithPresence(t);
    const inA = await connect(t, server, 1);
    const inB = await connect(t, server, 2);
    await subscribed(inA, 'room.a');
    await subscribed(inB, 'room.b');
    const joiner = await connect(t, server, 3);
    await subscribed(joiner, 'room.a');
    await inA.next(isEvent('join', 'room.a', idOf(joiner)), WAIT_MS);
    // Then into room.b: inB's join about it proves that it heard nothing of room.a.
    await subscribed(joiner, 'room.b');
    await inB.next(isEvent('join', 'room.b', idOf(joiner)), WAIT_MS);
    assert.deepEqual(eventsOf(inB, 'room.a'), []);
    assert.deepEqual(eventsOf(inB, 'room.b'), [['join', idOf(joiner), 3]]);
  });

  void test('subscribing twice announces one join; unsubscribing when not subscribed announces nothing', async (t) => {
    const server = await startWithPresence(t);
    const watcher = await connect(t, server, 'watcher');
    const member = await connect(t, server, 'member');
    await subscribed(watcher, 'room.a');
    await subscribed(member, 'room.a');
    await subscribed(member, 'room.a');
    await member.request('unsubscribe', { channel: 'room.other' });
    const marker = await connect(t, server, 'marker');
    await subscribed(marker, 'room.a');
    await watcher.next(isEvent('join', 'room.a', idOf(marker)), WAIT_MS);
    assert.deepEqual(eventsOf(watcher, 'room.a'), [
      ['join', idOf(member), 'member'],
      ['join', idOf(marker), 'marker'],
    ]);
  });

  void test('an event carries action, channel, connection_id and user_id only, never other claims of the token', async (t) => {
    const server = await startWithPresence(t);
    const watcher = await connect(t, server, 'watcher');
    await subscribed(watcher, 'room.a');
    const token = await new SignJWT({ user_id: 'u-77', role: 'user', email: 'private@example.com', name: 'Private Person', roles: ['x'] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const member = await TestClient.connect(server.url, { headers: { Authorization: `Bearer ${token}` } });
    t.after(() => member.close());
    await subscribed(member, 'room.a');
    const joined = await watcher.next(isEvent('join', 'room.a', idOf(member)), WAIT_MS);
    assert.deepEqual(Object.keys(joined).sort(), ['action', 'channel', 'connection_id', 'user_id']);
    assert.equal(joined.user_id, 'u-77');

    const listed = await presenceOf(watcher, 'room.a');
    assert.ok(!JSON.stringify(listed).includes('private'), JSON.stringify(listed));

    member.close();
    const left = await watcher.next(isEvent('leave', 'room.a', idOf(member)), WAIT_MS);
    assert.deepEqual(Object.keys(left).sort(), ['action', 'channel', 'connection_id', 'user_id']);
    assert.ok(!JSON.stringify(watcher.frames).includes('private'), 'no claim of the token reached another connection');
  });

  void test('a connection that signs in with auth after subscribing anonymously: the others hear leave(null) then join(user)', async (t) => {
    const server = await startWithPresence(t);
    const watcher = await connect(t, server, 'watcher');
    const member = await connect(t, server);
    await subscribed(watcher, 'room.a');
    await subscribed(member, 'room.a');
    await watcher.next(isEvent('join', 'room.a', idOf(member)), WAIT_MS);

    const token = await mintToken(server.handler.options.auth, { userId: 5, role: 'user', ttlSeconds: 3600 });
    const auth = await member.request('auth', { token });
    assert.equal(auth.success, true, JSON.stringify(auth));
    assert.equal(auth.user_id, 5);
    const rejoined = await watcher.next(isEvent('join', 'room.a', idOf(member)), WAIT_MS);
    assert.equal(rejoined.user_id, 5);
    assert.deepEqual(eventsOf(watcher, 'room.a'), [
      ['join', idOf(member), null],
      ['leave', idOf(member), null],
      ['join', idOf(member), 5],
    ]);

    const listed = await presenceOf(watcher, 'room.a');
    assert.deepEqual(sortedMembers(listed.members as MemberRow[]), sortedMembers([
      { connection_id: idOf(watcher), user_id: 'watcher' },
      { connection_id: idOf(member), user_id: 5 },
    ]));
    assert.equal(listed.users, 2);

    // The member heard nothing about itself (proven by a later join it must hear).
    const marker = await connect(t, server, 'marker');
    await subscribed(marker, 'room.a');
    await member.next(isEvent('join', 'room.a', idOf(marker)), WAIT_MS);
    assert.deepEqual(aboutItself(member), []);
  });

  void test('no events on a channel without presence', async (t) => {
    const server = await start(t, { channels: await channelsFile(t, RULES) });
    const watcher = await connect(t, server, 'watcher');
    const member = await connect(t, server, 'member');
    await subscribed(watcher, 'plain.a');
    await subscribed(member, 'plain.a');
    member.close();
    await member.closed;
    // A message after both proves that no event was on its way before it.
    const sent = await watcher.publish('plain.a', 'marker');
    assert.equal(sent.success, true, JSON.stringify(sent));
    // Its own copy arrives before the ack (so among the frames received, not next ones).
    await eventually(() => watcher.received((frame) => frame.action === 'message' && frame.message === 'marker').length === 1, WAIT_MS, 'the marker');
    assert.deepEqual(watcher.received(isPresenceEvent), []);
  });
});

void describe('who may read presence', () => {
  void test('the subscribe right is needed (FORBIDDEN otherwise) but not a subscription; NOT_ENABLED where the rule has no presence', async (t) => {
    const server = await start(t, { channels: await channelsFile(t, RULES) });
    const anonymous = await connect(t, server);
    const admin = await connect(t, server, 'root', 'admin');
    const member = await connect(t, server, 'm', 'admin');
    await subscribed(member, 'secret.s');
    await subscribed(member, 'room.r');

    // Not subscribed, yet allowed to subscribe: the list.
    const room = await presenceOf(anonymous, 'room.r');
    assert.deepEqual(sortedMembers(room.members as MemberRow[]), [{ connection_id: idOf(member), user_id: 'm' }]);
    const secret = await presenceOf(admin, 'secret.s');
    assert.deepEqual(sortedMembers(secret.members as MemberRow[]), [{ connection_id: idOf(member), user_id: 'm' }]);

    // Not allowed to subscribe: FORBIDDEN, with the id.
    anonymous.send({ action: 'presence', data: { channel: 'secret.s' }, id: 'f-1' });
    const forbidden = await anonymous.next((frame) => frame.id === 'f-1');
    assertRefused(forbidden, ErrorCode.FORBIDDEN, 'presence');
    // No rule matches: denied as well.
    assertRefused(await anonymous.request('presence', { channel: 'nowhere.x' }), ErrorCode.FORBIDDEN, 'presence');
    // A rule without presence.
    assertRefused(await anonymous.request('presence', { channel: 'plain.p' }), ErrorCode.NOT_ENABLED, 'presence');
    assertRefused(await admin.request('presence', { channel: 'plain.p' }), ErrorCode.NOT_ENABLED, 'presence');
  });

  void test('without a channels file, presence is off unless WS_PRESENCE: NOT_ENABLED', async (t) => {
    const server = await start(t);
    const client = await connect(t, server, 'u');
    await subscribed(client, 'room.a');
    assertRefused(await client.request('presence', { channel: 'room.a' }), ErrorCode.NOT_ENABLED, 'presence');
    await assert.rejects(server.handler.presence('room.a'), (error: unknown) => error instanceof SwitchboardError && error.code === ErrorCode.NOT_ENABLED);
  });
});

void describe('presence for the application', () => {
  void test('GET /api/channels/NAME lists the same members as the presence action', async (t) => {
    const server = await startWithPresence(t);
    const clients = [await connect(t, server, 'a'), await connect(t, server, 'a'), await connect(t, server, 7), await connect(t, server)];
    for (const client of clients) await subscribed(client, 'room.api');
    const reply = await presenceOf(clients[0] as TestClient, 'room.api');

    const body = assertJson(await apiRequest(`${server.httpUrl}/api/channels/room.api`, API_KEY, 'GET'), 200);
    assert.equal(body.channel, 'room.api');
    assert.equal(body.subscribers, 4);
    const apiMembers = body.members as MemberRow[];
    assert.deepEqual(sortedMembers(apiMembers), sortedMembers(reply.members as MemberRow[]));
    assert.deepEqual(sortedMembers(apiMembers), sortedMembers(clients.map((client) => ({ connection_id: idOf(client), user_id: client.welcome.user_id }))));
  });

  void test(
    'GET /api/channels/history lists the members of the channel named "history" (a valid name)',
    async (t) => {
      const server = await startWithPresence(t);
      const member = await connect(t, server, 'h');
      await subscribed(member, 'history');
      assert.equal((await presenceOf(member, 'history')).connections, 1);
      const body = assertJson(await apiRequest(`${server.httpUrl}/api/channels/history`, API_KEY, 'GET'), 200);
      assert.equal(body.channel, 'history');
      assert.deepEqual(sortedMembers(body.members as MemberRow[]), [{ connection_id: idOf(member), user_id: 'h' }]);
    },
  );

  void test('handler.presence() answers members, users and connections; NOT_ENABLED on a channel without presence', async (t) => {
    const server = await start(t, { channels: await channelsFile(t, RULES) });
    const one = await connect(t, server, 'one');
    const two = await connect(t, server, 2);
    const twoAgain = await connect(t, server, 2);
    const anonymous = await connect(t, server);
    for (const client of [one, two, twoAgain, anonymous]) await subscribed(client, 'room.h');

    const presence = await server.handler.presence('room.h');
    assert.equal(presence.users, 2);
    assert.equal(presence.connections, 4);
    const rows = presence.members.map((member) => ({ connection_id: member.connectionId, user_id: member.userId }));
    assert.deepEqual(
      sortedMembers(rows),
      sortedMembers([
        { connection_id: idOf(one), user_id: 'one' },
        { connection_id: idOf(two), user_id: 2 },
        { connection_id: idOf(twoAgain), user_id: 2 },
        { connection_id: idOf(anonymous), user_id: null },
      ]),
    );

    twoAgain.close();
    await eventually(() => server.handler.connectionCount === 3, WAIT_MS, 'the connection to close');
    const after = await server.handler.presence('room.h');
    assert.equal(after.connections, 3);
    assert.equal(after.users, 2);

    await assert.rejects(server.handler.presence('plain.h'), (error: unknown) => error instanceof SwitchboardError && error.code === ErrorCode.NOT_ENABLED);
    assert.deepEqual((await server.handler.presence('room.nobody')).members, []);
  });
});
