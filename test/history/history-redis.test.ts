/**
 * History and recovery across nodes through a real redis-server (SPEC §2, §4, §6; issue
 * 12), end to end with real WebSocket clients: the offsets the store gives are the same on
 * every node and follow delivery order; `history` read on another node returns the frames
 * that were delivered; a client recovers on another node than the one it left, after both
 * nodes restarted (Redis kept: same epoch), but not across a FLUSHALL (a new epoch, which
 * live subscribers are told about).
 *
 * The race (clients hopping between the nodes): history-redis-race.test.ts. Redis
 * outages: redis-outage-history.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, settle, type Frame, type TestClient } from '../helpers/client.js';
import { API_KEY, client, historyNode, messagesOf, offsetsOf, range, subscribed } from '../helpers/history-nodes.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { startRedis } from '../helpers/redis.js';
import { CHANNEL, GENEROUS_MS, QUIET_MS, publishMany, sleep } from '../helpers/redis-nodes.js';
import type { TestServer } from '../helpers/server.js';

/** The frames that came after `ack`. */
function framesAfter(subscriber: TestClient, ack: Frame): Frame[] {
  const index = subscriber.frames.indexOf(ack);
  assert.ok(index >= 0, 'the ack is among the frames');
  return subscriber.frames.slice(index + 1);
}

async function receivedOffsets(subscriber: TestClient, count: number, channel = CHANNEL): Promise<void> {
  await eventually(() => messagesOf(subscriber, channel).length >= count, GENEROUS_MS, `${count} messages; got ${JSON.stringify(offsetsOf(subscriber, channel))}`);
}

async function publishFrom(server: TestServer, messages: readonly unknown[], channel = CHANNEL): Promise<Array<{ epoch: string; offset: number }>> {
  const positions = [];
  for (const message of messages) {
    const { position } = await server.handler.publishMessage(channel, message);
    assert.ok(position !== null, 'a message on a channel with history gets a position');
    positions.push(position);
  }
  return positions;
}

test('a publisher on A, subscribers on A and B: the same offsets everywhere, in order, the same frames; history read on B (action and API) returns what was delivered', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await historyNode(t, redis);
  const b = await historyNode(t, redis);
  const publisher = await client(t, a.url);
  const subscribers = [publisher, await client(t, a.url), await client(t, a.url), await client(t, b.url), await client(t, b.url), await client(t, b.url)];
  const acks = [];
  for (const subscriber of subscribers) acks.push(await subscribed(subscriber, CHANNEL));
  const epoch = acks[0]?.epoch;
  for (const ack of acks) assert.deepEqual([ack.epoch, ack.offset], [epoch, 0], 'one epoch for the channel on every node');

  // Three publishers at once: a client on A (pipelined), the application on B, the HTTP API on A.
  const CLIENT = 40;
  const APPLICATION = 20;
  const API = 10;
  const [clientAcks, fromApplication, fromApi] = await Promise.all([
    publishMany(publisher, CHANNEL, range(1, CLIENT).map((index) => `client ${index}`)),
    publishFrom(b, range(1, APPLICATION).map((index) => `application ${index}`)),
    (async () => {
      const answers = [];
      for (const index of range(1, API)) answers.push(assertJson(await apiRequest(`${a.httpUrl}/api/publish`, API_KEY, 'POST', { channel: CHANNEL, message: `api ${index}` }), 200));
      return answers;
    })(),
  ]);
  const TOTAL = CLIENT + APPLICATION + API;
  const published = new Map<number, string>();
  const record = (offset: unknown, message: string): void => {
    assert.equal(typeof offset, 'number', `${message} has an offset`);
    assert.equal(published.has(offset as number), false, `offset ${String(offset)} given twice`);
    published.set(offset as number, message);
  };
  clientAcks.forEach((ack, index) => {
    assert.equal(ack.action, 'message_sent', JSON.stringify(ack));
    assert.equal(ack.recipients_count, subscribers.length, 'counted on both nodes');
    record(ack.offset, `client ${index + 1}`);
  });
  fromApplication.forEach((position, index) => {
    assert.equal(position.epoch, epoch);
    record(position.offset, `application ${index + 1}`);
  });
  fromApi.forEach((answer, index) => {
    assert.equal(answer.epoch, epoch);
    assert.equal(answer.recipients_count, subscribers.length);
    record(answer.offset, `api ${index + 1}`);
  });
  assert.deepEqual([...published.keys()].sort((x, y) => x - y), range(1, TOTAL), 'offsets 1..N, each given once');
  for (const offsets of [clientAcks.map((ack) => ack.offset as number), fromApplication.map((position) => position.offset), fromApi.map((answer) => answer.offset as number)]) {
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), "each publisher's messages in its publish order");
  }

  for (const subscriber of subscribers) await receivedOffsets(subscriber, TOTAL);
  await sleep(QUIET_MS);
  await Promise.all(subscribers.map((subscriber) => settle(subscriber)));
  const reference = messagesOf(subscribers[0] as TestClient);
  assert.deepEqual(reference.map((frame) => frame.offset), range(1, TOTAL), 'every offset once, in order');
  for (const frame of reference) {
    assert.equal(frame.message, published.get(frame.offset as number), `the message at offset ${String(frame.offset)}`);
    assert.equal(frame.sender, (frame.message as string).startsWith('client') ? publisher.welcome.connection_id : null);
  }
  for (const [index, subscriber] of subscribers.entries()) assert.deepEqual(messagesOf(subscriber), reference, `subscriber ${index} (${index < 3 ? 'A' : 'B'}) got the same frames`);

  const reader = subscribers[4] as TestClient;
  const history = await reader.request('history', { channel: CHANNEL, limit: 1000 });
  assert.equal(history.success, true, JSON.stringify(history));
  assert.deepEqual([history.epoch, history.offset], [epoch, TOTAL]);
  assert.deepEqual(history.messages, reference, 'history on B: the frames the subscribers received');
  const page = await reader.request('history', { channel: CHANNEL, since: 60, limit: 5 });
  assert.deepEqual(page.messages, reference.slice(60, 65));
  const fromApiOnB = assertJson(await apiRequest(`${b.httpUrl}/api/channels/${CHANNEL}/history?since=0&limit=1000`, API_KEY, 'GET'), 200);
  assert.deepEqual([fromApiOnB.epoch, fromApiOnB.offset], [epoch, TOTAL]);
  assert.deepEqual(fromApiOnB.messages, reference);
  const onA = await a.handler.history(CHANNEL, { since: TOTAL - 3 });
  assert.deepEqual(onA.messages.map((message) => JSON.parse(message.frame) as Frame), reference.slice(TOTAL - 3));
});

