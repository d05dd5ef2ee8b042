/**
 * The in-memory broker of one process: publishing is local delivery, and its cluster
 * views are the node's own, so the handler needs no fallbacks of its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Delivery, LocalNode } from '../../src/broker/broker.js';
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
  };
}

test('publishing delivers to the node and counts its subscribers', async () => {
  const broker = new MemoryBroker();
  const node = localNode();
  await broker.start(node);
  const delivery: Delivery = { channel: 'room', recipients: null, frame: '{}' };
  assert.equal(await broker.publish(delivery), 2);
  assert.deepEqual(node.delivered, [delivery]);
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
  for (const call of [() => broker.publish({ channel: 'room', recipients: null, frame: '{}' }), () => broker.nodes(), () => broker.channels(), () => broker.members('room'), () => broker.disconnect({ connectionId: 'x-1' })]) {
    await assert.rejects(call(), ClusterUnavailableError);
  }
});
