import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { channelNameProblem } from '../../src/channels/names.js';
import { ErrorCode, ErrorText } from '../../src/codes.js';
import {
  MAX_RECIPIENTS,
  decodeJson,
  invalidJson,
  parseRequest,
  type ClientRequest,
  type ProtocolViolation,
} from '../../src/protocol/inbound.js';

function requestOf(frame: unknown, knownActions?: ReadonlySet<string>): ClientRequest {
  const result = parseRequest(frame, knownActions);
  if (!result.ok) assert.fail(`expected ${JSON.stringify(frame)} to be accepted, got ${JSON.stringify(result.violation)}`);
  return result.request;
}

function violationOf(frame: unknown, knownActions?: ReadonlySet<string>): ProtocolViolation {
  const result = parseRequest(frame, knownActions);
  if (result.ok) assert.fail(`expected ${JSON.stringify(frame)} to be rejected, got ${JSON.stringify(result.request)}`);
  return result.violation;
}

/** Parses a frame that must be accepted as `action`, narrowed to that request shape. */
function requestAs<A extends ClientRequest['action']>(
  action: A,
  frame: unknown,
  knownActions?: ReadonlySet<string>,
): Extract<ClientRequest, { action: A }> {
  const request = requestOf(frame, knownActions);
  assert.equal(request.action, action);
  return request as Extract<ClientRequest, { action: A }>;
}

/** Asserts an INVALID_MESSAGE whose text names `field` (quoted, as the parser writes it). */
function assertInvalidField(violation: ProtocolViolation, field: string): void {
  assert.equal(violation.code, ErrorCode.INVALID_MESSAGE);
  assert.ok(violation.error.includes(`'${field}'`), `error text should name '${field}': ${violation.error}`);
}

void describe('decodeJson', () => {
  void test('returns the parsed value of a JSON text', () => {
    assert.deepEqual(decodeJson('{"action":"ping","id":1}'), { action: 'ping', id: 1 });
  });

  void test('returns undefined for text that is not JSON', () => {
    for (const text of ['{"action":', 'hello', '', "{'action':'ping'}", '{"a":1}x']) {
      assert.equal(decodeJson(text), undefined, `decodeJson(${JSON.stringify(text)})`);
    }
  });

  void test('returns null, not undefined, for the JSON literal null', () => {
    assert.equal(decodeJson('null'), null);
  });
});

void describe('invalidJson', () => {
  void test('is INVALID_JSON with GEMVC text and neither action nor id', () => {
    assert.deepEqual(invalidJson(), { code: ErrorCode.INVALID_JSON, error: ErrorText.INVALID_JSON, action: null, id: null });
    assert.equal(invalidJson().error, 'Invalid message format');
  });
});

