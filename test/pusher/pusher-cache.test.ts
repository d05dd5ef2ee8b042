/**
 * Pusher cache channels with pusher-js 8: a subscriber gets the channel's last event right
 * after subscribing, or `pusher:cache_miss`; on one node and across two through Redis.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Channel } from 'pusher-js';
import { APP, next, pusherClient, subscribed, within } from '../helpers/pusher.js';
import { startRedis } from '../helpers/redis.js';
import { startNode } from '../helpers/redis-nodes.js';
import { startServer } from '../helpers/server.js';

/** The events a channel hears, from its subscribe on. */
function heard(channel: Channel): string[] {
  const events: string[] = [];
  channel.bind_global((event: string, data: unknown) => events.push(`${event} ${JSON.stringify(data)}`));
  return events;
}

test('a cache channel: a miss when empty, then the last event for each new subscriber, before live ones', async (t) => {
  const server = await startServer({ pusher: APP });
  t.after(() => server.close());
  const first = pusherClient(t, server).subscribe('cache-prices');
  const firstHeard = heard(first);
  await within(new Promise((resolve) => first.bind('pusher:cache_miss', resolve)), 'the cache miss');

  await server.handler.publish('cache-prices', { event: 'price', data: { v: 1 } });
  await server.handler.publish('cache-prices', { event: 'price', data: { v: 2 } });
  await within(
    (async () => {
      while (firstHeard.filter((line) => line.startsWith('price')).length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    'both prices live',
  );

  const second = pusherClient(t, server).subscribe('cache-prices');
  const secondHeard = heard(second);
  const cached = next<unknown>(second, 'price');
  await subscribed(second);
  assert.deepEqual(await cached, { v: 2 });
  const live = next<unknown>(second, 'price');
  await server.handler.publish('cache-prices', { event: 'price', data: { v: 3 } });
  assert.deepEqual(await live, { v: 3 });
  assert.deepEqual(
    secondHeard.filter((line) => line.startsWith('price') || line.startsWith('pusher:cache_miss')),
    ['price {"v":2}', 'price {"v":3}'],
  );
});

test('a cache channel across two nodes through Redis: the last event published on one reaches a subscriber on the other', async (t) => {
  const redis = await startRedis(t);
  if (redis === null) return;
  const a = await startNode(t, redis, { pusher: APP });
  const b = await startNode(t, redis, { pusher: APP });
  await a.handler.publish('cache-status', { event: 'status', data: 'green' });
  const channel = pusherClient(t, b).subscribe('cache-status');
  const cached = next<unknown>(channel, 'status');
  await subscribed(channel);
  assert.equal(await cached, 'green');
});
