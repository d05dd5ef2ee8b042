/**
 * The `auth` action (SPEC §2, §5): authenticating an anonymous connection after it
 * connected, renewing a token before it expires, and the 4001 close when it was not
 * renewed, over real WebSocket connections to a real server on 127.0.0.1 and a free port.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import { WebSocket, type ClientOptions } from 'ws';
import type { HandlerOptions, WebSocketHandler } from '../../src/handler.js';
import { CloseCode, ErrorCode } from '../../src/codes.js';
import { TestClient, settle, type CloseInfo, type Frame } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'auth-action-test-secret-of-at-least-32-bytes';
const OTHER_SECRET = 'not-the-server-secret-but-long-enough-too';

/**
 * Frequent heartbeats so the server's sweep (which closes expired connections) runs every
 * few tens of milliseconds; a long inactivity timeout, since the ws client answers the
 * control pings anyway. No rate limit.
 */
const OPTIONS: HandlerOptions = { heartbeatInterval: 0.2, connectionTimeout: 30, maxMessagesPerMinute: 0 };

/** Generous: these waits are for things that must happen, on a shared, noisy machine. */
const GENEROUS_MS = 15_000;

const unixNow = (): number => Math.floor(Date.now() / 1000);

/** An HS256 token; `exp` in seconds since the epoch (an hour from now unless told). */
async function sign(claims: JWTPayload, exp: number = unixNow() + 3600, secret: string = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

/** A custom action that tells who the connection is; only for authenticated connections. */
function registerWhoami(handler: WebSocketHandler): void {
  handler.onAction('whoami', ({ connection }) => ({ user_id: connection.userId, role: connection.role }), { requireAuth: true });
}

async function start(t: TestContext): Promise<TestServer> {
  const server = await startServer({ ...OPTIONS, auth: { secret: SECRET } }, registerWhoami);
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, server: TestServer, options: ClientOptions = {}): Promise<TestClient> {
  const client = await TestClient.connect(server.url, options);
  t.after(() => client.close());
  return client;
}

const bearer = (token: string): ClientOptions => ({ headers: { Authorization: `Bearer ${token}` } });

/** Asserts SPEC §2's error frame for a refused `auth` request with id `id`. */
function assertAuthError(frame: Frame, code: ErrorCode, id: unknown, error?: RegExp): void {
  assert.deepEqual(Object.keys(frame).sort(), ['action', 'code', 'error', 'id', 'success', 'type'], `fields of ${JSON.stringify(frame)}`);
  assert.equal(frame.type, 'error');
  assert.equal(frame.success, false);
  assert.equal(frame.code, code);
  assert.equal(frame.action, 'auth');
  assert.equal(frame.id, id);
  assert.equal(typeof frame.error, 'string');
  assert.notEqual(frame.error, '');
  if (error !== undefined) assert.match(frame.error as string, error);
}

/** Resolves with the close, and the time it arrived; rejects if it takes longer than `timeoutMs`. */
async function closeOf(client: TestClient, timeoutMs: number): Promise<CloseInfo & { at: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the connection was not closed within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const close = await Promise.race([client.closed, timeout]);
    return { ...close, at: Date.now() };
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the wall clock has passed `time` (ms since the epoch). */
async function until(time: number): Promise<void> {
  const wait = time - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

void describe('auth on an anonymous connection', () => {
  void test('a valid token authenticates it: the ack carries authenticated, user_id, role and the id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    assert.equal(client.welcome.authenticated, false);
    client.send({ action: 'auth', data: { token: await sign({ user_id: 42, role: 'admin,editor' }) }, id: 'auth-1' });
    const reply = await client.next((frame) => frame.id === 'auth-1');
    assert.deepEqual(reply, { success: true, action: 'auth', authenticated: true, user_id: 42, role: 'admin,editor', id: 'auth-1' });
  });

  void test('the ack reports a sub claim as the user id and a roles array joined with commas', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const reply = await client.request('auth', { token: await sign({ sub: 'alice', roles: ['editor', 'moderator'] }) });
    assert.equal(reply.success, true);
    assert.equal(reply.user_id, 'alice');
    assert.equal(reply.role, 'editor,moderator');
  });

  void test('an action registered with requireAuth is refused UNAUTHORIZED before auth and runs after it', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const before = await client.request('whoami');
    assert.equal(before.type, 'error');
    assert.equal(before.code, ErrorCode.UNAUTHORIZED);
    assert.equal(before.action, 'whoami');
    assert.equal((await client.request('auth', { token: await sign({ user_id: 42, role: 'user' }) })).success, true);
    const after = await client.request('whoami');
    assert.deepEqual(after, { success: true, action: 'whoami', data: { user_id: 42, role: 'user' }, id: after.id });
  });

  void test('a token with a bad signature is refused with TOKEN_INVALID carrying the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const reply = await client.request('auth', { token: await sign({ user_id: 42 }, unixNow() + 3600, OTHER_SECRET) });
    assertAuthError(reply, ErrorCode.TOKEN_INVALID, reply.id);
    assert.equal((await client.request('whoami')).code, ErrorCode.UNAUTHORIZED);
  });

  void test('a string that is not a JWT gets TOKEN_INVALID', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const reply = await client.request('auth', { token: 'not-a-jwt' });
    assertAuthError(reply, ErrorCode.TOKEN_INVALID, reply.id);
  });

  void test('an expired token gets TOKEN_EXPIRED with the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const reply = await client.request('auth', { token: await sign({ user_id: 42 }, unixNow() - 60) });
    assertAuthError(reply, ErrorCode.TOKEN_EXPIRED, reply.id);
  });

  const MALFORMED: ReadonlyArray<{ kind: string; data: unknown; names: RegExp }> = [
    { kind: 'without a token field', data: {}, names: /token/ },
    { kind: 'with a number as token', data: { token: 12345 }, names: /token/ },
    { kind: 'with null as token', data: { token: null }, names: /token/ },
  ];
  for (const { kind, data, names } of MALFORMED) {
    void test(`an auth request ${kind} gets INVALID_MESSAGE naming the token field`, async (t) => {
      const server = await start(t);
      const client = await connect(t, server);
      const reply = await client.request('auth', data);
      assertAuthError(reply, ErrorCode.INVALID_MESSAGE, reply.id, names);
    });
  }

  void test('an auth request with an unknown data field is refused with INVALID_MESSAGE naming the field', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const reply = await client.request('auth', { token: await sign({ user_id: 42 }), remember_me: true });
    assertAuthError(reply, ErrorCode.INVALID_MESSAGE, reply.id, /remember_me/);
    assert.equal((await client.request('whoami')).code, ErrorCode.UNAUTHORIZED);
  });

  void test('a connection authenticated by auth with a short-lived token is closed with 4001 when it expires', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const exp = unixNow() + 2;
    assert.equal((await client.request('auth', { token: await sign({ user_id: 42, role: 'user' }, exp) })).success, true);
    const close = await closeOf(client, exp * 1000 - Date.now() + GENEROUS_MS);
    assert.equal(close.code, CloseCode.TOKEN_EXPIRED);
    assert.ok(close.at >= exp * 1000, 'not closed before the token expired');
  });
});

