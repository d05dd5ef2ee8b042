/**
 * History and recovery with WS_WORKER_NUM=2 and no Redis (SPEC §4, §6; issue 12): the
 * primary holds the history and gives the offsets, so every subscriber on either worker
 * sees the same offset for the same message, in order; `history` answers the same on
 * either worker; a client that reconnects to the other worker recovers exactly what it
 * missed, then live messages; a worker killed with SIGKILL loses nothing (the primary
 * keeps the history and its epoch); a restart of the whole server starts a new epoch, so
 * a client that comes back is told `recovered: false`.
 *
 * Runs the built CLI (dist/cli/main.js) as real child processes through
 * test/helpers/workers.ts, with WS_HISTORY_SIZE=100 (history on every channel) and no
 * heartbeat during a test (WS_HEARTBEAT_INTERVAL=3600), so that the frames after a
 * subscribe ack are the channel's messages alone.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { eventually, isMessageOn, settle, type Frame, type TestClient } from '../helpers/client.js';
import { GENEROUS_MS, freePort, isAlive, waitUntil } from '../helpers/cli.js';
import {
  TEST_TIMEOUT_MS,
  childrenOf,
  connect,
  connectAcross,
  connectTo,
  drain,
  isOpen,
  nodeOf,
  publish,
  serverEnv,
  startCluster,
  subscribeAll,
  waitForNewWorker,
  workerPids,
  type Cluster,
} from '../helpers/workers.js';

const API_KEY = 'history-workers-api-key';

/** Two workers, no Redis, history on every channel, the HTTP API on. */
function startHistoryCluster(t: TestContext, overrides: Record<string, string> = {}): Promise<Cluster> {
  return startCluster(t, serverEnv({ WS_WORKER_NUM: '2', WS_HISTORY_SIZE: '100', WS_HEARTBEAT_INTERVAL: '3600', WS_API_KEY: API_KEY, ...overrides }));
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_unused, index) => from + index);
/** The message frames a client received on `channel`. */
const framesOn = (client: TestClient, channel: string): Frame[] => client.received(isMessageOn(channel));
const offsetsOn = (client: TestClient, channel: string): unknown[] => framesOn(client, channel).map((frame) => frame.offset);

