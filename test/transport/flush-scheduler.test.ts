/**
 * The handler's end-of-turn writer: a large write-out is spread over turns in order, a
 * socket that fails is logged and dropped without holding up the others, and stop()
 * leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { FLUSH_BUDGET_MS, FLUSH_CHECK_EVERY, FLUSH_CHUNK, FlushScheduler } from '../../src/transport/flush-scheduler.js';
import { FrameBatch } from '../../src/transport/frame-batch.js';
import { PreparedFrame } from '../../src/transport/prepared-frame.js';
import type { SwitchboardSocket } from '../../src/transport/switchboard-socket.js';
import { eventually } from '../helpers/client.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { silentLogger } from './socket-pair.js';

/** An open socket without ws internals: writes to it take the public fallback (send). */
function standIn(send: (payload: Buffer) => void): SwitchboardSocket {
  return { readyState: WebSocket.OPEN, bufferedAmount: 0, send, flushBeforeClose: () => undefined } as unknown as SwitchboardSocket;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

test('a write-out to more sockets than FLUSH_CHUNK is spread over several event-loop turns, every socket still served', async () => {
  const scheduler = new FlushScheduler(silentLogger);
  const written: number[] = [];
  const sockets = Array.from({ length: FLUSH_CHUNK * 2 + 10 }, (_, index) => standIn(() => written.push(index)));
  const frame = new PreparedFrame('{"to":"everyone"}');
  for (const socket of sockets) new FrameBatch(socket, scheduler).push(frame);
  await nextTurn();
  // One chunk, or less when the turn's time ran out first (a loaded machine).
  assert.ok(written.length > 0 && written.length <= FLUSH_CHUNK, `the first turn writes one chunk at most (${written.length})`);
  await eventually(() => written.length === sockets.length);
  assert.deepEqual(written, sockets.map((_, index) => index), 'in the order they were queued');
  assert.equal(scheduler.fallbackWrites, sockets.length, 'one write per socket, counted by the path it took');
  assert.equal(scheduler.fastWrites, 0);
});

test('a turn whose writes take longer than FLUSH_BUDGET_MS stops and leaves the rest to the next turns, in order', async () => {
  const scheduler = new FlushScheduler(silentLogger);
  const written: number[] = [];
  // Each write holds the thread for FLUSH_BUDGET_MS / 8: the budget is spent before the first check.
  const slowWrite = (index: number) => (): void => {
    const until = performance.now() + FLUSH_BUDGET_MS / 8;
    while (performance.now() < until);
    written.push(index);
  };
  const count = FLUSH_CHECK_EVERY * 3 + 5;
  for (let index = 0; index < count; index++) new FrameBatch(standIn(slowWrite(index)), scheduler).push(new PreparedFrame('slow'));
  await nextTurn();
  assert.equal(written.length, FLUSH_CHECK_EVERY, 'the first turn stops at the first check past the budget');
  const late = new FrameBatch(standIn(() => written.push(-1)), scheduler);
  late.push(new PreparedFrame('queued meanwhile'));
  await eventually(() => written.length === count + 1);
  assert.deepEqual(written, [...Array.from({ length: count }, (_, index) => index), -1], 'the rest first, in order, then what was queued meanwhile');
});

test('a reply is written in the next turn even behind a write-out of many turns; one socket\'s frames keep their order', async () => {
  const scheduler = new FlushScheduler(silentLogger);
  const written: string[] = [];
  const count = FLUSH_CHUNK * 3;
  for (let index = 0; index < count; index++) new FrameBatch(standIn(() => written.push(`message ${index}`)), scheduler).push(new PreparedFrame('m'));
  // The last subscriber of the write-out asks for something: its message, then its reply.
  const asking = new FrameBatch(standIn((payload) => written.push(`asking: ${payload.toString()}`)), scheduler);
  asking.push(new PreparedFrame('its message'));
  asking.push(new PreparedFrame('its reply'), true);
  const other = new FrameBatch(standIn((payload) => written.push(`other: ${payload.toString()}`)), scheduler);
  other.push(new PreparedFrame('a pong'), true);
  await nextTurn();
  assert.deepEqual(written.slice(0, 3), ['asking: its message', 'asking: its reply', 'other: a pong'], 'the replies first, each socket in order');
  assert.ok(written.length < count, 'the write-out goes on over later turns');
  await eventually(() => written.length === count + 3);
  assert.deepEqual(written.slice(3), Array.from({ length: count }, (_, index) => `message ${index}`), 'then the messages, in order, each once');
});

test('a socket whose write fails is logged and loses its frames; the other sockets still get theirs', async () => {
  const { logger, lines } = memoryLogger();
  const scheduler = new FlushScheduler(logger);
  const written: string[] = [];
  let broken = true;
  const failing = new FrameBatch(
    standIn((payload) => {
      if (broken) throw new Error('socket broke');
      written.push(`mended: ${payload.toString()}`);
    }),
    scheduler,
  );
  const before = new FrameBatch(standIn((payload) => written.push(`before: ${payload.toString()}`)), scheduler);
  const after = new FrameBatch(standIn((payload) => written.push(`after: ${payload.toString()}`)), scheduler);
  before.push(new PreparedFrame('1'));
  failing.push(new PreparedFrame('2'));
  failing.push(new PreparedFrame('3'));
  after.push(new PreparedFrame('4'));
  await nextTurn();
  assert.deepEqual(written, ['before: 1', 'after: 4']);
  const errors = lines.filter((line) => line.level === 50);
  assert.equal(errors.length, 1, 'one error for the one broken socket');
  assert.equal((errors[0]?.err as { message?: string } | undefined)?.message, 'socket broke');

  broken = false;
  failing.push(new PreparedFrame('5'));
  await nextTurn();
  assert.deepEqual(written, ['before: 1', 'after: 4', 'mended: 5'], 'the dropped frames are not written later; new ones are');
});

test('stop() writes out what is still queued, in order, and leaves no turn pending', async () => {
  const scheduler = new FlushScheduler(silentLogger);
  const written: number[] = [];
  const count = FLUSH_CHUNK + 3;
  for (let index = 0; index < count; index++) new FrameBatch(standIn(() => written.push(index)), scheduler).push(new PreparedFrame('bye'));
  scheduler.stop();
  assert.deepEqual(written, Array.from({ length: count }, (_, index) => index));
  await nextTurn();
  assert.equal(written.length, count, 'nothing is written twice');

  const later = new FrameBatch(standIn(() => written.push(-1)), scheduler);
  later.push(new PreparedFrame('after stop'));
  await nextTurn();
  assert.equal(written.at(-1), -1, 'a frame queued after stop() is flushed at the end of its turn');
});
