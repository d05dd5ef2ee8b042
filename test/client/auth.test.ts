/**
 * The client SDK and tokens (SPEC §5, §9): with a token function it renews a token with `auth`
 * shortly before it expires; after close 4001 (expired, not renewed) it asks token() again
 * and is back; a handshake refused with 401 asks token() once more, then stops ('closed',
 * UNAUTHORIZED); a string token gets one attempt.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mintToken } from '../../src/auth/tokens.js';
import type { ConnectionInfo } from '../../src/connection/connection-info.js';
import { eventually } from '../helpers/client.js';
import { NodeWebSocket, SECRET, Scope, WAIT_MS, next, reach, record, sleep } from '../helpers/sdk.js';
import type { TestServer } from '../helpers/server.js';

const AUTH = { secret: SECRET };

/** A token for `userId`, expiring in `ttlSeconds` (exp is whole seconds: 1 s less at worst). */
const tokenFor = (server: TestServer, userId: number, ttlSeconds: number): Promise<string> => mintToken(server.handler.options.auth, { userId, role: null, ttlSeconds });

/** Counts the WebSocket handshakes the server was asked for (accepted or refused). */
function countUpgrades(server: TestServer): { readonly count: number } {
  const counter = { count: 0 };
  server.server.httpServer.on('upgrade', () => counter.count++);
  return counter;
}

/** `ws`'s WebSocket, its `error` events stripped of what they say, as a browser's are. */
class OpaqueErrors extends NodeWebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    let handler: ((event: unknown) => void) | null = null;
    Object.defineProperty(this, 'onerror', {
      get: () => handler,
      set: (value: ((event: unknown) => void) | null) => (handler = value),
    });
    this.on('error', () => handler?.({ type: 'error' }));
  }
}

void describe('token renewal', () => {
  void test('with a token function, a short-lived token is renewed with auth: the connection outlives its exp', async (t) => {
    const scope = new Scope(t);
    const connections: ConnectionInfo[] = [];
    const server = await scope.server({ auth: AUTH, allowAnonymous: false }, (handler) => handler.onConnect((connection) => void connections.push(connection)));
    let calls = 0;
    const client = scope.client(server.url, { token: () => tokenFor(server, 7, calls++ === 0 ? 3 : 3600) });
    const trace = record(client);
    await reach(client, 'connected');
    assert.equal(client.userId, 7);
    assert.equal(connections.length, 1);
    const connection = connections[0] as ConnectionInfo;
    const firstExpiry = connection.tokenExpiresAt as number;
    assert.ok(firstExpiry < Date.now() + 3000, 'the first token is short-lived');

    // The server saw an auth: the connection's token now expires much later.
    await eventually(() => (connection.tokenExpiresAt ?? 0) > firstExpiry, WAIT_MS, 'the renewal');
    assert.ok((connection.tokenExpiresAt as number) > Date.now() + 3_000_000);
    assert.equal(calls, 2, 'token() was asked once more, for the renewal');

    // Past the first token's exp and the server's sweep (at most 1 s): still the same connection.
    await sleep(Math.max(0, firstExpiry - Date.now()) + 1500);
    assert.deepEqual(trace.disconnects, [], 'no 4001');
    assert.deepEqual(trace.errors, []);
    assert.equal(client.state, 'connected');
    assert.equal(connections.length, 1);
    assert.equal(client.connectionId, connection.id);
  });

  void test('after close 4001 (the renewal was refused) token() is asked again and the client is back, with the new token', async (t) => {
    const scope = new Scope(t);
    const connections: ConnectionInfo[] = [];
    const server = await scope.server({ auth: AUTH }, (handler) => handler.onConnect((connection) => void connections.push(connection)));
    let up = false;
    const asked: Array<'first' | 'renewal' | 'reconnect'> = [];
    const client = scope.client(server.url, {
      token: () => {
        // First: user 1 for about two seconds. While connected (the renewal): a token of another
        // user, which `auth` refuses (FORBIDDEN), so the first one expires. Then: user 1 for long.
        const why = asked.length === 0 ? 'first' : up ? 'renewal' : 'reconnect';
        asked.push(why);
        return why === 'first' ? tokenFor(server, 1, 3) : why === 'renewal' ? tokenFor(server, 2, 3600) : tokenFor(server, 1, 3600);
      },
    });
    client.on('state', (state) => (up = state === 'connected'));
    const trace = record(client);
    await reach(client, 'connected');
    const firstId = client.connectionId;
    const refused = next(client, 'error', (error) => error.code === 'FORBIDDEN');
    const expired = next(client, 'disconnected', (close) => close.code === 4001);
    await refused;
    await expired;
    const askedBefore = asked.length;
    const welcome = await next(client, 'connected');

    assert.deepEqual(asked, ['first', 'renewal', 'reconnect']);
    assert.equal(askedBefore, 2, 'the reconnect asked token() after the 4001');
    assert.equal(welcome.authenticated, true);
    assert.equal(welcome.user_id, 1);
    assert.equal(client.userId, 1);
    assert.notEqual(client.connectionId, firstId);
    const current = connections.find((connection) => connection.id === client.connectionId);
    assert.ok(current !== undefined);
    assert.ok((current.tokenExpiresAt as number) > Date.now() + 3_000_000, 'the new connection has the new token');
    assert.deepEqual(trace.states, ['connected', 'disconnected', 'connecting', 'connected']);
  });
});