void describe('parseRequest: frame shape', () => {
  void test('a JSON value that is not an object is INVALID_MESSAGE', () => {
    for (const frame of ['subscribe', 42, true, false, null]) {
      const violation = violationOf(frame);
      assert.equal(violation.code, ErrorCode.INVALID_MESSAGE, `frame ${JSON.stringify(frame)}`);
      assert.equal(violation.action, null);
      assert.equal(violation.id, null);
    }
  });

  void test('an array frame is INVALID_MESSAGE even when it holds a valid request', () => {
    const violation = violationOf([{ action: 'ping', id: 1 }]);
    assert.equal(violation.code, ErrorCode.INVALID_MESSAGE);
    assert.equal(violation.id, null);
  });

  void test('a frame without action is INVALID_MESSAGE naming action', () => {
    assertInvalidField(violationOf({ data: { channel: 'a' } }), 'action');
  });

  void test('a non-string action is INVALID_MESSAGE naming action', () => {
    for (const action of [1, null, true, {}, ['ping']]) {
      const violation = violationOf({ action });
      assertInvalidField(violation, 'action');
      assert.equal(violation.action, null);
    }
  });

  void test('an id that is neither a string nor a number is INVALID_MESSAGE naming id', () => {
    for (const id of [null, true, {}, [1], { n: 1 }]) {
      assertInvalidField(violationOf({ action: 'ping', id }), 'id');
    }
  });

  void test('an unreadable id is not echoed in its violation', () => {
    assert.equal(violationOf({ action: 'ping', id: { n: 1 } }).id, null);
  });

  void test('a string id is copied into the request', () => {
    assert.equal(requestOf({ action: 'ping', id: 'req-7' }).id, 'req-7');
  });

  void test('a numeric id is copied into the request', () => {
    assert.equal(requestOf({ action: 'ping', id: 7 }).id, 7);
    assert.equal(requestOf({ action: 'ping', id: 0 }).id, 0);
    assert.equal(requestOf({ action: 'ping', id: -2.5 }).id, -2.5);
  });

  void test('a request without id has id null', () => {
    assert.equal(requestOf({ action: 'ping' }).id, null);
  });

  void test('an unknown top-level field is INVALID_MESSAGE naming it', () => {
    const violation = violationOf({ action: 'ping', id: 4, channel: 'chat' });
    assertInvalidField(violation, 'channel');
    assert.equal(violation.action, 'ping');
    assert.equal(violation.id, 4);
  });

  void test('data that is not an object is INVALID_MESSAGE naming data', () => {
    for (const data of ['chat.room.1', 5, true, ['chat.room.1']]) {
      assertInvalidField(violationOf({ action: 'subscribe', data }), 'data');
    }
  });

  void test('data null is treated as absent', () => {
    assert.deepEqual(requestOf({ action: 'ping', data: null }), { action: 'ping', id: null });
  });

  void test('a missing data for an action with required fields names the first required field', () => {
    assertInvalidField(violationOf({ action: 'subscribe' }), 'data.channel');
  });

  void test('an unknown data field is INVALID_MESSAGE naming it in the error text', () => {
    const violation = violationOf({ action: 'subscribe', data: { channel: 'chat', chanel: 'chat' } });
    assertInvalidField(violation, 'data.chanel');
  });

  void test('the violation carries the action and id when they could be read', () => {
    const frames: unknown[] = [
      { action: 'subscribe', id: 'a', data: { channel: 'bad..name' } },
      { action: 'subscribe', id: 'a', data: { channel: 'chat', extra: 1 } },
      { action: 'subscribe', id: 'a', data: 'chat' },
      { action: 'subscribe', id: 'a', data: { channel: 'chat', since: -1 } },
      { action: 'subscribe', id: 'a', bogus: 1 },
    ];
    for (const frame of frames) {
      const violation = violationOf(frame);
      assert.equal(violation.action, 'subscribe', JSON.stringify(frame));
      assert.equal(violation.id, 'a', JSON.stringify(frame));
    }
  });

  void test('a frame missing its action still echoes its id', () => {
    assert.equal(violationOf({ id: 9, data: {} }).id, 9);
  });
});

void describe('parseRequest: subscribe', () => {
  void test('a valid subscribe yields channel with since and epoch null', () => {
    assert.deepEqual(requestOf({ action: 'subscribe', id: 1, data: { channel: 'chat.room.1' } }), {
      action: 'subscribe',
      id: 1,
      channel: 'chat.room.1',
      since: null,
      epoch: null,
    });
  });

  void test('since and epoch are carried into the request', () => {
    const request = requestAs('subscribe', { action: 'subscribe', data: { channel: 'chat', since: 17, epoch: 'e1' } });
    assert.equal(request.since, 17);
    assert.equal(request.epoch, 'e1');
  });

  void test('since 0 is accepted', () => {
    assert.equal(requestAs('subscribe', { action: 'subscribe', data: { channel: 'chat', since: 0 } }).since, 0);
  });

  void test('a missing channel is INVALID_MESSAGE naming data.channel', () => {
    assertInvalidField(violationOf({ action: 'subscribe', data: {} }), 'data.channel');
  });

  void test('a channel that is not a string is INVALID_MESSAGE naming data.channel', () => {
    for (const channel of [1, null, true, ['chat'], { name: 'chat' }]) {
      assertInvalidField(violationOf({ action: 'subscribe', data: { channel } }), 'data.channel');
    }
  });

  void test('a channel name that breaks the grammar is INVALID_CHANNEL with the grammar problem as text', () => {
    for (const channel of ['', 'chat..room', '.chat', 'chat.', 'chat room', 'chat/room', 'x'.repeat(129)]) {
      const violation = violationOf({ action: 'subscribe', id: 2, data: { channel } });
      assert.equal(violation.code, ErrorCode.INVALID_CHANNEL, `channel ${JSON.stringify(channel)}`);
      assert.equal(violation.error, channelNameProblem(channel));
    }
  });

  void test('since that is not a non-negative integer is INVALID_MESSAGE naming data.since', () => {
    for (const since of [-1, 1.5, '5', true, {}, 2 ** 53]) {
      assertInvalidField(violationOf({ action: 'subscribe', data: { channel: 'chat', since } }), 'data.since');
    }
  });

  void test('an epoch that is not a string is INVALID_MESSAGE naming data.epoch', () => {
    for (const epoch of [5, true, {}, ['e1']]) {
      assertInvalidField(violationOf({ action: 'subscribe', data: { channel: 'chat', epoch } }), 'data.epoch');
    }
  });

  void test("GEMVC's options object is accepted and not carried into the request", () => {
    const request = requestOf({ action: 'subscribe', data: { channel: 'chat', options: { history: true } } });
    assert.deepEqual(request, { action: 'subscribe', id: null, channel: 'chat', since: null, epoch: null });
  });

  void test('options that is not an object is INVALID_MESSAGE naming data.options', () => {
    for (const options of ['x', 1, ['a'], true]) {
      assertInvalidField(violationOf({ action: 'subscribe', data: { channel: 'chat', options } }), 'data.options');
    }
  });
});

