/**
 * pusher-js's browser build in headless Chromium against the Pusher endpoint: the page
 * connects, subscribes to a private channel signed by "its backend" (a function the test
 * exposes), receives what the server publishes, and its client event reaches a native client.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, test } from 'node:test';
import { channelAuth } from '../../src/pusher/signatures.js';
import { closeBrowser, openPage } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { APP, NATIVE_MAY_USE_ALL } from '../helpers/pusher.js';
import { startServer } from '../helpers/server.js';

const PUSHER_JS = readFileSync(createRequire(import.meta.url).resolve('pusher-js/dist/web/pusher.min.js'), 'utf8');
const WAIT = { timeout: 20_000 };

after(closeBrowser);

test('pusher-js in Chromium: a private channel, an event from the server, a client event to a native client', async (t) => {
  const page = await openPage(t);
  if (!page) return;
  const server = await startServer({ pusher: { ...APP, clientEvents: true }, channels: NATIVE_MAY_USE_ALL });
  t.after(() => server.close());
  await page.goto(`${server.httpUrl}/healthz`);
  await page.addScriptTag({ content: PUSHER_JS });
  await page.exposeFunction('signChannel', (socketId: string, channel: string) => channelAuth(APP.key, APP.secret, socketId, channel));
  const native = await TestClient.connect(server.url);
  t.after(() => native.close());
  await native.subscribe('private-orders');

  // Page code is a string: tsx's transform would add helpers to a function that the page lacks.
  await page.evaluate(`(async () => {
    window.seen = [];
    const pusher = new Pusher(${JSON.stringify(APP.key)}, {
      cluster: 'local', wsHost: '127.0.0.1', wsPort: ${server.port}, forceTLS: false,
      enabledTransports: ['ws'], disableStats: true,
      channelAuthorization: {
        endpoint: 'unused', transport: 'ajax',
        customHandler: ({ socketId, channelName }, callback) =>
          window.signChannel(socketId, channelName).then((auth) => callback(null, { auth })),
      },
    });
    window.pusher = pusher;
    const channel = pusher.subscribe('private-orders');
    channel.bind('order.shipped', (data) => window.seen.push(data));
    await new Promise((resolve) => channel.bind('pusher:subscription_succeeded', resolve));
  })()`);
  assert.match(String(await page.evaluate('window.pusher.connection.socket_id')), /^\d+\.\d+$/);

  await server.handler.publish('private-orders', { event: 'order.shipped', data: { id: 9 } });
  await page.waitForFunction('window.seen.length === 1', null, WAIT);
  assert.deepEqual(await page.evaluate('window.seen'), [{ id: 9 }]);

  await page.evaluate(`window.pusher.channel('private-orders').trigger('client-hello', { from: 'the page' })`);
  const frame = await native.next((received) => received.action === 'message' && (received.message as { event?: string }).event === 'client-hello');
  assert.deepEqual(frame.message, { event: 'client-hello', data: { from: 'the page' } });
});
