/**
 * History channels through a Redis outage, end to end (SPEC §4, §6; issue 12): real
 * WebSocket clients on two nodes sharing a real redis-server that is SIGKILLed and
 * restarted while node A publishes every 20 ms to subscribers on node B.
 *
 * - Redis with persistence (AOF, fsync on every write): every message Redis accepted is
 *   delivered to every subscriber exactly once, in order, and what was refused never is.
 * - Redis without persistence: the history is lost, the epoch changes, and the
 *   subscribers are told (a `position` frame with `recovered: false`) rather than left
 *   with a silent gap; a client resuming with the old epoch gets `recovered: false`.
 * - A publish on a history channel while Redis is down is refused (INTERNAL_ERROR to the
 *   client, 503 from the HTTP API) and reaches nobody; other messages still reach the
 *   node's own subscribers.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ChannelRule } from '../../src/channels/rules.js';
import { ClusterUnavailableError } from '../../src/errors.js';
import type { HandlerOptions } from '../../src/handler.js';
import type { StreamPosition } from '../../src/history/history.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { apiRequest, assertJson } from '../helpers/http.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { CHANNEL, GENEROUS_MS, QUIET_MS, isMessage, receivedAtLeast, sleep, startNode, waitUntilDown, waitUntilReady } from '../helpers/redis-nodes.js';
import type { TestServer } from '../helpers/server.js';

const API_KEY = 'redis-outage-history-test-api-key';
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY, history: { size: 10_000, ttl: 3600 } };
/** How long Redis stays down: the scenario. */
const OUTAGE_MS = 5000;
const PUBLISH_EVERY_MS = 20;
/** Messages accepted before the outage, and again after it, before the publisher stops. */
const ACCEPTED_AROUND_OUTAGE = 30;
const SUBSCRIBERS_ON_B = 5;

async function node(t: TestContext, redis: TestRedis, options: HandlerOptions = {}): Promise<TestServer> {
  return startNode(t, redis, { ...QUIET, ...options });
}

async function client(t: TestContext, url: string): Promise<TestClient> {
  const connected = await TestClient.connect(url);
  t.after(() => connected.close());
  return connected;
}

async function subscribed(subscriber: TestClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const ack = await subscriber.request('subscribe', { channel, ...extra });
  assert.equal(ack.success, true, `subscribe ${channel}: ${JSON.stringify(ack)}`);
  return ack;
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_unused, index) => from + index);

/** What became of one publishMessage() of the run. */
type Outcome =
  | { n: number; status: 'accepted'; position: StreamPosition }
  /** Refused before anything was sent: Redis was known to be unavailable. */
  | { n: number; status: 'refused' }
  /** Failed in flight: whether Redis ran it is unknown (so it may or may not be delivered). */
  | { n: number; status: 'unknown'; error: string };

interface OutageRun {
  a: TestServer;
  b: TestServer;
  subscribers: TestClient[];
  outcomes: Outcome[];
  /** The epoch of the channel before the outage. */
  epochBefore: string;
}

/**
 * Nodes A and B; SUBSCRIBERS_ON_B subscribers on B and one on A. A publishes `{n}` every
 * 20 ms from the application; once some were accepted, Redis is SIGKILLed for OUTAGE_MS
 * and restarted; the publisher goes on until some more were accepted after that, then
 * stops. Resolves once every publish has its outcome.
 */