void describe('parseRequest: unsubscribe', () => {
  void test('a valid unsubscribe yields its channel', () => {
    assert.deepEqual(requestOf({ action: 'unsubscribe', id: 'u', data: { channel: 'chat.room.1' } }), {
      action: 'unsubscribe',
      id: 'u',
      channel: 'chat.room.1',
    });
  });

  void test('a missing channel is INVALID_MESSAGE naming data.channel', () => {
    assertInvalidField(violationOf({ action: 'unsubscribe', data: {} }), 'data.channel');
  });

  void test('an invalid channel name is INVALID_CHANNEL', () => {
    assert.equal(violationOf({ action: 'unsubscribe', data: { channel: 'a..b' } }).code, ErrorCode.INVALID_CHANNEL);
  });

  void test('fields only subscribe takes are rejected by name', () => {
    assertInvalidField(violationOf({ action: 'unsubscribe', data: { channel: 'chat', since: 1 } }), 'data.since');
  });
});

void describe('parseRequest: message', () => {
  void test('a valid message yields channel, message, recipients null and ephemeral false', () => {
    assert.deepEqual(requestOf({ action: 'message', id: 3, data: { channel: 'chat', message: { text: 'hi' } } }), {
      action: 'message',
      id: 3,
      channel: 'chat',
      message: { text: 'hi' },
      recipients: null,
      ephemeral: false,
    });
  });

  void test('ephemeral must be a boolean', () => {
    assert.equal((requestOf({ action: 'message', data: { channel: 'chat', message: 1, ephemeral: true } }) as { ephemeral: boolean }).ephemeral, true);
    assertInvalidField(violationOf({ action: 'message', data: { channel: 'chat', message: 1, ephemeral: 'yes' } }), 'data.ephemeral');
  });

  void test('presence takes a channel; history a channel, since and a limit from 1 to 1000', () => {
    assert.deepEqual(requestOf({ action: 'presence', data: { channel: 'chat' } }), { action: 'presence', id: null, channel: 'chat' });
    assert.deepEqual(requestOf({ action: 'history', id: 'h', data: { channel: 'chat', since: 4, limit: 10 } }), { action: 'history', id: 'h', channel: 'chat', since: 4, limit: 10 });
    assert.deepEqual(requestOf({ action: 'history', data: { channel: 'chat' } }), { action: 'history', id: null, channel: 'chat', since: null, limit: null });
    for (const limit of [0, 1001, 1.5, '10']) assertInvalidField(violationOf({ action: 'history', data: { channel: 'chat', limit } }), 'data.limit');
    for (const since of [-1, 0.5, '3']) assertInvalidField(violationOf({ action: 'history', data: { channel: 'chat', since } }), 'data.since');
    assertInvalidField(violationOf({ action: 'presence', data: { channel: 'chat', since: 1 } }), 'data.since');
  });

  void test('message null is INVALID_MESSAGE naming data.message', () => {
    assertInvalidField(violationOf({ action: 'message', data: { channel: 'chat', message: null } }), 'data.message');
  });

  void test('a missing message is INVALID_MESSAGE naming data.message', () => {
    assertInvalidField(violationOf({ action: 'message', data: { channel: 'chat' } }), 'data.message');
  });

  void test('any JSON value other than null is accepted as message and kept as it is', () => {
    for (const message of [0, false, '', 'text', [], [1, 'two', null], {}, { nested: { deep: [true] } }, -3.25]) {
      assert.deepEqual(requestAs('message', { action: 'message', data: { channel: 'chat', message } }).message, message);
    }
  });

  void test('an invalid channel name is INVALID_CHANNEL', () => {
    const violation = violationOf({ action: 'message', data: { channel: 'chat room', message: 'x' } });
    assert.equal(violation.code, ErrorCode.INVALID_CHANNEL);
  });

  void test('recipients of strings and numbers are stringified', () => {
    const request = requestAs('message', { action: 'message', data: { channel: 'chat', message: 'x', recipients: [42, 'alice', 2.5, '7'] } });
    assert.deepEqual(request.recipients, ['42', 'alice', '2.5', '7']);
  });

  void test('an empty recipients list is accepted as an empty list', () => {
    const request = requestAs('message', { action: 'message', data: { channel: 'chat', message: 'x', recipients: [] } });
    assert.deepEqual(request.recipients, []);
  });

  void test('recipients that is not an array is INVALID_MESSAGE naming data.recipients', () => {
    for (const recipients of ['alice', 42, { 0: 'alice' }, true]) {
      assertInvalidField(violationOf({ action: 'message', data: { channel: 'chat', message: 'x', recipients } }), 'data.recipients');
    }
  });

  void test('recipients containing something other than strings and numbers is INVALID_MESSAGE naming data.recipients', () => {
    for (const entry of [null, true, {}, ['alice']]) {
      const frame = { action: 'message', data: { channel: 'chat', message: 'x', recipients: ['alice', entry] } };
      assertInvalidField(violationOf(frame), 'data.recipients');
    }
  });

  void test(`recipients may list exactly MAX_RECIPIENTS (${MAX_RECIPIENTS}) user ids`, () => {
    const recipients = Array.from({ length: MAX_RECIPIENTS }, (_, index) => index);
    const request = requestAs('message', { action: 'message', data: { channel: 'chat', message: 'x', recipients } });
    assert.deepEqual(request.recipients, recipients.map(String));
  });

  void test('recipients longer than MAX_RECIPIENTS is INVALID_MESSAGE naming data.recipients', () => {
    const recipients = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, index) => `user${index}`);
    assertInvalidField(violationOf({ action: 'message', data: { channel: 'chat', message: 'x', recipients } }), 'data.recipients');
  });
});

