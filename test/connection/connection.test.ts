/**
 * What a Connection makes on first use (its request queue, rate limiter, channel set and
 * `data`) behaves as if it had always been there: requests keep their order across the
 * queue being dropped and made again, and state written once stays.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Connection, type ConnectionLimits } from '../../src/connection/connection.js';
import { UNLIMITED } from '../../src/connection/rate-limiter.js';
import { InFlight } from '../../src/connection/request-queue.js';
import { nativeWire } from '../../src/connection/wire.js';
import { NodeStats } from '../../src/metrics/stats.js';
import { FlushScheduler } from '../../src/transport/flush-scheduler.js';
import { pair, silentLogger } from '../transport/socket-pair.js';

async function connection(t: TestContext, limits: ConnectionLimits = { maxMessagesPerMinute: 0, maxBufferedBytes: 1 << 20 }): Promise<Connection> {
  const { server } = await pair(t);
  return new Connection(
    'test-1',
    server,
    '127.0.0.1',
    { url: '/', headers: {} },
    {
      limits,
      logger: silentLogger,
      stats: new NodeStats(),
      flushScheduler: new FlushScheduler(silentLogger),
      events: { slowConsumer: () => undefined, closing: () => undefined, frame: () => undefined, error: () => undefined, closed: () => undefined },
    },
    { wire: nativeWire({ frame: '{}', code: 4008 }), frame: () => undefined, closed: () => undefined },
  );
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('requests run in arrival order behind an async one, again after the connection went idle in between', async (t) => {
  const open = await connection(t);
  const ran: string[] = [];
  for (const round of [1, 2]) {
    let finish = (): void => undefined;
    open.enqueue(async () => {
      ran.push(`slow ${round} start`);
      await new Promise<void>((resolve) => (finish = resolve));
      ran.push(`slow ${round} end`);
    });
    open.enqueue(() => void ran.push(`quick ${round}`));
    let idle = false;
    void open.idle().then(() => (idle = true));
    await tick();
    assert.deepEqual(ran.slice(-1), [`slow ${round} start`], 'the quick request waits');
    assert.equal(idle, false);
    finish();
    await tick();
    assert.equal(idle, true);
    assert.deepEqual(ran.slice(-3), [`slow ${round} start`, `slow ${round} end`, `quick ${round}`]);
  }
  await open.idle();
});

test('a reply in flight holds back the next request that is not pipelined, and idle() waits for it; a rejected reply does not stop the rest', async (t) => {
  const open = await connection(t);
  const ran: string[] = [];
  const answers: Array<(send: () => void) => void> = [];
  const pipelined = (name: string) => (): InFlight => {
    ran.push(`${name} start`);
    return new InFlight(new Promise((resolve) => answers.push(resolve)));
  };
  open.enqueue(pipelined('one'), true);
  open.enqueue(pipelined('two'), true);
  open.enqueue(() => new InFlight(Promise.reject(new Error('boom'))), true);
  open.enqueue(() => void ran.push('plain'));
  let idle = false;
  void open.idle().then(() => (idle = true));
  await tick();
  assert.deepEqual(ran, ['one start', 'two start'], 'both pipelined requests started; the plain one waits');
  answers[1]?.(() => ran.push('two replied'));
  await tick();
  assert.deepEqual(ran.slice(2), [], 'the second reply waits for the first');
  answers[0]?.(() => ran.push('one replied'));
  await tick();
  assert.deepEqual(ran.slice(2), ['one replied', 'two replied', 'plain']);
  assert.equal(idle, true);
});

test('a request that fails does not stop the ones behind it', async (t) => {
  const open = await connection(t);
  const ran: string[] = [];
  open.enqueue(() => Promise.reject(new Error('boom')));
  open.enqueue(() => void ran.push('after'));
  await open.idle();
  assert.deepEqual(ran, ['after']);
});

test('closing drops the requests still waiting', async (t) => {
  const open = await connection(t);
  const ran: string[] = [];
  let finish = (): void => undefined;
  open.enqueue(() => new Promise<void>((resolve) => (finish = resolve)));
  open.enqueue(() => void ran.push('dropped'));
  open.close();
  finish();
  await open.idle();
  await tick();
  assert.deepEqual(ran, []);
});

test('without a limit every connection shares one limiter; with one, each has its own', async (t) => {
  const unlimited = await connection(t);
  assert.equal(unlimited.rateLimiter, UNLIMITED);
  assert.equal(unlimited.rateLimiter.take(Date.now()), 0);
  const limited = await connection(t, { maxMessagesPerMinute: 1, maxBufferedBytes: 1 << 20 });
  const limiter = limited.rateLimiter;
  assert.notEqual(limiter, UNLIMITED);
  assert.equal(limited.rateLimiter, limiter, 'made once');
  assert.equal(limiter.take(Date.now()), 0);
  assert.ok(limited.rateLimiter.take(Date.now()) > 0, 'the second frame in the minute is refused');
});

test('data and channels, made on first use, keep what is written to them', async (t) => {
  const open = await connection(t);
  assert.deepEqual(open.channelList(), []);
  assert.equal(open.channels.size, 0);
  open.data.room = 'lobby';
  open.channels.add('news');
  assert.deepEqual(open.data, { room: 'lobby' });
  assert.deepEqual(open.channelList(), ['news']);
  assert.ok(open.channels.has('news'));
  assert.deepEqual(open.roles, []);
});
