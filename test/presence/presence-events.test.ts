/**
 * Presence events on one node (SPEC §2, §4): `join`/`leave` events to the OTHER
 * subscribers on subscribe, unsubscribe, disconnect and sign-in, only to subscribers of
 * that channel, one join for a double subscribe, the events' fields (never token claims),
 * and none on a channel without presence. Real sockets, a real server on 127.0.0.1 and a
 * free port.
 *
 * An event that must NOT arrive is proven absent by a later event that must: presence
 * events of one channel go through the same path in the order they were announced, so
 * once the later one is here, the earlier one would have been too.
 *
 * The presence action, who may read presence, presence for the application: presence.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { mintToken } from '../../src/auth/tokens.js';
import { TestClient, eventually, settle, type Frame } from '../helpers/client.js';
import { RULES, SECRET, WAIT_MS, channelsFile, connect, idOf, isEvent, presenceOf, sortedMembers, start, startWithPresence, subscribed, type MemberRow } from '../helpers/presence.js';

const isPresenceEvent = (frame: Frame): boolean => frame.action === 'join' || frame.action === 'leave';

/** The presence events a client received, as compact tuples. */
const eventsOf = (client: TestClient, channel: string): Array<[unknown, unknown, unknown]> =>
  client.received((frame) => isPresenceEvent(frame) && frame.channel === channel).map((frame) => [frame.action, frame.connection_id, frame.user_id]);

/** The presence events a client received about itself (there must be none). */
const aboutItself = (client: TestClient): Frame[] => client.received((frame) => isPresenceEvent(frame) && frame.connection_id === idOf(client));

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