for (const following of [true, false]) {
  test(`recovery across nodes: a client leaves A, messages are published, it comes back on B with since/epoch: recovered, exactly the missed ones, then live ones; and back on A (${following ? 'B has a subscriber of its own' : 'nobody on B follows the channel'})`, async (t) => {
    const redis = await startRedis(t);
    if (!redis) return;
    const a = await historyNode(t, redis);
    const b = await historyNode(t, redis);
    if (following) await subscribed(await client(t, b.url), CHANNEL);
    const first = await client(t, a.url);
    const { epoch } = await subscribed(first, CHANNEL);
    await publishFrom(a, range(1, 5).map((index) => `m${index}`));
    await receivedOffsets(first, 5);
    const last = offsetsOf(first).at(-1) as number;
    assert.equal(last, 5);
    first.close();
    await first.closed;

    const missed = await publishFrom(a, range(6, 10).map((index) => `m${index}`));
    assert.deepEqual(missed.map((position) => [position.epoch, position.offset]), range(6, 10).map((offset) => [epoch, offset]));

    const second = await client(t, b.url);
    const ack = await subscribed(second, CHANNEL, { since: last, epoch });
    assert.equal(ack.recovered, true, JSON.stringify(ack));
    assert.deepEqual([ack.epoch, ack.offset], [epoch, 10]);
    await receivedOffsets(second, 5);
    const replay = framesAfter(second, ack);
    assert.deepEqual(replay.map((frame) => [frame.offset, frame.message]), range(6, 10).map((offset) => [offset, `m${offset}`]), 'the replay follows the ack, nothing in between');
    await publishFrom(a, ['m11', 'm12']);
    await receivedOffsets(second, 7);
    await sleep(QUIET_MS);
    await settle(second);
    assert.deepEqual(offsetsOf(second), range(6, 12), 'then the live ones, no gap, no duplicate');
    second.close();
    await second.closed;

    // Back to A, which has had no subscriber since the first client left.
    await publishFrom(b, ['m13', 'm14']);
    const third = await client(t, a.url);
    const back = await subscribed(third, CHANNEL, { since: 12, epoch });
    assert.equal(back.recovered, true, JSON.stringify(back));
    assert.equal(back.offset, 14);
    await receivedOffsets(third, 2);
    await publishFrom(b, ['m15']);
    await receivedOffsets(third, 3);
    await sleep(QUIET_MS);
    assert.deepEqual(messagesOf(third).map((frame) => [frame.offset, frame.message]), range(13, 15).map((offset) => [offset, `m${offset}`]));
  });
}