async function outageRun(t: TestContext, redis: TestRedis): Promise<OutageRun> {
  // A reconnects at once, B only every 1.5 s: A is back and publishing before B has
  // resubscribed (the scenario, where B's subscribers lost what passed meanwhile).
  const a = await node(t, redis, { brokerTuning: { retryDelay: () => 100 } });
  const b = await node(t, redis, { brokerTuning: { retryDelay: () => 1500 } });
  const subscribers: TestClient[] = [];
  for (let index = 0; index < SUBSCRIBERS_ON_B; index++) subscribers.push(await client(t, b.url));
  subscribers.push(await client(t, a.url));
  const acks = [];
  for (const subscriber of subscribers) acks.push(await subscribed(subscriber, CHANNEL));
  const epochBefore = acks[0]?.epoch as string;

  const settled: Outcome[] = [];
  const pending: Array<Promise<void>> = [];
  let n = 0;
  const publishOne = (): void => {
    const index = ++n;
    pending.push(
      a.handler.publishMessage(CHANNEL, { n: index }).then(
        ({ position }) => {
          assert.ok(position !== null, `message ${index} accepted without a position`);
          settled.push({ n: index, status: 'accepted', position });
        },
        (error: unknown) => {
          assert.ok(error instanceof ClusterUnavailableError, `message ${index}: ${String(error)}`);
          settled.push(/which is unavailable/.test(error.message) ? { n: index, status: 'refused' } : { n: index, status: 'unknown', error: error.message });
        },
      ),
    );
  };
  const timer = setInterval(publishOne, PUBLISH_EVERY_MS);
  t.after(() => clearInterval(timer));
  const accepted = (after = 0): number => settled.filter((outcome) => outcome.status === 'accepted' && outcome.n > after).length;

  await eventually(() => accepted() >= ACCEPTED_AROUND_OUTAGE, GENEROUS_MS, 'messages accepted before the outage');
  await redis.stop();
  await sleep(OUTAGE_MS);
  const lastBeforeRestart = n;
  await redis.start();
  await waitUntilReady(a);
  const acceptedBeforeB = accepted(lastBeforeRestart);
  await waitUntilReady(b);
  t.diagnostic(`${accepted(lastBeforeRestart) - acceptedBeforeB} messages accepted after A was back and before B was`);
  await eventually(() => accepted(lastBeforeRestart) >= ACCEPTED_AROUND_OUTAGE, GENEROUS_MS, 'messages accepted after the outage');
  clearInterval(timer);
  await Promise.all(pending);
  const outcomes = settled.sort((x, y) => x.n - y.n);
  assert.deepEqual(outcomes.map((outcome) => outcome.n), range(1, n), 'every publish has an outcome');
  const refused = outcomes.filter((outcome) => outcome.status === 'refused').length;
  const unknown = outcomes.filter((outcome) => outcome.status === 'unknown');
  assert.ok(refused > 0, 'some publishes were refused while Redis was down');
  t.diagnostic(`${n} publishes: ${accepted()} accepted, ${refused} refused, ${unknown.length} failed in flight ${JSON.stringify(unknown.map((outcome) => outcome.n))}`);
  return { a, b, subscribers, outcomes, epochBefore };
}

/** The frames a subscriber got on CHANNEL that matter here: messages and position notices. */
const channelFrames = (subscriber: TestClient): Frame[] => subscriber.received((frame) => frame.channel === CHANNEL && (frame.action === 'message' || frame.action === 'position'));
const nOf = (frame: Frame): number => (frame.message as { n: number }).n;

/** Asserts that `messages` carry offsets from..to, each once, in order, and that each accepted one carries its own payload. */
function assertContiguous(messages: readonly Frame[], accepted: ReadonlyMap<number, number>, what: string): void {
  const offsets = messages.map((frame) => frame.offset as number);
  const first = offsets[0] ?? 1;
  assert.deepEqual(offsets, range(first, first + offsets.length - 1), `${what}: offsets contiguous, each once, in order`);
  for (const [offset, n] of accepted) {
    const frame = messages.find((candidate) => candidate.offset === offset);
    assert.ok(frame !== undefined, `${what}: accepted message ${n} (offset ${offset}) was not delivered; offsets ${JSON.stringify(offsets)}`);
    assert.equal(nOf(frame), n, `${what}: the payload at offset ${offset}`);
  }
  const payloads = messages.map(nOf);
  assert.equal(new Set(payloads).size, payloads.length, `${what}: no message twice`);
}

