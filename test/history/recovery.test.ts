/**
 * Recovery on one node (SPEC §4): every subscribe ack on a history channel carries the
 * epoch and offset; `subscribe` with `since`/`epoch` replays exactly what was missed,
 * right after the ack (`recovered: true`), then live messages with no gap and no
 * duplicate; when it cannot (beyond size, wrong epoch, more than recoveryMax, a `since`
 * ahead of the channel), nothing is replayed and the ack says `recovered: false` with the
 * current position. And the race: publishers sending every few milliseconds while 50
 * clients disconnect and recover at random moments; every client ends with every message
 * exactly once, in order.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import type { LocalNode, Member } from '../../src/broker/broker.js';
import type { HandlerOptions } from '../../src/handler.js';
import type { HistoryPage, HistoryQuery } from '../../src/history/history.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';

const API_KEY = 'recovery-test-api-key';
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY };
const WAIT_MS = 10_000;

async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, history: { size: 100, ttl: 3600 }, ...options });
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, server: TestServer): Promise<TestClient> {
  const client = await TestClient.connect(server.url);
  t.after(() => client.close());
  return client;
}

async function subscribed(client: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await client.request('subscribe', { channel, ...extra });
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  assert.equal(ack.action, 'subscribe');
  assert.equal(ack.channel, channel);
  return ack;
}

/** Publishes `count` messages from the application, `m<offset>`-style payloads `${prefix}${i}`. */
async function publishMany(server: TestServer, channel: string, count: number, prefix = 'm'): Promise<void> {
  for (let index = 1; index <= count; index++) await server.handler.publishMessage(channel, `${prefix}${index}`);
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_unused, index) => from + index);
const offsetsOn = (client: TestClient, channel: string): unknown[] => client.received(isMessageOn(channel)).map((frame) => frame.offset);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
 * The in-memory broker of one process, but with a store that answers after a few
 * milliseconds, as Redis would: live messages then arrive while a subscription is being
 * put in place and its history read, which the plain in-memory broker (answering in the
 * same turn) never lets happen.
 */
class SlowStoreBroker extends MemoryBroker {
  override async history(channel: string, query: HistoryQuery): Promise<HistoryPage> {
    await sleep(Math.random() * 4);
    return super.history(channel, query);
  }

  override async join(channel: string, member: Member): Promise<void> {
    await sleep(Math.random() * 4);
    return super.join(channel, member);
  }
}

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

/** One of the race's clients: its connections one after the other, and every offset they received. */
class Resumer {
  /** Offsets received on the connections already closed, in order. */
  readonly seen: number[] = [];
  readonly payloads = new Map<number, unknown>();
  reconnects = 0;
  /** Reconnects that had messages to replay. */
  replays = 0;
  client!: TestClient;
  epoch = '';

  constructor(
    private readonly url: string,
    private readonly channel: string,
  ) {}

  /** Every offset received, the current connection's included. */
  all(): number[] {
    return [...this.seen, ...this.current()];
  }

  last(): number {
    return this.all().at(-1) ?? 0;
  }

  async first(): Promise<void> {
    this.client = await TestClient.connect(this.url);
    const ack = await this.client.request('subscribe', { channel: this.channel });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.equal(ack.offset, 0);
    this.epoch = ack.epoch as string;
  }

  /** Drops the connection (cleanly or not), stays away a moment, comes back with since. */
  async bounce(): Promise<void> {
    if (Math.random() < 0.5) this.client.close();
    else this.client.socket.terminate();
    await this.client.closed;
    this.seen.push(...this.current());
    this.recordPayloads(this.client);
    await sleep(Math.random() * 60);
    const since = this.last();
    this.client = await TestClient.connect(this.url);
    const ack = await this.client.request('subscribe', { channel: this.channel, since, epoch: this.epoch });
    this.reconnects++;
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.equal(ack.recovered, true, `reconnect ${this.reconnects} with since=${since}: ${JSON.stringify(ack)}`);
    assert.equal(ack.epoch, this.epoch);
    assert.ok((ack.offset as number) >= since, JSON.stringify(ack));
    if ((ack.offset as number) > since) this.replays++;
  }

  close(): void {
    this.recordPayloads(this.client);
    this.client.close();
  }

  private current(): number[] {
    return this.client.received(isMessageOn(this.channel)).map((frame) => frame.offset as number);
  }

  private recordPayloads(client: TestClient): void {
    for (const frame of client.received(isMessageOn(this.channel))) this.payloads.set(frame.offset as number, frame.message);
  }
}