void describe('parseRequest: ping and pong', () => {
  for (const action of ['ping', 'pong'] as const) {
    void test(`${action} without data is accepted`, () => {
      assert.deepEqual(requestOf({ action, id: 'h' }), { action, id: 'h' });
    });

    void test(`${action} with empty data is accepted`, () => {
      assert.deepEqual(requestOf({ action, data: {} }), { action, id: null });
    });

    void test(`${action} with any data field is INVALID_MESSAGE naming the field`, () => {
      assertInvalidField(violationOf({ action, data: { time: 1 } }), 'data.time');
    });
  }
});

void describe('parseRequest: unknown and custom actions', () => {
  void test('an unknown action is UNKNOWN_ACTION with the text "Unknown action: <name>"', () => {
    const violation = violationOf({ action: 'typing', id: 5, data: {} });
    assert.equal(violation.code, ErrorCode.UNKNOWN_ACTION);
    assert.equal(violation.error, ErrorText.unknownAction('typing'));
    assert.equal(violation.error, 'Unknown action: typing');
  });

  void test('an unknown action echoes its action and id', () => {
    const violation = violationOf({ action: 'typing', id: 5 });
    assert.equal(violation.action, 'typing');
    assert.equal(violation.id, 5);
  });

  void test('action names are case-sensitive', () => {
    assert.equal(violationOf({ action: 'Subscribe', data: { channel: 'chat' } }).code, ErrorCode.UNKNOWN_ACTION);
  });

  void test('names of Object.prototype members are unknown actions, not schemas', () => {
    for (const action of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      assert.equal(violationOf({ action }).code, ErrorCode.UNKNOWN_ACTION, action);
    }
  });

  void test('an action in the known set is passed through as custom with its data untouched', () => {
    const data = { to: 'chat', anything: [1, 2], nested: { x: null } };
    assert.deepEqual(requestOf({ action: 'typing', id: 'c1', data }, new Set(['typing'])), {
      action: 'custom',
      name: 'typing',
      id: 'c1',
      data,
    });
  });

  void test('a custom action may carry data of any type', () => {
    for (const data of ['text', 5, [1, 2], null]) {
      assert.equal(requestAs('custom', { action: 'typing', data }, new Set(['typing'])).data, data);
    }
  });

  void test('a custom action without data has data undefined', () => {
    assert.equal(requestAs('custom', { action: 'typing' }, new Set(['typing'])).data, undefined);
  });

  void test('an action missing from the known set is UNKNOWN_ACTION even when others are known', () => {
    assert.equal(violationOf({ action: 'typing' }, new Set(['auth', 'presence'])).code, ErrorCode.UNKNOWN_ACTION);
  });

  void test('a custom action with an unknown top-level field is INVALID_MESSAGE', () => {
    assertInvalidField(violationOf({ action: 'typing', channel: 'chat' }, new Set(['typing'])), 'channel');
  });

  void test('a built-in action stays validated when its name is also in the known set', () => {
    const violation = violationOf({ action: 'subscribe', data: { channel: 'a..b' } }, new Set(['subscribe']));
    assert.equal(violation.code, ErrorCode.INVALID_CHANNEL);
  });
});