test('Redis with persistence SIGKILLed for 5 s while A publishes every 20 ms: every subscriber on B (and A) gets every accepted message exactly once, in order, and never a refused one', async (t) => {
  const redis = await startRedis(t, [], { persistent: true });
  if (!redis) return;
  const { b, subscribers, outcomes, epochBefore } = await outageRun(t, redis);
  const accepted = outcomes.filter((outcome) => outcome.status === 'accepted');
  for (const outcome of accepted) assert.equal(outcome.position.epoch, epochBefore, `message ${outcome.n}: the history survived the restart (same epoch)`);
  const acceptedByOffset = new Map(accepted.map((outcome) => [outcome.position.offset, outcome.n]));
  assert.equal(acceptedByOffset.size, accepted.length, 'no offset given twice');
  const lastOffset = Math.max(...acceptedByOffset.keys());
  const refused = new Set(outcomes.filter((outcome) => outcome.status === 'refused').map((outcome) => outcome.n));

  for (const subscriber of subscribers) await receivedAtLeast(subscriber, (frame) => isMessageOn(CHANNEL)(frame) && frame.offset === lastOffset);
  await sleep(QUIET_MS);
  await Promise.all(subscribers.map((subscriber) => settle(subscriber)));
  for (const [index, subscriber] of subscribers.entries()) {
    const what = `subscriber ${index} on ${index < SUBSCRIBERS_ON_B ? 'B' : 'A'}`;
    const frames = channelFrames(subscriber);
    assert.deepEqual(frames.filter((frame) => frame.action === 'position'), [], `${what}: nothing was lost, nothing to tell`);
    assert.equal(frames[0]?.offset, 1, `${what}: from the first message`);
    assert.equal(frames.at(-1)?.offset, lastOffset, `${what}: up to the last`);
    assertContiguous(frames, acceptedByOffset, what);
    const delivered = frames.filter(isMessageOn(CHANNEL)).map(nOf).filter((n) => refused.has(n));
    assert.deepEqual(delivered, [], `${what}: refused messages were never delivered`);
  }
  // And the history on B holds the same frames.
  const page = await b.handler.history(CHANNEL, { since: 0, limit: 1000 });
  assert.equal(page.epoch, epochBefore);
  assert.deepEqual(
    page.messages.map((message) => JSON.parse(message.frame) as Frame),
    channelFrames(subscribers[0] as TestClient),
  );
});

test('Redis without persistence SIGKILLed for 5 s while A publishes every 20 ms: the epoch changes and the subscribers on B are told (position, recovered false), never left with a silent gap; resuming with the old epoch gives recovered false', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { a, b, subscribers, outcomes, epochBefore } = await outageRun(t, redis);
  const accepted = outcomes.filter((outcome) => outcome.status === 'accepted');
  const old = accepted.filter((outcome) => outcome.position.epoch === epochBefore);
  const fresh = accepted.filter((outcome) => outcome.position.epoch !== epochBefore);
  assert.ok(old.length > 0 && fresh.length > 0, `messages in both epochs: ${old.length} old, ${fresh.length} new`);
  const epochAfter = fresh[0]?.position.epoch as string;
  for (const outcome of fresh) assert.equal(outcome.position.epoch, epochAfter, 'one new epoch');
  assert.ok(
    old.every((outcome) => outcome.n < (fresh[0]?.n ?? 0)),
    'the old epoch ends where the new one begins',
  );
  const oldByOffset = new Map(old.map((outcome) => [outcome.position.offset, outcome.n]));
  const freshByOffset = new Map(fresh.map((outcome) => [outcome.position.offset, outcome.n]));
  const lastFresh = Math.max(...freshByOffset.keys());
  const refused = new Set(outcomes.filter((outcome) => outcome.status === 'refused').map((outcome) => outcome.n));

  const isNotice = (frame: Frame): boolean => frame.action === 'position' && frame.channel === CHANNEL;
  for (const subscriber of subscribers) {
    await receivedAtLeast(subscriber, isNotice);
    await receivedAtLeast(subscriber, (frame) => isMessageOn(CHANNEL)(frame) && frame.message !== null && nOf(frame) === fresh.at(-1)?.n);
  }
  await sleep(QUIET_MS);
  await Promise.all(subscribers.map((subscriber) => settle(subscriber)));
  for (const [index, subscriber] of subscribers.entries()) {
    const what = `subscriber ${index} on ${index < SUBSCRIBERS_ON_B ? 'B' : 'A'}`;
    const frames = channelFrames(subscriber);
    const firstNotice = frames.findIndex(isNotice);
    assert.ok(firstNotice >= 0, `${what} was told`);
    const notices = frames.filter(isNotice);
    for (const notice of notices) assert.deepEqual(notice, { action: 'position', channel: CHANNEL, epoch: epochAfter, offset: notice.offset, recovered: false }, `${what}: the notice names the new epoch`);
    const before = frames.slice(0, firstNotice);
    const after = frames.slice(firstNotice).filter((frame) => frame.action === 'message');
    // The old epoch: in order, each once, from the first; what was not delivered was told about.
    assert.equal(before[0]?.offset, 1, what);
    const delivered = new Set(before.map((frame) => frame.offset as number));
    const undelivered = [...oldByOffset.keys()].filter((offset) => !delivered.has(offset));
    assert.ok(undelivered.length === 0 || firstNotice >= 0, `${what}: a silent gap at offsets ${JSON.stringify(undelivered)}`);
    const deliveredOld = new Map([...oldByOffset].filter(([offset]) => delivered.has(offset)));
    assertContiguous(before, deliveredOld, `${what}, old epoch`);
    if (undelivered.length > 0) t.diagnostic(`${what}: ${undelivered.length} accepted messages of the old epoch were lost with Redis, and it was told`);
    // The new epoch: every accepted message, in order, each once, after the notice.
    assert.equal(after.at(-1)?.offset, lastFresh, what);
    assertContiguous(after, freshByOffset, `${what}, new epoch`);
    assert.deepEqual(frames.filter(isMessageOn(CHANNEL)).map(nOf).filter((n) => refused.has(n)), [], `${what}: refused messages were never delivered`);
  }

  // A client that left before the outage, resuming with the old epoch, on either node.
  for (const server of [b, a]) {
    const resuming = await client(t, server.url);
    const since = Math.max(...oldByOffset.keys());
    const ack = await subscribed(resuming, CHANNEL, { since, epoch: epochBefore });
    assert.equal(ack.recovered, false, JSON.stringify(ack));
    assert.equal(ack.epoch, epochAfter);
    assert.ok((ack.offset as number) >= lastFresh, JSON.stringify(ack));
    await settle(resuming);
    await sleep(QUIET_MS);
    assert.deepEqual(resuming.received(isMessageOn(CHANNEL)), [], 'nothing replayed');
  }
});

