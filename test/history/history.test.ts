/**
 * History on one node (SPEC §2, §4, §7): offsets 1..N in delivery order, in every
 * delivered frame and in `message_sent`; the `history` action (since, limit, the newest
 * `limit` without since, oldest first either way, default and bounds); size and TTL
 * eviction (the position outlives the messages); ephemeral messages and messages with
 * recipients (no offset, never kept); a restart (a new handler) starts a new epoch. Real
 * sockets, a real server.
 *
 * Who may read history and the HTTP API: history-access.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import { ErrorCode } from '../../src/codes.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { assertErrorBody, assertJson } from '../helpers/http.js';
import { RULES, WAIT_MS, api, assertRefused, connect, historyOf, messagesIn, offsetsIn, publishMany, start, startWithHistory, subscribed } from '../helpers/history.js';

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_unused, index) => from + index);

void describe('offsets', () => {
  void test('offsets 1..N in order, the same in every subscriber’s frames and in the publisher’s message_sent', async (t) => {
    const server = await startWithHistory(t);
    const publisher = await connect(t, server);
    const listener = await connect(t, server);
    const ack = await subscribed(publisher, 'feed.a');
    assert.equal(typeof ack.epoch, 'string');
    assert.notEqual(ack.epoch, '');
    assert.equal(ack.offset, 0);
    assert.equal((await subscribed(listener, 'feed.a')).epoch, ack.epoch);

    const N = 30;
    const sentOffsets: unknown[] = [];
    for (let index = 1; index <= N; index++) {
      const sent = await publisher.publish('feed.a', { n: index });
      assert.equal(sent.action, 'message_sent');
      assert.equal(sent.recipients_count, 2);
      sentOffsets.push(sent.offset);
    }
    assert.deepEqual(sentOffsets, range(1, N));
    await eventually(() => listener.received(isMessageOn('feed.a')).length === N, WAIT_MS, 'every message');
    for (const client of [publisher, listener]) {
      const frames = client.received(isMessageOn('feed.a'));
      assert.deepEqual(offsetsIn(frames), range(1, N));
      assert.deepEqual(messagesIn(frames), range(1, N).map((n) => ({ n })));
      for (const frame of frames) assert.deepEqual(Object.keys(frame).sort(), ['action', 'channel', 'message', 'offset', 'sender', 'time', 'user_id']);
    }
  });

  void test('each channel has its own offsets', async (t) => {
    const server = await startWithHistory(t);
    assert.deepEqual(await publishMany(server, 'feed.x', 3), [1, 2, 3]);
    assert.deepEqual(await publishMany(server, 'feed.y', 2), [1, 2]);
    assert.deepEqual(await publishMany(server, 'feed.x', 1), [4]);
  });

  void test('on a channel without history: no offset in frames, in message_sent or in the subscribe ack', async (t) => {
    const server = await start(t, { channels: { rules: RULES } });
    const client = await connect(t, server);
    const ack = await subscribed(client, 'plain.a');
    assert.deepEqual(Object.keys(ack).sort(), ['action', 'channel', 'id', 'success']);
    const sent = await client.publish('plain.a', 'x');
    assert.equal(sent.success, true);
    assert.equal(Object.hasOwn(sent, 'offset'), false, JSON.stringify(sent));
    const [frame] = client.received(isMessageOn('plain.a'));
    assert.ok(frame !== undefined);
    assert.equal(Object.hasOwn(frame, 'offset'), false, JSON.stringify(frame));
    const { position } = await server.handler.publishMessage('plain.a', 'y');
    assert.equal(position, null);
  });
});

void describe('the history action', () => {
  void test('since, limit and the newest limit without since; always oldest first; each message the frame subscribers received', async (t) => {
    const server = await startWithHistory(t);
    const subscriber = await connect(t, server);
    const ack = await subscribed(subscriber, 'feed.h');
    await publishMany(server, 'feed.h', 10);
    await eventually(() => subscriber.received(isMessageOn('feed.h')).length === 10, WAIT_MS, 'every message');
    const delivered = subscriber.received(isMessageOn('feed.h'));

    // A reader that is not subscribed.
    const reader = await connect(t, server);
    const all = await historyOf(reader, 'feed.h');
    assert.deepEqual(Object.keys(all).sort(), ['action', 'channel', 'epoch', 'id', 'messages', 'offset', 'success']);
    assert.equal(all.epoch, ack.epoch);
    assert.equal(all.offset, 10);
    assert.deepEqual(all.messages, delivered, 'the stored frames are the delivered frames');

    const since = await historyOf(reader, 'feed.h', { since: 3 });
    assert.deepEqual(offsetsIn(since.messages as Frame[]), range(4, 10));
    assert.equal(since.offset, 10);
    assert.deepEqual(offsetsIn((await historyOf(reader, 'feed.h', { since: 3, limit: 2 })).messages as Frame[]), [4, 5], 'the oldest after since');
    assert.deepEqual(offsetsIn((await historyOf(reader, 'feed.h', { limit: 3 })).messages as Frame[]), [8, 9, 10], 'the newest, oldest first');
    assert.deepEqual(offsetsIn((await historyOf(reader, 'feed.h', { since: 0 })).messages as Frame[]), range(1, 10));
    assert.deepEqual((await historyOf(reader, 'feed.h', { since: 10 })).messages, []);
    const beyond = await historyOf(reader, 'feed.h', { since: 99 });
    assert.deepEqual(beyond.messages, []);
    assert.equal(beyond.offset, 10);

    const fresh = await historyOf(reader, 'feed.never');
    assert.deepEqual(fresh.messages, []);
    assert.equal(fresh.offset, 0);
    assert.equal(typeof fresh.epoch, 'string');
  });

  void test('the default limit is 1000: the newest 1000', async (t) => {
    const server = await startWithHistory(t, 2000);
    await publishMany(server, 'feed.big', 1005);
    const client = await connect(t, server);
    const page = await historyOf(client, 'feed.big');
    assert.equal(page.offset, 1005);
    assert.deepEqual(offsetsIn(page.messages as Frame[]), range(6, 1005));
    assert.deepEqual(offsetsIn((await historyOf(client, 'feed.big', { since: 2 })).messages as Frame[]), range(3, 1002));
    assert.equal(((await historyOf(client, 'feed.big', { limit: 1000 })).messages as Frame[]).length, 1000);
    // The application's read is bounded the same way.
    assert.equal((await server.handler.history('feed.big')).messages.length, 1000);
  });

  void test('limit outside 1..1000, a negative or fractional since, an unknown field: INVALID_MESSAGE', async (t) => {
    const server = await startWithHistory(t);
    const client = await connect(t, server);
    for (const data of [
      { channel: 'feed.a', limit: 0 },
      { channel: 'feed.a', limit: 1001 },
      { channel: 'feed.a', limit: -1 },
      { channel: 'feed.a', limit: 1.5 },
      { channel: 'feed.a', limit: '10' },
      { channel: 'feed.a', since: -1 },
      { channel: 'feed.a', since: 0.5 },
      { channel: 'feed.a', since: '3' },
      { channel: 'feed.a', until: 3 },
      {},
    ]) {
      assertRefused(await client.request('history', data), ErrorCode.INVALID_MESSAGE, 'history');
    }
    assertRefused(await client.request('history', { channel: 'feed..a' }), ErrorCode.INVALID_CHANNEL, 'history');
  });

  void test('size: only the last `size` messages are kept; the offset goes on', async (t) => {
    const server = await startWithHistory(t, 5);
    await publishMany(server, 'feed.small', 8);
    const client = await connect(t, server);
    const page = await historyOf(client, 'feed.small');
    assert.equal(page.offset, 8);
    assert.deepEqual(offsetsIn(page.messages as Frame[]), [4, 5, 6, 7, 8]);
    assert.deepEqual(messagesIn(page.messages as Frame[]), ['m4', 'm5', 'm6', 'm7', 'm8']);
    assert.deepEqual(offsetsIn((await historyOf(client, 'feed.small', { since: 1 })).messages as Frame[]), [4, 5, 6, 7, 8]);
    assert.deepEqual(offsetsIn((await historyOf(client, 'feed.small', { since: 6 })).messages as Frame[]), [7, 8]);
    assert.deepEqual(await publishMany(server, 'feed.small', 1, 'n'), [9]);
    assert.deepEqual(offsetsIn((await historyOf(client, 'feed.small')).messages as Frame[]), [5, 6, 7, 8, 9]);
  });

  void test('ttl: the messages go after ttl seconds of silence; the position stays, so since=offset still recovers', async (t) => {
    const server = await startWithHistory(t, 10, 1);
    const client = await connect(t, server);
    const ack = await subscribed(client, 'feed.ttl');
    await publishMany(server, 'feed.ttl', 3);
    assert.equal(((await historyOf(client, 'feed.ttl')).messages as Frame[]).length, 3);

    // TTL is 1 s; the store compares whole milliseconds of silence against it.
    await new Promise((resolve) => setTimeout(resolve, 2200));
    const expired = await historyOf(client, 'feed.ttl');
    assert.deepEqual(expired.messages, []);
    assert.equal(expired.offset, 3, 'the position is kept');
    assert.equal(expired.epoch, ack.epoch, 'the same epoch: nothing was lost but what expired');

    const atHead = await connect(t, server);
    const resumed = await subscribed(atHead, 'feed.ttl', { since: 3, epoch: ack.epoch });
    assert.equal(resumed.recovered, true, JSON.stringify(resumed));
    assert.equal(resumed.offset, 3);
    const behind = await connect(t, server);
    const notResumed = await subscribed(behind, 'feed.ttl', { since: 1, epoch: ack.epoch });
    assert.equal(notResumed.recovered, false, JSON.stringify(notResumed));
    assert.equal(notResumed.offset, 3);
    assert.equal(notResumed.epoch, ack.epoch);

    assert.deepEqual(await publishMany(server, 'feed.ttl', 1, 'after'), [4]);
    await eventually(() => behind.received(isMessageOn('feed.ttl')).length === 1, WAIT_MS, 'the next message');
    assert.deepEqual(offsetsIn(behind.received(isMessageOn('feed.ttl'))), [4], 'nothing was replayed');
    assert.deepEqual(offsetsIn((await historyOf(client, 'feed.ttl')).messages as Frame[]), [4]);
  });
});

void describe('ephemeral messages', () => {
  void test('delivered live without an offset, never kept, and they do not advance the offsets', async (t) => {
    const server = await startWithHistory(t);
    const publisher = await connect(t, server);
    const listener = await connect(t, server);
    await subscribed(publisher, 'feed.e');
    await subscribed(listener, 'feed.e');

    assert.equal((await publisher.publish('feed.e', 'kept 1')).offset, 1);
    const typing = await publisher.publish('feed.e', 'typing', { ephemeral: true });
    assert.equal(typing.success, true);
    assert.equal(typing.action, 'message_sent');
    assert.equal(typing.recipients_count, 2);
    assert.equal(Object.hasOwn(typing, 'offset'), false, JSON.stringify(typing));
    const fromApp = await server.handler.publishMessage('feed.e', 'app typing', { ephemeral: true });
    assert.equal(fromApp.position, null);
    assert.equal(fromApp.recipientsCount, 2);
    const fromApi = assertJson(await api(server, '/api/publish', 'POST', { channel: 'feed.e', message: 'api typing', ephemeral: true }), 200);
    assert.deepEqual(fromApi, { success: true, recipients_count: 2 });
    assert.equal((await publisher.publish('feed.e', 'kept 2')).offset, 2);

    await eventually(() => listener.received(isMessageOn('feed.e')).length === 5, WAIT_MS, 'every message');
    const frames = listener.received(isMessageOn('feed.e'));
    assert.deepEqual(messagesIn(frames), ['kept 1', 'typing', 'app typing', 'api typing', 'kept 2']);
    assert.deepEqual(offsetsIn(frames), [1, undefined, undefined, undefined, 2]);

    const page = await historyOf(listener, 'feed.e');
    assert.equal(page.offset, 2);
    assert.deepEqual(messagesIn(page.messages as Frame[]), ['kept 1', 'kept 2']);
  });

  void test('ephemeral must be a boolean', async (t) => {
    const server = await startWithHistory(t);
    const client = await connect(t, server);
    await subscribed(client, 'feed.e');
    assertRefused(await client.publish('feed.e', 'x', { ephemeral: 'yes' }), ErrorCode.INVALID_MESSAGE, 'message');
    assertErrorBody(await api(server, '/api/publish', 'POST', { channel: 'feed.e', message: 'x', ephemeral: 1 }), 400);
  });
});

void describe('messages with recipients', () => {
  void test('are live only: no offset, not kept, so no reader of the history sees a message addressed to other users', async (t) => {
    const secret = 'history-recipients-secret-of-at-least-32-bytes';
    const server = await start(t, { history: { size: 100, ttl: 3600 }, auth: { secret } });
    const as = async (userId: number): Promise<TestClient> => {
      const token = await mintToken(server.handler.options.auth, { userId, role: 'user', ttlSeconds: 3600 });
      const client = await TestClient.connect(server.url, { headers: { Authorization: `Bearer ${token}` } });
      t.after(() => client.close());
      return client;
    };
    const one = await as(1);
    const two = await as(2);
    await subscribed(one, 'feed.dm');
    await subscribed(two, 'feed.dm');
    assert.equal((await one.publish('feed.dm', 'public 1')).offset, 1);
    const direct = await one.publish('feed.dm', 'for 1 only', { recipients: [1] });
    assert.equal(direct.success, true);
    assert.equal(direct.recipients_count, 1);
    assert.equal(Object.hasOwn(direct, 'offset'), false, JSON.stringify(direct));
    assert.equal((await server.handler.publishMessage('feed.dm', 'also for 1 only', { recipients: [1] })).position, null);
    const fromApi = assertJson(await api(server, '/api/publish', 'POST', { channel: 'feed.dm', message: 'api for 1 only', recipients: [1] }), 200);
    assert.equal(Object.hasOwn(fromApi, 'offset'), false, JSON.stringify(fromApi));
    assert.equal((await server.handler.publishMessage('feed.dm', 'public 2')).position?.offset, 2, 'offsets are not advanced by them');

    await eventually(() => one.received(isMessageOn('feed.dm')).length === 5, WAIT_MS, 'every message to user 1');
    await eventually(() => two.received(isMessageOn('feed.dm')).length === 2, WAIT_MS, 'the public messages to user 2');
    assert.deepEqual(messagesIn(one.received(isMessageOn('feed.dm'))), ['public 1', 'for 1 only', 'also for 1 only', 'api for 1 only', 'public 2']);
    assert.deepEqual(offsetsIn(one.received(isMessageOn('feed.dm'))), [1, undefined, undefined, undefined, 2]);
    await settle(two);
    assert.deepEqual(messagesIn(two.received(isMessageOn('feed.dm'))), ['public 1', 'public 2'], 'live: only what was addressed to it');
    for (const reader of [one, two]) assert.deepEqual(messagesIn((await historyOf(reader, 'feed.dm')).messages as Frame[]), ['public 1', 'public 2']);
    assert.deepEqual(messagesIn(assertJson(await api(server, '/api/channels/feed.dm/history'), 200).messages as Frame[]), ['public 1', 'public 2']);
  });
});

void describe('a restart', () => {
  void test('a new server process (a new handler) starts a new epoch: resuming with the old one is recovered:false', async (t) => {
    const before = await startWithHistory(t);
    const client = await connect(t, before);
    const ack = await subscribed(client, 'feed.r');
    await publishMany(before, 'feed.r', 3);
    await eventually(() => client.received(isMessageOn('feed.r')).length === 3, WAIT_MS, 'every message');
    client.close();
    await before.close();

    const after = await startWithHistory(t);
    const again = await connect(t, after);
    const resumed = await subscribed(again, 'feed.r', { since: 3, epoch: ack.epoch });
    assert.equal(resumed.recovered, false, JSON.stringify(resumed));
    assert.equal(typeof resumed.epoch, 'string');
    assert.notEqual(resumed.epoch, ack.epoch);
    assert.equal(resumed.offset, 0);
    const page = await historyOf(again, 'feed.r');
    assert.deepEqual(page.messages, []);
    assert.equal(page.epoch, resumed.epoch);
    await settle(again);
    assert.deepEqual(again.received(isMessageOn('feed.r')), [], 'nothing replayed');
    assert.deepEqual(await publishMany(after, 'feed.r', 1), [1]);
  });
});
