/**
 * The resync's last step sends the messages held over an outage (fanout.ts). A shard may
 * still refuse them (CLUSTERDOWN) while the others are back: each refused one is held
 * again, in order, ahead of anything published after it, and reported as an outage, so
 * that the next resync sends it. Were the refusal dropped, those messages would be lost
 * without a count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Publication } from '../../src/broker/broker.js';
import type { RedisConnections } from '../../src/broker/redis/connections.js';
import { Fanout } from '../../src/broker/redis/fanout.js';
import { RedisKeys } from '../../src/broker/redis/redis-keys.js';
import { silentLogger } from '../transport/socket-pair.js';

/** A Fanout whose Redis answers each publish with `answer(payload)`; records what it was sent. */
function fanoutWith(answer: () => Promise<number>): { fanout: Fanout; sent: string[]; outages: string[] } {
  const sent: string[] = [];
  const outages: string[] = [];
  const connections = {
    commands: {
      switchboardPublish: (_members: string, _users: string, _messages: string, payload: Buffer): Promise<number> => {
        sent.push(payload.toString().split('\n').at(-1) ?? '');
        return answer();
      },
    },
  } as unknown as RedisConnections;
  const fanout = new Fanout(connections, new RedisKeys('sb'), 'nodeA', silentLogger, { messages: 100, bytes: 1 << 20 }, (problem) => outages.push(problem));
  return { fanout, sent, outages };
}

const publication = (n: number): Publication => ({ channel: 'room', recipients: null, exclude: null, frame: `{"n":${n}}`, history: null });

test('held messages that Redis refuses during the resync are held again, in order, and sent by the next one', async () => {
  let refusing = true;
  const { fanout, sent, outages } = fanoutWith(() => (refusing ? Promise.reject(new Error('CLUSTERDOWN The cluster is down')) : Promise.resolve(1)));
  for (const n of [1, 2, 3]) assert.equal(await fanout.publish(publication(n), 1), 1, 'held while Redis is away: the local count');
  assert.equal(fanout.held, 3);

  assert.deepEqual(await fanout.flush(), { sent: 0, dropped: 0 });
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

test('a held message whose fate is unknown (a timeout) is not sent again: it may have run', async () => {
  const { fanout, outages } = fanoutWith(() => Promise.reject(new Error('Command timed out')));
  await fanout.publish(publication(1), 1);
  assert.deepEqual(await fanout.flush(), { sent: 1, dropped: 0 });
  assert.equal(fanout.held, 0);
  assert.deepEqual(outages, []);
});