test('Redis with persistence restarted while B is still away: what A published before B was back reaches B once B is back, even though nothing is published after', async (t) => {
  const redis = await startRedis(t, [], { persistent: true });
  if (!redis) return;
  const a = await node(t, redis, { brokerTuning: { retryDelay: () => 100 } });
  const b = await node(t, redis, { brokerTuning: { retryDelay: () => 3000 } });
  const onB = await client(t, b.url);
  await subscribed(onB, CHANNEL);
  for (let n = 1; n <= 3; n++) await a.handler.publishMessage(CHANNEL, { n });
  await receivedAtLeast(onB, isMessageOn(CHANNEL), 3);
  await redis.stop();
  await waitUntilDown(a);
  await waitUntilDown(b);
  await redis.start();
  await waitUntilReady(a);
  const bAway = (await apiRequest(`${b.httpUrl}/readyz`, null, 'GET')).status === 503;
  // The last messages ever published: no later live message will show B a gap.
  for (let n = 4; n <= 8; n++) assert.equal((await a.handler.publishMessage(CHANNEL, { n })).position?.offset, n);
  t.diagnostic(`B was ${bAway ? 'still away' : 'already back'} when A published`);
  await waitUntilReady(b);
  await receivedAtLeast(onB, isMessageOn(CHANNEL), 8);
  await sleep(QUIET_MS);
  await settle(onB);
  assert.deepEqual(channelFrames(onB).map((frame) => [frame.offset, nOf(frame)]), range(1, 8).map((n) => [n, n]));
});

test('Redis without persistence restarted, nothing published after: the subscribers on B are told all the same (position, recovered false)', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const a = await node(t, redis);
  const b = await node(t, redis);
  const onB = await client(t, b.url);
  const { epoch } = await subscribed(onB, CHANNEL);
  for (let n = 1; n <= 3; n++) await a.handler.publishMessage(CHANNEL, { n });
  await receivedAtLeast(onB, isMessageOn(CHANNEL), 3);
  await redis.stop();
  await waitUntilDown(b);
  await redis.start();
  await waitUntilReady(a, b);
  const [notice] = await receivedAtLeast(onB, (frame) => frame.action === 'position' && frame.channel === CHANNEL);
  assert.equal(notice?.recovered, false, JSON.stringify(notice));
  assert.notEqual(notice?.epoch, epoch, 'a new epoch');
  const page = await b.handler.history(CHANNEL);
  assert.equal(page.epoch, notice?.epoch, 'the epoch the store has now');
  assert.deepEqual(page.messages, []);
});

const RULES: ChannelRule[] = [
  { pattern: 'hist.*', subscribe: ['*'], publish: ['*'], history: { size: 100, ttl: 3600 } },
  { pattern: 'live.*', subscribe: ['*'], publish: ['*'] },
];
const KEPT = 'hist.room';
const LIVE = 'live.room';

