/**
 * Which path carries the frames over a real `ws` server and client. An update of `ws`
 * that changed the internals fast-write relies on would keep every other test green
 * while throughput fell back to `ws.send`; these tests fail instead.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Connection } from '../../src/connection/connection.js';
import { NodeStats } from '../../src/metrics/stats.js';
import { FlushScheduler } from '../../src/transport/flush-scheduler.js';
import { OPCODE_PING, PreparedFrame } from '../../src/transport/prepared-frame.js';
import { nativeWire } from '../../src/connection/wire.js';
import { eventually } from '../helpers/client.js';
import { pair, silentLogger, type PairOptions, type SocketPair } from './socket-pair.js';

async function connected(t: TestContext, options: PairOptions = {}): Promise<SocketPair & { connection: Connection; scheduler: FlushScheduler }> {
  const sockets = await pair(t, options);
  const scheduler = new FlushScheduler(silentLogger);
  const connection = new Connection(
    'test-1',
    sockets.server,
    '127.0.0.1',
    { url: '/', headers: {} },
    {
      limits: { maxMessagesPerMinute: 1000, maxBufferedBytes: 1 << 20 },
      logger: silentLogger,
      stats: new NodeStats(),
      flushScheduler: scheduler,
      events: {
        slowConsumer: () => assert.fail('not a slow consumer'),
        closing: () => undefined,
        frame: () => undefined,
        error: () => undefined,
        closed: () => undefined,
      },
    },
    { wire: nativeWire({ frame: '{}', code: 4008 }), frame: () => undefined, closed: () => undefined },
  );
  return { ...sockets, connection, scheduler };
}

/** Replies, plain text and a frame prepared for many, interleaved over several turns. */
async function sendMixed(connection: Connection, turns: number): Promise<string[]> {
  const expected: string[] = [];
  for (let turn = 0; turn < turns; turn++) {
    connection.send({ turn });
    connection.sendText(`text ${turn} ${'t'.repeat(turn * 300)}`);
    connection.sendPrepared(new PreparedFrame(`prepared ${turn}`));
    expected.push(JSON.stringify({ turn }), `text ${turn} ${'t'.repeat(turn * 300)}`, `prepared ${turn}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return expected;
}

test('without an extension every write goes straight to the TCP socket, never through ws.send', async (t) => {
  const { connection, scheduler, received } = await connected(t);
  const expected = await sendMixed(connection, 5);
  await eventually(() => received.length === expected.length);
  assert.deepEqual(received, expected);
  assert.equal(scheduler.fastWrites, 5, 'one write per turn, each by the fast path');
  assert.equal(scheduler.fallbackWrites, 0);
});

test('with permessage-deflate negotiated every write falls back to ws.send and frames keep their order', async (t) => {
  const { server, connection, scheduler, received } = await connected(t, { perMessageDeflate: true });
  assert.notEqual(server.extensions, '', 'permessage-deflate was negotiated');
  const expected = await sendMixed(connection, 5);
  await eventually(() => received.length === expected.length);
  assert.deepEqual(received, expected);
  assert.equal(scheduler.fallbackWrites, 5);
  assert.equal(scheduler.fastWrites, 0);
});

test('Connection.close() writes the frames queued in this turn before its close frame', async (t) => {
  const { client, connection, scheduler, received } = await connected(t);
  connection.sendText('last words');
  connection.close(4008, 'bye');
  const [code] = await new Promise<[number]>((resolve) => client.once('close', (closeCode: number) => resolve([closeCode])));
  assert.equal(code, 4008);
  assert.deepEqual(received, ['last words']);
  assert.equal(scheduler.fastWrites, 1);
});

test('a queued ping frame reaches the client as a WebSocket ping, on the fast path and on the fallback, between the frames around it', async (t) => {
  for (const perMessageDeflate of [false, true]) {
    const { client, connection, scheduler, received } = await connected(t, { perMessageDeflate });
    const events: string[] = [];
    client.on('ping', (payload: Buffer) => events.push(`ping ${payload.length}`));
    client.on('message', (data: Buffer) => events.push(data.toString()));
    connection.sendText('before');
    connection.sendPrepared(new PreparedFrame('', OPCODE_PING));
    connection.sendText('after');
    await eventually(() => received.length === 2 && events.length === 3);
    assert.deepEqual(events, ['before', 'ping 0', 'after'], `perMessageDeflate: ${perMessageDeflate}`);
    assert.equal(perMessageDeflate ? scheduler.fallbackWrites : scheduler.fastWrites, 1, 'one write for the three frames');
  }
});
