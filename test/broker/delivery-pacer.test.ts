/**
 * The pacer between a broker and its node (src/broker/delivery-pacer.ts): other nodes'
 * messages are delivered at once until a turn's deliveries have taken BUDGET_MS, then
 * wait, in order, for the next turns. The clock is the test's: each delivery "takes" the
 * time the test says, so nothing here depends on the machine's speed.
 */
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import type { Delivery } from '../../src/broker/broker.js';
import { BUDGET_MS, DeliveryPacer, MAX_WAITING } from '../../src/broker/delivery-pacer.js';
import { memoryLogger } from '../helpers/memory-logger.js';

function delivery(n: number, channel = 'room'): Delivery {
  return { channel, recipients: null, exclude: null, frame: `{"n":${n}}`, position: null };
}

/** A pacer whose every delivery takes `costMs` on its clock; `log` lists what happened, in order. */
function paced(costMs: number, options: { failOn?: number } = {}) {
  let clock = 1000;
  const log: string[] = [];
  const { logger, lines } = memoryLogger();
  const pacer = new DeliveryPacer(
    (d) => {
      clock += costMs;
      const n = (JSON.parse(d.frame as string) as { n: number }).n;
      if (n === options.failOn) throw new Error(`delivery ${n} failed`);
      log.push(`d${n}`);
    },
    logger,
    () => clock,
  );
  return { pacer, log, lines };
}

test('deliveries within the budget are made at once, in order', () => {
  const { pacer, log } = paced(1);
  for (let n = 1; n <= 4; n++) pacer.receive(delivery(n));
  assert.deepEqual(log, ['d1', 'd2', 'd3', 'd4']);
  assert.equal(pacer.backlog, 0);
});

test('past the budget the rest wait, and each later turn delivers a budget of them, in arrival order', async () => {
  const { pacer, log } = paced(1);
  for (let n = 1; n <= 20; n++) pacer.receive(delivery(n));
  // 1 ms each: the first BUDGET_MS are made in this turn, the rest wait.
  assert.equal(log.length, BUDGET_MS);
  assert.equal(pacer.backlog, 20 - BUDGET_MS);
  const perTurn: number[] = [];
  while (pacer.backlog > 0) {
    const before = log.length;
    await nextTurn();
    perTurn.push(log.length - before);
  }
  assert.ok(
    perTurn.every((made) => made <= BUDGET_MS),
    `no turn went past its budget: ${perTurn.join(', ')}`,
  );
  assert.deepEqual(
    log,
    Array.from({ length: 20 }, (_, i) => `d${i + 1}`),
  );
});

test('a message that arrives while others wait goes after them', async () => {
  const { pacer, log } = paced(1);
  for (let n = 1; n <= 20; n++) pacer.receive(delivery(n));
  await nextTurn();
  assert.ok(pacer.backlog > 0);
  for (let n = 21; n <= 25; n++) pacer.receive(delivery(n));
  assert.equal(log.length, 2 * BUDGET_MS, 'the arrivals wait behind the backlog');
  while (pacer.backlog > 0) await nextTurn();
  assert.deepEqual(
    log,
    Array.from({ length: 25 }, (_, i) => `d${i + 1}`),
  );
});

test('a new turn starts a new budget: a message after an idle turn is delivered at once', async () => {
  const { pacer, log } = paced(1);
  for (let n = 1; n <= BUDGET_MS + 2; n++) pacer.receive(delivery(n));
  while (pacer.backlog > 0) await nextTurn();
  await nextTurn();
  await nextTurn();
  pacer.receive(delivery(100));
  assert.equal(log.at(-1), 'd100');
});

test('then() runs a task at once when nothing waits, and after the waiting deliveries otherwise', async () => {
  const { pacer, log } = paced(1);
  pacer.then(() => log.push('answer0'));
  assert.deepEqual(log, ['answer0']);
  for (let n = 1; n <= 12; n++) pacer.receive(delivery(n));
  pacer.then(() => log.push('answer1'));
  assert.ok(!log.includes('answer1'), 'the answer waits for the deliveries ahead of it');
  while (pacer.backlog > 0) await nextTurn();
  assert.equal(log.at(-1), 'answer1');
  assert.equal(log.indexOf('answer1'), 13);
});

test('a delivery that throws is logged, and the ones after it are still made', async () => {
  const { pacer, log, lines } = paced(1, { failOn: 3 });
  for (let n = 1; n <= 12; n++) pacer.receive(delivery(n));
  while (pacer.backlog > 0) await nextTurn();
  assert.equal(log.length, 11);
  assert.ok(!log.includes('d3'));
  assert.ok(lines.some((line) => /delivering a message from another node failed/.test(line.msg ?? '')));
});

test('the queue is bounded: at MAX_WAITING an arrival first delivers everything ahead of it, nothing is dropped', () => {
  // Each delivery takes the whole budget: after the first, everything waits.
  const { pacer, log } = paced(BUDGET_MS);
  for (let n = 0; n <= MAX_WAITING; n++) pacer.receive(delivery(n));
  assert.equal(pacer.backlog, MAX_WAITING);
  pacer.receive(delivery(MAX_WAITING + 1));
  assert.equal(pacer.backlog, 1, 'the arrival drained the full queue first, then waits itself');
  assert.equal(log.length, MAX_WAITING + 1);
  assert.equal(log.at(-1), `d${MAX_WAITING}`);
  pacer.flush();
  assert.equal(log.at(-1), `d${MAX_WAITING + 1}`);
});

test('flush() delivers everything waiting at once and leaves no turn scheduled', async () => {
  const { pacer, log } = paced(1);
  for (let n = 1; n <= 15; n++) pacer.receive(delivery(n));
  pacer.flush();
  assert.equal(log.length, 15);
  assert.equal(pacer.backlog, 0);
  await nextTurn();
  assert.equal(log.length, 15);
});
