/**
 * The resync's last step sends the messages held over an outage (fanout.ts). A shard may
 * still refuse them (CLUSTERDOWN) while the others are back: each refused one is held
 * again, in order, ahead of anything published after it, and reported as an outage, so
 * that the next resync sends it; the flush fails, so the resync does not make the node
 * ready while it still holds messages, and the resync that sends them reports them all.
 * Were the refusal dropped, those messages would be lost without a count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Publication } from '../../src/broker/broker.js';
import type { RedisConnections } from '../../src/broker/redis/connections.js';
import { Fanout } from '../../src/broker/redis/fanout.js';
import { RedisKeys } from '../../src/broker/redis/redis-keys.js';
import { SyncState } from '../../src/broker/redis/sync-state.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { silentLogger } from '../transport/socket-pair.js';

/** A Fanout whose Redis answers each publish with `answer(payload)`; records what it was sent. */
function fanoutWith(answer: (membersKey: string) => Promise<number>, onOutage?: (problem: string) => void): { fanout: Fanout; sent: string[]; outages: string[] } {
  const sent: string[] = [];
  const outages: string[] = [];
  const connections = {
    commands: {
      switchboardPublish: (members: string, _users: string, _messages: string, payload: Buffer): Promise<number> => {
        sent.push(payload.toString().split('\n').at(-1) ?? '');
        return answer(members);
      },
    },
  } as unknown as RedisConnections;
  const fanout = new Fanout(connections, new RedisKeys('sb'), 'nodeA', silentLogger, { messages: 100, bytes: 1 << 20 }, (problem) => {
    outages.push(problem);
    onOutage?.(problem);
  });
  return { fanout, sent, outages };
}

const publication = (n: number, channel = 'room'): Publication => ({ channel, recipients: null, exclude: null, frame: `{"n":${n}}`, history: null });

test('held messages that Redis refuses during the resync are held again, in order, and sent by the next one', async () => {
  let refusing = true;
  const { fanout, sent, outages } = fanoutWith(() => (refusing ? Promise.reject(new Error('CLUSTERDOWN The cluster is down')) : Promise.resolve(1)));
  for (const n of [1, 2, 3]) assert.equal(await fanout.publish(publication(n), 1), 1, 'held while Redis is away: the local count');
  assert.equal(fanout.held, 3);

  await assert.rejects(fanout.flush(), /^Error: Redis refused 3 of 3 held messages \(CLUSTERDOWN The cluster is down\)/, 'the resync does not count: the node is not ready while it holds messages');
  assert.equal(fanout.held, 3, 'every refused message is held again');
  assert.equal(outages.length, 3, 'and the outage goes on');
  assert.ok(outages.every((problem) => problem.startsWith('CLUSTERDOWN')));

  refusing = false;
  sent.length = 0;
  assert.equal(await fanout.publish(publication(4), 1), 1, 'a message published after the refusals is held behind them');
  assert.deepEqual(sent, [], 'not sent ahead of them');
  assert.deepEqual(await fanout.flush(), { sent: 4, dropped: 0 });
  assert.equal(fanout.held, 0);
  assert.deepEqual(sent, ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}'], 'in publish order');
});

test('a flush that Redis refused part of: the next one reports every message sent over the outage', async () => {
  // The shard of channel 'moving' refuses (its slot is being migrated); the others run.
  let moving = true;
  const { fanout, sent } = fanoutWith((membersKey) => (moving && membersKey.includes('moving') ? Promise.reject(new Error('TRYAGAIN Multiple keys request during rehashing of slot')) : Promise.resolve(1)));
  await fanout.publish(publication(1), 1);
  await fanout.publish(publication(2, 'moving'), 1);
  await fanout.publish(publication(3), 1);
  await assert.rejects(fanout.flush(), /refused 1 of 3 held messages \(TRYAGAIN/);
  assert.equal(fanout.held, 1, 'only the refused one is held again');
  moving = false;
  assert.deepEqual(await fanout.flush(), { sent: 3, dropped: 0 }, 'two sent by the first flush, one by the second');
  assert.deepEqual(sent, ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":2}']);
  assert.deepEqual(await fanout.flush(), { sent: 0, dropped: 0 }, 'the count starts again with the next outage');
});

test('a node whose held messages Redis still refuses is not ready, and not logged back, until a resync sends them; that one says how many', async () => {
  let refusing = false;
  const { fanout } = fanoutWith(
    () => (refusing ? Promise.reject(new Error('CLUSTERDOWN The cluster is down')) : Promise.resolve(1)),
    (problem) => state.outage(problem),
  );
  // Both connections up all along: only the refusals say Redis is out of reach.
  let onReady = (): void => undefined;
  const connections = {
    where: 'a test Redis',
    listen: (events: { ready: () => void }) => (onReady = events.ready),
    connect: () => Promise.resolve(),
    allReady: () => true,
  } as unknown as RedisConnections;
  const { logger, lines } = memoryLogger();
  let resyncs = 0;
  const state: SyncState = new SyncState(connections, 'nodeA', logger, {
    resync: async () => {
      resyncs++;
      const { sent, dropped } = await fanout.flush();
      return { channels: 1, members: 0, sent, dropped, failures: 0 };
    },
    lost: () => fanout.hold(),
    ready: () => undefined,
  });
  const started = state.start();
  onReady();
  await started;
  assert.equal(state.notReadyReason(), null);
  const resynced = async (count: number): Promise<void> => {
    for (let turns = 0; resyncs < count && turns < 1000; turns++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(resyncs, count, 'the resync ran');
    await new Promise((resolve) => setImmediate(resolve));
  };

  refusing = true;
  await fanout.publish(publication(1), 1);
  assert.match(String(state.notReadyReason()), /CLUSTERDOWN/, 'a refused publish is an outage');
  await fanout.publish(publication(2), 1);
  state.sync();
  await resynced(2);
  assert.match(String(state.notReadyReason()), /Redis refused 2 of 2 held messages \(CLUSTERDOWN/, 'still not ready: the held messages were refused again');
  assert.equal(lines.filter((line) => String(line.msg).startsWith('Redis is back')).length, 0, 'not logged back');

  refusing = false;
  state.sync();
  await resynced(3);
  state.beginClose();
  assert.equal(state.notReadyReason(), null, 'ready once they are sent');
  const back = lines.filter((line) => String(line.msg).startsWith('Redis is back'));
  assert.equal(back.length, 1);
  assert.equal(back[0]?.sent, 2, 'the resync that sent them counts them');
});

test('a held message whose fate is unknown (a timeout) is not sent again: it may have run', async () => {
  const { fanout, outages } = fanoutWith(() => Promise.reject(new Error('Command timed out')));
  await fanout.publish(publication(1), 1);
  assert.deepEqual(await fanout.flush(), { sent: 1, dropped: 0 });
  assert.equal(fanout.held, 0);
  assert.deepEqual(outages, []);
});
