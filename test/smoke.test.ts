import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestClient, isMessageOn } from './helpers/client.js';
import { startServer } from './helpers/server.js';

test('two clients exchange a channel message', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const alice = await TestClient.connect(server.url);
  const bob = await TestClient.connect(server.url);
  assert.deepEqual(await alice.subscribe('chat.room.1'), { success: true, action: 'subscribe', channel: 'chat.room.1', id: 1 });
  await bob.subscribe('chat.room.1');
  const ack = await alice.publish('chat.room.1', { text: 'hello' });
  assert.equal(ack.recipients_count, 2);
  const received = await bob.next(isMessageOn('chat.room.1'));
  assert.deepEqual(received.message, { text: 'hello' });
  assert.equal(received.sender, alice.welcome.connection_id);
});
