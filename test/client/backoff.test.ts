/**
 * The client SDK never reconnects in a tight loop (SPEC §9): backoffDelay's floor
 * (minDelay/4) and cap (min(maxDelay, minDelay × 2^attempt)) with the dice fixed; the
 * client's delays growing with each failure in a row; and, against a port where nobody
 * answers and one where the connection is dropped at once, attempts no closer together
 * than the floor allows.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { describe, test } from 'node:test';
import { backoffDelay } from '../../client/src/backoff.js';
import type { WebSocketConstructor } from '../../client/src/index.js';
import { NodeWebSocket, Scope, WAIT_MS, sleep } from '../helpers/sdk.js';

const ALMOST_ONE = 1 - 2 ** -20;
const POLL_MS = 10;

void describe('backoffDelay', () => {
  void test('the dice at 0: never under a quarter of minDelay, whatever the attempt', (t) => {
    t.mock.method(Math, 'random', () => 0);
    for (const attempt of [-1, 0, 1, 2, 5, 20]) assert.equal(backoffDelay(attempt, 400, 20_000), 100, `attempt ${attempt}`);
    assert.equal(backoffDelay(3, 20, 200), 5);
  });

  void test('the dice at ~1: minDelay × 2^attempt, up to maxDelay', (t) => {
    t.mock.method(Math, 'random', () => ALMOST_ONE);
    const delays = [0, 1, 2, 3, 4, 5, 6, 10, 30].map((attempt) => backoffDelay(attempt, 500, 20_000));
    const expected = [500, 1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000].map((cap) => cap * ALMOST_ONE);
    assert.deepEqual(delays, expected);
    // After a connection that lasted (attempt -1): half of minDelay at most.
    assert.equal(backoffDelay(-1, 500, 20_000), 250 * ALMOST_ONE);
  });

  void test('in between: a uniform draw below the cap, floored', (t) => {
    t.mock.method(Math, 'random', () => 0.5);
    assert.equal(backoffDelay(0, 100, 10_000), 50);
    assert.equal(backoffDelay(3, 100, 10_000), 400);
    assert.equal(backoffDelay(8, 100, 10_000), 5000);
    t.mock.method(Math, 'random', () => 0.1);
    assert.equal(backoffDelay(0, 100, 10_000), 25, 'the floor wins over a small draw');
  });
});

/** `ws`'s WebSocket, noting when each attempt was made. */
function countingWebSocket(attempts: number[]): WebSocketConstructor {
  return class extends NodeWebSocket {
    constructor(url: string, protocols?: string | string[]) {
      attempts.push(performance.now());
      super(url, protocols);
    }
  };
}

/** A port nobody listens on (it was free a moment ago). */
async function deadPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForAttempts(attempts: readonly number[], count: number): Promise<void> {
  const deadline = Date.now() + 3 * WAIT_MS;
  while (attempts.length < count && Date.now() < deadline) await sleep(POLL_MS);
  assert.ok(attempts.length >= count, `only ${attempts.length} attempts`);
}

/** Every gap between attempts is at least the floor (timers may fire up to a millisecond early). */
function assertNoTightLoop(attempts: readonly number[], minDelay: number): void {
  const gaps = attempts.slice(1).map((at, index) => at - (attempts[index] as number));
  for (const gap of gaps) assert.ok(gap >= minDelay / 4 - 1, `attempts ${gap.toFixed(1)} ms apart; gaps: ${gaps.map((value) => value.toFixed(1)).join(', ')}`);
}

void describe('the client', () => {
  void test('backs off longer after each failure in a row', async (t) => {
    t.mock.method(Math, 'random', () => ALMOST_ONE);
    const delays: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    t.mock.method(globalThis, 'setTimeout', ((callback: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return realSetTimeout(callback, ms);
    }) as typeof setTimeout);
    const scope = new Scope(t);
    const attempts: number[] = [];
    const port = await deadPort();
    scope.client(`ws://127.0.0.1:${port}/`, { WebSocket: countingWebSocket(attempts), reconnect: { minDelay: 8, maxDelay: 100 } });
    await waitForAttempts(attempts, 7);
    // Not the watchdog's (requestTimeout), not this test's own polling (10 ms).
    const backoffs = delays.filter((ms) => ms < 1000 && ms !== POLL_MS);
    assert.deepEqual(backoffs.slice(0, 6), [8, 16, 32, 64, 100, 100].map((cap) => cap * ALMOST_ONE), `setTimeout delays: ${delays.join(', ')}`);
  });

  void test('against a port nobody listens on: attempts no closer than minDelay/4', async (t) => {
    const scope = new Scope(t);
    const attempts: number[] = [];
    const port = await deadPort();
    const client = scope.client(`ws://127.0.0.1:${port}/`, { WebSocket: countingWebSocket(attempts), reconnect: { minDelay: 200, maxDelay: 200 } });
    await waitForAttempts(attempts, 6);
    client.close();
    assertNoTightLoop(attempts, 200);
    assert.equal(client.state, 'closed');
  });

  void test('against a server that drops every connection at once: the attempts it counts are no closer than minDelay/4', async (t) => {
    const scope = new Scope(t);
    const seen: number[] = [];
    const server: Server = createServer((socket) => {
      seen.push(performance.now());
      socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    scope.defer(() => new Promise((resolve) => server.close(resolve)));
    const { port } = server.address() as { port: number };
    const client = scope.client(`ws://127.0.0.1:${port}/`, { reconnect: { minDelay: 200, maxDelay: 200 } });
    await waitForAttempts(seen, 6);
    const window = performance.now() - (seen[0] as number);
    client.close();
    assertNoTightLoop(seen, 200);
    // Over the whole window: at most one attempt per floor, plus the first.
    assert.ok(seen.length <= 1 + Math.floor(window / 49), `${seen.length} attempts in ${window.toFixed(0)} ms`);
  });
});
