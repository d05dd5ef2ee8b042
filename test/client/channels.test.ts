/**
 * Channels through the client SDK (SPEC §4, §9): a subscription the channel rules refuse
 * (ready rejects with FORBIDDEN, its `error` fires, and it is gone), one a renewed token
 * takes away, subscribing before the connection is up, unsubscribing, presence and history
 * where they are off (NOT_ENABLED), and join/leave events from another client.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SwitchboardError, type PresenceEvent } from '../../client/src/index.js';
import { mintToken } from '../../src/auth/tokens.js';
import type { ChannelRule } from '../../src/channels/rules.js';
import { eventually } from '../helpers/client.js';
import { SECRET, Scope, WAIT_MS, next, reach, record, sleep } from '../helpers/sdk.js';

const RULES: ChannelRule[] = [
  { pattern: 'secret.**', subscribe: ['admin'], publish: ['admin'] },
  { pattern: 'room.*', subscribe: ['*'], publish: ['*'], presence: true, history: { size: 10, ttl: 60 } },
  { pattern: 'plain.*', subscribe: ['*'], publish: ['*'] },
];
const OPTIONS = { channels: { rules: RULES }, auth: { secret: SECRET } };

void describe('subscriptions', () => {
  void test('refused by the channel rules: ready rejects with FORBIDDEN, error fires, and the subscription is gone', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(OPTIONS);
    const client = scope.client(server.url);
    const secret = client.subscribe('secret.plans');
    const errors: SwitchboardError[] = [];
    secret.on('error', (error) => errors.push(error));
    await assert.rejects(secret.ready, (error: unknown) => error instanceof SwitchboardError && error.code === 'FORBIDDEN');
    assert.deepEqual(
      errors.map((error) => error.code),
      ['FORBIDDEN'],
    );
    assert.equal(client.subscription('secret.plans'), undefined);
    assert.equal(client.state, 'connected', 'a refused subscription leaves the connection alone');

    // Not subscribed again after a reconnect; a new subscribe() is a new subscription.
    const other = client.subscribe('plain.1');
    await other.ready;
    const back = next(other, 'subscribed');
    await server.handler.disconnect({ connectionId: client.connectionId as string });
    await back;
    assert.equal(client.subscription('secret.plans'), undefined);
    assert.equal((await server.handler.channelMembers('secret.plans')).length, 0);
    const again = client.subscribe('secret.plans');
    assert.notEqual(again, secret);
    await assert.rejects(again.ready, (error: unknown) => error instanceof SwitchboardError && error.code === 'FORBIDDEN');
  });

  void test('a renewed token that loses the role ends the subscription that role gave (FORBIDDEN)', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(OPTIONS);
    const auth = server.handler.options.auth;
    let calls = 0;
    // The first token (admin) expires soon; the renewal is a token of the same user without the role.
    const client = scope.client(server.url, { token: () => mintToken(auth, { userId: 5, role: calls++ === 0 ? 'admin' : 'user', ttlSeconds: calls === 1 ? 3 : 3600 }) });
    const secret = client.subscribe('secret.plans');
    await secret.ready;
    const ended = next(secret, 'error', () => true, 2 * WAIT_MS);
    assert.equal((await ended).code, 'FORBIDDEN');
    assert.equal(client.subscription('secret.plans'), undefined);
    assert.equal(client.state, 'connected');
  });

  void test('subscribe() before the connection is up is sent once it is; the same Subscription for the same channel', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(OPTIONS);
    const client = scope.client(server.url, { autoConnect: false });
    const room = client.subscribe('plain.early');
    assert.equal(client.subscribe('plain.early'), room);
    assert.equal(client.subscription('plain.early'), room);
    assert.equal(room.channel, 'plain.early');
    await sleep(100);
    assert.equal(server.handler.connectionCount, 0);
    client.connect();
    await room.ready;
    const delivered = next(room, 'message');
    assert.equal(await server.handler.publish('plain.early', 'hello'), 1);
    assert.deepEqual((await delivered).message, 'hello');
  });

  void test('unsubscribe() stops the messages and forgets the channel', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(OPTIONS);
    const client = scope.client(server.url);
    const room = client.subscribe('plain.u');
    await room.ready;
    let messages = 0;
    room.on('message', () => messages++);
    room.unsubscribe();
    assert.equal(client.subscription('plain.u'), undefined);
    await eventually(() => server.handler.channelCount === 0, WAIT_MS, 'the server to drop the subscription');
    assert.equal(await server.handler.publish('plain.u', 'nobody'), 0);
    // A marker on another channel: whatever was sent before it has arrived.
    const marker = client.subscribe('plain.marker');
    await marker.ready;
    const seen = next(marker, 'message');
    await server.handler.publish('plain.marker', 'marker');
    await seen;
    assert.equal(messages, 0);
  });
});

void describe('presence and history', () => {
  void test('on a channel without them: NOT_ENABLED', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(OPTIONS);
    const client = scope.client(server.url);
    const plain = client.subscribe('plain.1');
    await plain.ready;
    await assert.rejects(plain.presence(), (error: unknown) => error instanceof SwitchboardError && error.code === 'NOT_ENABLED');
    await assert.rejects(plain.history({ limit: 5 }), (error: unknown) => error instanceof SwitchboardError && error.code === 'NOT_ENABLED');
  });

  void test('join and leave events from a second client; presence lists both', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(OPTIONS);
    const auth = server.handler.options.auth;
    const alice = scope.client(server.url, { token: () => mintToken(auth, { userId: 'alice', role: null, ttlSeconds: 3600 }) });
    const room = alice.subscribe('room.1');
    await room.ready;
    const joins: PresenceEvent[] = [];
    const leaves: PresenceEvent[] = [];
    room.on('join', (event) => joins.push(event));
    room.on('leave', (event) => leaves.push(event));

    const bob = scope.client(server.url, { token: () => mintToken(auth, { userId: 'bob', role: null, ttlSeconds: 3600 }) });
    const bobsRoom = bob.subscribe('room.1');
    await bobsRoom.ready;
    await eventually(() => joins.length === 1, WAIT_MS, 'the join');
    assert.deepEqual(joins, [{ action: 'join', channel: 'room.1', connection_id: bob.connectionId, user_id: 'bob' }]);

    const presence = await room.presence();
    assert.equal(presence.connections, 2);
    assert.equal(presence.users, 2);
    assert.deepEqual(presence.members.map((member) => member.user_id).sort(), ['alice', 'bob']);

    const bobsId = bob.connectionId;
    const trace = record(bob);
    bob.close();
    await eventually(() => leaves.length === 1, WAIT_MS, 'the leave');
    assert.deepEqual(leaves, [{ action: 'leave', channel: 'room.1', connection_id: bobsId, user_id: 'bob' }]);
    assert.deepEqual(trace.states, ['closed']);
    await reach(alice, 'connected');
  });
});