void describe('auth on an authenticated connection', () => {
  void test('a connection whose handshake token expires and is not renewed is closed with 4001', async (t) => {
    const server = await start(t);
    const exp = unixNow() + 2;
    const client = await connect(t, server, bearer(await sign({ user_id: 42, role: 'user' }, exp)));
    assert.equal(client.welcome.authenticated, true);
    const close = await closeOf(client, exp * 1000 - Date.now() + GENEROUS_MS);
    assert.equal(close.code, CloseCode.TOKEN_EXPIRED);
    assert.ok(close.at >= exp * 1000, 'not closed before the token expired');
  });

  void test('renewing with a fresh token of the same user before expiry keeps the connection open past the first expiry', async (t) => {
    const server = await start(t);
    // One more second than the unrenewed case, so that the renewal surely lands before expiry.
    const firstExp = unixNow() + 3;
    const client = await connect(t, server, bearer(await sign({ user_id: 42, role: 'user' }, firstExp)));
    assert.equal(client.welcome.authenticated, true);
    client.send({ action: 'auth', data: { token: await sign({ user_id: 42, role: 'user' }, unixNow() + 60) }, id: 'renew' });
    const renewal = await client.next((frame) => frame.id === 'renew');
    assert.deepEqual(renewal, { success: true, action: 'auth', authenticated: true, user_id: 42, role: 'user', id: 'renew' });
    assert.ok(Date.now() < firstExp * 1000, 'precondition: the renewal was answered before the first token expired');
    await until(firstExp * 1000 + 1500);
    await settle(client);
    assert.equal(client.socket.readyState, WebSocket.OPEN);
    assert.equal(client.received((frame) => frame.type === 'error').length, 0);
    const whoami = await client.request('whoami');
    assert.deepEqual(whoami.data, { user_id: 42, role: 'user' });
  });

  void test('a token of another user is refused with FORBIDDEN and the connection keeps its identity', async (t) => {
    const server = await start(t);
    const client = await connect(t, server, bearer(await sign({ user_id: 42, role: 'user' })));
    const reply = await client.request('auth', { token: await sign({ user_id: 7, role: 'admin' }) });
    assertAuthError(reply, ErrorCode.FORBIDDEN, reply.id);
    const whoami = await client.request('whoami');
    assert.deepEqual(whoami.data, { user_id: 42, role: 'user' });
    assert.equal(client.socket.readyState, WebSocket.OPEN);
  });

  void test('a refused renewal of another user does not postpone the expiry of the connection\'s own token', async (t) => {
    const server = await start(t);
    const exp = unixNow() + 2;
    const client = await connect(t, server, bearer(await sign({ user_id: 42, role: 'user' }, exp)));
    const reply = await client.request('auth', { token: await sign({ user_id: 7, role: 'user' }, unixNow() + 60) });
    assert.equal(reply.code, ErrorCode.FORBIDDEN);
    const close = await closeOf(client, exp * 1000 - Date.now() + GENEROUS_MS);
    assert.equal(close.code, CloseCode.TOKEN_EXPIRED);
  });
});
