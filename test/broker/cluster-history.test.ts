/**
 * History and presence across workers without Redis (SPEC §4, §6): the primary's relay
 * keeps the history, gives each kept message its offset and delivers it to every worker
 * with subscribers, the sender's included; it answers history reads, and tells the other
 * workers who left with a worker that exited. Workers and relay are wired through
 * in-memory channels (cluster-fakes.ts); test/cli/workers.test.ts runs real workers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Delivery } from '../../src/broker/broker.js';
import { ClusterBroker } from '../../src/broker/cluster/cluster-broker.js';
import type { PrimaryMessage } from '../../src/broker/cluster/messages.js';
import { ClusterUnavailableError, RequestTimeoutError } from '../../src/errors.js';
import { MemoryHistory } from '../../src/history/memory-history.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { FakePrimary, kept, localNode, publication, settle, wiredWorkers } from './cluster-fakes.js';

const offsets = (deliveries: Delivery[]) => deliveries.map((delivery) => delivery.position?.offset);
const texts = (deliveries: Delivery[]) => deliveries.map((delivery) => delivery.frame.toString());

test('kept messages get their offsets from the primary and reach every worker in offset order, the origin included', async (t) => {
  const { get, inbox, close } = await wiredWorkers(3);
  t.after(close);
  await get(1).broker.join('room', { connectionId: 'worker1AA-1', userId: null });
  await get(2).broker.join('room', { connectionId: 'worker2AA-1', userId: null });
  await get(3).broker.join('lobby', { connectionId: 'worker3AA-1', userId: null });
  const publishing = [];
  for (let n = 1; n <= 10; n++) publishing.push(get(n % 2 === 0 ? 2 : 1).broker.publish(publication('room', `{"n":${n}}`, { history: kept })));
  // Not delivered by the origin itself: it waits for the primary's deliver, like every worker.
  assert.equal(get(1).local.deliveries.length, 0);
  assert.equal(get(2).local.deliveries.length, 0);
  const results = await Promise.all(publishing);
  await settle();
  const epoch = results[0]?.position?.epoch;
  assert.ok(typeof epoch === 'string' && epoch.length > 0);
  for (const worker of [1, 2]) {
    const { deliveries } = get(worker).local;
    assert.deepEqual(offsets(deliveries), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], `worker ${worker} has every offset once, in order`);
    assert.ok(deliveries.every((delivery) => delivery.position?.epoch === epoch));
    // Each frame carries its own offset.
    for (const delivery of deliveries) assert.match(delivery.frame.toString(), new RegExp(`"offset":${delivery.position?.offset}}$`));
    // Exactly one delivery per kept message reached each worker, through the relay.
    assert.equal((inbox.get(worker) ?? []).filter((message) => message.sb === 'deliver').length, 10);
  }
  assert.deepEqual(texts(get(1).local.deliveries), texts(get(2).local.deliveries), 'the same frames on both workers');
  assert.equal(get(3).local.deliveries.length, 0, 'a worker without subscribers on the channel gets nothing');
  // Each publish was answered with its own place and the cluster-wide count.
  assert.deepEqual(
    results.map((result) => result.position?.offset).sort((a = 0, b = 0) => a - b),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.ok(results.every((result) => result.count === 2 && result.position?.epoch === epoch));
});

test('the origin has the kept message before its publish resolves, and the answer carries its position', async (t) => {
  const { get, close } = await wiredWorkers(2);
  t.after(close);
  await get(1).broker.join('room', { connectionId: 'worker1AA-1', userId: '7' });
  await get(2).broker.join('room', { connectionId: 'worker2AA-1', userId: '8' });
  const result = await get(1).broker.publish(publication('room', '{"n":1}', { history: kept, recipients: ['7'], exclude: 'worker2AA-1' }));
  assert.equal(result.count, 1);
  assert.equal(result.position?.offset, 1);
  const [delivery] = get(1).local.deliveries;
  assert.deepEqual(delivery, { channel: 'room', recipients: ['7'], exclude: 'worker2AA-1', frame: Buffer.from('{"n":1,"offset":1}'), position: result.position });
  // A second channel has offsets of its own.
  assert.equal((await get(2).broker.publish(publication('other', '{"n":1}', { history: kept }))).position?.offset, 1);
  assert.equal((await get(2).broker.publish(publication('room', '{"n":2}', { history: kept }))).position?.offset, 2);
});

test('messages not kept are delivered by the origin at once, carry their exclude, and have no position', async (t) => {
  const { get, close } = await wiredWorkers(2);
  t.after(close);
  await get(1).broker.join('room', { connectionId: 'worker1AA-1', userId: null });
  await get(2).broker.join('room', { connectionId: 'worker2AA-1', userId: null });
  const publishing = get(1).broker.publish(publication('room', '{"action":"leave"}', { exclude: 'worker1AA-9' }));
  assert.equal(get(1).local.deliveries.length, 1);
  assert.deepEqual(await publishing, { count: 2, position: null });
  await settle();
  assert.deepEqual(get(2).local.deliveries, [{ channel: 'room', recipients: null, exclude: 'worker1AA-9', frame: Buffer.from('{"action":"leave"}'), position: null }]);
  assert.equal(get(1).local.deliveries.length, 1, 'never twice on the origin');
});

test('history reads are answered from the primary\'s store: since, until, limit, and the position alone', async (t) => {
  const { get, close } = await wiredWorkers(2, { history: new MemoryHistory() });
  t.after(close);
  for (let n = 1; n <= 8; n++) await get(1).broker.publish(publication('room', `{"n":${n}}`, { history: { size: 5, ttl: 3600 } }));
  const two = get(2).broker;
  const newest = await two.history('room', { since: null, until: null, limit: 3 });
  assert.equal(newest.offset, 8);
  assert.deepEqual(
    newest.messages.map(({ offset }) => offset),
    [6, 7, 8],
  );
  assert.equal(newest.messages[0]?.frame, '{"n":6,"offset":6}');
  const window = await two.history('room', { since: 4, until: 7, limit: 10 });
  assert.deepEqual(
    window.messages.map(({ offset }) => offset),
    [5, 6, 7],
  );
  assert.equal(window.epoch, newest.epoch);
  const limited = await two.history('room', { since: 3, until: null, limit: 2, seen: { epoch: newest.epoch, offset: 8 } });
  assert.deepEqual(
    limited.messages.map(({ offset }) => offset),
    [4, 5],
    'only the last 5 are kept (4..8), the oldest 2 after since',
  );
  const position = await two.history('room', { since: null, until: null, limit: 0 });
  assert.deepEqual(position, { epoch: newest.epoch, offset: 8, messages: [] });
  // A channel without messages has an epoch, and offset 0.
  const empty = await two.history('quiet', { since: null, until: null, limit: 10 });
  assert.equal(empty.offset, 0);
  assert.ok(empty.epoch.length > 0);
});

test('a worker that exits: the others call membersGone (this worker\'s subscribers only) for their channels alone, and never reconnected()', async (t) => {
  const { relay, get, gone, close } = await wiredWorkers(3);
  t.after(close);
  await get(1).broker.join('room', { connectionId: 'worker1AA-1', userId: 42 });
  await get(1).broker.join('room', { connectionId: 'worker1AA-2', userId: null });
  await get(1).broker.join('side', { connectionId: 'worker1AA-1', userId: 42 });
  await get(2).broker.join('room', { connectionId: 'worker2AA-1', userId: 'b' });
  await get(3).broker.join('lobby', { connectionId: 'worker3AA-1', userId: 'c' });
  gone.add(1);
  relay.removeWorker(1);
  await settle();
  assert.deepEqual(get(2).local.gone, [
    {
      channel: 'room',
      members: [
        { connectionId: 'worker1AA-1', userId: 42 },
        { connectionId: 'worker1AA-2', userId: null },
      ],
      everywhere: false,
    },
  ]);
  assert.deepEqual(get(3).local.gone, [], 'no members in those channels: nothing to tell');
  assert.equal(relay.memberCount('room'), 1);
  for (const worker of [2, 3]) assert.equal(get(worker).local.reconnects, 0);
});

async function lonelyWorker(requestTimeoutMs = 5000) {
  const primary = new FakePrimary();
  const broker = new ClusterBroker({ nodeId: 'workerA1', logger: memoryLogger().logger, primary, requestTimeoutMs });
  const local = localNode('workerA1', 2);
  await broker.start(local);
  return { primary, broker, local };
}

test('a kept publish or a history read that the primary does not answer rejects with RequestTimeoutError, and delivers nothing', async (t) => {
  const { broker, local } = await lonelyWorker(30);
  t.after(() => broker.close());
  const publishing = await broker.publish(publication('room', '{}', { history: kept })).catch((reason: unknown) => reason);
  assert.ok(publishing instanceof RequestTimeoutError, String(publishing));
  const reading = await broker.history('room', { since: null, until: null, limit: 1 }).catch((reason: unknown) => reason);
  assert.ok(reading instanceof RequestTimeoutError, String(reading));
  assert.equal(local.deliveries.length, 0);
});

test('a kept publish or a history read with the primary gone rejects with ClusterUnavailableError at once', async (t) => {
  const { primary, broker, local } = await lonelyWorker();
  t.after(() => broker.close());
  primary.connected = false;
  const publishing = await broker.publish(publication('room', '{}', { history: kept })).catch((reason: unknown) => reason);
  assert.ok(publishing instanceof ClusterUnavailableError && !(publishing instanceof RequestTimeoutError), String(publishing));
  const reading = await broker.history('room', { since: null, until: null, limit: 1 }).catch((reason: unknown) => reason);
  assert.ok(reading instanceof ClusterUnavailableError && !(reading instanceof RequestTimeoutError), String(reading));
  assert.equal(local.deliveries.length, 0);
  // Before start() and after close() too.
  await broker.close();
  const closed = await broker.publish(publication('room', '{}', { history: kept })).catch((reason: unknown) => reason);
  assert.ok(closed instanceof ClusterUnavailableError, String(closed));
});

test('a worker sends a kept publish and a history read with every field, and takes the answers of their own kind only', async (t) => {
  const { primary, broker } = await lonelyWorker();
  t.after(() => broker.close());
  const publishing = broker.publish(publication('room', '{"n":1}', { history: kept, recipients: ['7'], exclude: 'x-1' }));
  const append = await primary.last('append');
  assert.deepEqual(append, { sb: 'append', id: append.id, channel: 'room', recipients: ['7'], exclude: 'x-1', frame: '{"n":1}', history: kept });
  primary.say({ sb: 'stored', id: append.id, count: 3, position: { epoch: 'e1', offset: 9 } });
  assert.deepEqual(await publishing, { count: 3, position: { epoch: 'e1', offset: 9 } });

  const reading = broker.history('room', { since: 2, until: 5, limit: 10 });
  const read = await primary.last('history');
  assert.deepEqual(read, { sb: 'history', id: read.id, channel: 'room', since: 2, until: 5, limit: 10, seen: null });
  const page = { epoch: 'e1', offset: 9, messages: [{ offset: 3, frame: '{"offset":3}' }] };
  primary.say({ sb: 'page', id: read.id, page });
  assert.deepEqual(await reading, page);

  // A count where a position is due is not made into one.
  const second = broker.publish(publication('room', '{"n":2}', { history: kept }));
  primary.say({ sb: 'reply', id: (await primary.last('append')).id, count: 3 });
  assert.ok((await second.catch((reason: unknown) => reason)) instanceof ClusterUnavailableError);
});

test('malformed stored, page, gone and deliver messages are ignored', async (t) => {
  const { primary, broker, local } = await lonelyWorker(50);
  t.after(() => broker.close());
  const publishing = broker.publish(publication('room', '{}', { history: kept })).catch((reason: unknown) => reason);
  const reading = broker.history('room', { since: null, until: null, limit: 5 }).catch((reason: unknown) => reason);
  const appendId = (await primary.last('append')).id;
  const readId = (await primary.last('history')).id;
  const malformed: unknown[] = [
    { sb: 'stored', id: appendId, count: 1 },
    { sb: 'stored', id: appendId, count: 1, position: { epoch: 'e', offset: -1 } },
    { sb: 'stored', id: appendId, count: 1, position: { epoch: 7, offset: 1 } },
    { sb: 'stored', id: 'one', count: 1, position: { epoch: 'e', offset: 1 } },
    { sb: 'page', id: readId, page: { epoch: 'e', offset: 1 } },
    { sb: 'page', id: readId, page: { epoch: 'e', offset: 1, messages: [{ offset: 1, frame: Buffer.from('{}') }] } },
    { sb: 'page', id: readId, page: { epoch: 'e', offset: 1.5, messages: [] } },
    { sb: 'gone', channel: 'room', members: [{ connectionId: 7, userId: null }] },
    { sb: 'gone', channel: 'room', members: [{ connectionId: 'a-1' }] },
    { sb: 'gone', channel: 'room', members: 'a-1' },
    { sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: Buffer.from('{}'), position: { epoch: 'e' } },
    { sb: 'deliver', channel: 'room', recipients: null, exclude: 5, frame: Buffer.from('{}'), position: null },
  ];
  for (const message of malformed) primary.say(message);
  assert.ok((await publishing) instanceof RequestTimeoutError, 'no malformed answer settled the publish');
  assert.ok((await reading) instanceof RequestTimeoutError, 'no malformed answer settled the read');
  assert.equal(local.deliveries.length, 0);
  assert.deepEqual(local.gone, []);
  // A well-formed gone reaches the node, for its own subscribers only.
  primary.say({ sb: 'gone', channel: 'room', members: [{ connectionId: 'b-1', userId: 'u' }] });
  assert.deepEqual(local.gone, [{ channel: 'room', members: [{ connectionId: 'b-1', userId: 'u' }], everywhere: false }]);
});

test('the relay ignores malformed appends and history reads: nothing is stored, sent or answered', async (t) => {
  const history = new MemoryHistory();
  const { relay, inbox, close } = await wiredWorkers(1, { history });
  t.after(close);
  relay.handle(1, { sb: 'join', id: 1, channel: 'room', connectionId: 'worker1AA-1', userId: null });
  inbox.clear();
  const append = { sb: 'append', id: 1, channel: 'room', recipients: null, exclude: null, frame: '{}', history: kept };
  const read = { sb: 'history', id: 2, channel: 'room', since: null, until: null, limit: 5, seen: null };
  const malformed: unknown[] = [
    { ...append, frame: Buffer.from('{}') },
    { ...append, history: null },
    { ...append, history: { size: 0, ttl: 60 } },
    { ...append, history: { size: 10, ttl: 0 } },
    { ...append, history: { size: 1.5, ttl: 60 } },
    { ...append, exclude: 3 },
    { ...append, id: undefined },
    { ...read, limit: -1 },
    { ...read, since: '3' },
    { ...read, until: 2.5 },
    { ...read, seen: { epoch: 'e' } },
    { ...read, channel: undefined },
  ];
  for (const message of malformed) assert.equal(relay.handle(1, message), false, JSON.stringify(message));
  assert.equal(inbox.size, 0);
  assert.equal(history.read('room', { since: null, until: null, limit: 10 }).offset, 0);
  // The well-formed ones are taken.
  assert.equal(relay.handle(1, append), true);
  assert.equal(relay.handle(1, read), true);
  const sent = (inbox.get(1) ?? []).map((message: PrimaryMessage) => message.sb);
  assert.deepEqual(sent, ['deliver', 'stored', 'page']);
});
