/**
 * SPEC §2: an error frame names the action it refused (`"action": "<action or null>"`) and
 * carries the request's `id` when it had one. A frame whose only fault is its `id` still
 * had a readable action: the error says so, and the id, which is not one, is not echoed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/codes.js';
import { parseRequest, type ProtocolViolation } from '../../src/protocol/inbound.js';
import { TestClient } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

const ID_PROBLEM = "field 'id' must be a string or a number";
const BAD_IDS: readonly unknown[] = [null, true, false, {}, { n: 1 }, [1], [], Infinity, -Infinity, NaN];

function violationOf(frame: unknown, knownActions?: ReadonlySet<string>): ProtocolViolation {
  const result = parseRequest(frame, knownActions);
  if (result.ok) assert.fail(`expected ${JSON.stringify(frame)} to be rejected`);
  return result.violation;
}

void describe('parseRequest: a bad id with a readable action', () => {
  const valid: ReadonlyArray<Record<string, unknown>> = [
    { action: 'ping' },
    { action: 'pong' },
    { action: 'subscribe', data: { channel: 'chat.room.1' } },
    { action: 'unsubscribe', data: { channel: 'chat.room.1' } },
    { action: 'message', data: { channel: 'chat.room.1', message: 'hi' } },
    { action: 'presence', data: { channel: 'chat.room.1' } },
    { action: 'history', data: { channel: 'chat.room.1' } },
    { action: 'auth', data: { token: 'x' } },
  ];

  void test('a valid built-in request with a bad id is INVALID_MESSAGE naming id, with its action and no id', () => {
    for (const frame of valid) {
      for (const id of BAD_IDS) {
        const violation = violationOf({ ...frame, id });
        assert.deepEqual(violation, { code: ErrorCode.INVALID_MESSAGE, error: ID_PROBLEM, action: frame.action, id: null }, `${JSON.stringify(frame)} with id ${String(id)}`);
      }
    }
  });

  void test('a custom action keeps its name too', () => {
    assert.equal(violationOf({ action: 'typing', data: {}, id: {} }, new Set(['typing'])).action, 'typing');
  });

  void test('the id is checked first, so a frame with a bad id and other faults still names its action', () => {
    for (const frame of [{ action: 'subscribe', data: { channel: '' } }, { action: 'no_such_action' }, { action: 'ping', extra: 1 }]) {
      const violation = violationOf({ ...frame, id: [] });
      assert.equal(violation.error, ID_PROBLEM);
      assert.equal(violation.action, frame.action);
    }
  });

  void test('with an action that is not a string, or none, the action is null', () => {
    for (const action of [undefined, 1, null, ['ping'], { name: 'ping' }]) {
      const violation = violationOf({ action, id: {} });
      assert.equal(violation.error, ID_PROBLEM);
      assert.equal(violation.action, null);
      assert.equal(violation.id, null);
    }
  });
});

void describe('the error frame on the wire', { timeout: 30_000 }, () => {
  void test('a valid subscribe with an id of 1e309 (Infinity) gets an error with action "subscribe" and no id', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    t.after(() => client.close());
    client.sendRaw('{"action":"subscribe","data":{"channel":"chat.room.1"},"id":1e309}');
    client.sendRaw('{"action":"ping","id":{"n":1}}');
    const errors = [await client.next((frame) => frame.type === 'error'), await client.next((frame) => frame.type === 'error')];
    const expected = (action: string) => ({ type: 'error', success: false, code: ErrorCode.INVALID_MESSAGE, error: ID_PROBLEM, action });
    assert.deepEqual(errors, [expected('subscribe'), expected('ping')]);
    // Refused, not just answered oddly: the subscription was not made.
    const refused = await client.request('message', { channel: 'chat.room.1', message: 'hi' });
    assert.equal(refused.code, ErrorCode.NOT_SUBSCRIBED);
  });
});