/** Subscribes (with `since`/`epoch` when given) and returns the ack, asserting it is one. */
async function subscribed(client: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await client.request('subscribe', { channel, ...extra });
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.epoch, 'string', `the ack carries the epoch: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.offset, 'number', `the ack carries the offset: ${JSON.stringify(ack)}`);
  return ack;
}

/** The frames that came after `ack` (the ack excluded), but the pongs that answer settle()'s pings. */
function framesAfter(client: TestClient, ack: Frame): Frame[] {
  const index = client.frames.indexOf(ack);
  assert.ok(index >= 0, 'the ack is among the frames');
  return client.frames.slice(index + 1).filter((frame) => frame.action !== 'pong');
}

/** Publishes `${prefix}${i}` for i = 1..count, one after the other; returns the acks' offsets. */
async function publishMany(client: TestClient, channel: string, count: number, prefix: string): Promise<number[]> {
  const offsets: number[] = [];
  for (let index = 1; index <= count; index++) {
    const ack = await publish(client, channel, `${prefix}${index}`);
    assert.equal(typeof ack.offset, 'number', `message_sent carries the offset: ${JSON.stringify(ack)}`);
    offsets.push(ack.offset as number);
  }
  return offsets;
}

/** The `history` reply for `channel`, asserting it is one. */
async function historyOf(client: TestClient, channel: string, query: Record<string, unknown> = {}): Promise<Frame> {
  const reply = await client.request('history', { channel, ...query });
  assert.equal(reply.success, true, `history ${channel}: ${JSON.stringify(reply)}`);
  return reply;
}

/** A history reply without the request id, to compare replies to different requests. */
const withoutId = ({ id: _id, ...rest }: Frame): Frame => rest;

/**
 * Subscribes `client` with since/epoch and checks the recovery: `recovered: true`, the
 * same epoch, the head offset, and right after the ack exactly `missed` (payloads, at the
 * offsets after `since`).
 */
async function assertRecovers(client: TestClient, channel: string, from: { epoch: unknown; offset: number }, missed: readonly string[]): Promise<Frame> {
  const ack = await subscribed(client, channel, { since: from.offset, epoch: from.epoch });
  assert.equal(ack.recovered, true, `recovered on worker ${nodeOf(client)}: ${JSON.stringify(ack)}`);
  assert.equal(ack.epoch, from.epoch, 'the same epoch');
  assert.equal(ack.offset, from.offset + missed.length, 'the head offset');
  await eventually(() => framesAfter(client, ack).length >= missed.length, GENEROUS_MS, `${missed.length} replayed messages on worker ${nodeOf(client)}`);
  await settle(client);
  const replayed = framesAfter(client, ack);
  assert.deepEqual(
    replayed.map((frame) => [frame.action, frame.offset, frame.message]),
    missed.map((message, index) => ['message', from.offset + 1 + index, message]),
    `exactly the missed messages right after the ack, on worker ${nodeOf(client)}`,
  );
  return ack;
}

test('with 2 workers, messages published on both workers get the same offsets, in order, for every subscriber on either worker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.offsets';
  const { url } = await startHistoryCluster(t);
  const clients = await connectAcross(t, url, 2, {}, (opened) => opened.length >= 4);
  await subscribeAll(clients, channel);
  const publishers = [clients[0] as TestClient, clients.find((client) => nodeOf(client) !== nodeOf(clients[0] as TestClient)) as TestClient];
  const count = 50;
  // Both publishers at once, each sending back to back.
  const acks = await Promise.all(publishers.map((publisher, which) => Promise.all(range(1, count).map((seq) => publish(publisher, channel, { from: which, seq })))));
  await drain(publishers[0] as TestClient, channel, clients, 'end');

  const total = 2 * count + 1;
  const reference = framesOn(clients[0] as TestClient, channel);
  assert.deepEqual(reference.map((frame) => frame.offset), range(1, total), 'offsets 1..N, one per message, in delivery order');
  for (const client of clients) {
    assert.deepEqual(
      framesOn(client, channel).map((frame) => [frame.offset, frame.message]),
      reference.map((frame) => [frame.offset, frame.message]),
      `client on worker ${nodeOf(client)}: the same messages at the same offsets, in the same order`,
    );
  }
  // Each publisher's messages in its publish order, at the offsets its acks gave.
  for (const [which, publisherAcks] of acks.entries()) {
    const own = reference.filter((frame) => (frame.message as { from?: number }).from === which);
    assert.deepEqual(own.map((frame) => (frame.message as { seq: number }).seq), range(1, count), `publisher ${which}'s messages in order`);
    assert.deepEqual(own.map((frame) => frame.offset), publisherAcks.map((ack) => ack.offset), `publisher ${which}'s acks carry the delivered offsets`);
  }
});

test('with 2 workers, history answers the same on either worker, and is what the subscribers received', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.history';
  const { url } = await startHistoryCluster(t);
  const clients = await connectAcross(t, url, 2);
  await subscribeAll(clients, channel);
  const onA = clients[0] as TestClient;
  const onB = clients.find((client) => nodeOf(client) !== nodeOf(onA)) as TestClient;
  await publishMany(onA, channel, 6, 'a');
  await publishMany(onB, channel, 6, 'b');
  await eventually(() => clients.every((client) => framesOn(client, channel).length === 12), GENEROUS_MS, 'every message on every client');
  // Readers that never subscribed, on both workers.
  const readers = await connectAcross(t, url, 2);

  for (const query of [{}, { since: 4 }, { since: 3, limit: 2 }, { limit: 3 }, { since: 12 }]) {
    const replies = [];
    for (const reader of [...readers, ...clients]) replies.push(withoutId(await historyOf(reader, channel, query)));
    for (const [index, reply] of replies.entries()) assert.deepEqual(reply, replies[0], `history ${JSON.stringify(query)} asked on worker ${nodeOf([...readers, ...clients][index] as TestClient)}`);
  }
  const all = await historyOf(readers[0] as TestClient, channel);
  assert.equal(all.offset, 12);
  assert.deepEqual(all.messages, framesOn(onB, channel), 'the stored frames are the delivered frames');
  assert.deepEqual(((await historyOf(readers[1] as TestClient, channel, { since: 3, limit: 2 })).messages as Frame[]).map((frame) => frame.offset), [4, 5]);
  const { epoch } = await subscribed(readers[1] as TestClient, channel);
  assert.equal(epoch, all.epoch, 'the subscribe ack and history give the same epoch');
});

