import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_CHANNEL_LENGTH, channelNameProblem, isValidChannelName } from '../../src/channels/names.js';

// SPEC §4: segments of these characters, joined by single dots.
const SEGMENT_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-:@=';

function assertValid(name: string): void {
  assert.equal(channelNameProblem(name), null, `${JSON.stringify(name)} should be valid`);
  assert.equal(isValidChannelName(name), true, `${JSON.stringify(name)} should be valid`);
}

function assertInvalid(name: string): void {
  const problem = channelNameProblem(name);
  assert.equal(typeof problem, 'string', `${JSON.stringify(name)} should be invalid`);
  assert.notEqual(problem, '', 'the problem should say what is wrong');
  assert.equal(isValidChannelName(name), false, `${JSON.stringify(name)} should be invalid`);
}

void describe('channel names: accepted', () => {
  void test('a single-segment name is valid', () => {
    assertValid('lobby');
  });

  void test('a dot-separated name is valid', () => {
    assertValid('chat.room.1');
    assertValid('user.42.inbox.unread');
  });

  void test('every allowed character is valid on its own', () => {
    for (const character of SEGMENT_CHARACTERS) assertValid(character);
  });

  void test('all allowed punctuation may appear together in a segment', () => {
    assertValid('a_b-c:d@e=f');
    assertValid('tenant=acme.user@example:42.room_1-b');
  });

  void test('a name of exactly 128 characters is valid', () => {
    assert.equal(MAX_CHANNEL_LENGTH, 128);
    assertValid('a'.repeat(128));
  });

  void test('a dotted name of exactly 128 characters is valid', () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(64)}`;
    assert.equal(name.length, 128);
    assertValid(name);
  });
});

void describe('channel names: refused', () => {
  void test('the empty name is refused', () => {
    assertInvalid('');
  });

  void test('a name of 129 characters is refused', () => {
    assertInvalid('a'.repeat(129));
    assertInvalid(`${'a'.repeat(64)}.${'b'.repeat(64)}`);
  });

  void test('a leading dot is refused', () => {
    assertInvalid('.chat');
  });

  void test('a trailing dot is refused', () => {
    assertInvalid('chat.');
  });

  void test('a double dot is refused', () => {
    assertInvalid('chat..room');
  });

  void test('a name of dots only is refused', () => {
    assertInvalid('.');
    assertInvalid('..');
  });

  void test('spaces and other whitespace are refused', () => {
    for (const name of ['chat room', ' chat', 'chat ', 'chat\troom', 'chat\n', '\nchat', 'chat\r']) assertInvalid(name);
  });

  void test('slashes are refused', () => {
    assertInvalid('chat/room');
    assertInvalid('chat\\room');
  });

  void test('non-ASCII characters are refused', () => {
    for (const name of ['café', 'chat.räum', 'чат', '聊天', 'chat.🎉', 'ａ']) assertInvalid(name);
  });

  void test('every printable ASCII character outside the grammar is refused', () => {
    for (let code = 0x20; code <= 0x7e; code++) {
      const character = String.fromCharCode(code);
      if (SEGMENT_CHARACTERS.includes(character) || character === '.') continue;
      assertInvalid(`chat${character}room`);
    }
  });

  void test('control characters are refused', () => {
    for (const name of ['chat\u0000', 'chat\u0007room', 'chat\u007f']) assertInvalid(name);
  });

  void test('pattern syntax is not a valid channel name', () => {
    for (const name of ['chat.*', 'admin.**', 'user.{user_id}']) assertInvalid(name);
  });
});

void describe('isValidChannelName', () => {
  void test('values that are not strings are not channel names', () => {
    const values: Array<[label: string, value: unknown]> = [
      ['undefined', undefined],
      ['null', null],
      ['a number', 42],
      ['an array', ['chat']],
      ['an object', { name: 'chat' }],
      ['a boolean', true],
    ];
    for (const [label, value] of values) assert.equal(isValidChannelName(value), false, label);
  });
});
