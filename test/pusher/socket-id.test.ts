/** socket_id <-> connection id: every node computes either from the other, so the HTTP API can exclude a socket on any node. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionIds, newNodeId } from '../../src/ids.js';
import { connectionIdOf, socketIdOf } from '../../src/pusher/socket-id.js';

test('a connection id becomes a socket_id of the form \\d+.\\d+, and back', () => {
  for (let node = 0; node < 50; node++) {
    const next = connectionIds(newNodeId());
    for (let i = 0; i < 40; i++) {
      const id = next();
      const socketId = socketIdOf(id);
      assert.ok(socketId !== null);
      assert.match(socketId, /^\d+\.\d+$/);
      assert.equal(connectionIdOf(socketId), id);
    }
  }
});

test('what is not a socket_id of ours names no connection', () => {
  for (const bad of ['', '1', '1.', '.1', 'a.1', '1.a', '1.0', '-1.2', '1.2.3', `${2 ** 48}.1`, '1234567890123456.1', ' 1.2']) {
    assert.equal(connectionIdOf(bad), null, bad);
  }
  assert.equal(socketIdOf('no-dash-here-but-not-base64!'), null);
  assert.equal(socketIdOf('plain'), null);
});
