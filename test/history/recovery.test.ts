/**
 * Recovery on one node (SPEC §4): every subscribe ack on a history channel carries the
 * epoch and offset; `subscribe` with `since`/`epoch` replays exactly what was missed,
 * right after the ack (`recovered: true`), then live messages with no gap and no
 * duplicate; when it cannot (beyond size, wrong epoch, more than recoveryMax, a `since`
 * ahead of the channel), nothing is replayed and the ack says `recovered: false` with the
 * current position. And a live subscriber whose live delivery of some offsets was lost:
 * they are read back from the history, or, when no longer kept, it gets a `position`
 * notice with `recovered: false`.
 *
 * The race (clients disconnecting and recovering while publishers send): recovery-race.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import type { LocalNode } from '../../src/broker/broker.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { connect, start, subscribed } from '../helpers/recovery.js';
import { startServer, type TestServer } from '../helpers/server.js';

const WAIT_MS = 10_000;

/** Publishes `count` messages from the application, `m<offset>`-style payloads `${prefix}${i}`. */
async function publishMany(server: TestServer, channel: string, count: number, prefix = 'm'): Promise<void> {
  for (let index = 1; index <= count; index++) await server.handler.publishMessage(channel, `${prefix}${index}`);
}

const offsetsOn = (client: TestClient, channel: string): unknown[] => client.received(isMessageOn(channel)).map((frame) => frame.offset);

/** The frames that came after the ack (the ack itself excluded). */
function framesAfter(client: TestClient, ack: Frame): Frame[] {
  const index = client.frames.indexOf(ack);
  assert.ok(index >= 0, 'the ack is among the frames');
  return client.frames.slice(index + 1);
}

/** The channel's current position, read by a client that may read it. */
async function position(client: TestClient, channel: string): Promise<{ epoch: string; offset: number }> {
  const reply = await client.request('history', { channel, limit: 1 });
  assert.equal(reply.success, true, JSON.stringify(reply));
  return { epoch: reply.epoch as string, offset: reply.offset as number };
}

void describe('the subscribe ack', () => {
  void test('carries the epoch and the last offset; recovered only when since was given', async (t) => {
    const server = await start(t);
    const first = await connect(t, server);
    const fresh = await subscribed(first, 'room.a');
    assert.deepEqual(Object.keys(fresh).sort(), ['action', 'channel', 'epoch', 'id', 'offset', 'success']);
    assert.equal(typeof fresh.epoch, 'string');
    assert.equal(fresh.offset, 0);

    await publishMany(server, 'room.a', 3);
    const second = await connect(t, server);
    const later = await subscribed(second, 'room.a');
    assert.equal(later.epoch, fresh.epoch);
    assert.equal(later.offset, 3);
    assert.equal(Object.hasOwn(later, 'recovered'), false);

    // A channel nobody is subscribed to yet, with history already in it.
    await publishMany(server, 'room.b', 2);
    const third = await connect(t, server);
    const quiet = await subscribed(third, 'room.b');
    assert.equal(quiet.offset, 2);
    assert.equal(typeof quiet.epoch, 'string');
    await settle(third);
    assert.deepEqual(offsetsOn(third, 'room.b'), [], 'a subscribe without since replays nothing');
  });
});