void describe('the race', () => {
  for (const slowStore of [false, true]) {
    void test(`publishers every few ms while 50 clients disconnect and recover at random: each ends with every message once, in order (${slowStore ? 'a store answering after a few ms' : 'the in-memory store'})`, async (t) => {
      const channel = 'race.room';
      const server = await start(t, { history: { size: 10_000, ttl: 3600 }, ...(slowStore && { broker: new SlowStoreBroker() }) });
      const resumers = Array.from({ length: 50 }, () => new Resumer(server.url, channel));
      await Promise.all(resumers.map((resumer) => resumer.first()));
      t.after(() => {
        for (const resumer of resumers) resumer.close();
      });

      // What each publisher was told: offset → payload.
      const published = new Map<number, unknown>();
      const record = (offset: unknown, payload: unknown): void => {
        assert.equal(typeof offset, 'number', `a published message without an offset: ${JSON.stringify(payload)}`);
        assert.equal(published.has(offset as number), false, `offset ${String(offset)} given twice`);
        published.set(offset as number, payload);
      };
      let stop = false;
      const fromApplication = (async () => {
        for (let index = 0; !stop; index++) {
          const payload = { from: 'app', index };
          const { position } = await server.handler.publishMessage(channel, payload);
          record(position?.offset, payload);
          await sleep(2 + Math.random() * 3);
        }
      })();
      const publisherClient = await connect(t, server);
      await subscribed(publisherClient, channel);
      const fromClient = (async () => {
        for (let index = 0; !stop; index++) {
          const payload = { from: 'client', index };
          const sent = await publisherClient.publish(channel, payload);
          assert.equal(sent.success, true, JSON.stringify(sent));
          record(sent.offset, payload);
          await sleep(3 + Math.random() * 4);
        }
      })();
      const fromApi = (async () => {
        for (let index = 0; !stop; index++) {
          const payload = { from: 'api', index };
          const answer = assertJson(await apiRequest(`${server.httpUrl}/api/publish`, API_KEY, 'POST', { channel, message: payload }), 200);
          record(answer.offset, payload);
          await sleep(5 + Math.random() * 10);
        }
      })();

      const bouncing = Promise.all(
        resumers.map(async (resumer) => {
          while (!stop) {
            await sleep(20 + Math.random() * 200);
            if (stop) break;
            await resumer.bounce();
          }
        }),
      );

      await sleep(3500);
      stop = true;
      await Promise.all([fromApplication, fromClient, fromApi, bouncing]);

      const N = (await server.handler.history(channel, { limit: 1 })).offset;
      assert.ok(N > 300, `enough messages were published: ${N}`);
      assert.deepEqual([...published.keys()].sort((a, b) => a - b), range(1, N), 'the publishers were given offsets 1..N');
      const totalReconnects = resumers.reduce((sum, resumer) => sum + resumer.reconnects, 0);
      assert.ok(totalReconnects >= 200, `the clients reconnected often: ${totalReconnects}`);
      const totalReplays = resumers.reduce((sum, resumer) => sum + resumer.replays, 0);
      assert.ok(totalReplays >= 100, `most reconnects had messages to replay: ${totalReplays} of ${totalReconnects}`);
      t.diagnostic(`${N} messages, ${totalReconnects} reconnects, ${totalReplays} with a replay`);

      await eventually(() => resumers.every((resumer) => resumer.last() >= N), 15_000, 'every client to reach the last message');
      await Promise.all(resumers.map((resumer) => settle(resumer.client)));
      const expected = range(1, N);
      for (const [index, resumer] of resumers.entries()) {
        const all = resumer.all();
        if (all.length !== N || all.some((offset, at) => offset !== at + 1)) {
          const duplicates = all.filter((offset, at) => all.indexOf(offset) !== at);
          const missing = expected.filter((offset) => !all.includes(offset));
          const outOfOrder = all.filter((offset, at) => at > 0 && offset <= (all[at - 1] as number));
          assert.fail(
            `client ${index} (${resumer.reconnects} reconnects): ${all.length} offsets for ${N}; duplicates ${JSON.stringify(duplicates.slice(0, 20))}, missing ${JSON.stringify(missing.slice(0, 20))}, out of order ${JSON.stringify(outOfOrder.slice(0, 20))}`,
          );
        }
        resumer.close();
        for (const [offset, payload] of resumer.payloads) assert.deepEqual(payload, published.get(offset), `client ${index}, offset ${offset}`);
        assert.equal(resumer.payloads.size, N);
      }
    });
  }

  for (const slowStore of [false, true]) {
    void test(`a few clients bouncing on a channel that is often without any subscriber on the node: nothing lost, nothing twice (${slowStore ? 'a store answering after a few ms' : 'the in-memory store'})`, async (t) => {
      const channel = 'race.sparse';
      const server = await start(t, { history: { size: 10_000, ttl: 3600 }, ...(slowStore && { broker: new SlowStoreBroker() }) });
      const resumers = Array.from({ length: 4 }, () => new Resumer(server.url, channel));
      await Promise.all(resumers.map((resumer) => resumer.first()));
      t.after(() => {
        for (const resumer of resumers) resumer.close();
      });
      let stop = false;
      let published = 0;
      const publisher = (async () => {
        while (!stop) {
          await server.handler.publishMessage(channel, { n: ++published });
          await sleep(2 + Math.random() * 3);
        }
      })();
      const bouncing = Promise.all(
        resumers.map(async (resumer) => {
          while (!stop) {
            await sleep(Math.random() * 40);
            if (stop) break;
            await resumer.bounce();
          }
        }),
      );
      await sleep(1500);
      stop = true;
      await Promise.all([publisher, bouncing]);
      const N = (await server.handler.history(channel, { limit: 1 })).offset;
      assert.equal(N, published);
      await eventually(() => resumers.every((resumer) => resumer.last() >= N), 15_000, 'every client to reach the last message');
      await Promise.all(resumers.map((resumer) => settle(resumer.client)));
      for (const [index, resumer] of resumers.entries()) {
        assert.deepEqual(resumer.all(), range(1, N), `client ${index} (${resumer.reconnects} reconnects)`);
        resumer.close();
        for (const [offset, payload] of resumer.payloads) assert.deepEqual(payload, { n: offset });
      }
    });
  }
});
