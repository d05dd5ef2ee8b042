/**
 * Presence with WS_WORKER_NUM=2 and no Redis (SPEC §2, §4, §6; issue 12): the primary
 * knows every worker's members, so the `presence` action asked on either worker lists the
 * members of both; `join`/`leave` events reach the subscribers on the other worker; and
 * when a worker dies (SIGKILL), the subscribers on the other worker hear exactly one
 * `leave` per member it had in their channel, and `presence` no longer lists them.
 *
 * Runs the built CLI (dist/cli/main.js) as real child processes through
 * test/helpers/workers.ts, with WS_PRESENCE=true (presence on every channel). A client's
 * worker is told by its connection id; tests open clients until they have reached the
 * workers they need. An event that must not come is checked after the events that must,
 * and QUIET_MS more.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ClientOptions } from 'ws';
import { mintToken } from '../../src/auth/tokens.js';
import { eventually, type Frame, type TestClient } from '../helpers/client.js';
import { GENEROUS_MS, isAlive, waitUntil } from '../helpers/cli.js';
import {
  QUIET_MS,
  TEST_TIMEOUT_MS,
  childrenOf,
  connect,
  connectAcross,
  connectTo,
  isOpen,
  nodeOf,
  serverEnv,
  startCluster,
  subscribeAll,
  waitForNewWorker,
  workerPids,
  type Cluster,
} from '../helpers/workers.js';

const SECRET = 'presence-workers-secret-of-at-least-32-bytes';
const API_KEY = 'presence-workers-api-key';
const auth = { secret: SECRET, publicKey: null, issuer: null, audience: null };

/** Two workers, no Redis, presence on every channel, tokens signed with SECRET, the HTTP API on. */
function startPresenceCluster(t: TestContext): Promise<Cluster> {
  return startCluster(t, serverEnv({ WS_WORKER_NUM: '2', WS_PRESENCE: 'true', TOKEN_SECRET: SECRET, WS_API_KEY: API_KEY }));
}

/** Client options that authenticate as `userId`. */
async function as(userId: string | number): Promise<ClientOptions> {
  return { headers: { Authorization: `Bearer ${await mintToken(auth, { userId, role: 'user', ttlSeconds: 3600 })}` } };
}

const idOf = (client: TestClient): string => client.welcome.connection_id as string;

type MemberRow = { connection_id: unknown; user_id: unknown };
const byConnection = (a: MemberRow, b: MemberRow): number => String(a.connection_id).localeCompare(String(b.connection_id));
/** The members a client is expected to show as, sorted by connection id. */
const rowsOf = (clients: readonly TestClient[]): MemberRow[] => clients.map((client) => ({ connection_id: idOf(client), user_id: client.welcome.user_id })).sort(byConnection);

/** The `presence` reply for `channel`, asked by `client`; asserts it is one. */
async function presenceOf(client: TestClient, channel: string): Promise<Frame> {
  const reply = await client.request('presence', { channel });
  assert.equal(reply.success, true, `presence ${channel}: ${JSON.stringify(reply)}`);
  assert.equal(reply.channel, channel);
  return reply;
}

/** The members of a presence reply, sorted by connection id. */
const membersIn = (reply: Frame): MemberRow[] => (reply.members as MemberRow[]).map(({ connection_id, user_id }) => ({ connection_id, user_id })).sort(byConnection);

/** The presence events a client received on `channel`, as [action, connection id, user id]. */
const eventsOf = (client: TestClient, channel: string): Array<[unknown, unknown, unknown]> =>
  client
    .received((frame) => (frame.action === 'join' || frame.action === 'leave') && frame.channel === channel)
    .map((frame) => [frame.action, frame.connection_id, frame.user_id]);

/** Waits until `client` has received the event `[action, connection id of about, user id of about]` on `channel`. */
async function waitForEvent(client: TestClient, channel: string, action: 'join' | 'leave', about: TestClient): Promise<void> {
  await eventually(
    () => eventsOf(client, channel).some(([kind, connectionId]) => kind === action && connectionId === idOf(about)),
    GENEROUS_MS,
    `${idOf(client)} to hear ${action} of ${idOf(about)} on ${channel}; events: ${JSON.stringify(eventsOf(client, channel))}`,
  );
}

const event = (action: 'join' | 'leave', about: TestClient): [unknown, unknown, unknown] => [action, idOf(about), about.welcome.user_id];
const quiet = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