void describe('subscribe with since', () => {
  void test('at the head: recovered, nothing replayed, then live messages', async (t) => {
    const server = await start(t);
    const live = await connect(t, server);
    const { epoch } = await subscribed(live, 'room.h');
    await publishMany(server, 'room.h', 3);

    const resuming = await connect(t, server);
    const ack = await subscribed(resuming, 'room.h', { since: 3, epoch });
    assert.equal(ack.recovered, true, JSON.stringify(ack));
    assert.equal(ack.epoch, epoch);
    assert.equal(ack.offset, 3);
    await publishMany(server, 'room.h', 1, 'next');
    await eventually(() => offsetsOn(resuming, 'room.h').length === 1, WAIT_MS, 'the live message');
    assert.deepEqual(offsetsOn(resuming, 'room.h'), [4]);
    assert.deepEqual(framesAfter(resuming, ack).map((frame) => frame.offset), [4], 'nothing but the live message after the ack');
  });

  for (const others of [true, false]) {
    void test(`in the window: exactly the missed messages right after the ack, then live ones (${others ? 'other subscribers on the node' : 'no other subscriber'})`, async (t) => {
      const server = await start(t);
      const reference = await connect(t, server);
      const { epoch } = await subscribed(reference, 'room.w');
      if (!others) await reference.request('unsubscribe', { channel: 'room.w' });
      await publishMany(server, 'room.w', 5);

      const resuming = await connect(t, server);
      const ack = await subscribed(resuming, 'room.w', { since: 2, epoch });
      assert.equal(ack.recovered, true, JSON.stringify(ack));
      assert.equal(ack.offset, 5);
      await eventually(() => offsetsOn(resuming, 'room.w').length === 3, WAIT_MS, 'the replay');
      const replayed = framesAfter(resuming, ack);
      assert.deepEqual(replayed.map((frame) => frame.offset), [3, 4, 5], 'the replay follows the ack, nothing in between');
      assert.deepEqual(replayed.map((frame) => frame.message), ['m3', 'm4', 'm5']);
      if (others) assert.deepEqual(replayed, reference.received(isMessageOn('room.w')).slice(2), 'the frames live subscribers got');

      await publishMany(server, 'room.w', 2, 'live');
      await eventually(() => offsetsOn(resuming, 'room.w').length === 5, WAIT_MS, 'the live messages');
      assert.deepEqual(offsetsOn(resuming, 'room.w'), [3, 4, 5, 6, 7]);
      await settle(resuming);
      assert.deepEqual(offsetsOn(resuming, 'room.w'), [3, 4, 5, 6, 7], 'no duplicate');
    });
  }

  void test('since=0 in the epoch replays everything kept from the first message', async (t) => {
    const server = await start(t);
    const probe = await connect(t, server);
    await publishMany(server, 'room.z', 4);
    const { epoch } = await position(probe, 'room.z');
    const ack = await subscribed(probe, 'room.z', { since: 0, epoch });
    assert.equal(ack.recovered, true);
    await eventually(() => offsetsOn(probe, 'room.z').length === 4, WAIT_MS, 'the replay');
    assert.deepEqual(framesAfter(probe, ack).map((frame) => frame.offset), [1, 2, 3, 4]);
  });

  void test('beyond size: recovered false, nothing replayed, the ack has the current position', async (t) => {
    const server = await start(t, { history: { size: 5, ttl: 3600 } });
    const probe = await connect(t, server);
    const { epoch } = await position(probe, 'room.s');
    await publishMany(server, 'room.s', 10);

    const resuming = await connect(t, server);
    const ack = await subscribed(resuming, 'room.s', { since: 2, epoch });
    assert.equal(ack.recovered, false, JSON.stringify(ack));
    assert.equal(ack.epoch, epoch);
    assert.equal(ack.offset, 10);
    await publishMany(server, 'room.s', 1, 'live');
    await eventually(() => offsetsOn(resuming, 'room.s').length === 1, WAIT_MS, 'the live message');
    assert.deepEqual(framesAfter(resuming, ack).map((frame) => frame.offset), [11], 'nothing replayed, live follows');

    // Just inside what is kept (6..10 of size 5): recovered.
    const inside = await connect(t, server);
    const kept = await subscribed(inside, 'room.s', { since: 6, epoch });
    assert.equal(kept.recovered, true, JSON.stringify(kept));
    await eventually(() => offsetsOn(inside, 'room.s').length === 5, WAIT_MS, 'the replay');
    assert.deepEqual(offsetsOn(inside, 'room.s'), [7, 8, 9, 10, 11]);
  });

  void test('a wrong epoch: recovered false, nothing replayed, the current epoch and offset', async (t) => {
    const server = await start(t);
    const probe = await connect(t, server);
    await publishMany(server, 'room.e', 3);
    const current = await position(probe, 'room.e');
    const resuming = await connect(t, server);
    const ack = await subscribed(resuming, 'room.e', { since: 1, epoch: 'not-the-epoch' });
    assert.equal(ack.recovered, false, JSON.stringify(ack));
    assert.equal(ack.epoch, current.epoch);
    assert.equal(ack.offset, 3);
    await settle(resuming);
    assert.deepEqual(offsetsOn(resuming, 'room.e'), []);
  });

  void test('more than recoveryMax missed: recovered false; exactly recoveryMax: replayed', async (t) => {
    const server = await start(t, { recoveryMax: 5 });
    const probe = await connect(t, server);
    await publishMany(server, 'room.m', 10);
    const { epoch } = await position(probe, 'room.m');

    const tooFar = await connect(t, server);
    const refused = await subscribed(tooFar, 'room.m', { since: 4, epoch });
    assert.equal(refused.recovered, false, JSON.stringify(refused));
    assert.equal(refused.offset, 10);
    await settle(tooFar);
    assert.deepEqual(offsetsOn(tooFar, 'room.m'), []);

    const justSo = await connect(t, server);
    const accepted = await subscribed(justSo, 'room.m', { since: 5, epoch });
    assert.equal(accepted.recovered, true, JSON.stringify(accepted));
    await eventually(() => offsetsOn(justSo, 'room.m').length === 5, WAIT_MS, 'the replay');
    assert.deepEqual(offsetsOn(justSo, 'room.m'), [6, 7, 8, 9, 10]);
  });

  void test('since ahead of the current offset in the same epoch: recovered false with the current position', async (t) => {
    const server = await start(t);
    const probe = await connect(t, server);
    await publishMany(server, 'room.f', 3);
    const { epoch } = await position(probe, 'room.f');
    const resuming = await connect(t, server);
    const ack = await subscribed(resuming, 'room.f', { since: 7, epoch });
    assert.equal(ack.recovered, false, JSON.stringify(ack));
    assert.equal(ack.epoch, epoch);
    assert.equal(ack.offset, 3);
    await publishMany(server, 'room.f', 1, 'live');
    await eventually(() => offsetsOn(resuming, 'room.f').length === 1, WAIT_MS, 'the live message');
    assert.deepEqual(offsetsOn(resuming, 'room.f'), [4]);
  });

  void test('subscribing twice (with or without since) neither duplicates nor replays', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const first = await subscribed(client, 'room.d');
    await publishMany(server, 'room.d', 3);
    await eventually(() => offsetsOn(client, 'room.d').length === 3, WAIT_MS, 'the messages');

    const again = await subscribed(client, 'room.d');
    assert.equal(again.epoch, first.epoch);
    assert.equal(again.offset, 3);
    const atHead = await subscribed(client, 'room.d', { since: 3, epoch: first.epoch });
    assert.equal(atHead.recovered, true, JSON.stringify(atHead));
    assert.equal(atHead.offset, 3);
    await subscribed(client, 'room.d', { since: 1, epoch: first.epoch });
    await publishMany(server, 'room.d', 2, 'after');
    await eventually(() => offsetsOn(client, 'room.d').length >= 5, WAIT_MS, 'the later messages');
    await settle(client);
    assert.deepEqual(offsetsOn(client, 'room.d'), [1, 2, 3, 4, 5]);
  });

  void test('a replay never carries a message addressed to recipients (those are live only)', async (t) => {
    const secret = 'recovery-recipients-secret-of-at-least-32-bytes';
    const server = await start(t, { auth: { secret } });
    const as = async (userId: number): Promise<TestClient> => {
      const token = await mintToken(server.handler.options.auth, { userId, role: 'user', ttlSeconds: 3600 });
      const client = await TestClient.connect(server.url, { headers: { Authorization: `Bearer ${token}` } });
      t.after(() => client.close());
      return client;
    };
    const probe = await as(1);
    const { epoch } = await position(probe, 'room.dm');
    await server.handler.publishMessage('room.dm', 'public 1');
    await server.handler.publishMessage('room.dm', 'for 1 only', { recipients: [1] });
    await server.handler.publishMessage('room.dm', 'public 2');

    for (const userId of [1, 2]) {
      const resuming = await as(userId);
      const ack = await subscribed(resuming, 'room.dm', { since: 0, epoch });
      assert.equal(ack.recovered, true, JSON.stringify(ack));
      assert.equal(ack.offset, 2);
      await eventually(() => offsetsOn(resuming, 'room.dm').length === 2, WAIT_MS, 'the replay');
      await settle(resuming);
      assert.deepEqual(resuming.received(isMessageOn('room.dm')).map((frame) => frame.message), ['public 1', 'public 2'], `user ${userId}`);
    }
  });

  void test('since and epoch are checked: INVALID_MESSAGE for a negative since or a non-string epoch', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    for (const data of [
      { channel: 'room.v', since: -1 },
      { channel: 'room.v', since: 1.5 },
      { channel: 'room.v', since: '3' },
      { channel: 'room.v', since: 3, epoch: 7 },
    ]) {
      const reply = await client.request('subscribe', data);
      assert.equal(reply.code, 'INVALID_MESSAGE', `${JSON.stringify(data)}: ${JSON.stringify(reply)}`);
    }
  });
});

