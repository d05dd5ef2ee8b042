/**
 * The primary's relay between workers (SPEC §6, workers without Redis), driven directly;
 * test/cli/workers.test.ts runs it for real between worker processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterRelay, type PrimaryMessage } from '../../src/broker/cluster.js';

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

const join = (id: number, channel: string, connectionId: string, userId: string | null = null) => ({ sb: 'join', id, channel, connectionId, userId });
const publish = (id: number, channel: string, recipients: string[] | null = null) => ({ sb: 'publish', id, channel, recipients, frame: `{"n":${id}}` });
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
  assert.deepEqual(deliveries(inbox.get(2)), [{ sb: 'deliver', channel: 'room', recipients: null, frame: '{"n":2}' }]);
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
