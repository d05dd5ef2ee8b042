/** A members-hash value: the user id as JSON, and the member's info after a tab (JSON never holds a raw tab). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMember, encodeMember, encodeUserId } from '../../src/broker/redis/redis-keys.js';

test('a member without info is stored as before; with info, after a tab; both read back', () => {
  assert.equal(encodeMember(42, null), encodeUserId(42));
  assert.equal(encodeMember(null, undefined), '');
  for (const [userId, info] of [
    [42, '{"name":"Al\\tice"}'],
    ['bob', 'null'],
    ['a"b', '[1,2]'],
    [null, '{}'],
  ] as const) {
    assert.deepEqual(decodeMember(encodeMember(userId, info)), { userId, info });
  }
  assert.deepEqual(decodeMember('"42"'), { userId: '42', info: null });
  // An older node's plain string.
  assert.deepEqual(decodeMember('alice'), { userId: 'alice', info: null });
});
