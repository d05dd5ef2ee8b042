/**
 * The frame-once writer: frames built once decode correctly at every length class,
 * several frames queued in one turn arrive in order, a close flushes what was queued
 * first, and a compressed connection (where the bytes cannot be shared) falls back to
 * `ws` without losing order.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { FLUSH_CHUNK, FrameBatch, PreparedFrame } from '../../src/transport/prepared-frame.js';

async function pair(t: TestContext, perMessageDeflate = false): Promise<{ server: WebSocket; client: WebSocket; received: string[] }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  );
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate });
  const received: string[] = [];
  client.on('message', (data: Buffer, isBinary) => {
    assert.equal(isBinary, false, 'every frame is a text frame');
    received.push(data.toString('utf8'));
  });
  await once(client, 'open');
  const [server] = await accepted;
  t.after(() => client.terminate());
  return { server, client, received };
}

async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 5000) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('frames of every length class (7-bit, 16-bit and 64-bit lengths, multi-byte UTF-8) arrive intact and in order', async (t) => {
  const { server, received } = await pair(t);
  const batch = new FrameBatch(server);
  const texts = ['', 'x', 'a'.repeat(125), 'b'.repeat(126), 'é'.repeat(40_000), 'c'.repeat(65_535), 'd'.repeat(65_536), 'e'.repeat(200_000)];
  for (const text of texts) assert.equal(batch.push(new PreparedFrame(text)), true);
  await until(() => received.length === texts.length);
  assert.deepEqual(received, texts);
});

test('one frame shared by several sockets reaches each of them', async (t) => {
  const first = await pair(t);
  const second = await pair(t);
  const frame = new PreparedFrame('{"shared":true}');
  new FrameBatch(first.server).push(frame);
  new FrameBatch(second.server).push(frame);
  await until(() => first.received.length === 1 && second.received.length === 1);
  assert.deepEqual([first.received, second.received], [['{"shared":true}'], ['{"shared":true}']]);
});

test('a reading client is not taken for a slow consumer when one turn queues more than the backlog limit', async (t) => {
  const { server, received } = await pair(t);
  let overflows = 0;
  const batch = new FrameBatch(server, { maxBytes: 1000, onOverflow: () => overflows++ });
  for (let index = 0; index < 5; index++) batch.push(new PreparedFrame('x'.repeat(100)));
  assert.equal(server.bufferedAmount, 0, '5 × 102 bytes wait for the end of the turn');
  for (let index = 0; index < 5; index++) batch.push(new PreparedFrame('y'.repeat(100)));
  await until(() => received.length === 10);
  assert.equal(overflows, 0, 'a client that reads is not a slow consumer');
});

test('frames queued when ws closes the socket itself (answering the peer) go out before its close frame', async (t) => {
  const { server, client, received } = await pair(t);
  const batch = new FrameBatch(server);
  batch.push(new PreparedFrame('reply to your last request'));
  // ws answers a peer's close frame by calling close() on the socket, in the same turn.
  server.close(1000);
  await once(client, 'close');
  assert.deepEqual(received, ['reply to your last request']);
});

test('flush() writes what is queued before a close frame', async (t) => {
  const { server, client, received } = await pair(t);
  const batch = new FrameBatch(server);
  batch.push(new PreparedFrame('last words'));
  batch.flush();
  server.close(4008, 'bye');
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(code, 4008);
  assert.deepEqual(received, ['last words']);
});

test('discard() drops what is queued for a socket being cut', async (t) => {
  const { server, client, received } = await pair(t);
  const batch = new FrameBatch(server);
  batch.push(new PreparedFrame('never sent'));
  batch.discard();
  server.terminate();
  await once(client, 'close');
  assert.deepEqual(received, []);
});

test('a compressed connection falls back to ws and keeps the order of frames', async (t) => {
  const { server, received } = await pair(t, true);
  assert.notEqual(server.extensions, '', 'permessage-deflate was negotiated');
  const texts = Array.from({ length: 20 }, (_, index) => `message ${index} ${'z'.repeat(index * 100)}`);
  const batch = new FrameBatch(server);
  for (const text of texts) batch.push(new PreparedFrame(text));
  await until(() => received.length === texts.length);
  assert.deepEqual(received, texts);
});

test('writing to a socket that is not open is refused', async (t) => {
  const { server, client } = await pair(t);
  server.close();
  await once(client, 'close');
  assert.equal(new FrameBatch(server).push(new PreparedFrame('late')), false);
});

test('a write-out to more sockets than FLUSH_CHUNK is spread over several event-loop turns, every socket still served', async () => {
  // Stand-ins for open sockets without ws internals: FrameBatch takes its public fallback (send).
  const written: number[] = [];
  const sockets = Array.from({ length: FLUSH_CHUNK * 2 + 10 }, (_, index) => ({
    readyState: WebSocket.OPEN,
    send: () => written.push(index),
  }));
  const frame = new PreparedFrame('{"to":"everyone"}');
  for (const socket of sockets) new FrameBatch(socket as unknown as WebSocket).push(frame);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(written.length, FLUSH_CHUNK, 'the first turn writes one chunk');
  await until(() => written.length === sockets.length);
  assert.deepEqual(written, sockets.map((_, index) => index), 'in the order they were queued');
});
