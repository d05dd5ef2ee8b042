/**
 * A plain GET on the WebSocket path that carries a token answers what a handshake with that
 * token would get: 401 with the same text when the token would be refused, 426 when it
 * would pass. A browser's WebSocket never says why its handshake failed; the client asks here.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import type { HandlerOptions } from '../../src/handler.js';
import { assertErrorBody, get, refusedHandshake, request } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'token-check-test-secret-of-at-least-32-bytes';

function sign(exp: number, secret = SECRET): Promise<string> {
  return new SignJWT({ user_id: 7 }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

const inAnHour = (): number => Math.floor(Date.now() / 1000) + 3600;

async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ auth: { secret: SECRET }, ...options });
  t.after(() => server.close());
  return server;
}

describe('GET on the WebSocket path with a token', () => {
  test('a token a handshake would refuse: the same 401 and text as the handshake, readable from any origin', async (t) => {
    const server = await start(t);
    for (const [token, text] of [
      [await sign(inAnHour(), 'another-secret-that-is-also-32-bytes-long'), 'invalid token'],
      [await sign(Math.floor(Date.now() / 1000) - 10), 'token expired'],
      ['not-a-jwt', 'invalid token'],
    ] as const) {
      const answer = await get(`${server.httpUrl}/?token=${encodeURIComponent(token)}`);
      assertErrorBody(answer, 401);
      assert.deepEqual(JSON.parse(answer.body), { error: text });
      assert.equal(answer.headers['access-control-allow-origin'], '*');
      const handshake = await refusedHandshake(server.url, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(handshake.status, 401);
      assert.deepEqual(JSON.parse(handshake.body), { error: text });
    }
  });

  test('the token in an Authorization header is checked too', async (t) => {
    const server = await start(t);
    const answer = await request(`${server.httpUrl}/`, { headers: { authorization: 'Bearer not-a-jwt' } });
    assertErrorBody(answer, 401);
  });

  test('a good token, or none: 426 as before', async (t) => {
    const server = await start(t, { allowAnonymous: false });
    const good = await get(`${server.httpUrl}/?token=${await sign(inAnHour())}`);
    assertErrorBody(good, 426);
    assert.equal(good.headers.upgrade, 'websocket');
    // No token at all stays a plain 426, also where a handshake without one is refused.
    assertErrorBody(await get(`${server.httpUrl}/`), 426);
  });

  test('only on the WebSocket path: elsewhere a token changes nothing', async (t) => {
    const server = await start(t, { path: '/ws' });
    assertErrorBody(await get(`${server.httpUrl}/other?token=not-a-jwt`), 404);
    assertErrorBody(await get(`${server.httpUrl}/ws?token=not-a-jwt`), 401);
  });
});