void describe('a handshake refused with 401', () => {
  void test('with a token function: token() is asked exactly twice, then closed with an UNAUTHORIZED error', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ auth: AUTH, allowAnonymous: false });
    const upgrades = countUpgrades(server);
    let calls = 0;
    const client = scope.client(server.url, {
      token: () => {
        calls++;
        return 'not-a-token';
      },
    });
    const trace = record(client);
    await reach(client, 'closed');
    await sleep(600);
    assert.equal(calls, 2);
    assert.equal(upgrades.count, 2);
    assert.equal(client.state, 'closed');
    assert.deepEqual(
      trace.errors.map((error) => error.code),
      ['UNAUTHORIZED'],
    );
    assert.equal(trace.states.at(-1), 'closed');
    assert.equal(server.handler.connectionCount, 0);
  });

  void test("with a WebSocket that does not say why (a browser's): the same, the client asks the server for the status", async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ auth: AUTH, allowAnonymous: false });
    const upgrades = countUpgrades(server);
    let calls = 0;
    const client = scope.client(server.url, {
      WebSocket: OpaqueErrors,
      token: () => {
        calls++;
        return 'not-a-token';
      },
    });
    const trace = record(client);
    await reach(client, 'closed');
    await sleep(600);
    assert.equal(calls, 2);
    assert.equal(upgrades.count, 2);
    assert.deepEqual(
      trace.errors.map((error) => error.code),
      ['UNAUTHORIZED'],
    );
  });

  void test('with a token function: a good token at the second ask connects', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ auth: AUTH, allowAnonymous: false });
    let calls = 0;
    const client = scope.client(server.url, { token: () => (calls++ === 0 ? tokenFor(server, 3, -10) : tokenFor(server, 3, 3600)) });
    const trace = record(client);
    await reach(client, 'connected');
    assert.equal(calls, 2);
    assert.equal(client.userId, 3);
    assert.deepEqual(trace.errors, []);
  });

  void test('with a string token: one attempt, then closed with an UNAUTHORIZED error', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ auth: AUTH, allowAnonymous: false });
    const upgrades = countUpgrades(server);
    const client = scope.client(server.url, { token: 'not-a-token' });
    const trace = record(client);
    await reach(client, 'closed');
    await sleep(600);
    assert.equal(upgrades.count, 1);
    assert.equal(client.state, 'closed');
    assert.deepEqual(
      trace.errors.map((error) => error.code),
      ['UNAUTHORIZED'],
    );
  });
});
