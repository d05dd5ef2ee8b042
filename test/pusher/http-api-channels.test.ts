/**
 * The Pusher HTTP API (SPEC §10), queries and terminate_connections, through the real
 * `pusher` SDK: `/channels` (filter_by_prefix, info=user_count), `/channels/{name}`,
 * `/channels/{name}/users` and `terminateUserConnections`. Users are native clients with
 * tokens (their user ids are what the presence answers count).
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import { TestClient, settle } from '../helpers/client.js';
import { pusherClient, subscribed } from '../helpers/pusher.js';
import type { TestServer } from '../helpers/server.js';
import { json, refusal, sdk, startPusherServer } from '../helpers/pusher-api.js';

const SECRET = 'pusher-http-api-test-secret-of-32-bytes-or-more';

/** A native client authenticated as `userId`, subscribed to `channels`. */
async function user(t: TestContext, server: TestServer, userId: string, ...channels: string[]): Promise<TestClient> {
  const token = await mintToken(server.handler.options.auth, { userId, role: null, ttlSeconds: 3600 });
  const client = await TestClient.connect(`${server.url}?token=${token}`);
  t.after(() => client.close());
  for (const channel of channels) {
    const reply = await client.subscribe(channel);
    assert.equal(reply.success, true, JSON.stringify(reply));
  }
  return client;
}

/** A server with users u1 (two connections) and u2 on presence-room, u3 on orders. */
async function populated(t: TestContext): Promise<TestServer> {
  const server = await startPusherServer(t, { auth: { secret: SECRET } });
  await user(t, server, 'u1', 'presence-room', 'orders');
  await user(t, server, 'u1', 'presence-room');
  await user(t, server, 'u2', 'presence-room');
  await user(t, server, 'u3', 'orders', 'presence-lobby');
  return server;
}

describe('Pusher HTTP API: channels', () => {
  test('GET /channels lists the occupied channels, {} each; filter_by_prefix narrows them', async (t) => {
    const server = await populated(t);
    const pusher = sdk(server);
    assert.deepEqual(await json(pusher.get({ path: '/channels' })), { channels: { 'presence-room': {}, orders: {}, 'presence-lobby': {} } });
    assert.deepEqual(await json(pusher.get({ path: '/channels', params: { filter_by_prefix: 'ord' } })), { channels: { orders: {} } });
    assert.deepEqual(await json(pusher.get({ path: '/channels', params: { filter_by_prefix: 'nothing-' } })), { channels: {} });
  });

  test('pusher-js subscriptions count as well', async (t) => {
    const server = await startPusherServer(t);
    const client = pusherClient(t, server);
    await subscribed(client.subscribe('news'));
    assert.deepEqual(await json(sdk(server).get({ path: '/channels', params: { info: 'subscription_count' } })), { channels: { news: { subscription_count: 1 } } });
    assert.deepEqual(await json(sdk(server).get({ path: '/channels/news', params: { info: 'subscription_count' } })), { occupied: true, subscription_count: 1 });
  });

  test('info=user_count with filter_by_prefix=presence-: distinct users per channel; without that prefix: 400', async (t) => {
    const server = await populated(t);
    const pusher = sdk(server);
    const answer = await json(pusher.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
    assert.deepEqual(answer, { channels: { 'presence-room': { user_count: 2 }, 'presence-lobby': { user_count: 1 } } });
    for (const params of [{ info: 'user_count' }, { filter_by_prefix: 'ord', info: 'user_count' }]) {
      const refused = await refusal(pusher.get({ path: '/channels', params }));
      assert.equal(refused.status, 400, JSON.stringify(params));
      assert.match((refused.body as { error: string }).error, /presence-/);
    }
  });

  test('GET /channels/{name}: occupied, and the counts asked for', async (t) => {
    const server = await populated(t);
    const pusher = sdk(server);
    assert.deepEqual(await json(pusher.get({ path: '/channels/orders' })), { occupied: true });
    assert.deepEqual(await json(pusher.get({ path: '/channels/orders', params: { info: 'subscription_count' } })), { occupied: true, subscription_count: 2 });
    assert.deepEqual(await json(pusher.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } })), {
      occupied: true,
      subscription_count: 3,
      user_count: 2,
    });
    assert.deepEqual(await json(pusher.get({ path: '/channels/empty', params: { info: 'subscription_count' } })), { occupied: false, subscription_count: 0 });
  });

  test('GET /channels/{name}: user_count of a channel that is not a presence one, or a bad name: 400', async (t) => {
    const server = await populated(t);
    const pusher = sdk(server);
    assert.equal((await refusal(pusher.get({ path: '/channels/orders', params: { info: 'user_count' } }))).status, 400);
    assert.equal((await refusal(pusher.get({ path: '/channels/bad%20name' }))).status, 400);
  });

  test('GET /channels/{name}/users: the distinct users of a presence channel; 400 for any other', async (t) => {
    const server = await populated(t);
    const pusher = sdk(server);
    const { users } = (await json(pusher.get({ path: '/channels/presence-room/users' }))) as { users: Array<{ id: string }> };
    assert.deepEqual(users.map(({ id }) => id).sort(), ['u1', 'u2']);
    assert.deepEqual(await json(pusher.get({ path: '/channels/presence-empty/users' })), { users: [] });
    const refused = await refusal(pusher.get({ path: '/channels/orders/users' }));
    assert.equal(refused.status, 400);
    assert.match((refused.body as { error: string }).error, /presence/);
  });
});

describe('Pusher HTTP API: terminate_connections', () => {
  test("terminateUserConnections closes every connection of that user, and only that user's", async (t) => {
    const server = await startPusherServer(t, { auth: { secret: SECRET } });
    const first = await user(t, server, 'u1', 'orders');
    const second = await user(t, server, 'u1');
    const other = await user(t, server, 'u2', 'orders');
    const response = await sdk(server).terminateUserConnections('u1');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {});
    assert.deepEqual(await Promise.all([first.closed, second.closed]), [
      { code: 1000, reason: 'disconnected by server' },
      { code: 1000, reason: 'disconnected by server' },
    ]);
    await settle(other);
    assert.deepEqual(await json(sdk(server).get({ path: '/channels/orders', params: { info: 'subscription_count' } })), { occupied: true, subscription_count: 1 });
  });

  test('a user with no connections: {} all the same', async (t) => {
    const server = await startPusherServer(t);
    assert.deepEqual(await json(sdk(server).terminateUserConnections('nobody')), {});
  });
});
