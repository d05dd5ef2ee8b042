/**
 * The primary's relay between workers (SPEC §6, workers without Redis), driven directly;
 * test/cli/workers.test.ts runs it for real between worker processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterRelay } from '../../src/broker/cluster/cluster-relay.js';
import type { PrimaryMessage } from '../../src/broker/cluster/messages.js';
import { eventually } from '../helpers/client.js';

function relayWithInboxes(): { relay: ClusterRelay; inbox: Map<number, PrimaryMessage[]>; gone: Set<number> } {
  const inbox = new Map<number, PrimaryMessage[]>();
  const gone = new Set<number>();
  const relay = new ClusterRelay((worker, message) => {
    if (gone.has(worker)) return false;
    const list = inbox.get(worker) ?? [];
    list.push(message);
    inbox.set(worker, list);
    return true;
  });
  return { relay, inbox, gone };
}

const join = (id: number, channel: string, connectionId: string, userId: string | number | null = null) => ({ sb: 'join', id, channel, connectionId, userId });
const frame = (id: number): Buffer => Buffer.from(`{"n":${id}}`);
const publish = (id: number, channel: string, recipients: string[] | null = null, exclude: string | null = null) => ({ sb: 'publish', id, channel, recipients, exclude, frame: frame(id) });
const deliveries = (messages: PrimaryMessage[] | undefined) => (messages ?? []).filter((message) => message.sb === 'deliver');
const replies = (messages: PrimaryMessage[] | undefined) => (messages ?? []).filter((message) => message.sb === 'reply');

test('a join is answered, so the worker can acknowledge the subscribe', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(7, 'room', 'a-1'));
  assert.deepEqual(inbox.get(1), [{ sb: 'reply', id: 7, count: 0 }]);
});

test('a message goes once to every other worker with subscribers on the channel, never back to its origin', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1'));
  relay.handle(2, join(1, 'room', 'b-1'));
  relay.handle(2, join(2, 'room', 'b-2'));
  relay.handle(3, join(1, 'other', 'c-1'));
  relay.handle(1, publish(2, 'room'));
  assert.equal(deliveries(inbox.get(1)).length, 0);
  assert.deepEqual(deliveries(inbox.get(2)), [{ sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: frame(2), position: null }]);
  assert.equal(deliveries(inbox.get(3)).length, 0);
  assert.deepEqual(replies(inbox.get(1)).at(-1), { sb: 'reply', id: 2, count: 3 });
});

test('recipients_count counts the listed users\' connections on every worker, and no anonymous one', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1', '7'));
  relay.handle(2, join(1, 'room', 'b-1', '7'));
  relay.handle(2, join(2, 'room', 'b-2', '8'));
  relay.handle(3, join(1, 'room', 'c-1', null));
  relay.handle(3, publish(2, 'room', ['7', '9']));
  assert.deepEqual(replies(inbox.get(3)).at(-1), { sb: 'reply', id: 2, count: 2 });
});

test('members keep the type of their user id (42 and "42" apart), while recipients match both as the string "42"', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1', 42));
  relay.handle(2, join(1, 'room', 'b-1', '42'));
  relay.handle(2, join(2, 'room', 'b-2', null));
  relay.handle(1, { sb: 'query', id: 2, query: 'members', channel: 'room' });
  assert.deepEqual(inbox.get(1)?.at(-1), {
    sb: 'answer',
    id: 2,
    data: [
      { connectionId: 'a-1', userId: 42, node: 'a' },
      { connectionId: 'b-1', userId: '42', node: 'b' },
      { connectionId: 'b-2', userId: null, node: 'b' },
    ],
  });
  relay.handle(1, publish(3, 'room', ['42']));
  assert.deepEqual(replies(inbox.get(1)).at(-1), { sb: 'reply', id: 3, count: 2 });
  // A user id that is neither a string nor a finite number is not a join.
  assert.equal(relay.handle(1, join(4, 'room', 'a-2', Number.NaN)), false);
});

test('joining twice counts once; a user id change replaces the old one', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1', null));
  relay.handle(1, join(2, 'room', 'a-1', '5'));
  assert.equal(relay.memberCount('room'), 1);
  relay.handle(2, publish(1, 'room', ['5']));
  assert.deepEqual(replies(inbox.get(2)).at(-1), { sb: 'reply', id: 1, count: 1 });
});

test('a leave stops delivery to a worker whose last subscriber left', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1'));
  relay.handle(2, join(1, 'room', 'b-1'));
  relay.handle(2, { sb: 'leave', channel: 'room', connectionId: 'b-1' });
  relay.handle(1, publish(2, 'room'));
  assert.equal(deliveries(inbox.get(2)).length, 0);
  assert.equal(relay.memberCount('room'), 1);
});

test('a worker that exits takes its memberships with it', () => {
  const { relay, inbox, gone } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1'));
  relay.handle(2, join(1, 'room', 'b-1'));
  relay.handle(2, join(2, 'room', 'b-2'));
  gone.add(2);
  relay.removeWorker(2);
  relay.handle(1, publish(2, 'room'));
  assert.deepEqual(replies(inbox.get(1)).at(-1), { sb: 'reply', id: 2, count: 1 });
  assert.equal(relay.memberCount('room'), 1);
});

test('messages that are not the relay\'s are ignored', () => {
  const { relay, inbox } = relayWithInboxes();
  for (const message of [null, 'text', 42, { cmd: 'NODE_CLUSTER' }, { type: 'ready' }]) relay.handle(1, message);
  assert.equal(inbox.size, 0);
});

test('the other IPC messages of Switchboard, and relay messages of the wrong shape, are not the relay\'s: nothing is sent or joined', () => {
  const { relay, inbox } = relayWithInboxes();
  const others = [
    { sb: 'metrics-request', id: 1 },
    { sb: 'metrics-part', ask: 1, part: [] },
    { sb: 'start-failed', exitCode: 1, reason: 'port in use' },
    { sb: 'deliver', channel: 'room', recipients: null, exclude: null, frame: frame(1), position: null },
    // A frame as a JSON string: workers send Buffers (serialization: 'advanced').
    { sb: 'publish', id: 1, channel: 'room', recipients: null, exclude: null, frame: '{"n":1}' },
    // Without its exclude, or with one that is not a connection id.
    { sb: 'publish', id: 1, channel: 'room', recipients: null, frame: frame(1) },
    { sb: 'publish', id: 1, channel: 'room', recipients: null, exclude: 7, frame: frame(1) },
    { sb: 'join', channel: 'room', connectionId: 'a-1', userId: null },
    { sb: 'join', id: 1, channel: 'room', connectionId: 7, userId: null },
    { sb: 'query', id: 1, query: 'members' },
    { sb: 'query', id: 1, query: 'disconnect', target: { userId: 'a', connectionId: 'b' } },
  ];
  for (const message of others) assert.equal(relay.handle(1, message), false, JSON.stringify(message));
  assert.equal(inbox.size, 0);
  assert.equal(relay.memberCount('room'), 0);
});

/** Workers that answer the relay's questions at once: a report, or how many connections they closed. */
function answeringWorkers(relay: ClusterRelay, inbox: Map<number, PrimaryMessage[]>, workers: Map<number, { nodeId: string; closes: number }>): void {
  for (const [worker, { nodeId }] of workers) relay.handle(worker, { sb: 'hello', nodeId });
  const answered = new Set<PrimaryMessage>();
  const answerAll = (): void => {
    for (const [worker, messages] of inbox) {
      const self = workers.get(worker);
      for (const message of messages) {
        if (message.sb !== 'ask' || answered.has(message) || self === undefined) continue;
        answered.add(message);
        relay.handle(worker, { sb: 'part', ask: message.ask, part: message.query === 'report' ? { id: self.nodeId } : self.closes });
      }
    }
  };
  const original = relay.handle.bind(relay);
  relay.handle = (worker, message) => {
    const handled = original(worker, message);
    answerAll();
    return handled;
  };
}

