/**
 * Recovery through the client SDK (SPEC §4, §9): after a reconnect it subscribes again with
 * since/epoch of the last message it saw, so that its `message` events hold every message
 * exactly once, in offset order (also with a publisher running while it is cut off three
 * times); `subscribed` says recovered:true, or recovered:false with the new epoch when the
 * server lost the history (a restart without Redis); and it drops a message whose offset it
 * has already seen.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import type { Message, Subscribed } from '../../client/src/index.js';
import { eventually } from '../helpers/client.js';
import { Scope, WAIT_MS, disconnectViaApi, gate, next, reach, sleep } from '../helpers/sdk.js';
import type { TestServer } from '../helpers/server.js';

const HISTORY = { history: { size: 100, ttl: 60 } };

/** Publishes from the application; returns the offsets given. */
async function publish(server: TestServer, channel: string, messages: readonly string[]): Promise<number[]> {
  const offsets: number[] = [];
  for (const message of messages) {
    const { position } = await server.handler.publishMessage(channel, message);
    assert.ok(position !== null);
    offsets.push(position.offset);
  }
  return offsets;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, index) => from + index);
const named = (from: number, to: number): string[] => range(from, to).map((index) => `m${index}`);

void describe('recovery after a reconnect', () => {
  void test('every message missed while cut off arrives exactly once, in offset order, with subscribed recovered:true', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server(HISTORY);
    // The token function holds the reconnect until the test lets it go: the messages below
    // are published while the client is surely cut off.
    let hold: Promise<void> = Promise.resolve();
    const client = scope.client(server.url, {
      token: async () => {
        await hold;
        return null;
      },
    });
    const feed = client.subscribe('feed.a');
    const messages: Message[] = [];
    const acks: Subscribed[] = [];
    feed.on('message', (message) => messages.push(message));
    feed.on('subscribed', (ack) => acks.push(ack));
    const first = await feed.ready;
    assert.equal(first.offset, 0);
    await publish(server, 'feed.a', named(1, 3));
    await eventually(() => messages.length === 3, WAIT_MS, 'the first messages');

    const reconnect = gate();
    hold = reconnect.promise;
    const lost = next(client, 'disconnected');
    await disconnectViaApi(server, client.connectionId);
    await lost;
    assert.deepEqual(await publish(server, 'feed.a', named(4, 8)), range(4, 8));
    assert.notEqual(client.state, 'connected', 'still held: nothing reached it');
    const resubscribed = next(feed, 'subscribed');
    reconnect.open();
    const ack = await resubscribed;
    assert.equal(ack.recovered, true);
    assert.equal(ack.epoch, first.epoch);

    // A live one after the replay: once it is in, any duplicate would have come before it.
    await publish(server, 'feed.a', ['m9']);
    await eventually(() => messages.some((message) => message.offset === 9), WAIT_MS, 'the live message');
    assert.deepEqual(
      messages.map((message) => message.offset),
      range(1, 9),
    );
    assert.deepEqual(
      messages.map((message) => message.message),
      named(1, 9),
    );
    assert.ok(messages.every((message) => message.channel === 'feed.a' && message.sender === null));
    assert.deepEqual(
      acks.map((each) => each.recovered),
      [false, true],
    );
  });

  void test('stress: a publisher every few ms while the client is cut off three times; every message exactly once, in order', { timeout: 6 * WAIT_MS }, async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ history: { size: 1000, ttl: 60 } });
    let hold: Promise<void> = Promise.resolve();
    const client = scope.client(server.url, {
      token: async () => {
        await hold;
        return null;
      },
    });
    const feed = client.subscribe('feed.busy');
    const received: Message[] = [];
    const acks: Subscribed[] = [];
    feed.on('message', (message) => received.push(message));
    feed.on('subscribed', (ack) => acks.push(ack));
    await feed.ready;

    const published = new Map<number, string>();
    let running = true;
    const publisher = (async () => {
      for (let index = 1; running; index++) {
        const { position } = await server.handler.publishMessage('feed.busy', `p${index}`);
        published.set((position as { offset: number }).offset, `p${index}`);
        await sleep(3);
      }
    })();

    for (let cut = 0; cut < 3; cut++) {
      // Something live first, then cut it off; it comes back once 20 more were published.
      const seen = received.length;
      await eventually(() => received.length >= seen + 10, 3 * WAIT_MS, `live messages before cut ${cut + 1}`);
      const release = gate();
      hold = release.promise;
      const target = published.size + 20;
      const lost = next(client, 'disconnected');
      await disconnectViaApi(server, client.connectionId);
      await lost;
      await eventually(() => published.size >= target, 3 * WAIT_MS, 'messages published while cut off');
      const back = next(feed, 'subscribed');
      release.open();
      assert.equal((await back).recovered, true, `cut ${cut + 1}: recovered`);
    }
    running = false;
    await publisher;
    const [last] = await publish(server, 'feed.busy', ['the end']);
    published.set(last as number, 'the end');
    await eventually(() => received.some((message) => message.offset === last), 3 * WAIT_MS, 'the last message');

    assert.deepEqual(
      received.map((message) => message.offset),
      range(1, last as number),
    );
    assert.deepEqual(
      received.map((message) => message.message),
      range(1, last as number).map((offset) => published.get(offset)),
    );
    assert.deepEqual(
      acks.map((ack) => ack.recovered),
      [false, true, true, true],
    );
  });

  void test('after a restart without Redis (history lost): subscribed says recovered:false with the new epoch, and goes on from there', async (t) => {
    const scope = new Scope(t);
    const first = await scope.server(HISTORY);
    const client = scope.client(first.url);
    const feed = client.subscribe('feed.r');
    const messages: Message[] = [];
    feed.on('message', (message) => messages.push(message));
    const { epoch: firstEpoch } = await feed.ready;
    await publish(first, 'feed.r', named(1, 3));
    await eventually(() => messages.length === 3, WAIT_MS, 'the first messages');

    const resubscribed = next(feed, 'subscribed');
    await first.close();
    const second = await scope.server(HISTORY, undefined, first.port);
    const ack = await resubscribed;
    const { epoch: secondEpoch } = await second.handler.history('feed.r');
    assert.equal(ack.recovered, false);
    assert.notEqual(ack.epoch, firstEpoch);
    assert.equal(ack.epoch, secondEpoch);
    assert.equal(ack.offset, 0);

    // Offset 1 again, in the new epoch: not taken for one already seen.
    await publish(second, 'feed.r', ['new 1']);
    await eventually(() => messages.length === 4, WAIT_MS, 'the first message of the new epoch');
    assert.deepEqual(
      messages.map((message) => [message.offset, message.message]),
      [
        [1, 'm1'],
        [2, 'm2'],
        [3, 'm3'],
        [1, 'new 1'],
      ],
    );
  });
});

