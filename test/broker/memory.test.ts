/**
 * The in-memory broker of one process: publishing is local delivery, and its cluster
 * views are the node's own, so the handler needs no fallbacks of its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Delivery, LocalNode, Publication } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import { ClusterUnavailableError } from '../../src/errors.js';
import type { NodeReport } from '../../src/views/cluster-view.js';

const report: NodeReport = { id: 'nodeAAAA', host: 'h', pid: 1, connections: 2, channels: 1, messagesInPerSecond: 0, messagesOutPerSecond: 0, uptime: 3, ready: true };

function localNode(): LocalNode & { delivered: Delivery[] } {
  const delivered: Delivery[] = [];
  return {
    delivered,
    deliver: (delivery) => {
      delivered.push(delivery);
      return 2;
    },
    report: () => report,
    channels: () => [{ channel: 'room', subscribers: 2 }],
    members: (channel) => (channel === 'room' ? [{ connectionId: 'nodeAAAA-1', userId: 'alice', node: 'nodeAAAA' }] : []),
    disconnect: (target) => ('userId' in target && target.userId === 'alice' ? 1 : 0),
    reconnected: () => undefined,
    membersGone: () => undefined,
  };
}

test('publishing delivers to the node and counts its subscribers', async () => {
  const broker = new MemoryBroker();
  const node = localNode();
  await broker.start(node);
  const publication: Publication = { channel: 'room', recipients: null, exclude: 'nodeAAAA-1', frame: '{}', history: null };
  assert.deepEqual(await broker.publish(publication), { count: 2, position: null });
  assert.deepEqual(node.delivered, [{ channel: 'room', recipients: null, exclude: 'nodeAAAA-1', frame: '{}', position: null }]);
});

test('on a channel with history, the store gives offsets in order, puts them in the frame, and reads them back', async () => {
  const broker = new MemoryBroker();
  const node = localNode();
  await broker.start(node);
  const history = { size: 2, ttl: 60 };
  const empty = await broker.history('room', { since: null, until: null, limit: 10 });
  assert.equal(empty.offset, 0);
  const results = [];
  for (const text of ['a', 'b', 'c']) results.push(await broker.publish({ channel: 'room', recipients: null, exclude: null, frame: `{"m":"${text}"}`, history }));
  assert.deepEqual(results.map((result) => result.position), [1, 2, 3].map((offset) => ({ epoch: empty.epoch, offset })));
  assert.deepEqual(node.delivered.map((delivery) => delivery.frame), ['{"m":"a","offset":1}', '{"m":"b","offset":2}', '{"m":"c","offset":3}']);
  const page = await broker.history('room', { since: null, until: null, limit: 10 });
  assert.deepEqual(page, { epoch: empty.epoch, offset: 3, messages: [{ offset: 2, frame: '{"m":"b","offset":2}' }, { offset: 3, frame: '{"m":"c","offset":3}' }] });
  assert.deepEqual((await broker.history('room', { since: 2, until: null, limit: 10 })).messages.map((message) => message.offset), [3]);
  assert.deepEqual((await broker.history('room', { since: 1, until: 2, limit: 10 })).messages.map((message) => message.offset), [2]);
  assert.deepEqual((await broker.history('room', { since: null, until: null, limit: 0 })).messages, []);
  await broker.close();
  const restarted = new MemoryBroker();
  await restarted.start(localNode());
  assert.notEqual((await restarted.history('room', { since: null, until: null, limit: 0 })).epoch, (await broker.history('room', { since: null, until: null, limit: 0 }).catch(() => ({ epoch: 'closed' }))).epoch);
  await restarted.close();
});

test('the cluster views are the node\'s own', async () => {
  const broker = new MemoryBroker();
  await broker.start(localNode());
  assert.deepEqual(await broker.nodes(), [report]);
  assert.deepEqual(await broker.channels(), [{ channel: 'room', subscribers: 2 }]);
  assert.deepEqual(await broker.members('room'), [{ connectionId: 'nodeAAAA-1', userId: 'alice', node: 'nodeAAAA' }]);
  assert.deepEqual(await broker.disconnect({ userId: 'alice' }), { disconnected: 1, unanswered: [] });
});

test('before start() and after close(), publishing and the views reject with ClusterUnavailableError (the API\'s 503)', async () => {
  const broker = new MemoryBroker();
  await assert.rejects(broker.nodes(), ClusterUnavailableError);
  await broker.start(localNode());
  await broker.close();
  for (const call of [() => broker.publish({ channel: 'room', recipients: null, exclude: null, frame: '{}', history: null }), () => broker.nodes(), () => broker.channels(), () => broker.members('room'), () => broker.disconnect({ connectionId: 'x-1' })]) {
    await assert.rejects(call(), ClusterUnavailableError);
  }
});
