/**
 * A SwitchboardSocket tells its owner what it emits through listen(), without listeners of
 * its own: messages, pings and pongs, errors and the close, before any listener added with
 * on(), and an error it heard is never thrown as unhandled.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { RawData } from 'ws';
import type { SocketListener } from '../../src/transport/switchboard-socket.js';
import { eventually } from '../helpers/client.js';
import { pair } from './socket-pair.js';

function recorder(): SocketListener & { heard: string[] } {
  const heard: string[] = [];
  return {
    heard,
    socketMessage: (data: RawData, isBinary: boolean) => heard.push(`message ${(data as Buffer).toString()} ${isBinary}`),
    socketAlive: () => heard.push('alive'),
    socketError: (error: Error & { code?: string }) => heard.push(`error ${error.code ?? error.message}`),
    socketClosed: (code: number, reason: Buffer) => heard.push(`closed ${code} ${reason.toString()}`),
  };
}

test('messages, pings, pongs and the close reach the listener, and listeners added with on() hear them after it', async (t) => {
  const { server, client } = await pair(t);
  const listener = recorder();
  server.listen(listener);
  const order: string[] = [];
  server.on('message', (data: Buffer) => order.push(`on ${data.toString()} after ${listener.heard.length}`));
  client.send('hello');
  client.ping();
  client.pong();
  await eventually(() => listener.heard.length === 3);
  assert.deepEqual(listener.heard, ['message hello false', 'alive', 'alive']);
  assert.deepEqual(order, ['on hello after 1']);
  client.close(4000, 'bye');
  await once(server, 'close');
  assert.equal(listener.heard.at(-1), 'closed 4000 bye');
});

test('an error the listener heard is not thrown, even with no error listener', async (t) => {
  const { server, client } = await pair(t, { maxPayload: 64 });
  const listener = recorder();
  server.listen(listener);
  assert.equal(server.listenerCount('error'), 0);
  client.send('o'.repeat(65));
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(code, 1009);
  await eventually(() => listener.heard.some((line) => line.startsWith('closed')));
  assert.deepEqual(listener.heard.map((line) => line.split(' ')[0]), ['error', 'closed']);
  assert.equal(listener.heard[0], 'error WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
});

test('without a listener, a socket emits as any WebSocket does', async (t) => {
  const { server, client } = await pair(t);
  client.send('plain');
  const [data, isBinary] = (await once(server, 'message')) as [Buffer, boolean];
  assert.equal(data.toString(), 'plain');
  assert.equal(isBinary, false);
});
