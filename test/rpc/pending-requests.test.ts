/**
 * The request/reply helper every cross-process request goes through (the worker's
 * requests to the primary, the primary's questions to every worker, /metrics across
 * workers, disconnects across Redis nodes). Timeouts are short; nothing here depends on
 * how long a step takes, only on the order of events.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterErrorCode, ClusterUnavailableError, RequestTimeoutError } from '../../src/errors.js';
import { PendingRequests, type RequestId } from '../../src/rpc/pending-requests.js';

const LONG_MS = 60_000;
const SHORT_MS = 20;

test('a request resolves with its answer, matched by id, and leaves nothing pending', async () => {
  const requests = new PendingRequests<string>('a test request', LONG_MS);
  const sent: RequestId[] = [];
  const first = requests.request((id) => sent.push(id) > 0);
  const second = requests.request((id) => sent.push(id) > 0);
  assert.equal(sent.length, 2);
  assert.notEqual(sent[0], sent[1]);
  assert.equal(requests.answer(sent[1] as RequestId, 'two'), true);
  assert.equal(requests.answer(sent[0] as RequestId, 'one'), true);
  assert.deepEqual(await Promise.all([first, second]), ['one', 'two']);
  assert.equal(requests.size, 0);
});

test('an answer nobody waits for (unknown id, or a second one) is refused', async () => {
  const requests = new PendingRequests<number>('a test request', LONG_MS);
  let sentId = 0;
  const pending = requests.request((id) => {
    sentId = id;
    return true;
  });
  assert.equal(requests.answer(sentId + 1000, 1), false);
  assert.equal(requests.answer(sentId, 2), true);
  assert.equal(requests.answer(sentId, 3), false);
  assert.equal(await pending, 2);
});

test('a request without an answer rejects with RequestTimeoutError, a ClusterUnavailableError, and a late answer is refused', async () => {
  const requests = new PendingRequests<number>('a test request', SHORT_MS);
  let sentId = 0;
  const error = await requests
    .request((id) => {
      sentId = id;
      return true;
    })
    .then(
      () => null,
      (reason: unknown) => reason,
    );
  assert.ok(error instanceof RequestTimeoutError);
  assert.ok(error instanceof ClusterUnavailableError);
  assert.equal(error.code, ClusterErrorCode.REQUEST_TIMEOUT);
  assert.match(error.message, /a test request/);
  assert.equal(requests.answer(sentId, 1), false);
  assert.equal(requests.size, 0);
});

test('a request that cannot be sent (false, or a throw) rejects at once with ClusterUnavailableError, not a timeout', async () => {
  const requests = new PendingRequests<number>('a test request', LONG_MS);
  const refused = await requests.request(() => false).catch((reason: unknown) => reason);
  assert.ok(refused instanceof ClusterUnavailableError);
  assert.equal(refused.code, ClusterErrorCode.CLUSTER_UNAVAILABLE);
  const cause = new Error('EPIPE');
  const thrown = await requests
    .request(() => {
      throw cause;
    })
    .catch((reason: unknown) => reason);
  assert.ok(thrown instanceof ClusterUnavailableError);
  assert.equal(thrown.cause, cause);
  assert.equal(requests.size, 0);
});

test('a request to a peer that goes away rejects; requests to other peers go on', async () => {
  const requests = new PendingRequests<string, number>('a test request', LONG_MS);
  const ids = new Map<number, RequestId>();
  const toOne = requests.request((id) => ids.set(1, id) !== undefined, { peer: 1 });
  const toTwo = requests.request((id) => ids.set(2, id) !== undefined, { peer: 2 });
  requests.peerGone(1);
  const error = await toOne.catch((reason: unknown) => reason);
  assert.ok(error instanceof ClusterUnavailableError);
  assert.ok(!(error instanceof RequestTimeoutError));
  assert.equal(requests.answer(ids.get(2) as RequestId, 'from two', 2), true);
  assert.equal(await toTwo, 'from two');
});

test('a gather resolves with every answer once all the peers asked have answered, and ignores peers not asked and duplicates', async () => {
  const requests = new PendingRequests<number, string>('a test question', LONG_MS);
  const sends: Array<[RequestId, string]> = [];
  const gathered = requests.gather(['a', 'b', 'c'], (id, peer) => sends.push([id, peer]) > 0);
  assert.deepEqual(
    sends.map(([, peer]) => peer),
    ['a', 'b', 'c'],
  );
  const id = (sends[0] as [RequestId, string])[0];
  assert.ok(sends.every(([each]) => each === id), 'one id for the whole gather');
  assert.equal(requests.answer(id, 1, 'b'), true);
  assert.equal(requests.answer(id, 9, 'b'), false, 'a second answer from the same peer');
  assert.equal(requests.answer(id, 9, 'z'), false, 'a peer not asked');
  assert.equal(requests.answer(id, 9), false, 'an answer without its peer');
  assert.equal(requests.answer(id, 2, 'a'), true);
  assert.equal(requests.answer(id, 3, 'c'), true);
  const { answers, unanswered } = await gathered;
  assert.deepEqual(answers, [
    { peer: 'b', answer: 1 },
    { peer: 'a', answer: 2 },
    { peer: 'c', answer: 3 },
  ]);
  assert.deepEqual(unanswered, []);
  assert.equal(requests.size, 0);
});

test('a gather that times out resolves with the answers that came, and names the peers that did not answer', async () => {
  const requests = new PendingRequests<number, string>('a test question', SHORT_MS);
  let gatherId = 0;
  const gathered = requests.gather(['a', 'b', 'c'], (id) => {
    gatherId = id;
    return true;
  });
  requests.answer(gatherId, 7, 'b');
  assert.deepEqual(await gathered, { answers: [{ peer: 'b', answer: 7 }], unanswered: ['a', 'c'] });
  assert.equal(requests.answer(gatherId, 8, 'a'), false, 'too late');
});

test('a gather stops waiting for a peer that goes away or cannot be reached, and counts it as unanswered', async () => {
  const requests = new PendingRequests<number, number>('a test question', LONG_MS);
  let gatherId = 0;
  const gathered = requests.gather([1, 2, 3, 4], (id, worker) => {
    gatherId = id;
    return worker !== 4;
  });
  requests.answer(gatherId, 10, 1);
  requests.peerGone(2);
  requests.answer(gatherId, 30, 3);
  assert.deepEqual(await gathered, {
    answers: [
      { peer: 1, answer: 10 },
      { peer: 3, answer: 30 },
    ],
    unanswered: [2, 4],
  });
});

test('a gather of nobody, or of peers none of which can be reached, resolves at once', async () => {
  const requests = new PendingRequests<number, number>('a test question', LONG_MS);
  assert.deepEqual(await requests.gather([], () => true), { answers: [], unanswered: [] });
  assert.deepEqual(await requests.gather([1, 2], () => false), { answers: [], unanswered: [1, 2] });
  assert.equal(requests.size, 0);
});

test('an answer that arrives while the gather is still sending counts', async () => {
  const requests = new PendingRequests<string, number>('a test question', LONG_MS);
  const gathered = requests.gather([1, 2], (id, worker) => requests.answer(id, `from ${worker}`, worker));
  assert.deepEqual(await gathered, {
    answers: [
      { peer: 1, answer: 'from 1' },
      { peer: 2, answer: 'from 2' },
    ],
    unanswered: [],
  });
});

test('cancel() gives up one request: a single one rejects, a gather resolves with what came', async () => {
  const requests = new PendingRequests<number, string>('a test request', LONG_MS);
  let singleId = 0;
  const single = requests.request((id) => {
    singleId = id;
    return true;
  });
  let gatherId = 0;
  const gathered = requests.gather(['a', 'b'], (id) => {
    gatherId = id;
    return true;
  });
  requests.answer(gatherId, 1, 'a');
  requests.cancel(singleId);
  requests.cancel(gatherId);
  assert.ok((await single.catch((reason: unknown) => reason)) instanceof ClusterUnavailableError);
  assert.deepEqual(await gathered, { answers: [{ peer: 'a', answer: 1 }], unanswered: ['b'] });
});

test('close() settles everything: requests reject, gathers resolve with what came, and later ones fail at once', async () => {
  const requests = new PendingRequests<number, string>('a test request', LONG_MS);
  const single = requests.request(() => true);
  let gatherId = 0;
  const gathered = requests.gather(['a', 'b'], (id) => {
    gatherId = id;
    return true;
  });
  requests.answer(gatherId, 5, 'b');
  requests.close();
  const error = await single.catch((reason: unknown) => reason);
  assert.ok(error instanceof ClusterUnavailableError);
  assert.deepEqual(await gathered, { answers: [{ peer: 'b', answer: 5 }], unanswered: ['a'] });
  assert.equal(requests.size, 0);
  let sent = false;
  const after = await requests
    .request(() => {
      sent = true;
      return true;
    })
    .catch((reason: unknown) => reason);
  assert.ok(after instanceof ClusterUnavailableError);
  assert.equal(sent, false, 'nothing is sent after close()');
  assert.deepEqual(await requests.gather(['a'], () => true), { answers: [], unanswered: ['a'] });
});