test('with 2 workers, a client that reconnects to the other worker recovers exactly what it missed, then live messages', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.recover';
  const { url } = await startHistoryCluster(t);
  const leaving = await connect(t, url);
  const publisher = await connectTo(t, url, (node) => node === nodeOf(leaving));
  const watcher = await connectTo(t, url, (node) => node !== nodeOf(leaving));
  await subscribeAll([publisher, watcher], channel);
  const { epoch } = await subscribed(leaving, channel);
  await publishMany(publisher, channel, 3, 'seen');
  await eventually(() => framesOn(leaving, channel).length === 3, GENEROUS_MS, 'the first three messages');
  const last = framesOn(leaving, channel).at(-1)?.offset as number;
  assert.equal(last, 3);
  leaving.close();
  await leaving.closed;

  await publishMany(publisher, channel, 5, 'missed');
  const back = await connectTo(t, url, (node) => node !== nodeOf(leaving));
  const ack = await assertRecovers(back, channel, { epoch, offset: last }, range(1, 5).map((n) => `missed${n}`));
  await publishMany(publisher, channel, 2, 'live');
  await eventually(() => framesOn(back, channel).length === 7, GENEROUS_MS, 'the live messages');
  await settle(back);
  assert.deepEqual(framesAfter(back, ack).map((frame) => frame.offset), range(4, 10), 'no gap, no duplicate');
  assert.deepEqual(offsetsOn(watcher, channel), range(1, 10), 'the watcher on that worker got everything once');
});

test('with 2 workers, clients reconnecting to the other worker while messages are being published recover with no gap and no duplicate', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.race';
  const { url } = await startHistoryCluster(t);
  const publisher = await connect(t, url);
  await subscribeAll([publisher], channel);
  // Subscribers on the publisher's worker, each to come back on the other worker.
  const leaving: TestClient[] = [];
  for (let index = 0; index < 5; index++) leaving.push(await connectTo(t, url, (node) => node === nodeOf(publisher)));
  const epoch = (await subscribed(leaving[0] as TestClient, channel)).epoch;
  await subscribeAll(leaving.slice(1), channel);
  await publishMany(publisher, channel, 5, 'before');
  await eventually(() => leaving.every((client) => framesOn(client, channel).length === 5), GENEROUS_MS, 'the first messages');
  for (const client of leaving) client.close();
  await Promise.all(leaving.map((client) => client.closed));

  let publishing = true;
  let sent = 5;
  const loop = (async () => {
    while (publishing) {
      await publish(publisher, channel, `during${sent + 1}`);
      sent++;
    }
  })();
  const back: TestClient[] = [];
  for (let index = 0; index < leaving.length; index++) back.push(await connectTo(t, url, (node) => node !== nodeOf(publisher)));
  const acks = await Promise.all(back.map((client) => subscribed(client, channel, { since: 5, epoch })));
  await new Promise((resolve) => setTimeout(resolve, 200));
  publishing = false;
  await loop;
  await publish(publisher, channel, 'end');
  const head = sent + 1;
  for (const [index, client] of back.entries()) {
    assert.equal((acks[index] as Frame).recovered, true, JSON.stringify(acks[index]));
    await eventually(() => offsetsOn(client, channel).includes(head), GENEROUS_MS, `the last message on ${String(client.welcome.connection_id)}`);
    await settle(client);
    assert.deepEqual(offsetsOn(client, channel), range(6, head), `client ${index} on worker ${nodeOf(client)}: every message after 5 once, in order`);
  }
});

