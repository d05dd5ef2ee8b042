/**
 * When the client stops for good (a refused token, a token no WebSocket can carry, close()),
 * nothing is left waiting: every `ready` still pending rejects with the reason, and the
 * `disconnected` event tells only of connections that were up, not of failed attempts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SwitchboardError } from '../../client/src/index.js';
import { SECRET, Scope, next, reach, record } from '../helpers/sdk.js';

const AUTH = { secret: SECRET };

async function rejection(promise: Promise<unknown>): Promise<SwitchboardError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SwitchboardError, `a SwitchboardError, not ${String(error)}`);
    return error;
  }
  assert.fail('it resolved');
}

void describe('giving up', () => {
  void test('a token the server refuses: a pending ready rejects with UNAUTHORIZED', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ auth: AUTH });
    const client = scope.client(server.url, { token: 'a.forged.token' });
    const room = client.subscribe('news');
    assert.equal((await rejection(room.ready)).code, 'UNAUTHORIZED');
    assert.equal(client.state, 'closed');
  });

  void test('a string token no subprotocol can carry: one TOKEN error, closed, no handshake', async (t) => {
    const scope = new Scope(t);
    let handshakes = 0;
    const server = await scope.server({ auth: AUTH }, (handler) => handler.onConnect(() => void handshakes++));
    const client = scope.client(server.url, { token: '{"error":"not found"}', autoConnect: false });
    const trace = record(client);
    const room = client.subscribe('news');
    client.connect();
    const error = await rejection(room.ready);
    assert.equal(error.code, 'TOKEN');
    assert.deepEqual(
      trace.errors.map((e) => e.code),
      ['TOKEN'],
    );
    assert.deepEqual(trace.states, ['connecting', 'closed']);
    assert.equal(handshakes, 0);
  });

  void test('a token function giving such a token: an error, then it tries again later', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ auth: AUTH });
    let calls = 0;
    const client = scope.client(server.url, { token: () => (++calls === 1 ? '<html>502</html>' : null) });
    const error = await next(client, 'error');
    assert.equal(error.code, 'TOKEN');
    await reach(client, 'connected');
    assert.equal(calls, 2);
  });

  void test('close() before the first ack: ready rejects with CLOSED', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const client = scope.client(server.url, { autoConnect: false });
    const room = client.subscribe('news');
    client.close();
    assert.equal((await rejection(room.ready)).code, 'CLOSED');
  });

  void test('disconnected is told for a connection that was up, not for each failed attempt', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const client = scope.client(server.url);
    const trace = record(client);
    await reach(client, 'connected');
    await server.close();
    // Several attempts fail against the closed port while the trace records.
    await next(client, 'state', (state) => state === 'connecting');
    await next(client, 'state', (state) => state === 'disconnected');
    await next(client, 'state', (state) => state === 'connecting');
    await next(client, 'state', (state) => state === 'disconnected');
    assert.equal(trace.disconnects.length, 1, JSON.stringify(trace.disconnects));
  });
});
