/**
 * History across nodes through a real redis-server, the race (SPEC §4, §6; issue 12): a
 * publisher every few milliseconds on node A (and a client publishing on B) while 30
 * clients hop between the nodes, disconnecting and recovering on the other one, each
 * ending with every offset exactly once, in order.
 *
 * Offsets, history and recovery across nodes, restarts, FLUSHALL: history-redis.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestClient, eventually, settle } from '../helpers/client.js';
import { client, historyNode, messagesOf, offsetsOf, range, subscribed } from '../helpers/history-nodes.js';
import { startRedis } from '../helpers/redis.js';
import { CHANNEL, GENEROUS_MS, QUIET_MS, sleep } from '../helpers/redis-nodes.js';

/** One of the race's clients: its connections one after the other, hopping between the nodes, and every offset they received. */
class Hopper {
  /** Offsets received on the connections already closed, in order. */
  readonly seen: number[] = [];
  readonly payloads = new Map<number, unknown>();
  reconnects = 0;
  /** Reconnects that had messages to replay. */
  replays = 0;
  client!: TestClient;
  epoch = '';
  private at: number;

  constructor(
    private readonly urls: readonly [string, string],
    start: number,
  ) {
    this.at = start;
  }

  all(): number[] {
    return [...this.seen, ...this.current()];
  }

  last(): number {
    return this.all().at(-1) ?? 0;
  }

  async first(): Promise<void> {
    this.client = await TestClient.connect(this.urls[this.at] as string);
    const ack = await this.client.request('subscribe', { channel: CHANNEL });
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.equal(ack.offset, 0);
    this.epoch = ack.epoch as string;
  }

  /** Drops the connection (cleanly or not), stays away a moment, comes back on the other node with since. */
  async hop(): Promise<void> {
    if (Math.random() < 0.5) this.client.close();
    else this.client.socket.terminate();
    await this.client.closed;
    this.seen.push(...this.current());
    this.recordPayloads();
    await sleep(Math.random() * 60);
    const since = this.last();
    this.at = 1 - this.at;
    this.client = await TestClient.connect(this.urls[this.at] as string);
    const ack = await this.client.request('subscribe', { channel: CHANNEL, since, epoch: this.epoch });
    this.reconnects++;
    assert.equal(ack.success, true, JSON.stringify(ack));
    assert.equal(ack.recovered, true, `reconnect ${this.reconnects} (to node ${this.at === 0 ? 'A' : 'B'}) with since=${since}: ${JSON.stringify(ack)}`);
    assert.equal(ack.epoch, this.epoch);
    assert.ok((ack.offset as number) >= since, JSON.stringify(ack));
    if ((ack.offset as number) > since) this.replays++;
  }

  close(): void {
    this.recordPayloads();
    this.client.close();
  }

  private current(): number[] {
    return offsetsOf(this.client) as number[];
  }

  private recordPayloads(): void {
    for (const frame of messagesOf(this.client)) this.payloads.set(frame.offset as number, frame.message);
  }
}

test('the race across nodes: a publisher every few ms on A (and a client on B) while 30 clients hop between A and B, disconnecting and recovering: each ends with every offset exactly once, in order', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await historyNode(t, redis);
  const b = await historyNode(t, redis);
  const hoppers = Array.from({ length: 30 }, (_unused, index) => new Hopper([a.url, b.url], index % 2));
  await Promise.all(hoppers.map((hopper) => hopper.first()));
  t.after(() => {
    for (const hopper of hoppers) hopper.close();
  });

  const published = new Map<number, unknown>();
  const record = (offset: unknown, payload: unknown): void => {
    assert.equal(typeof offset, 'number', `a published message without an offset: ${JSON.stringify(payload)}`);
    assert.equal(published.has(offset as number), false, `offset ${String(offset)} given twice`);
    published.set(offset as number, payload);
  };
  let stop = false;
  const fromA = (async () => {
    for (let index = 0; !stop; index++) {
      const payload = { from: 'A', index };
      const { position } = await a.handler.publishMessage(CHANNEL, payload);
      record(position?.offset, payload);
      await sleep(2 + Math.random() * 3);
    }
  })();
  const publisherOnB = await client(t, b.url);
  await subscribed(publisherOnB, CHANNEL);
  const fromB = (async () => {
    for (let index = 0; !stop; index++) {
      const payload = { from: 'B', index };
      const sent = await publisherOnB.publish(CHANNEL, payload);
      assert.equal(sent.success, true, JSON.stringify(sent));
      record(sent.offset, payload);
      await sleep(5 + Math.random() * 5);
    }
  })();
  const hopping = Promise.all(
    hoppers.map(async (hopper) => {
      while (!stop) {
        await sleep(20 + Math.random() * 200);
        if (stop) break;
        await hopper.hop();
      }
    }),
  );
  await sleep(3000);
  stop = true;
  await Promise.all([fromA, fromB, hopping]);

  const N = (await a.handler.history(CHANNEL, { limit: 1 })).offset;
  assert.ok(N > 200, `enough messages were published: ${N}`);
  assert.deepEqual([...published.keys()].sort((x, y) => x - y), range(1, N), 'the publishers were given offsets 1..N');
  const reconnects = hoppers.reduce((sum, hopper) => sum + hopper.reconnects, 0);
  const replays = hoppers.reduce((sum, hopper) => sum + hopper.replays, 0);
  assert.ok(reconnects >= 100, `the clients hopped often: ${reconnects}`);
  assert.ok(replays >= 50, `most hops had messages to replay: ${replays} of ${reconnects}`);
  t.diagnostic(`${N} messages, ${reconnects} hops between the nodes, ${replays} with a replay`);

  await eventually(() => hoppers.every((hopper) => hopper.last() >= N), GENEROUS_MS, 'every client to reach the last message');
  await sleep(QUIET_MS);
  await Promise.all(hoppers.map((hopper) => settle(hopper.client)));
  const expected = range(1, N);
  for (const [index, hopper] of hoppers.entries()) {
    const all = hopper.all();
    if (all.length !== N || all.some((offset, at) => offset !== at + 1)) {
      const duplicates = all.filter((offset, at) => all.indexOf(offset) !== at);
      const missing = expected.filter((offset) => !all.includes(offset));
      const outOfOrder = all.filter((offset, at) => at > 0 && offset <= (all[at - 1] as number));
      assert.fail(
        `client ${index} (${hopper.reconnects} hops): ${all.length} offsets for ${N}; duplicates ${JSON.stringify(duplicates.slice(0, 20))}, missing ${JSON.stringify(missing.slice(0, 20))}, out of order ${JSON.stringify(outOfOrder.slice(0, 20))}`,
      );
    }
    hopper.close();
    assert.equal(hopper.payloads.size, N);
    for (const [offset, payload] of hopper.payloads) assert.deepEqual(payload, published.get(offset), `client ${index}, offset ${offset}`);
  }
});
