/**
 * A resuming subscribe (hub/recovery.ts) with a connection and a store the test controls:
 * the replay comes first, then the live frames held meanwhile, without any kept message
 * (or notice of lost history) that the ack's position already covers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Connection, HeldFrame } from '../../src/connection/connection.js';
import type { HistoryPage, HistoryQuery, StreamPosition } from '../../src/history/history.js';
import { ChannelPositions } from '../../src/hub/positions.js';
import { Recovery } from '../../src/hub/recovery.js';
import { PreparedFrame } from '../../src/transport/prepared-frame.js';

const CHANNEL = 'chat.1';

/** The parts of a Connection a recovery uses: what it holds, and what it sends. */
function fakeConnection() {
  const held: HeldFrame[] = [];
  const sent: string[] = [];
  const connection = {
    heldCount: () => held.length,
    release: () => held.splice(0),
    sendPrepared: (frame: PreparedFrame) => sent.push(frame.payload.toString()),
  };
  const hold = (text: string, position: StreamPosition | null): void => {
    held.push({ position, frame: new PreparedFrame(text) });
  };
  return { connection: connection as unknown as Connection, hold, sent };
}

test('held frames with a position from before the ack are dropped; the replay, then the rest, follow in order', async () => {
  const { connection, hold, sent } = fakeConnection();
  const messages = new Map([98, 99, 100].map((offset) => [offset, `m${offset}`]));
  const read = (_channel: string, query: HistoryQuery): Promise<HistoryPage> => {
    if (query.limit > 0) {
      // While the replay is read, live frames keep coming: they follow the ack.
      hold('m101', { epoch: 'E1', offset: 101 });
      hold('presence after', null);
    }
    const after = [...messages.keys()].filter((offset) => (query.since === null || offset > query.since) && (query.until === null || offset <= query.until));
    return Promise.resolve({ epoch: 'E1', offset: 100, messages: after.slice(0, query.limit).map((offset) => ({ offset, frame: messages.get(offset) as string })) });
  };
  const positions = new ChannelPositions({ read, fanOut: () => 1, lost: () => undefined, logger: pino({ level: 'silent' }) });
  positions.open(CHANNEL);
  // Held before the node's position is taken: a kept message it covers, one of an older
  // epoch, a notice of lost history, and a presence event.
  hold('m100', { epoch: 'E1', offset: 100 });
  hold('m7 of E0', { epoch: 'E0', offset: 7 });
  hold('position E1 0', { epoch: 'E1', offset: 0 });
  hold('presence before', null);
  const joined = await new Recovery({ positions, read, recoveryMax: 10 }).recover(connection, CHANNEL, { since: 98, epoch: 'E1' });
  assert.deepEqual(joined.position, { epoch: 'E1', offset: 100 });
  assert.equal(joined.recovered, true);
  joined.release();
  assert.deepEqual(sent, ['m99', 'm100', 'presence before', 'm101', 'presence after']);
});

test('not recovered: nothing replayed, and only what follows the ack\'s position is sent', async () => {
  const { connection, hold, sent } = fakeConnection();
  const read = (): Promise<HistoryPage> => Promise.resolve({ epoch: 'E2', offset: 3, messages: [] });
  const positions = new ChannelPositions({ read, fanOut: () => 1, lost: () => undefined, logger: pino({ level: 'silent' }) });
  positions.open(CHANNEL);
  hold('m3 of E2', { epoch: 'E2', offset: 3 });
  const joined = await new Recovery({ positions, read, recoveryMax: 10 }).recover(connection, CHANNEL, { since: 40, epoch: 'E1' });
  assert.deepEqual([joined.position, joined.recovered], [{ epoch: 'E2', offset: 3 }, false]);
  hold('m4 of E2', { epoch: 'E2', offset: 4 });
  joined.release();
  assert.deepEqual(sent, ['m4 of E2']);
});