/**
 * The in-memory broker of one process, but losing the live deliveries of chosen offsets
 * (as a pub/sub message lost between nodes would be): the store has them, this node's
 * subscribers never got them live.
 */
class LossyBroker extends MemoryBroker {
  readonly lost = new Set<number>();

  override start(local: LocalNode): Promise<void> {
    const lost = this.lost;
    const filtered = new Proxy(local, {
      get(target, property) {
        if (property === 'deliver') {
          return (delivery: Parameters<LocalNode['deliver']>[0]) => (delivery.position !== null && lost.has(delivery.position.offset) ? 0 : target.deliver(delivery));
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return super.start(filtered);
  }
}

void describe('a live subscriber that missed messages', () => {
  void test('a skipped offset is read back from the history and delivered in order, without a notice', async (t) => {
    const broker = new LossyBroker();
    broker.lost.add(2);
    const server = await start(t, { broker });
    const client = await connect(t, server);
    await subscribed(client, 'room.l');
    await publishMany(server, 'room.l', 4);
    await eventually(() => offsetsOn(client, 'room.l').length === 4, WAIT_MS, 'every message');
    await settle(client);
    assert.deepEqual(offsetsOn(client, 'room.l'), [1, 2, 3, 4]);
    assert.deepEqual(client.received(isMessageOn('room.l')).map((frame) => frame.message), ['m1', 'm2', 'm3', 'm4']);
    assert.deepEqual(client.received((frame) => frame.action === 'position'), []);
  });

  void test('when the history no longer has them: a position notice with recovered false, then what is kept, in order', async (t) => {
    const broker = new LossyBroker();
    for (const offset of [2, 3, 4]) broker.lost.add(offset);
    const server = await start(t, { broker, history: { size: 2, ttl: 3600 } });
    const client = await connect(t, server);
    const ack = await subscribed(client, 'room.l');
    await publishMany(server, 'room.l', 5);
    await eventually(() => offsetsOn(client, 'room.l').length === 3, WAIT_MS, 'the messages kept');
    await settle(client);
    const after = framesAfter(client, ack).filter((frame) => frame.action !== 'pong');
    assert.deepEqual(after.map((frame) => (frame.action === 'message' ? frame.offset : frame.action)), [1, 'position', 4, 5]);
    const notice = after[1] as Frame;
    assert.deepEqual(notice, { action: 'position', channel: 'room.l', epoch: ack.epoch, offset: 3, recovered: false });
  });
});

void test('subscribe with since on a channel without history: recovered false, no epoch or offset', async (t) => {
  const server = await startServer({ maxMessagesPerMinute: 0 });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  t.after(() => client.close());
  const ack = await client.request('subscribe', { channel: 'plain.1', since: 3, epoch: 'E' });
  assert.equal(ack.success, true);
  assert.equal(ack.recovered, false);
  assert.equal(ack.epoch, undefined);
  assert.equal(ack.offset, undefined);
  assert.equal((await client.request('subscribe', { channel: 'plain.1', since: 3, epoch: 'E' })).recovered, false, 'again, already subscribed');
});