test('with 2 workers, presence asked on either worker lists the members of both, with users and connections counts', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'room.lobby';
  const { url } = await startPresenceCluster(t);
  // Alice on both workers, Bob once, one anonymous member; outsiders (not subscribed) on both workers ask.
  const alice = await connectAcross(t, url, 2, await as('alice'));
  const bob = await connect(t, url, await as(42));
  const anonymous = await connect(t, url);
  const outsiders = await connectAcross(t, url, 2, await as('carol'));
  const members = [...alice, bob, anonymous];
  await subscribeAll(members, channel);
  assert.equal(new Set(alice.map(nodeOf)).size, 2, 'alice is on both workers');

  for (const asker of [...outsiders, ...members]) {
    const reply = await presenceOf(asker, channel);
    assert.deepEqual(membersIn(reply), rowsOf(members), `members, asked on worker ${nodeOf(asker)}`);
    assert.equal(reply.users, 2, 'alice and 42');
    assert.equal(reply.connections, members.length);
  }
});

test('with 2 workers, join and leave events reach the subscribers on the other worker, and nobody hears about itself', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'room.events';
  const { url } = await startPresenceCluster(t);
  const first = await connect(t, url, await as('first'));
  const onOther = await connectTo(t, url, (node) => node !== nodeOf(first), await as('second'));
  const sameAsFirst = await connectTo(t, url, (node) => node === nodeOf(first), await as('third'));
  const late = await connectTo(t, url, (node) => node === nodeOf(onOther));

  await subscribeAll([first], channel);
  await subscribeAll([onOther], channel);
  await waitForEvent(first, channel, 'join', onOther);
  // A join on the first worker reaches the other worker, and its own worker.
  await subscribeAll([sameAsFirst], channel);
  await waitForEvent(onOther, channel, 'join', sameAsFirst);
  await waitForEvent(first, channel, 'join', sameAsFirst);
  // Leaves by unsubscribe, both ways.
  assert.equal((await sameAsFirst.request('unsubscribe', { channel })).success, true);
  await waitForEvent(onOther, channel, 'leave', sameAsFirst);
  await waitForEvent(first, channel, 'leave', sameAsFirst);
  assert.equal((await onOther.request('unsubscribe', { channel })).success, true);
  await waitForEvent(first, channel, 'leave', onOther);
  // An anonymous join from the other worker, last: its user id is null.
  await subscribeAll([late], channel);
  await waitForEvent(first, channel, 'join', late);
  await quiet();

  assert.deepEqual(eventsOf(first, channel), [event('join', onOther), event('join', sameAsFirst), event('leave', sameAsFirst), event('leave', onOther), event('join', late)]);
  assert.deepEqual(eventsOf(onOther, channel), [event('join', sameAsFirst), event('leave', sameAsFirst)]);
  assert.deepEqual(eventsOf(sameAsFirst, channel), []);
  assert.deepEqual(eventsOf(late, channel), []);
  assert.equal(event('join', late)[2], null);
  // An event from another worker carries the connection id and user id only.
  const crossed = first.received((frame) => frame.action === 'join' && frame.connection_id === idOf(onOther));
  assert.deepEqual(crossed, [{ action: 'join', channel, connection_id: idOf(onOther), user_id: 'second' }]);
});

test('with 2 workers, a member that disconnects is announced as leaving on both workers and presence stops listing it', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const channel = 'room.disconnect';
  const { url } = await startPresenceCluster(t);
  // Two members on each worker.
  const clients = await connectAcross(t, url, 2, await as('member'), (opened) => new Set(opened.map(nodeOf)).size === 2 && [...new Set(opened.map(nodeOf))].every((node) => opened.filter((client) => nodeOf(client) === node).length >= 2));
  const [nodeA, nodeB] = [...new Set(clients.map(nodeOf))] as [string, string];
  const [a1, a2] = clients.filter((client) => nodeOf(client) === nodeA) as [TestClient, TestClient];
  const [b1, b2] = clients.filter((client) => nodeOf(client) === nodeB) as [TestClient, TestClient];
  const members = [a1, a2, b1, b2];
  await subscribeAll(members, channel);

  b1.close();
  await b1.closed;
  for (const listener of [a1, a2, b2]) await waitForEvent(listener, channel, 'leave', b1);
  for (const asker of [a1, b2]) assert.deepEqual(membersIn(await presenceOf(asker, channel)), rowsOf([a1, a2, b2]), `after b1 left, asked on worker ${nodeOf(asker)}`);

  a1.close();
  await a1.closed;
  for (const listener of [a2, b2]) await waitForEvent(listener, channel, 'leave', a1);
  for (const asker of [a2, b2]) {
    const reply = await presenceOf(asker, channel);
    assert.deepEqual(membersIn(reply), rowsOf([a2, b2]), `after a1 left, asked on worker ${nodeOf(asker)}`);
    assert.equal(reply.users, 1);
    assert.equal(reply.connections, 2);
  }
  await quiet();
  const leaves = (client: TestClient): unknown[] => eventsOf(client, channel).filter(([kind]) => kind === 'leave');
  assert.deepEqual(leaves(a2), [event('leave', b1), event('leave', a1)]);
  assert.deepEqual(leaves(b2), [event('leave', b1), event('leave', a1)]);
});

