/**
 * The heartbeat's beat goes out in slices of BEAT_SLICE connections (liveness.ts), so that
 * pinging tens of thousands of connections never holds the event loop in one go; every
 * open connection still gets the JSON ping and the WebSocket ping once a beat, in one write.
 * (limits.test.ts has the heartbeat over real sockets.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Connection } from '../../src/connection/connection.js';
import { BEAT_SLICE, Liveness } from '../../src/connection/liveness.js';
import { OPCODE_PING, type PreparedFrame } from '../../src/transport/prepared-frame.js';
import { eventually } from '../helpers/client.js';

interface FakeConnection {
  isOpen: boolean;
  wire: { heartbeat: boolean };
  unansweredPings: number;
  closeDeadline: null;
  tokenExpiresAt: null;
  lastSeen: number;
  sent: string[];
  sendPrepared(frame: PreparedFrame): void;
}

test('a beat pings every open connection once, a slice of connections per turn, the JSON ping before the WebSocket ping', async (t) => {
  const count = 2 * BEAT_SLICE + BEAT_SLICE / 2;
  /** Pings sent so far, and where each turn of the event loop ended among them. */
  let pings = 0;
  const turnEnds: number[] = [];
  let turnEndPending = false;
  const connections = new Map<string, Connection>();
  const fakes: FakeConnection[] = [];
  for (let index = 0; index < count; index++) {
    const fake: FakeConnection = {
      isOpen: index !== 7,
      wire: { heartbeat: index % 2 === 0 },
      unansweredPings: 0,
      closeDeadline: null,
      tokenExpiresAt: null,
      lastSeen: Date.now(),
      sent: [],
      sendPrepared(frame) {
        if (((frame.wire[0] as number) & 0x0f) !== OPCODE_PING) {
          this.sent.push(frame.payload.toString());
          return;
        }
        this.sent.push('PING');
        pings++;
        if (turnEndPending) return;
        turnEndPending = true;
        setImmediate(() => {
          turnEnds.push(pings);
          turnEndPending = false;
        });
      },
    };
    fakes.push(fake);
    connections.set(`c${index}`, fake as unknown as Connection);
  }
  const liveness = new Liveness(connections, { heartbeatInterval: 0.5, connectionTimeout: 3600 }, () => '{"action":"ping"}');
  liveness.start();
  t.after(() => liveness.stop());

  const open = count - 1;
  // The turn a slice ends in is recorded at the end of that turn: wait for that, not only for the pings.
  await eventually(() => turnEnds.length >= 3, 10_000, 'the first beat');
  assert.deepEqual(turnEnds, [BEAT_SLICE, 2 * BEAT_SLICE, open], 'one slice of the beat per turn');
  for (const [index, fake] of fakes.entries()) {
    const expected = index === 7 ? [] : fake.wire.heartbeat ? ['{"action":"ping"}', 'PING'] : ['PING'];
    assert.deepEqual(fake.sent, expected, `connection ${index}`);
    assert.equal(fake.unansweredPings, index === 7 ? 0 : 1);
  }
  await eventually(() => turnEnds.length >= 6, 10_000, 'the second beat');
  liveness.stop();
  assert.deepEqual(turnEnds.slice(3), [open + BEAT_SLICE, open + 2 * BEAT_SLICE, 2 * open], 'the next beat is sliced the same way');
  assert.ok(fakes.every((fake, index) => index === 7 || fake.sent.filter((sent) => sent === 'PING').length === 2), 'each open connection pinged once a beat');
});