test('with 2 workers, after SIGKILL of a worker (restarted by the primary) a client recovers on either worker: the history and its epoch live in the primary', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.crash';
  const { cli, url } = await startHistoryCluster(t);
  const workers = childrenOf(cli.pid);
  assert.equal(workers.length, 2);
  const doomed = await connect(t, url);
  const publisher = await connectTo(t, url, (node) => node !== nodeOf(doomed));
  await subscribeAll([publisher], channel);
  const { epoch } = await subscribed(doomed, channel);
  await publishMany(publisher, channel, 4, 'seen');
  await eventually(() => framesOn(doomed, channel).length === 4, GENEROUS_MS, 'the first messages');

  const victim = (await workerPids(url, API_KEY)).get(nodeOf(doomed));
  assert.ok(victim !== undefined && workers.includes(victim), `the pid of worker ${nodeOf(doomed)} is one of the primary's children (${workers.join(', ')}): ${String(victim)}`);
  process.kill(victim, 'SIGKILL');
  await waitUntil(() => !isAlive(victim), GENEROUS_MS, `worker ${victim} to die`);
  await doomed.closed;
  assert.ok(isOpen(publisher), "the other worker's client stays connected");
  // Published while the worker is dead (and again once a new one runs).
  const missed = range(1, 3).map((n) => `missed${n}`);
  await publishMany(publisher, channel, 3, 'missed');

  // On the surviving worker ...
  const onSurvivor = await connectTo(t, url, (node) => node === nodeOf(publisher));
  await assertRecovers(onSurvivor, channel, { epoch, offset: 4 }, missed);
  // ... and on the new worker.
  await waitForNewWorker(cli, workers);
  const onNew = await connectTo(t, url, (node) => node !== nodeOf(publisher) && node !== nodeOf(doomed));
  const ack = await assertRecovers(onNew, channel, { epoch, offset: 4 }, missed);
  await publishMany(publisher, channel, 2, 'live');
  await eventually(() => framesOn(onNew, channel).length === 5, GENEROUS_MS, 'the live messages on the new worker');
  await settle(onNew);
  assert.deepEqual(framesAfter(onNew, ack).map((frame) => frame.offset), range(5, 9), 'replayed, then live, no gap, no duplicate');
  assert.deepEqual(offsetsOn(onSurvivor, channel), range(5, 9));
});

test('a restart of the whole server (SIGTERM to the primary, start again) starts a new epoch: a client that comes back gets recovered:false and no replay', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'chat.restart';
  const port = String(await freePort());
  const first = await startHistoryCluster(t, { WS_PORT: port });
  const before = await connect(t, first.url);
  const { epoch } = await subscribed(before, channel);
  await publishMany(before, channel, 3, 'old');
  await eventually(() => framesOn(before, channel).length === 3, GENEROUS_MS, 'the messages');

  first.cli.child.kill('SIGTERM');
  const exit = await first.cli.waitForExit();
  assert.equal(exit.code, 0, `the primary's exit (stderr: ${exit.stderr})`);
  await before.closed;

  const second = await startHistoryCluster(t, { WS_PORT: port });
  assert.equal(second.url, first.url, 'the same address');
  // Whichever worker it lands on.
  for (const back of await connectAcross(t, second.url, 2)) {
    const ack = await subscribed(back, channel, { since: 3, epoch });
    assert.equal(ack.recovered, false, `on worker ${nodeOf(back)}: ${JSON.stringify(ack)}`);
    assert.notEqual(ack.epoch, epoch, 'a new epoch');
    assert.equal(ack.offset, 0, 'the new history is empty');
    await settle(back);
    assert.deepEqual(framesAfter(back, ack), [], 'nothing replayed');
  }
  const reader = await connect(t, second.url);
  const history = await historyOf(reader, channel);
  assert.notEqual(history.epoch, epoch);
  assert.deepEqual(history.messages, []);
});