test('with 2 workers, SIGKILL of one worker: the subscribers on the other hear exactly one leave per member it had in their channel, and presence no longer lists them', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const everyone = 'room.all';
  const side = 'room.side';
  const { cli, url } = await startPresenceCluster(t);
  const workers = childrenOf(cli.pid);
  assert.equal(workers.length, 2);
  // Distinct users, at least three on each worker, and an anonymous one on each.
  const users: TestClient[] = [];
  const enough = (): boolean => {
    const nodes = new Set(users.map(nodeOf));
    return nodes.size === 2 && [...nodes].every((node) => users.filter((client) => nodeOf(client) === node).length >= 3);
  };
  while (!enough()) {
    assert.ok(users.length < 40, `40 clients did not reach both workers three times: ${users.map(nodeOf).join(', ')}`);
    users.push(await connect(t, url, await as(`user${users.length}`)));
  }
  const anonymous = await connectAcross(t, url, 2);
  const clients = [...users, ...anonymous];
  const deadNode = nodeOf(users[0] as TestClient);
  const doomed = clients.filter((client) => nodeOf(client) === deadNode);
  const survivors = clients.filter((client) => nodeOf(client) !== deadNode);
  // Everyone in room.all; in room.side, the doomed worker's members but one, and one survivor.
  const [spared, ...inSide] = doomed as [TestClient, ...TestClient[]];
  const sideWatcher = survivors[0] as TestClient;
  await subscribeAll(clients, everyone);
  await subscribeAll([sideWatcher, ...inSide], side);
  assert.equal((await presenceOf(sideWatcher, everyone)).connections, clients.length);

  const victim = (await workerPids(url, API_KEY)).get(deadNode);
  assert.ok(victim !== undefined && workers.includes(victim), `the pid of worker ${deadNode} is one of the primary's children (${workers.join(', ')}): ${String(victim)}`);
  process.kill(victim, 'SIGKILL');
  await waitUntil(() => !isAlive(victim), GENEROUS_MS, `worker ${victim} to die`);
  await eventually(() => doomed.every((client) => !isOpen(client)), GENEROUS_MS, "the dead worker's clients to be closed");
  assert.ok(survivors.every(isOpen), 'the other worker\'s clients stay connected');

  for (const listener of survivors) for (const gone of doomed) await waitForEvent(listener, everyone, 'leave', gone);
  for (const gone of inSide) await waitForEvent(sideWatcher, side, 'leave', gone);
  await quiet();

  const sorted = (events: Array<[unknown, unknown, unknown]>): string[] => events.map((each) => JSON.stringify(each)).sort();
  for (const listener of survivors) {
    const leaves = eventsOf(listener, everyone).filter(([kind]) => kind === 'leave');
    assert.deepEqual(sorted(leaves), sorted(doomed.map((gone) => event('leave', gone))), `leaves on ${everyone} heard by ${idOf(listener)}: one per member of the dead worker`);
  }
  assert.deepEqual(
    sorted(eventsOf(sideWatcher, side).filter(([kind]) => kind === 'leave')),
    sorted(inSide.map((gone) => event('leave', gone))),
    `${side}: a leave for its members of the dead worker only (not ${idOf(spared)}, which was not in it)`,
  );

  for (const asker of survivors) {
    const reply = await presenceOf(asker, everyone);
    assert.deepEqual(membersIn(reply), rowsOf(survivors), `presence of ${everyone} asked on the surviving worker`);
    assert.equal(reply.connections, survivors.length);
  }
  assert.deepEqual(membersIn(await presenceOf(sideWatcher, side)), rowsOf([sideWatcher]));

  // The replacement worker answers the same, and its newcomers' events reach the survivors.
  await waitForNewWorker(cli, workers);
  const newcomer = await connectTo(t, url, (node) => node !== deadNode && node !== nodeOf(sideWatcher), await as('newcomer'));
  assert.deepEqual(membersIn(await presenceOf(newcomer, everyone)), rowsOf(survivors), `presence of ${everyone} asked on the new worker`);
  await subscribeAll([newcomer], everyone);
  for (const listener of survivors) await waitForEvent(listener, everyone, 'join', newcomer);
  assert.equal((await presenceOf(sideWatcher, everyone)).connections, survivors.length + 1);
});
