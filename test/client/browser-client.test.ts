/**
 * The client in a real browser (headless Chromium), imported from the server's own
 * GET /client.js with no build step: connecting with a token function, a message out and
 * back, recovery after the server cut the connection, and a bad token, which a browser's
 * WebSocket never explains: the client asks the server (a plain GET with the token gets the
 * handshake's 401) and stops after one more try.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { closeBrowser, openPage } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'browser-client-test-secret-of-32-bytes-at-least';
const WAIT = { timeout: 20_000 };

function sign(userId: string, secret = SECRET): Promise<string> {
  return new SignJWT({ user_id: userId })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

/** A page on the server's origin, so that `import('/client.js')` is a same-origin module. */
async function pageOn(page: Page, server: TestServer): Promise<void> {
  await page.goto(`${server.httpUrl}/healthz`);
}

after(closeBrowser);

describe('switchboard-client in Chromium', () => {
  test('connects with a token function, publishes, receives, and recovers what it missed while cut off', async (t) => {
    const page = await openPage(t);
    if (!page) return;
    const server = await startServer({ auth: { secret: SECRET }, allowAnonymous: false, history: { size: 100, ttl: 60 } });
    t.after(() => server.close());
    await pageOn(page, server);
    const token = await sign('alice');
    // Page code is a string: tsx's transform would add helpers to a function that the page lacks.
    await page.evaluate(`(async () => {
      const { Client } = await import('/client.js');
      const seen = { states: [], messages: [], subscribed: [], tokenCalls: 0 };
      window.seen = seen;
      // The reconnect waits for the test: the messages are published while the page is away.
      window.reconnectAllowed = new Promise((resolve) => (window.allowReconnect = resolve));
      const client = new Client(${JSON.stringify(server.url)}, {
        token: async () => {
          if (++seen.tokenCalls > 1) await window.reconnectAllowed;
          return ${JSON.stringify(token)};
        },
        reconnect: { minDelay: 50, maxDelay: 300 },
      });
      seen.states.push(client.state);
      client.on('state', (state) => seen.states.push(state));
      const room = client.subscribe('chat.room.1');
      room.on('message', (m) => seen.messages.push(m.message));
      room.on('subscribed', (s) => seen.subscribed.push(s));
      await room.ready;
      await room.publish({ text: 'from the page' });
    })()`);
    await page.waitForFunction('window.seen.messages.length === 1', null, WAIT);

    // Cut off by the server, then three messages published while the page is away.
    const { disconnected } = await server.handler.disconnect({ userId: 'alice' });
    assert.equal(disconnected, 1);
    for (let i = 1; i <= 3; i++) await server.handler.publish('chat.room.1', { n: i });
    await page.waitForFunction('window.seen.tokenCalls === 2', null, WAIT);
    await page.evaluate('window.allowReconnect()');
    await page.waitForFunction('window.seen.messages.length >= 4', null, WAIT);

    const seen: { states: string[]; messages: unknown[]; subscribed: { recovered: boolean }[]; tokenCalls: number } = await page.evaluate('window.seen');
    assert.deepEqual(seen.messages, [{ text: 'from the page' }, { n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual(seen.states, ['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
    assert.deepEqual(
      seen.subscribed.map((s) => s.recovered),
      [false, true],
    );
    assert.equal(seen.tokenCalls, 2, 'the token function is asked at each connect');
  });

  test('a token the server refuses: asked once more, then closed with UNAUTHORIZED', async (t) => {
    const page = await openPage(t);
    if (!page) return;
    const server = await startServer({ auth: { secret: SECRET } });
    t.after(() => server.close());
    await pageOn(page, server);
    const forged = await sign('mallory', 'a-secret-the-server-does-not-know-32-bytes');
    const result = await page.evaluate(`(async () => {
      const { Client } = await import('/client.js');
      let tokenCalls = 0;
      const client = new Client(${JSON.stringify(server.url)}, {
        token: () => { tokenCalls++; return ${JSON.stringify(forged)}; },
        reconnect: { minDelay: 50, maxDelay: 300 },
      });
      const error = await new Promise((resolve) => client.on('error', resolve));
      // Long enough for a third attempt, had the client made one.
      await new Promise((resolve) => setTimeout(resolve, 500));
      return { code: error.code, state: client.state, tokenCalls };
    })()`);
    assert.deepEqual(result, { code: 'UNAUTHORIZED', state: 'closed', tokenCalls: 2 });
  });
});
