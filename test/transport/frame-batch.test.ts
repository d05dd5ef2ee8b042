/**
 * One socket's frames held until the end of the turn: a burst bigger than the backlog
 * limit is written at once without being taken for a slow consumer, a backlog that stays
 * is reported, flush() and discard() do what they say, and a closed socket takes nothing.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { FlushScheduler } from '../../src/transport/flush-scheduler.js';
import { FrameBatch } from '../../src/transport/frame-batch.js';
import { PreparedFrame } from '../../src/transport/prepared-frame.js';
import type { SwitchboardSocket } from '../../src/transport/switchboard-socket.js';
import { eventually } from '../helpers/client.js';
import { pair, silentLogger } from './socket-pair.js';

test('a reading client is not taken for a slow consumer when one turn queues more than the backlog limit', async (t) => {
  const { server, received } = await pair(t);
  let overflows = 0;
  const batch = new FrameBatch(server, new FlushScheduler(silentLogger), { maxBufferedBytes: 1000, backlogOverflowed: () => overflows++ });
  for (let index = 0; index < 5; index++) batch.push(new PreparedFrame('x'.repeat(100)));
  assert.equal(server.bufferedAmount, 0, '5 × 102 bytes wait for the end of the turn');
  for (let index = 0; index < 5; index++) batch.push(new PreparedFrame('y'.repeat(100)));
  await eventually(() => received.length === 10);
  assert.equal(overflows, 0, 'a client that reads is not a slow consumer');
});

test('a backlog still above the limit after a write is reported as an overflow', async () => {
  // A stand-in whose kernel never drains: what matters is the check after the write.
  const socket = { readyState: WebSocket.OPEN, bufferedAmount: 5000, send: () => undefined, flushBeforeClose: () => undefined };
  let overflows = 0;
  const batch = new FrameBatch(socket as unknown as SwitchboardSocket, new FlushScheduler(silentLogger), { maxBufferedBytes: 1000, backlogOverflowed: () => overflows++ });
  batch.push(new PreparedFrame('z'));
  assert.equal(overflows, 0, 'nothing is written, so nothing is checked, before the end of the turn');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(overflows, 1);
});

test('flush() writes what is queued at once, before a close frame', async (t) => {
  const { server, client, received } = await pair(t);
  const scheduler = new FlushScheduler(silentLogger);
  const batch = new FrameBatch(server, scheduler);
  batch.push(new PreparedFrame('last words'));
  batch.flush();
  // Written by flush() itself, not by the close that follows (the socket flushes on close too).
  assert.equal(scheduler.fastWrites, 1);
  server.close(4008, 'bye');
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(code, 4008);
  assert.deepEqual(received, ['last words']);
});

test('discard() drops what is queued for a socket being cut', async (t) => {
  const { server, client, received } = await pair(t);
  const batch = new FrameBatch(server, new FlushScheduler(silentLogger));
  batch.push(new PreparedFrame('never sent'));
  batch.discard();
  server.terminate();
  await once(client, 'close');
  assert.deepEqual(received, []);
});

test('writing to a socket that is not open is refused', async (t) => {
  const { server, client } = await pair(t);
  server.close();
  await once(client, 'close');
  assert.equal(new FrameBatch(server, new FlushScheduler(silentLogger)).push(new PreparedFrame('late')), false);
});
