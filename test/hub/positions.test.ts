/**
 * A node's position in each history channel (hub/positions.ts), with a store the test
 * controls: messages go out in offset order, each once; a gap is read back from the store;
 * a read that fails is tried again without waiting for another message; and subscribers
 * are told whenever the store can no longer give back what they may have missed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { HistoryPage, HistoryQuery, StreamPosition } from '../../src/history/history.js';
import { ChannelPositions } from '../../src/hub/positions.js';
import { eventually } from '../helpers/client.js';

const CHANNEL = 'chat.1';

/** A store of frames by offset in one epoch, whose reads can be made to fail. */
function harness(epoch = 'E1') {
  const store = { epoch, messages: new Map<number, string>(), failures: 0, reads: [] as HistoryQuery[] };
  const delivered: Array<{ frame: string; position: StreamPosition | null }> = [];
  const lost: StreamPosition[] = [];
  const read = (_channel: string, query: HistoryQuery): Promise<HistoryPage> => {
    store.reads.push(query);
    if (store.failures > 0) {
      store.failures--;
      return Promise.reject(new Error('store out of reach'));
    }
    const offsets = [...store.messages.keys()].sort((a, b) => a - b);
    const head = offsets.at(-1) ?? 0;
    const after = offsets.filter((offset) => query.since === null || offset > query.since).slice(0, query.limit);
    return Promise.resolve({ epoch: store.epoch, offset: head, messages: after.map((offset) => ({ offset, frame: store.messages.get(offset) as string })) });
  };
  const positions = new ChannelPositions({
    read,
    fanOut: (delivery) => {
      delivered.push({ frame: String(delivery.frame), position: delivery.position });
      return 1;
    },
    lost: (_channel, position) => lost.push(position),
    logger: pino({ level: 'silent' }),
  });
  const publish = (offset: number, live = true): void => {
    store.messages.set(offset, `m${offset}`);
    if (live) positions.deliver({ channel: CHANNEL, recipients: null, exclude: null, frame: `m${offset}`, position: { epoch: store.epoch, offset } });
  };
  return { store, delivered, lost, positions, publish, frames: () => delivered.map((entry) => entry.frame) };
}

test('in order: delivered at once, duplicates dropped', async () => {
  const { positions, publish, frames } = harness();
  positions.open(CHANNEL);
  await positions.ready(CHANNEL);
  publish(1);
  publish(2);
  positions.deliver({ channel: CHANNEL, recipients: null, exclude: null, frame: 'm2', position: { epoch: 'E1', offset: 2 } });
  assert.deepEqual(frames(), ['m1', 'm2']);
  assert.deepEqual(positions.position(CHANNEL), { epoch: 'E1', offset: 2 });
});

test('a skipped offset is read back from the store, then what was held follows, in order', async () => {
  const { positions, publish, frames, lost } = harness();
  positions.open(CHANNEL);
  await positions.ready(CHANNEL);
  publish(1);
  publish(2, false);
  publish(3, false);
  publish(4);
  publish(5);
  await eventually(() => frames().length === 5, 2000, 'the gap filled');
  assert.deepEqual(frames(), ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.deepEqual(lost, []);
});

test('a failed read is tried again without another message, and the held one is delivered', async () => {
  const { store, positions, publish, frames } = harness();
  positions.open(CHANNEL);
  await positions.ready(CHANNEL);
  publish(1);
  store.failures = 2;
  publish(2, false);
  publish(3);
  await eventually(() => frames().length === 3, 5000, 'delivered after the retries');
  assert.deepEqual(frames(), ['m1', 'm2', 'm3']);
});

test('subscribers that joined while the store was out of reach are told once it is back', async () => {
  const { store, positions, publish, frames, lost } = harness();
  store.failures = 1;
  publish(1, false);
  publish(2, false);
  positions.open(CHANNEL);
  await positions.ready(CHANNEL);
  assert.equal(positions.position(CHANNEL), null, 'unknown while the store is out of reach');
  await eventually(() => positions.position(CHANNEL) !== null, 5000, 'known after the retry');
  assert.deepEqual(lost, [{ epoch: 'E1', offset: 2 }]);
  publish(3);
  assert.deepEqual(frames(), ['m3']);
});

test('a new epoch: the subscribers are told, and the new epoch is delivered from its start', async () => {
  const { store, positions, publish, frames, lost } = harness();
  positions.open(CHANNEL);
  await positions.ready(CHANNEL);
  publish(1);
  store.epoch = 'E2';
  store.messages.clear();
  publish(1, false);
  publish(2);
  await eventually(() => frames().length === 3, 2000, 'the new epoch delivered');
  assert.deepEqual(frames(), ['m1', 'm1', 'm2']);
  assert.deepEqual(lost, [{ epoch: 'E2', offset: 0 }]);
  assert.deepEqual(positions.position(CHANNEL), { epoch: 'E2', offset: 2 });
});

test('trimmed past what was missed: the subscribers are told where delivery goes on', async () => {
  const { store, positions, publish, frames, lost } = harness();
  positions.open(CHANNEL);
  await positions.ready(CHANNEL);
  publish(1);
  for (const offset of [2, 3, 4]) publish(offset, false);
  store.messages.delete(2);
  store.messages.delete(3);
  publish(5);
  await eventually(() => frames().length === 3, 2000, 'the kept ones delivered');
  assert.deepEqual(frames(), ['m1', 'm4', 'm5']);
  assert.deepEqual(lost, [{ epoch: 'E1', offset: 3 }]);
});
