/**
 * A connection's publishes are pipelined when the broker keeps the order of publishes in
 * flight (Broker.keepsOrderInFlight: in memory, and the workers' relay): the next publish
 * is handed to the broker before the previous one is answered, so a busy publisher is not
 * held to one message per round trip. The replies still leave in the order the frames
 * came (GEMVC clients send no ids), whatever order the broker answers in, and any other
 * request waits for the publishes before it. A broker without the promise (Redis) gets
 * one publish at a time.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Publication, PublishResult } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import { ErrorCode } from '../../src/codes.js';
import { MAX_IN_FLIGHT } from '../../src/connection/request-queue.js';
import { eventually, isMessageOn, TestClient, type Frame } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

/** A MemoryBroker that delivers at once but answers each publish only when the test says so. */
class HeldBroker extends MemoryBroker {
  readonly held: Array<{ message: unknown; answer: () => void; fail: () => void }> = [];
  override readonly keepsOrderInFlight: boolean;
  constructor(ordered: boolean) {
    super();
    this.keepsOrderInFlight = ordered;
  }
  override publish(publication: Publication): Promise<PublishResult> {
    const { message } = JSON.parse(publication.frame) as { message: unknown };
    const outcome = super.publish(publication);
    return new Promise((resolve, reject) => {
      this.held.push({ message, answer: () => resolve(outcome), fail: () => reject(new Error('broker is down')) });
    });
  }
}

async function setUp(t: TestContext, ordered = true): Promise<{ broker: HeldBroker; publisher: TestClient; subscriber: TestClient }> {
  const broker = new HeldBroker(ordered);
  const server = await startServer({ broker, maxMessagesPerMinute: 0 });
  t.after(() => server.close());
  const publisher = await TestClient.connect(server.url);
  const subscriber = await TestClient.connect(server.url);
  await publisher.subscribe('chat.room');
  await subscriber.subscribe('chat.room');
  return { broker, publisher, subscriber };
}

/** The replies (acks, errors, pongs) received after the subscribe ack, by kind. */
function replies(client: TestClient): string[] {
  return client.frames
    .filter((frame) => frame.type === 'error' || !['welcome', 'message', 'subscribe'].includes(String(frame.action)))
    .map((frame: Frame) => (frame.type === 'error' ? `error ${String(frame.code)}` : frame.action === 'message_sent' ? 'ack' : String(frame.action)));
}

test('publishes back to back reach the broker before the first is answered; acks leave in arrival order when answered in reverse', async (t) => {
  const { broker, publisher, subscriber } = await setUp(t);
  for (let n = 1; n <= 3; n++) publisher.send({ action: 'message', data: { channel: 'chat.room', message: n } });
  await eventually(() => broker.held.length === 3, 5000, 'three publishes handed to the broker with none answered');
  await eventually(() => subscriber.received(isMessageOn('chat.room')).length === 3, 5000, 'the subscriber has all three');
  assert.deepEqual(subscriber.received(isMessageOn('chat.room')).map((frame) => frame.message), [1, 2, 3], 'delivered in publish order');
  assert.deepEqual(replies(publisher), [], 'no ack before the broker answers');
  broker.held[2]?.answer();
  broker.held[1]?.answer();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(replies(publisher), [], 'the later acks wait for the first');
  broker.held[0]?.answer();
  await eventually(() => replies(publisher).length === 3, 5000, 'three acks');
  assert.deepEqual(publisher.frames.filter((frame) => frame.action === 'message_sent').map((frame) => frame.recipients_count), [2, 2, 2]);
});

test('between pipelined publishes, a ping, a refused publish and a failed one answer in the order sent', async (t) => {
  const { broker, publisher } = await setUp(t);
  const send = (frame: unknown): void => publisher.send(frame);
  send({ action: 'message', data: { channel: 'chat.room', message: 'a' } });
  send({ action: 'message', data: { channel: 'chat.room', message: 'lost' } });
  send({ action: 'ping' });
  send({ action: 'message', data: { channel: 'not.joined', message: 'b' } });
  send({ action: 'message', data: { channel: 'chat.room', message: 'c' } });
  await eventually(() => broker.held.length === 2, 5000, 'the first two publishes in flight');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(broker.held.length, 2, 'the ping waits for the publishes before it, and what follows waits for the ping');
  broker.held[1]?.fail();
  broker.held[0]?.answer();
  await eventually(() => broker.held.length === 3, 5000, 'the last publish handed over once the ping and the refusal answered');
  broker.held[2]?.answer();
  await eventually(() => replies(publisher).length === 5, 5000, 'five replies');
  assert.deepEqual(replies(publisher), ['ack', `error ${ErrorCode.INTERNAL_ERROR}`, 'pong', `error ${ErrorCode.NOT_SUBSCRIBED}`, 'ack']);
});

test(`at most ${MAX_IN_FLIGHT} publishes of a connection wait for the broker at once; the rest follow as they are answered`, async (t) => {
  const { broker, publisher } = await setUp(t);
  const total = MAX_IN_FLIGHT + 10;
  for (let n = 0; n < total; n++) publisher.send({ action: 'message', data: { channel: 'chat.room', message: n } });
  await eventually(() => broker.held.length === MAX_IN_FLIGHT, 5000, `${MAX_IN_FLIGHT} in flight`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(broker.held.length, MAX_IN_FLIGHT, 'no more than that');
  for (let answered = 0; answered < total; answered++) {
    await eventually(() => broker.held.length > answered, 5000, `publish ${answered} handed over`);
    broker.held[answered]?.answer();
  }
  await eventually(() => replies(publisher).length === total, 5000, 'every ack');
  assert.deepEqual(broker.held.map((held) => held.message), Array.from({ length: total }, (_unused, n) => n), 'handed over in order');
});

test('a broker that does not keep the order of publishes in flight gets them one at a time', async (t) => {
  const { broker, publisher } = await setUp(t, false);
  for (let n = 1; n <= 3; n++) publisher.send({ action: 'message', data: { channel: 'chat.room', message: n } });
  await eventually(() => broker.held.length === 1, 5000, 'the first publish');
  for (let n = 1; n <= 3; n++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(broker.held.length, n, `publish ${n + 1} waits for publish ${n}'s answer`);
    broker.held[n - 1]?.answer();
    await eventually(() => replies(publisher).length === n, 5000, `ack ${n}`);
  }
});
