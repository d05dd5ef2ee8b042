/**
 * Presence on one node (SPEC §2, §4): the `presence` action (members, `users` counting
 * distinct user ids, `connections`), the subscribe right that reading presence needs (not
 * a subscription), NOT_ENABLED, GET /api/channels/NAME and handler.presence(). Real
 * sockets, a real server on 127.0.0.1 and a free port.
 *
 * The join and leave events: presence-events.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/codes.js';
import { SwitchboardError } from '../../src/errors.js';
import { eventually, type Frame, type TestClient } from '../helpers/client.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { API_KEY, RULES, WAIT_MS, channelsFile, connect, idOf, isEvent, presenceOf, sortedMembers, start, startWithPresence, subscribed, type MemberRow } from '../helpers/presence.js';

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
