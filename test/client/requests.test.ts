/**
 * Requests through the client SDK (SPEC §9): matched to their replies by id; a custom
 * action's reply resolves with its data; an error frame rejects with a SwitchboardError
 * carrying the server's code; no reply within requestTimeout rejects with TIMEOUT; a
 * request while disconnected rejects at once, and one in flight when the connection drops
 * rejects, with DISCONNECTED.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SwitchboardError } from '../../client/src/index.js';
import type { ConnectionInfo } from '../../src/connection/connection-info.js';
import { ErrorCode } from '../../src/codes.js';
import { SwitchboardError as ServerError } from '../../src/errors.js';
import { eventually } from '../helpers/client.js';
import { Scope, WAIT_MS, gate, reach } from '../helpers/sdk.js';

/** Asserts that `promise` rejects with a SwitchboardError of `code`; returns it. */
async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SwitchboardError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SwitchboardError, `expected a SwitchboardError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.name, 'SwitchboardError');
    assert.equal(typeof error.message, 'string');
    return error;
  }
  assert.fail(`expected a rejection with ${code}`);
}

void describe('requests', () => {
  void test("a custom action's reply resolves with its data; concurrent requests get their own replies", async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({}, (handler) => {
      handler.onAction('echo', (_context, data) => ({ echoed: data }));
      handler.onAction('slow-echo', async (_context, data) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return { later: data };
      });
    });
    const client = scope.client(server.url);
    await reach(client, 'connected');
    assert.deepEqual(await client.request('echo', { text: 'hi', n: 1 }), { echoed: { text: 'hi', n: 1 } });
    const [slow, fast] = await Promise.all([client.request('slow-echo', 1), client.request('echo', 2)]);
    assert.deepEqual(slow, { later: 1 });
    assert.deepEqual(fast, { echoed: 2 });
  });

  void test("an error frame rejects with the server's code: NOT_SUBSCRIBED, NOT_ENABLED, UNKNOWN_ACTION, an action's own", async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({}, (handler) => {
      handler.onAction('refuse', () => {
        throw new ServerError(ErrorCode.FORBIDDEN, 'not you');
      });
    });
    const client = scope.client(server.url);
    const errors: SwitchboardError[] = [];
    client.on('error', (error) => errors.push(error));
    const room = client.subscribe('room.1');
    await room.ready;
    room.unsubscribe();
    await rejectsWith(room.publish('after leaving'), 'NOT_SUBSCRIBED');
    await rejectsWith(room.presence(), 'NOT_ENABLED');
    await rejectsWith(room.history(), 'NOT_ENABLED');
    await rejectsWith(client.request('no-such-action'), 'UNKNOWN_ACTION');
    const refused = await rejectsWith(client.request('refuse'), 'FORBIDDEN');
    assert.equal(refused.message, 'not you');
    // A rejected request is not also reported as a connection-wide error.
    assert.deepEqual(errors, []);
    assert.equal(client.state, 'connected');
  });

  void test('publish resolves with recipients_count (and the offset on a history channel)', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server({ history: { size: 10, ttl: 60 } });
    const client = scope.client(server.url);
    const room = client.subscribe('room.2');
    await room.ready;
    const first = await room.publish({ text: 'one' });
    assert.equal(first.recipients_count, 1);
    assert.equal(first.offset, 1);
    const page = await room.history();
    assert.equal(page.offset, 1);
    assert.deepEqual(
      page.messages.map((message) => message.message),
      [{ text: 'one' }],
    );
  });

  void test('an action that never answers rejects with TIMEOUT after requestTimeout; the connection stays', async (t) => {
    const scope = new Scope(t);
    const never = gate();
    const server = await scope.server({}, (handler) => {
      handler.onAction('hang', async () => {
        await never.promise;
        return 'too late';
      });
    });
    scope.defer(() => never.open());
    const client = scope.client(server.url, { requestTimeout: 300 });
    await reach(client, 'connected');
    const id = client.connectionId;
    const timedOut = await rejectsWith(client.request('hang'), 'TIMEOUT');
    assert.match(timedOut.message, /hang/);
    assert.equal(client.state, 'connected');
    assert.equal(client.connectionId, id);
  });

  void test('a request while disconnected rejects at once with DISCONNECTED (nothing is queued)', async (t) => {
    const scope = new Scope(t);
    let frames = 0;
    const server = await scope.server({}, (handler) => handler.onAction('count', () => ++frames));
    const client = scope.client(server.url, { autoConnect: false });
    const settled: string[] = [];
    const request = client.request('count').catch((error: unknown) => {
      settled.push('rejected');
      throw error;
    });
    // Rejected before any timer or I/O could run.
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(settled, ['rejected']);
    await rejectsWith(request, 'DISCONNECTED');
    await rejectsWith(client.subscribe('room.3').publish('x'), 'DISCONNECTED');
    client.connect();
    await reach(client, 'connected');
    assert.equal(await client.request('count'), 1, 'the refused request was never sent later');
  });

  void test('requests in flight when the connection drops reject with DISCONNECTED', async (t) => {
    const scope = new Scope(t);
    const never = gate();
    const inAction: ConnectionInfo[] = [];
    const server = await scope.server({}, (handler) => {
      handler.onAction('hang', async (context) => {
        inAction.push(context.connection);
        await never.promise;
        return 'too late';
      });
    });
    scope.defer(() => never.open());
    const client = scope.client(server.url, { requestTimeout: 5 * WAIT_MS });
    await reach(client, 'connected');
    const inFlight = client.request('hang');
    await eventually(() => inAction.length === 1, WAIT_MS, 'the action to start');
    (inAction[0] as ConnectionInfo).close(1001, 'going away');
    await rejectsWith(inFlight, 'DISCONNECTED');
    // And the client is back for the next one.
    await reach(client, 'connected');
  });
});
