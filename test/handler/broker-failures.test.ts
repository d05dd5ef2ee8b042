/**
 * A failing broker (SPEC §2: INTERNAL_ERROR when "a dependency failed"): the client that
 * asked gets the error with its request id, nothing is half-done, and everyone else is
 * served as before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Member, Publication, PublishResult } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import { ErrorCode, ErrorText } from '../../src/codes.js';
import type { ChannelName } from '../../src/types.js';
import { TestClient, isMessageOn } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

/** A MemoryBroker that fails on the channels and messages a test names. */
class FlakyBroker extends MemoryBroker {
  constructor(private readonly failing: { channels?: ChannelName[]; messages?: unknown[] }) {
    super();
  }
  override publish(publication: Publication): Promise<PublishResult> {
    const { message } = JSON.parse(publication.frame) as { message: unknown };
    if (this.failing.messages?.includes(message)) return Promise.reject(new Error('broker is down'));
    return super.publish(publication);
  }
  override join(channel: ChannelName, member: Member): Promise<void> {
    if (this.failing.channels?.includes(channel)) return Promise.reject(new Error('broker is down'));
    return super.join(channel, member);
  }
}

test('a publish the broker fails answers INTERNAL_ERROR with the id, and the next publish works', async (t) => {
  const server = await startServer({ broker: new FlakyBroker({ messages: ['lost'] }), maxMessagesPerMinute: 0 });
  t.after(() => server.close());
  const publisher = await TestClient.connect(server.url);
  const subscriber = await TestClient.connect(server.url);
  await publisher.subscribe('chat.room.1');
  await subscriber.subscribe('chat.room.1');

  const failed = await publisher.publish('chat.room.1', 'lost');
  assert.equal(failed.code, ErrorCode.INTERNAL_ERROR);
  assert.equal(failed.error, ErrorText.INTERNAL_ERROR);
  assert.equal(failed.action, 'message');

  assert.equal(server.handler.stats.messagesPublished, 0, 'a publish the broker failed is not counted as published');

  const ack = await publisher.publish('chat.room.1', 'delivered');
  assert.equal(ack.recipients_count, 2);
  assert.equal(server.handler.stats.messagesPublished, 1);
  await subscriber.next((frame) => isMessageOn('chat.room.1')(frame) && frame.message === 'delivered');
  assert.deepEqual(
    subscriber.received(isMessageOn('chat.room.1')).map((frame) => frame.message),
    ['delivered'],
  );
});

test('a subscribe the broker fails answers INTERNAL_ERROR and leaves the connection unsubscribed', async (t) => {
  const server = await startServer({ broker: new FlakyBroker({ channels: ['broken'] }) });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);

  const failed = await client.subscribe('broken');
  assert.equal(failed.code, ErrorCode.INTERNAL_ERROR);
  assert.equal(failed.action, 'subscribe');
  assert.equal(server.handler.channelCount, 0);

  const publish = await client.publish('broken', 'hello');
  assert.equal(publish.code, ErrorCode.NOT_SUBSCRIBED);
  assert.equal((await client.subscribe('fine')).success, true);
});

test('handler.publish() that the broker fails rejects and is not counted as published', async (t) => {
  const server = await startServer({ broker: new FlakyBroker({ messages: ['lost'] }) });
  t.after(() => server.close());
  await assert.rejects(server.handler.publish('news', 'lost'), /broker is down/);
  assert.equal(server.handler.stats.messagesPublished, 0);
  assert.equal(await server.handler.publish('news', 'kept'), 0);
  assert.equal(server.handler.stats.messagesPublished, 1);
});