const answers = (messages: PrimaryMessage[] | undefined) => (messages ?? []).filter((message) => message.sb === 'answer');

test('a worker\'s nodes query is answered with every worker\'s report, its own included', async () => {
  const { relay, inbox } = relayWithInboxes();
  answeringWorkers(
    relay,
    inbox,
    new Map([
      [1, { nodeId: 'nodeAAAA', closes: 0 }],
      [2, { nodeId: 'nodeBBBB', closes: 0 }],
    ]),
  );
  relay.handle(1, { sb: 'query', id: 5, query: 'nodes' });
  await eventually(() => answers(inbox.get(1)).length === 1);
  const answer = answers(inbox.get(1))[0] as Extract<PrimaryMessage, { sb: 'answer' }>;
  assert.equal(answer.id, 5);
  assert.deepEqual((answer.data as Array<{ id: string }>).map((report) => report.id).sort(), ['nodeAAAA', 'nodeBBBB']);
});

test('a disconnect asks every other worker, sums their counts, and names a worker that went away or cannot be reached by its node id', async () => {
  const { relay, inbox, gone } = relayWithInboxes();
  const workers = new Map([
    [1, { nodeId: 'nodeAAAA', closes: 0 }],
    [2, { nodeId: 'nodeBBBB', closes: 2 }],
    [3, { nodeId: 'nodeCCCC', closes: 0 }],
    [4, { nodeId: 'nodeDDDD', closes: 0 }],
  ]);
  for (const [worker, { nodeId }] of workers) relay.handle(worker, { sb: 'hello', nodeId });
  gone.add(4);
  relay.handle(1, { sb: 'query', id: 9, query: 'disconnect', target: { userId: 'alice' } });
  const asked = (worker: number) => (inbox.get(worker) ?? []).filter((message) => message.sb === 'ask');
  assert.equal(asked(1).length, 0, 'the asking worker closed its own already');
  const ask = asked(2)[0] as Extract<PrimaryMessage, { sb: 'ask' }>;
  assert.deepEqual(ask, { sb: 'ask', ask: ask.ask, query: 'disconnect', target: { userId: 'alice' } });
  relay.handle(2, { sb: 'part', ask: ask.ask, part: 2 });
  // Worker 3 exits before it answers.
  relay.removeWorker(3);
  await eventually(() => answers(inbox.get(1)).length === 1);
  assert.deepEqual(answers(inbox.get(1))[0], { sb: 'answer', id: 9, data: { disconnected: 2, unanswered: ['nodeCCCC', 'nodeDDDD'] } });
});

