/**
 * The payload of a message between nodes (src/broker/redis/payload.ts):
 * `<node id><meta JSON object or nothing>\n<frame>`, the frame never parsed by a receiver.
 * No Redis needed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePayload, keptPayloadHead, parsePayload } from '../../src/broker/redis/payload.js';

const NODE = 'nodeAAAA';
const FRAME = '{"action":"message","channel":"chat.room.1","message":"hé \\n ✓"}';

test('a message for everyone is the node id, a newline and the frame, with no meta', () => {
  const payload = encodePayload(NODE, { recipients: null, exclude: null }, FRAME);
  assert.equal(payload.toString('utf8'), `${NODE}\n${FRAME}`);
  const parsed = parsePayload(payload);
  assert.ok(parsed);
  assert.deepEqual({ ...parsed, frame: parsed.frame.toString('utf8') }, { nodeId: NODE, recipients: null, exclude: null, position: null, frame: FRAME });
});

test('recipients and the excluded connection go in the meta; a Buffer frame is copied as it is', () => {
  const payload = encodePayload(NODE, { recipients: ['42', 'alice "a"'], exclude: 'nodeBBBB-1z' }, Buffer.from(FRAME));
  assert.equal(payload.toString('utf8'), `${NODE}{"r":["42","alice \\"a\\""],"x":"nodeBBBB-1z"}\n${FRAME}`);
  const parsed = parsePayload(payload);
  assert.ok(parsed);
  assert.deepEqual(parsed.recipients, ['42', 'alice "a"']);
  assert.equal(parsed.exclude, 'nodeBBBB-1z');
  assert.equal(parsed.position, null);
  assert.equal(parsed.frame.toString('utf8'), FRAME);
  // The frame is a view into the payload, not a copy.
  assert.equal(parsed.frame.buffer, payload.buffer);
});

test('an empty recipients list is kept apart from no recipients', () => {
  const parsed = parsePayload(encodePayload(NODE, { recipients: [], exclude: null }, FRAME));
  assert.deepEqual(parsed?.recipients, []);
});

test('a kept message\'s head is completed by the history script with its offset and epoch', () => {
  const frame = '{"action":"message","offset":7}';
  // What history-scripts.ts PUBLISH_KEPT_SCRIPT appends.
  const complete = (head: string) => Buffer.from(`${head}"o":7,"e":"Ep0ch_-x"}\n${frame}`);
  for (const meta of [
    { recipients: null, exclude: null },
    { recipients: ['1'], exclude: null },
    { recipients: null, exclude: 'nodeBBBB-2' },
    { recipients: ['1', '2'], exclude: 'nodeBBBB-2' },
  ]) {
    const parsed = parsePayload(complete(keptPayloadHead(NODE, meta)));
    assert.ok(parsed, JSON.stringify(meta));
    assert.deepEqual({ ...parsed, frame: parsed.frame.toString() }, { nodeId: NODE, ...meta, position: { epoch: 'Ep0ch_-x', offset: 7 }, frame });
  }
});

test('an older node\'s recipients array is read as recipients', () => {
  const parsed = parsePayload(Buffer.from(`${NODE}["alice","7"]\n${FRAME}`));
  assert.deepEqual(parsed?.recipients, ['alice', '7']);
  assert.equal(parsed?.exclude, null);
  assert.equal(parsed?.position, null);
});

test('malformed payloads are refused, never half-read', () => {
  for (const text of [
    '',
    NODE,
    `${NODE}no newline`,
    'short\n{}',
    `${NODE}{not json\n{}`,
    `${NODE}"text"\n{}`,
    `${NODE}null\n{}`,
    `${NODE}[1,2]\n{}`,
    `${NODE}{"r":"alice"}\n{}`,
    `${NODE}{"r":[1]}\n{}`,
    `${NODE}{"x":3}\n{}`,
    `${NODE}{"o":3}\n{}`,
    `${NODE}{"e":"epoch"}\n{}`,
    `${NODE}{"o":"3","e":"epoch"}\n{}`,
    `${NODE}{"o":0,"e":"epoch"}\n{}`,
    `${NODE}{"o":1.5,"e":"epoch"}\n{}`,
    `${NODE}{"o":3,"e":""}\n{}`,
  ]) {
    assert.equal(parsePayload(Buffer.from(text)), null, text);
  }
});

test('unknown meta fields are ignored (a newer node may add some)', () => {
  const parsed = parsePayload(Buffer.from(`${NODE}{"r":["a"],"z":1}\n{}`));
  assert.deepEqual(parsed?.recipients, ['a']);
});
