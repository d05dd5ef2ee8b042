/**
 * Frames queued in the turn in which `ws` closes the socket itself (answering the peer's
 * close frame, or 1009 after an oversized frame) go out before its close frame.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { FlushScheduler } from '../../src/transport/flush-scheduler.js';
import { FrameBatch } from '../../src/transport/frame-batch.js';
import { PreparedFrame } from '../../src/transport/prepared-frame.js';
import type { SwitchboardSocket } from '../../src/transport/switchboard-socket.js';
import { pair, silentLogger } from './socket-pair.js';

/** Sends what `send` sends in one TCP write, so that the server reads it all in one turn. */
function inOneWrite(client: WebSocket, send: () => void): void {
  const raw = (client as unknown as { _socket: Duplex })._socket;
  raw.cork();
  send();
  raw.uncork();
}

/**
 * Queues `reply` when the server receives a message, and tells whether ws had already
 * begun closing the socket by the end of that turn (so the reply was not flushed by then).
 */
function replyOnMessage(server: SwitchboardSocket, reply: string): { closedInSameTurn: () => boolean } {
  const batch = new FrameBatch(server, new FlushScheduler(silentLogger));
  let closedInSameTurn = false;
  server.once('message', () => {
    batch.push(new PreparedFrame(reply));
    setImmediate(() => {
      closedInSameTurn = server.readyState !== WebSocket.OPEN;
    });
  });
  return { closedInSameTurn: () => closedInSameTurn };
}

test('frames queued when ws answers the peer close frame go out before its close frame', async (t) => {
  const { server, client, received } = await pair(t);
  const probe = replyOnMessage(server, 'reply to your last request');
  inOneWrite(client, () => {
    client.send('last request');
    client.close(4000, 'done');
  });
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(probe.closedInSameTurn(), true, 'ws closed the socket before the end of the turn that queued the reply');
  assert.equal(code, 4000, 'the answer echoes the peer code');
  assert.deepEqual(received, ['reply to your last request']);
});

test('frames queued when ws closes with 1009 after an oversized frame go out before its close frame', async (t) => {
  const { server, client, received } = await pair(t, { maxPayload: 64 });
  const errors: string[] = [];
  server.on('error', (error: Error & { code?: string }) => errors.push(error.code ?? error.message));
  const probe = replyOnMessage(server, 'reply to the request before the oversized one');
  inOneWrite(client, () => {
    client.send('small request');
    client.send('o'.repeat(65));
  });
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(probe.closedInSameTurn(), true, 'ws closed the socket before the end of the turn that queued the reply');
  assert.deepEqual(errors, ['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH']);
  assert.equal(code, 1009);
  assert.deepEqual(received, ['reply to the request before the oversized one']);
});
