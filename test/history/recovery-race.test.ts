/**
 * Recovery on one node, the race (SPEC §4): publishers (the application, a client and the
 * HTTP API) sending every few milliseconds while 50 clients disconnect and recover at
 * random moments; every client ends with every message exactly once, in order. The same
 * with a few clients on a channel often left without any subscriber on the node. Each
 * race runs with the in-memory store and with one that answers after a few milliseconds,
 * as Redis would.
 *
 * Recovery itself (the ack, since/epoch, when it cannot): recovery.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryBroker } from '../../src/broker/memory.js';
import type { Member } from '../../src/broker/broker.js';
import type { HistoryPage, HistoryQuery } from '../../src/history/history.js';
import { TestClient, eventually, isMessageOn, settle } from '../helpers/client.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { API_KEY, connect, start, subscribed } from '../helpers/recovery.js';

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_unused, index) => from + index);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