void describe('duplicates', () => {
  const frame = (offset: number): string => JSON.stringify({ action: 'message', channel: 'feed.d', message: `m${offset}`, sender: null, user_id: null, time: 1, offset });

  void test('a message whose offset the client already saw is dropped, live or replayed after a resume', async (t) => {
    const scope = new Scope(t);
    const { wss, url } = await scope.rawServer();
    const subscribes: Array<Record<string, unknown>> = [];
    const sockets: WebSocket[] = [];
    wss.on('connection', (socket) => {
      sockets.push(socket);
      const connection = sockets.length;
      socket.send(JSON.stringify({ action: 'welcome', connection_id: `raw-${connection}`, heartbeat_interval: 30, authenticated: false, user_id: null, role: null }));
      socket.on('message', (data: Buffer) => {
        const request = JSON.parse(data.toString()) as { action: string; data: Record<string, unknown>; id: number };
        if (request.action !== 'subscribe') return;
        subscribes.push(request.data);
        if (connection === 1) {
          socket.send(JSON.stringify({ success: true, action: 'subscribe', channel: 'feed.d', epoch: 'E1', offset: 0, id: request.id }));
          for (const offset of [1, 2, 2, 1, 3, 3, 4]) socket.send(frame(offset));
        } else {
          // A resume whose replay overlaps what the client has (this server ignores `since`).
          socket.send(JSON.stringify({ success: true, action: 'subscribe', channel: 'feed.d', epoch: 'E1', offset: 4, recovered: true, id: request.id }));
          for (const offset of [3, 4, 5, 5, 6]) socket.send(frame(offset));
        }
      });
    });
    const client = scope.client(url);
    const feed = client.subscribe('feed.d');
    const offsets: Array<number | undefined> = [];
    feed.on('message', (message) => offsets.push(message.offset));
    await eventually(() => offsets.includes(4), WAIT_MS, 'the first four');
    await reach(client, 'connected');

    const resubscribed = next(feed, 'subscribed');
    sockets[0]?.close(1001);
    assert.equal((await resubscribed).recovered, true);
    await eventually(() => offsets.includes(6), WAIT_MS, 'the replay and what follows');
    assert.deepEqual(offsets, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(subscribes, [{ channel: 'feed.d' }, { channel: 'feed.d', since: 4, epoch: 'E1' }], 'the resume asks for what follows the last offset seen');
  });
});
