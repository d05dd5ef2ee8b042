/**
 * The worker side of the relay (SPEC §6, workers without Redis), driven through a fake
 * IPC channel: what it sends the primary, what it does with the primary's messages, and
 * what happens when the primary does not answer. test/cli/workers.test.ts runs it for
 * real between worker processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterBroker } from '../../src/broker/cluster/cluster-broker.js';
import { BATCH_MAX } from '../../src/broker/cluster/ipc-batch.js';
import { ClusterUnavailableError, RequestTimeoutError } from '../../src/errors.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { FakePrimary, localNode, publication, report, settle, wiredWorkers } from './cluster-fakes.js';

async function started(options: { requestTimeoutMs?: number; level?: 'debug' | 'info' } = {}) {
  const primary = new FakePrimary();
  const { logger, lines } = memoryLogger(options.level);
  const broker = new ClusterBroker({ nodeId: 'workerA1', logger, primary, ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }) });
  const local = localNode('workerA1', 2);
  await broker.start(local);
  return { primary, broker, local, lines };
}

test('a worker says hello with its node id, and publishes its frame as a Buffer after delivering locally', async (t) => {
  const { primary, broker, local } = await started();
  t.after(() => broker.close());
  await settle(1);
  assert.deepEqual(primary.sent[0], { sb: 'hello', nodeId: 'workerA1' });
  const publishing = broker.publish(publication('room', '{"n":1}', { exclude: 'workerA1-3' }));
  assert.deepEqual(local.deliveries, [{ channel: 'room', recipients: null, exclude: 'workerA1-3', frame: '{"n":1}', position: null }], 'local delivery comes first');
  const sent = await primary.last('publish');
  assert.ok(Buffer.isBuffer(sent.frame));
  assert.equal(sent.frame.toString(), '{"n":1}');
  assert.equal(sent.exclude, 'workerA1-3');
  primary.say({ sb: 'reply', id: sent.id, count: 5 });
  assert.deepEqual(await publishing, { count: 5, position: null });
});

test('a join whose reply never comes rejects with RequestTimeoutError instead of waiting forever', async (t) => {
  const { broker } = await started({ requestTimeoutMs: 30 });
  t.after(() => broker.close());
  const error = await broker.join('room', { connectionId: 'workerA1-1', userId: null }).catch((reason: unknown) => reason);
  assert.ok(error instanceof RequestTimeoutError, String(error));
});

test('a publish whose count never comes resolves with the local count, and says so in the log', async (t) => {
  const { broker, lines } = await started({ requestTimeoutMs: 30 });
  t.after(() => broker.close());
  assert.deepEqual(await broker.publish(publication('room', '{}')), { count: 2, position: null });
  assert.ok(lines.some((line) => /did not count publishes in time/.test(line.msg ?? '')));
});

test('the cluster views reject with ClusterUnavailableError when the primary is gone', async (t) => {
  const { primary, broker } = await started();
  t.after(() => broker.close());
  primary.connected = false;
  for (const view of [() => broker.nodes(), () => broker.channels(), () => broker.members('room')]) {
    const error = await view().catch((reason: unknown) => reason);
    assert.ok(error instanceof ClusterUnavailableError, String(error));
  }
  // A disconnect closes this worker's own connections whatever happens, and says that the rest is unknown.
  assert.deepEqual(await broker.disconnect({ userId: 'a' }), { disconnected: 1, unanswered: ['primary'] });
  // A publish still reaches the worker's own subscribers, and counts them.
  assert.deepEqual(await broker.publish(publication('room', '{}')), { count: 2, position: null });
});

test('/metrics messages, malformed relay messages and unknown messages are never delivered; only the unknown ones are logged (debug)', async (t) => {
  const { primary, broker, local, lines } = await started({ level: 'debug' });
  t.after(() => broker.close());
  primary.say({ sb: 'metrics-ask', ask: 1 });
  primary.say({ sb: 'metrics-answer', id: 1, text: 'x' });
  primary.say({ sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: '{"as":"a string"}', position: null });
  primary.say({ sb: 'deliver', channel: 'room', recipients: 'everyone', exclude: null, frame: Buffer.from('{}'), position: null });
  // Without the fields a deliver has now (exclude, position).
  primary.say({ sb: 'deliver', channel: 'room', recipients: null, frame: Buffer.from('{}') });
  primary.say({ sb: 'something-new' });
  primary.say('text');
  assert.equal(local.deliveries.length, 0);
  assert.equal(lines.filter((line) => line.msg === 'ignoring an unknown IPC message').length, 2);
  primary.say({ sb: 'deliver', channel: 'room', recipients: ['7'], exclude: 'b-1', frame: Buffer.from('{"n":1}'), position: null });
  assert.equal(local.deliveries.length, 1);
  assert.deepEqual(local.deliveries[0], { channel: 'room', recipients: ['7'], exclude: 'b-1', frame: Buffer.from('{"n":1}'), position: null });
});

test('the primary\'s questions are answered with this worker\'s report or its closed count', async (t) => {
  const { primary, broker, local } = await started();
  t.after(() => broker.close());
  primary.say({ sb: 'ask', ask: 3, query: 'report' });
  assert.deepEqual(await primary.last('part'), { sb: 'part', ask: 3, part: report('workerA1') });
  primary.say({ sb: 'ask', ask: 4, query: 'disconnect', target: { userId: 'alice' } });
  assert.deepEqual(await primary.last('part'), { sb: 'part', ask: 4, part: 1 });
  assert.equal(local.closed, 1);
});

test('close() settles a request still waiting for the primary', async () => {
  const { broker } = await started();
  const joining = broker.join('room', { connectionId: 'workerA1-1', userId: null });
  await broker.close();
  assert.ok((await joining.catch((reason: unknown) => reason)) instanceof ClusterUnavailableError);
});

test('two workers through a relay: a publish reaches the other worker, the views answer for both', async (t) => {
  const { get, close } = await wiredWorkers(2);
  t.after(close);
  const one = get(1).broker;
  const two = get(2).broker;
  await one.join('room', { connectionId: 'worker1AA-1', userId: 'alice' });
  await two.join('room', { connectionId: 'worker2AA-1', userId: null });
  assert.deepEqual(await one.publish(publication('room', '{"n":1}')), { count: 2, position: null });
  await settle();
  assert.equal(get(2).local.deliveries.length, 1);
  assert.equal(get(2).local.deliveries[0]?.frame.toString(), '{"n":1}');
  assert.equal(get(1).local.deliveries.length, 1, 'the origin delivered it once, itself');
  assert.deepEqual((await two.channels()).map(({ channel, subscribers }) => [channel, subscribers]), [['room', 2]]);
  assert.deepEqual((await two.members('room')).map(({ node }) => node).sort(), ['worker1AA', 'worker2AA']);
  assert.deepEqual((await two.nodes()).map(({ id }) => id).sort(), ['worker1AA', 'worker2AA']);
  assert.deepEqual(await one.disconnect({ userId: 'alice' }), { disconnected: 2, unanswered: [] });
});

test('what a worker posts in one turn leaves as one IPC message, in order, and a batch holds BATCH_MAX messages at most', async (t) => {
  const { primary, broker } = await started();
  t.after(() => broker.close());
  await settle(1);
  const before = primary.ipcMessages;
  const publishing = [1, 2, 3].map((n) => broker.publish(publication('room', `{"n":${n}}`)));
  await settle(1);
  assert.equal(primary.ipcMessages - before, 1, 'three publishes in one turn, one IPC message');
  const publishes = primary.sent.filter((message) => message.sb === 'publish');
  assert.deepEqual(
    publishes.map((message) => message.frame.toString()),
    ['{"n":1}', '{"n":2}', '{"n":3}'],
  );
  // The answers come back as one batch too, and each reaches its own request.
  primary.say({ sb: 'batch', messages: publishes.map((message, index) => ({ sb: 'reply', id: message.id, count: 10 + index })) });
  assert.deepEqual(
    (await Promise.all(publishing)).map((result) => result.count),
    [10, 11, 12],
  );

  const many = BATCH_MAX * 2 + 1;
  const start = primary.ipcMessages;
  for (let n = 0; n < many; n++) void broker.leave(`room${n}`, 'workerA1-1');
  assert.equal(primary.ipcMessages - start, 2, 'a full batch leaves at once');
  await settle(1);
  assert.equal(primary.ipcMessages - start, 3, 'the rest at the end of the turn');
  assert.equal(primary.sent.filter((message) => message.sb === 'leave').length, many);
});

test('a malformed message in a batch from the primary is ignored; the others of the batch are used', async (t) => {
  const { primary, broker, local } = await started();
  t.after(() => broker.close());
  primary.say({
    sb: 'batch',
    messages: [
      { sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: Buffer.from('{"n":1}'), position: null },
      { sb: 'deliver', channel: 7, recipients: null, exclude: null, frame: Buffer.from('{"n":2}'), position: null },
      null,
      { sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: Buffer.from('{"n":3}'), position: null },
    ],
  });
  primary.say({ sb: 'batch', messages: 'not a list' });
  assert.deepEqual(
    local.deliveries.map((delivery) => String(delivery.frame)),
    ['{"n":1}', '{"n":3}'],
  );
});
