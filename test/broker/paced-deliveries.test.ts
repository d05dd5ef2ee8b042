/**
 * A burst of other nodes' messages is handed to the node over several event-loop turns
 * (src/broker/delivery-pacer.ts), in the order it came, through each broker that receives
 * them: a worker's ClusterBroker (one IPC batch from the primary) and the RedisBroker (one
 * read from a real redis-server). Each delivery here busy-waits DELIVERY_MS, so a turn
 * holds at most BUDGET_MS / DELIVERY_MS + 1 of them however fast the machine is; delivered
 * all in one turn, as before the pacer, the burst would hold the loop for its whole length.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Delivery } from '../../src/broker/broker.js';
import { ClusterBroker } from '../../src/broker/cluster/cluster-broker.js';
import { BUDGET_MS } from '../../src/broker/delivery-pacer.js';
import { RedisBroker } from '../../src/broker/redis/redis-broker.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { startRedis, until } from '../helpers/redis.js';
import { redisOptions } from '../helpers/redis-nodes.js';
import { FakePrimary, kept, localNode, publication } from './cluster-fakes.js';

const DELIVERY_MS = 2;
const MOST_PER_TURN = Math.floor(BUDGET_MS / DELIVERY_MS) + 1;
const BURST = 40;

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A LocalNode whose deliveries each take DELIVERY_MS, recorded with the event-loop turn they were made in. */
function slowNode(id: string) {
  const node = localNode(id);
  const turns: number[] = [];
  let turn = 0;
  let ticking = true;
  const tick = (): void => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  node.deliver = (delivery: Delivery) => {
    busyWait(DELIVERY_MS);
    node.deliveries.push(delivery);
    turns.push(turn);
    return 1;
  };
  const perTurn = (): number => Math.max(...[...new Set(turns)].map((each) => turns.filter((one) => one === each).length));
  return { node, perTurn, stop: () => (ticking = false) };
}

const frames = (deliveries: readonly Delivery[]) => deliveries.map((delivery) => String(delivery.frame));
const expected = Array.from({ length: BURST }, (_, n) => `{"n":${n}}`);

test('a worker: one IPC batch of deliveries is spread over turns, in order, and a publish answer waits for the deliveries before it', async (t) => {
  const primary = new FakePrimary();
  const { logger } = memoryLogger();
  const broker = new ClusterBroker({ nodeId: 'workerP1', logger, primary });
  const slow = slowNode('workerP1');
  t.after(() => {
    slow.stop();
    return broker.close();
  });
  await broker.start(slow.node);
  // A kept publish from this worker: the primary will answer with its position after relaying it.
  const publishing = broker.publish(publication('room', '{"n":0}', { history: kept }));
  const append = await primary.last('append');
  let deliveredWhenAnswered = -1;
  void publishing.then(() => (deliveredWhenAnswered = slow.node.deliveries.length));

  const position = (offset: number) => ({ epoch: 'e', offset });
  primary.say({
    sb: 'batch',
    messages: [
      ...expected.map((frame, n) => ({ sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: Buffer.from(frame), position: position(n + 1) })),
      { sb: 'stored', id: append.id, count: BURST, position: position(1) },
    ],
  });
  assert.ok(slow.node.deliveries.length < BURST, `the batch was not delivered in one turn (${slow.node.deliveries.length} of ${BURST})`);
  await until(() => deliveredWhenAnswered !== -1, 10_000, 'the publish answered');
  assert.equal(deliveredWhenAnswered, BURST, 'the answer came after every delivery the primary sent before it');
  assert.deepEqual(frames(slow.node.deliveries), expected);
  assert.ok(slow.perTurn() <= MOST_PER_TURN, `at most ${MOST_PER_TURN} deliveries a turn, saw ${slow.perTurn()}`);
});

test('Redis: a burst of messages from another node is spread over turns, in order', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const { logger } = memoryLogger();
  const a = new RedisBroker(redisOptions(redis), { nodeId: 'pacedNdA', logger });
  const b = new RedisBroker(redisOptions(redis), { nodeId: 'pacedNdB', logger });
  const slow = slowNode('pacedNdB');
  t.after(async () => {
    slow.stop();
    await a.close();
    await b.close();
  });
  await a.start(localNode('pacedNdA'));
  await b.start(slow.node);
  await b.join('room', { connectionId: 'pacedNdB-1', userId: null });
  // B is subscribed once a message from A reaches it.
  await until(
    async () => {
      await a.publish(publication('room', '{"probe":true}'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      return slow.node.deliveries.length > 0;
    },
    10_000,
    'B subscribed',
  );
  slow.node.deliveries.length = 0;
  // Pipelined: Redis sends them to B back to back, and B reads them in one or a few reads.
  await Promise.all(expected.map((frame) => a.publish(publication('room', frame))));
  const burst = () => frames(slow.node.deliveries).filter((frame) => frame !== '{"probe":true}');
  await until(() => burst().length >= BURST, 10_000, 'every message delivered on B');
  assert.deepEqual(burst(), expected);
  assert.ok(slow.perTurn() <= MOST_PER_TURN, `at most ${MOST_PER_TURN} deliveries a turn, saw ${slow.perTurn()}`);
});