test('both nodes restart, Redis kept: the history and the epoch survive, and a client recovers on a new node', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a1 = await historyNode(t, redis);
  const b1 = await historyNode(t, redis);
  const first = await client(t, a1.url);
  const { epoch } = await subscribed(first, CHANNEL);
  await publishFrom(b1, ['m1', 'm2', 'm3']);
  await receivedOffsets(first, 3);
  first.close();
  await first.closed;
  await a1.close();
  await b1.close();

  const a2 = await historyNode(t, redis);
  const b2 = await historyNode(t, redis);
  assert.notEqual(a2.handler.nodeId, a1.handler.nodeId);
  const after = await publishFrom(a2, ['m4', 'm5']);
  assert.deepEqual(after, [{ epoch, offset: 4 }, { epoch, offset: 5 }], 'the same epoch, offsets go on');

  const second = await client(t, b2.url);
  const ack = await subscribed(second, CHANNEL, { since: 3, epoch });
  assert.equal(ack.recovered, true, JSON.stringify(ack));
  assert.deepEqual([ack.epoch, ack.offset], [epoch, 5]);
  await receivedOffsets(second, 2);
  assert.deepEqual(framesAfter(second, ack).map((frame) => [frame.offset, frame.message]), [[4, 'm4'], [5, 'm5']]);
  const history = await second.request('history', { channel: CHANNEL });
  assert.deepEqual((history.messages as Frame[]).map((frame) => frame.message), ['m1', 'm2', 'm3', 'm4', 'm5']);
});

test('FLUSHALL: the epoch changes; a live subscriber on B is told (position, recovered false) before the messages of the new epoch; a client resuming with the old epoch gets recovered false and no replay', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await historyNode(t, redis);
  const b = await historyNode(t, redis);
  const live = await client(t, b.url);
  const { epoch: oldEpoch } = await subscribed(live, CHANNEL);
  const liveOnA = await client(t, a.url);
  await subscribed(liveOnA, CHANNEL);
  const leaving = await client(t, a.url);
  await subscribed(leaving, CHANNEL);
  await publishFrom(a, ['old 1', 'old 2', 'old 3']);
  for (const subscriber of [live, liveOnA, leaving]) await receivedOffsets(subscriber, 3);
  leaving.close();
  await leaving.closed;

  await redis.client.flushall();
  const fresh = await publishFrom(a, ['new 1', 'new 2']);
  const newEpoch = fresh[0]?.epoch;
  assert.ok(typeof newEpoch === 'string' && newEpoch !== oldEpoch, `a new epoch: ${String(newEpoch)} after ${String(oldEpoch)}`);
  assert.deepEqual(fresh, [{ epoch: newEpoch, offset: 1 }, { epoch: newEpoch, offset: 2 }]);

  // On B and on A (the publishing node) alike.
  for (const subscriber of [live, liveOnA]) {
    await receivedOffsets(subscriber, 5);
    const notice = await subscriber.next((frame) => frame.action === 'position' && frame.channel === CHANNEL, GENEROUS_MS);
    assert.deepEqual(notice, { action: 'position', channel: CHANNEL, epoch: newEpoch, offset: 0, recovered: false });
    const sequence = subscriber
      .received((frame) => frame.channel === CHANNEL && (frame.action === 'message' || frame.action === 'position'))
      .map((frame) => (frame.action === 'position' ? `position ${String(frame.epoch)}` : frame.message));
    assert.deepEqual(sequence, ['old 1', 'old 2', 'old 3', `position ${newEpoch}`, 'new 1', 'new 2'], 'told before the first message of the new epoch');
    assert.deepEqual(offsetsOf(subscriber), [1, 2, 3, 1, 2]);
  }

  for (const server of [b, a]) {
    const resuming = await client(t, server.url);
    const ack = await subscribed(resuming, CHANNEL, { since: 3, epoch: oldEpoch });
    assert.equal(ack.recovered, false, JSON.stringify(ack));
    assert.equal(ack.epoch, newEpoch);
    t.after(() => resuming.close());
    await settle(resuming);
    assert.deepEqual(framesAfter(resuming, ack).filter((frame) => frame.action === 'message'), [], 'nothing replayed');
  }
  await publishFrom(a, ['new 3']);
  await receivedOffsets(live, 6);
  assert.deepEqual(offsetsOf(live).slice(3), [1, 2, 3]);
});