test('a publish on a history channel while Redis is down: INTERNAL_ERROR to the client, 503 from POST /api/publish, refused to the application, delivered to nobody; other messages still reach the local subscribers', async (t) => {
  const redis = await startRedis(t, [], { persistent: true });
  if (!redis) return;
  const options: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0, apiKey: API_KEY, channels: { rules: RULES } };
  const a = await startNode(t, redis, options);
  const b = await startNode(t, redis, options);
  const publisher = await client(t, a.url);
  const onA = await client(t, a.url);
  const onB = await client(t, b.url);
  const everyone = [publisher, onA, onB];
  for (const subscriber of everyone) {
    await subscribed(subscriber, KEPT);
    await subscribed(subscriber, LIVE);
  }
  const before = await publisher.publish(KEPT, 'before');
  assert.deepEqual([before.action, before.offset], ['message_sent', 1], JSON.stringify(before));
  for (const subscriber of everyone) await receivedAtLeast(subscriber, isMessage(KEPT, 'before'));

  await redis.stop();
  await waitUntilDown(a);
  await waitUntilDown(b);

  const refused = await publisher.publish(KEPT, 'refused from a client');
  assert.equal(refused.type, 'error', JSON.stringify(refused));
  assert.equal(refused.code, 'INTERNAL_ERROR');
  assert.equal(refused.action, 'message');
  for (const server of [a, b]) {
    const body = assertJson(await apiRequest(`${server.httpUrl}/api/publish`, API_KEY, 'POST', { channel: KEPT, message: 'refused from the API' }), 503);
    assert.equal(typeof body.error, 'string');
  }
  await assert.rejects(a.handler.publishMessage(KEPT, 'refused from the application'), ClusterUnavailableError);
  // Reading the history needs Redis too.
  const history = await onB.request('history', { channel: KEPT });
  assert.equal(history.code, 'INTERNAL_ERROR', JSON.stringify(history));
  assertJson(await apiRequest(`${a.httpUrl}/api/channels/${KEPT}/history`, API_KEY, 'GET'), 503);

  // Not kept: delivered on the node at once, as without Redis.
  const live = await publisher.publish(LIVE, 'live during the outage');
  assert.equal(live.action, 'message_sent', JSON.stringify(live));
  assert.equal(live.recipients_count, 2, 'counted on this node only');
  assert.equal(Object.hasOwn(live, 'offset'), false);
  const ephemeral = await publisher.publish(KEPT, 'ephemeral during the outage', { ephemeral: true });
  assert.equal(ephemeral.action, 'message_sent', JSON.stringify(ephemeral));
  assert.equal(Object.hasOwn(ephemeral, 'offset'), false);
  assertJson(await apiRequest(`${a.httpUrl}/api/publish`, API_KEY, 'POST', { channel: LIVE, message: 'live from the API during the outage' }), 200);
  for (const subscriber of [publisher, onA]) {
    await receivedAtLeast(subscriber, isMessage(LIVE, 'live during the outage'));
    await receivedAtLeast(subscriber, isMessage(LIVE, 'live from the API during the outage'));
    const [frame] = await receivedAtLeast(subscriber, isMessage(KEPT, 'ephemeral during the outage'));
    assert.equal(Object.hasOwn(frame as Frame, 'offset'), false, 'an ephemeral message has no offset');
  }

  await redis.start();
  await waitUntilReady(a, b);
  const after = await publisher.publish(KEPT, 'after');
  assert.equal(after.offset, 2, `no offset was used by the refused messages: ${JSON.stringify(after)}`);
  for (const subscriber of everyone) await receivedAtLeast(subscriber, isMessage(KEPT, 'after'));
  await sleep(QUIET_MS);
  for (const [index, subscriber] of everyone.entries()) {
    const kept = subscriber.received((frame) => isMessageOn(KEPT)(frame) && typeof frame.offset === 'number');
    assert.deepEqual(kept.map((frame) => [frame.offset, frame.message]), [[1, 'before'], [2, 'after']], `subscriber ${index}`);
    assert.deepEqual(subscriber.received((frame) => isMessageOn(KEPT)(frame) && String(frame.message).startsWith('refused')), [], `subscriber ${index} never got a refused message`);
  }
  const page = await b.handler.history(KEPT);
  assert.deepEqual(page.messages.map((message) => [message.offset, (JSON.parse(message.frame) as Frame).message]), [[1, 'before'], [2, 'after']]);
});
