import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimiter } from '../../src/connection/rate-limiter.js';

const MINUTE = 60_000;

/** Takes `count` frames at `nowMs` and returns how many were accepted. */
function takeMany(limiter: RateLimiter, count: number, nowMs: number): number {
  let accepted = 0;
  for (let index = 0; index < count; index++) if (limiter.take(nowMs) === 0) accepted++;
  return accepted;
}

/** A small deterministic pseudo-random generator, so a failure is reproducible. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

void describe('RateLimiter: burst', () => {
  void test('accepts a burst of exactly limit frames at one instant', () => {
    const limiter = new RateLimiter(60);
    for (let index = 0; index < 60; index++) assert.equal(limiter.take(0), 0, `frame ${index + 1}`);
  });

  void test('refuses the frame after the burst', () => {
    const limiter = new RateLimiter(60);
    takeMany(limiter, 60, 0);
    assert.ok(limiter.take(0) > 0);
  });

  void test('the wait of a refused frame is oldest accepted + 60000 - now', () => {
    const limiter = new RateLimiter(3);
    limiter.take(1_000);
    limiter.take(2_000);
    limiter.take(5_000);
    assert.equal(limiter.take(10_000), 1_000 + MINUTE - 10_000);
  });

  void test('the wait shrinks as time passes', () => {
    const limiter = new RateLimiter(2);
    limiter.take(0);
    limiter.take(0);
    assert.equal(limiter.take(100), MINUTE - 100);
    assert.equal(limiter.take(45_000), MINUTE - 45_000);
  });

  void test('after the oldest frame leaves, the wait is measured from the next oldest', () => {
    const limiter = new RateLimiter(3);
    limiter.take(0);
    limiter.take(10);
    limiter.take(20);
    assert.equal(limiter.take(MINUTE), 0);
    assert.equal(limiter.take(MINUTE + 1), 10 + MINUTE - (MINUTE + 1));
  });

  void test('refused frames do not push back the time a frame is accepted again', () => {
    const limiter = new RateLimiter(5);
    takeMany(limiter, 5, 0);
    for (let now = 1_000; now < MINUTE; now += 1_000) assert.ok(limiter.take(now) > 0);
    assert.equal(limiter.take(MINUTE), 0);
  });

  void test('a frame sent exactly after the reported wait is accepted, one ms earlier it is not', () => {
    const limiter = new RateLimiter(4);
    limiter.take(0);
    limiter.take(7_000);
    limiter.take(13_000);
    limiter.take(21_000);
    const now = 30_000;
    const wait = limiter.take(now);
    assert.ok(wait > 0);
    assert.ok(limiter.take(now + wait - 1) > 0);
    assert.equal(limiter.take(now + wait), 0);
  });

  void test('a limit of 1 accepts one frame per minute', () => {
    const limiter = new RateLimiter(1);
    assert.equal(limiter.take(0), 0);
    assert.equal(limiter.take(1), MINUTE - 1);
    assert.equal(limiter.take(MINUTE), 0);
    assert.equal(limiter.take(MINUTE), MINUTE);
  });
});

void describe('RateLimiter: rolling window', () => {
  void test('a full burst at t=0 still refuses at t=59999 with a wait of 1 ms', () => {
    const limiter = new RateLimiter(60);
    takeMany(limiter, 60, 0);
    assert.equal(limiter.take(59_999), 1);
  });

  void test('a full burst at t=0 frees exactly at t=60000', () => {
    const limiter = new RateLimiter(60);
    takeMany(limiter, 60, 0);
    assert.equal(limiter.take(MINUTE), 0);
  });

  void test('a second burst at half a minute is refused in full, each with the wait to t=60000', () => {
    const limiter = new RateLimiter(60);
    takeMany(limiter, 60, 0);
    for (let index = 0; index < 60; index++) assert.equal(limiter.take(30_000), 30_000);
  });

  void test('a burst just before a minute boundary and one just after cannot double up', () => {
    // A fixed window starting at t=0 would reset at t=60000 and let 2N through in 1 ms.
    const limiter = new RateLimiter(60);
    assert.equal(takeMany(limiter, 60, 59_999), 60);
    assert.equal(takeMany(limiter, 60, MINUTE), 0);
  });

  void test('half bursts at t=0 and t=30000 leave room for only half a burst at t=60000', () => {
    const limiter = new RateLimiter(60);
    assert.equal(takeMany(limiter, 30, 0), 30);
    assert.equal(takeMany(limiter, 30, 30_000), 30);
    assert.equal(takeMany(limiter, 60, MINUTE), 30);
    assert.equal(limiter.take(MINUTE), 30_000);
  });

  void test('no 60 s window ever holds more than limit accepted frames', () => {
    const limit = 20;
    const limiter = new RateLimiter(limit);
    const random = lcg(42);
    const accepted: number[] = [];
    let now = 0;
    for (let step = 0; step < 5_000; step++) {
      // Mostly small gaps with bursts at one instant and occasional long pauses.
      const roll = random();
      now += roll < 0.3 ? 0 : roll < 0.95 ? Math.floor(random() * 2_000) : Math.floor(random() * MINUTE);
      if (limiter.take(now) === 0) accepted.push(now);
    }
    assert.ok(accepted.length > limit * 10, 'the sequence should accept enough frames to be meaningful');
    let windowStart = 0;
    for (let index = 0; index < accepted.length; index++) {
      while ((accepted[index] as number) - (accepted[windowStart] as number) >= MINUTE) windowStart++;
      assert.ok(index - windowStart + 1 <= limit, `${index - windowStart + 1} frames accepted within 60 s ending at ${accepted[index]}`);
    }
  });

  void test('a custom window length is honoured', () => {
    const limiter = new RateLimiter(2, 1_000);
    limiter.take(0);
    limiter.take(0);
    assert.equal(limiter.take(400), 600);
    assert.equal(limiter.take(1_000), 0);
  });
});

void describe('RateLimiter: refusedSinceLastAccepted', () => {
  void test('is 0 before any frame', () => {
    assert.equal(new RateLimiter(3).refusedSinceLastAccepted, 0);
  });

  void test('does not count accepted frames', () => {
    const limiter = new RateLimiter(3);
    takeMany(limiter, 3, 0);
    assert.equal(limiter.refusedSinceLastAccepted, 0);
  });

  void test('counts each refused frame', () => {
    const limiter = new RateLimiter(3);
    takeMany(limiter, 3, 0);
    takeMany(limiter, 4, 10);
    assert.equal(limiter.refusedSinceLastAccepted, 4);
  });

  void test('resets to 0 when a frame is accepted again', () => {
    const limiter = new RateLimiter(3);
    takeMany(limiter, 3, 0);
    takeMany(limiter, 4, 10);
    assert.equal(limiter.take(MINUTE), 0);
    assert.equal(limiter.refusedSinceLastAccepted, 0);
  });

  void test('counts from zero again after a reset', () => {
    const limiter = new RateLimiter(1);
    limiter.take(0);
    takeMany(limiter, 5, 1);
    limiter.take(MINUTE);
    takeMany(limiter, 2, MINUTE + 1);
    assert.equal(limiter.refusedSinceLastAccepted, 2);
  });
});

void describe('RateLimiter: limit 0', () => {
  void test('a limit of 0 accepts every frame', () => {
    const limiter = new RateLimiter(0);
    assert.equal(takeMany(limiter, 100_000, 0), 100_000);
  });

  void test('a limit of 0 never counts a refusal', () => {
    const limiter = new RateLimiter(0);
    takeMany(limiter, 1_000, 0);
    assert.equal(limiter.refusedSinceLastAccepted, 0);
  });
});

void describe('RateLimiter: constructor', () => {
  void test('rejects a limit that is not a non-negative integer', () => {
    for (const limit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
      assert.throws(() => new RateLimiter(limit), RangeError, `limit ${limit}`);
    }
  });

  void test('accepts 0 and positive integer limits', () => {
    for (const limit of [0, 1, 60, 1_000_000]) assert.doesNotThrow(() => new RateLimiter(limit), `limit ${limit}`);
  });
});
