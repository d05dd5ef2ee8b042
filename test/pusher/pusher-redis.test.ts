/**
 * The Pusher endpoint on two nodes joined through a real redis-server: Pusher clients and
 * native clients on different nodes share one channel space, through the same broker.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRedis } from '../helpers/redis.js';
import { connect, startNode } from '../helpers/redis-nodes.js';
import { APP, NATIVE_MAY_USE_ALL, next, pusherClient, subscribed } from '../helpers/pusher.js';

test('events cross nodes: native to Pusher, Pusher client events to Pusher and native, across two nodes', async (t) => {
  const redis = await startRedis(t);
  if (redis === null) return;
  const options = { pusher: { ...APP, clientEvents: true }, channels: NATIVE_MAY_USE_ALL };
  const a = await startNode(t, redis, options);
  const b = await startNode(t, redis, options);

  const onB = pusherClient(t, b);
  const bChannel = onB.subscribe('private-orders');
  const onA = pusherClient(t, a);
  const aChannel = onA.subscribe('private-orders');
  await Promise.all([subscribed(bChannel), subscribed(aChannel)]);
  const nativeOnA = await connect(t, a);
  await nativeOnA.subscribe('private-orders');

  // A native client's {event, data} on node A reaches the Pusher client on node B as that event.
  const shipped = next<unknown>(bChannel, 'order.shipped');
  await nativeOnA.publish('private-orders', { event: 'order.shipped', data: { id: 3 } });
  assert.deepEqual(await shipped, { id: 3 });

  // A client event from node A: to the Pusher client on B and the native client on A, not back to its sender.
  const typing = next<unknown>(bChannel, 'client-typing');
  assert.equal(aChannel.trigger('client-typing', { who: 'a' }), true);
  assert.deepEqual(await typing, { who: 'a' });
  const frame = await nativeOnA.next((received) => received.action === 'message' && (received.message as { event?: string }).event === 'client-typing');
  assert.deepEqual(frame.message, { event: 'client-typing', data: { who: 'a' } });

  // The backend publishes on node B; both nodes' Pusher clients get it.
  const atA = next<unknown>(aChannel, 'message');
  const atB = next<unknown>(bChannel, 'message');
  await b.handler.publish('private-orders', { text: 'from the backend' });
  assert.deepEqual(await atA, { text: 'from the backend' });
  assert.deepEqual(await atB, { text: 'from the backend' });
});