test('a publish carries its exclude to the other workers, and the excluded connection is not counted', () => {
  const { relay, inbox } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1', '7'));
  relay.handle(2, join(1, 'room', 'b-1', '7'));
  relay.handle(2, join(2, 'room', 'b-2', '8'));
  relay.handle(1, publish(2, 'room', null, 'a-1'));
  assert.deepEqual(deliveries(inbox.get(2)), [{ sb: 'deliver', channel: 'room', recipients: null, exclude: 'a-1', frame: frame(2), position: null }]);
  assert.deepEqual(replies(inbox.get(1)).at(-1), { sb: 'reply', id: 2, count: 2 });
  relay.handle(1, publish(3, 'room', ['7'], 'b-1'));
  assert.deepEqual(replies(inbox.get(1)).at(-1), { sb: 'reply', id: 3, count: 1 });
});

test('a worker that exits: each other worker with members in one of its channels is told who left that channel, and no one else', () => {
  const { relay, inbox, gone } = relayWithInboxes();
  relay.handle(1, join(1, 'room', 'a-1', 42));
  relay.handle(1, join(2, 'room', 'a-2', null));
  relay.handle(1, join(3, 'other', 'a-3', 'x'));
  relay.handle(1, join(4, 'alone', 'a-1', 42));
  relay.handle(2, join(1, 'room', 'b-1'));
  relay.handle(3, join(1, 'other', 'c-1'));
  relay.handle(4, join(1, 'lobby', 'd-1'));
  inbox.clear();
  gone.add(1);
  relay.removeWorker(1);
  assert.deepEqual(inbox.get(2), [
    {
      sb: 'gone',
      channel: 'room',
      members: [
        { connectionId: 'a-1', userId: 42 },
        { connectionId: 'a-2', userId: null },
      ],
    },
  ]);
  assert.deepEqual(inbox.get(3), [{ sb: 'gone', channel: 'other', members: [{ connectionId: 'a-3', userId: 'x' }] }]);
  assert.equal(inbox.get(4), undefined, 'a worker without members in its channels hears nothing');
  assert.equal(relay.memberCount('alone'), 0);
  // A second exit of the same worker says nothing more.
  relay.removeWorker(1);
  assert.equal(inbox.get(2)?.length, 1);
});
