/**
 * The worker side of the relay (SPEC §6, workers without Redis), driven through a fake
 * IPC channel: what it sends the primary, what it does with the primary's messages, and
 * what happens when the primary does not answer. test/cli/workers.test.ts runs it for
 * real between worker processes.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { Delivery, LocalNode } from '../../src/broker/broker.js';
import { ClusterBroker, type PrimaryChannel } from '../../src/broker/cluster/cluster-broker.js';
import { ClusterRelay } from '../../src/broker/cluster/cluster-relay.js';
import type { WorkerMessage } from '../../src/broker/cluster/messages.js';
import { ClusterUnavailableError, RequestTimeoutError } from '../../src/errors.js';
import type { NodeReport } from '../../src/views/cluster-view.js';
import { memoryLogger } from '../helpers/memory-logger.js';

/** A fake `process` of a worker: records what is sent, and emits what the test makes the primary say. */
class FakePrimary extends EventEmitter implements PrimaryChannel {
  connected = true;
  readonly sent: WorkerMessage[] = [];
  send = (message: WorkerMessage, _handle: undefined, _options: undefined, callback: (error: Error | null) => void): boolean => {
    this.sent.push(message);
    callback(null);
    return true;
  };
  override on(event: 'message', listener: (message: unknown) => void): this {
    return super.on(event, listener);
  }
  override off(event: 'message', listener: (message: unknown) => void): this {
    return super.off(event, listener);
  }
  say(message: unknown): void {
    this.emit('message', message);
  }
  last<T extends WorkerMessage['sb']>(tag: T): Extract<WorkerMessage, { sb: T }> {
    const found = this.sent.filter((message) => message.sb === tag).at(-1);
    assert.ok(found !== undefined, `a ${tag} message was sent`);
    return found as Extract<WorkerMessage, { sb: T }>;
  }
}

function report(id: string): NodeReport {
  return { id, host: 'h', pid: 1, connections: 0, channels: 0, messagesInPerSecond: 0, messagesOutPerSecond: 0, uptime: 0, ready: true };
}

/** A node that records its deliveries; `addressed` is what deliver() answers. */
function localNode(id: string, addressed = 1): LocalNode & { deliveries: Delivery[]; closed: number } {
  const node = {
    deliveries: [] as Delivery[],
    closed: 0,
    deliver(delivery: Delivery) {
      node.deliveries.push(delivery);
      return addressed;
    },
    report: () => report(id),
    channels: () => [],
    members: () => [],
    disconnect() {
      node.closed++;
      return 1;
    },
  };
  return node;
}

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
  assert.deepEqual(primary.sent[0], { sb: 'hello', nodeId: 'workerA1' });
  const publishing = broker.publish({ channel: 'room', recipients: null, frame: '{"n":1}' });
  assert.equal(local.deliveries.length, 1, 'local delivery comes first');
  const sent = primary.last('publish');
  assert.ok(Buffer.isBuffer(sent.frame));
  assert.equal(sent.frame.toString(), '{"n":1}');
  primary.say({ sb: 'reply', id: sent.id, count: 5 });
  assert.equal(await publishing, 5);
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
  assert.equal(await broker.publish({ channel: 'room', recipients: null, frame: Buffer.from('{}') }), 2);
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
  assert.equal(await broker.publish({ channel: 'room', recipients: null, frame: '{}' }), 2);
});

test('/metrics messages, malformed relay messages and unknown messages are never delivered; only the unknown ones are logged (debug)', async (t) => {
  const { primary, broker, local, lines } = await started({ level: 'debug' });
  t.after(() => broker.close());
  primary.say({ sb: 'metrics-ask', ask: 1 });
  primary.say({ sb: 'metrics-answer', id: 1, text: 'x' });
  primary.say({ sb: 'deliver', channel: 'room', recipients: null, frame: '{"as":"a string"}' });
  primary.say({ sb: 'deliver', channel: 'room', recipients: 'everyone', frame: Buffer.from('{}') });
  primary.say({ sb: 'something-new' });
  primary.say('text');
  assert.equal(local.deliveries.length, 0);
  assert.equal(lines.filter((line) => line.msg === 'ignoring an unknown IPC message').length, 2);
  primary.say({ sb: 'deliver', channel: 'room', recipients: ['7'], frame: Buffer.from('{"n":1}') });
  assert.equal(local.deliveries.length, 1);
  assert.deepEqual(local.deliveries[0], { channel: 'room', recipients: ['7'], frame: Buffer.from('{"n":1}') });
});

test('the primary\'s questions are answered with this worker\'s report or its closed count', async (t) => {
  const { primary, broker, local } = await started();
  t.after(() => broker.close());
  primary.say({ sb: 'ask', ask: 3, query: 'report' });
  assert.deepEqual(primary.last('part'), { sb: 'part', ask: 3, part: report('workerA1') });
  primary.say({ sb: 'ask', ask: 4, query: 'disconnect', target: { userId: 'alice' } });
  assert.deepEqual(primary.last('part'), { sb: 'part', ask: 4, part: 1 });
  assert.equal(local.closed, 1);
});

test('close() settles a request still waiting for the primary', async () => {
  const { broker } = await started();
  const joining = broker.join('room', { connectionId: 'workerA1-1', userId: null });
  await broker.close();
  assert.ok((await joining.catch((reason: unknown) => reason)) instanceof ClusterUnavailableError);
});

test('two workers through a relay: a publish reaches the other worker, the views answer for both', async (t) => {
  const primaries = new Map<number, FakePrimary>([
    [1, new FakePrimary()],
    [2, new FakePrimary()],
  ]);
  const relay = new ClusterRelay((worker, message) => {
    // Asynchronous, as IPC is.
    setImmediate(() => primaries.get(worker)?.say(message));
    return true;
  });
  const brokers = new Map<number, ClusterBroker>();
  const locals = new Map<number, ReturnType<typeof localNode>>();
  for (const [worker, primary] of primaries) {
    primary.send = (message, _handle, _options, callback) => {
      setImmediate(() => relay.handle(worker, message));
      callback(null);
      return true;
    };
    const nodeId = `worker${worker}AA`;
    const broker = new ClusterBroker({ nodeId, primary, logger: memoryLogger().logger });
    const local = localNode(nodeId, 1);
    await broker.start(local);
    brokers.set(worker, broker);
    locals.set(worker, local);
    t.after(() => broker.close());
  }
  const one = brokers.get(1) as ClusterBroker;
  const two = brokers.get(2) as ClusterBroker;
  await one.join('room', { connectionId: 'worker1AA-1', userId: 'alice' });
  await two.join('room', { connectionId: 'worker2AA-1', userId: null });
  assert.equal(await one.publish({ channel: 'room', recipients: null, frame: '{"n":1}' }), 2);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(locals.get(2)?.deliveries.length, 1);
  assert.equal(locals.get(2)?.deliveries[0]?.frame.toString(), '{"n":1}');
  assert.deepEqual((await two.channels()).map(({ channel, subscribers }) => [channel, subscribers]), [['room', 2]]);
  assert.deepEqual((await two.members('room')).map(({ node }) => node).sort(), ['worker1AA', 'worker2AA']);
  assert.deepEqual((await two.nodes()).map(({ id }) => id).sort(), ['worker1AA', 'worker2AA']);
  assert.deepEqual(await one.disconnect({ userId: 'alice' }), { disconnected: 2, unanswered: [] });
});
