/**
 * Frames built once: they decode correctly at every length class, and the same bytes
 * serve several sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlushScheduler } from '../../src/transport/flush-scheduler.js';
import { FrameBatch } from '../../src/transport/frame-batch.js';
import { PreparedFrame } from '../../src/transport/prepared-frame.js';
import { eventually } from '../helpers/client.js';
import { pair, silentLogger } from './socket-pair.js';

test('frames of every length class (7-bit, 16-bit and 64-bit lengths, multi-byte UTF-8) arrive intact and in order', async (t) => {
  const { server, received } = await pair(t);
  const batch = new FrameBatch(server, new FlushScheduler(silentLogger));
  const texts = ['', 'x', 'a'.repeat(125), 'b'.repeat(126), 'é'.repeat(40_000), 'c'.repeat(65_535), 'd'.repeat(65_536), 'e'.repeat(200_000)];
  for (const text of texts) assert.equal(batch.push(new PreparedFrame(text)), true);
  await eventually(() => received.length === texts.length);
  assert.deepEqual(received, texts);
});

test('the payload of a frame is its UTF-8 text, whether built from a string or from bytes', () => {
  for (const text of ['', 'é'.repeat(63), 'f'.repeat(300), 'g'.repeat(70_000)]) {
    assert.equal(new PreparedFrame(text).payload.toString('utf8'), text);
    assert.deepEqual(new PreparedFrame(Buffer.from(text)).wire, new PreparedFrame(text).wire);
  }
});

test('one frame shared by several sockets reaches each of them', async (t) => {
  const first = await pair(t);
  const second = await pair(t);
  const scheduler = new FlushScheduler(silentLogger);
  const frame = new PreparedFrame('{"shared":true}');
  new FrameBatch(first.server, scheduler).push(frame);
  new FrameBatch(second.server, scheduler).push(frame);
  await eventually(() => first.received.length === 1 && second.received.length === 1);
  assert.deepEqual([first.received, second.received], [['{"shared":true}'], ['{"shared":true}']]);
});
