/**
 * A handshake costs the server one socket write: the 101 response and the welcome frame
 * leave together (upgrade.ts corks the socket until the turn's frames are flushed). A
 * refused handshake still gets its answer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { WebSocket } from 'ws';
import { WebSocketHandler, type HandlerOptions } from '../../src/handler.js';

/** A node:http server with the handler attached; counts the writes to each upgraded socket. */
async function countingServer(t: TestContext, options: HandlerOptions = {}): Promise<{ url: string; writes: Array<{ calls: number; chunks: number }> }> {
  const handler = new WebSocketHandler({ logger: pino({ level: 'silent' }), heartbeatInterval: 3600, ...options });
  const server = createServer((_request, response) => response.writeHead(404).end());
  const writes: Array<{ calls: number; chunks: number }> = [];
  server.prependListener('upgrade', (_request: IncomingMessage, socket: Socket) => {
    const count = { calls: 0, chunks: 0 };
    writes.push(count);
    const internals = socket as unknown as { _write: (...args: unknown[]) => void; _writev: (chunks: unknown[], callback: unknown) => void };
    const write = internals._write.bind(socket);
    const writev = internals._writev.bind(socket);
    internals._write = (...args) => {
      count.calls++;
      count.chunks++;
      write(...args);
    };
    internals._writev = (chunks, callback) => {
      count.calls++;
      count.chunks += chunks.length;
      writev(chunks, callback);
    };
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  handler.attach(server);
  t.after(async () => {
    await handler.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, writes };
}

test('the 101 response and the welcome frame go out in one write', async (t) => {
  const { url, writes } = await countingServer(t);
  for (let index = 0; index < 3; index++) {
    const client = new WebSocket(url);
    const [welcome] = (await once(client, 'message')) as [Buffer];
    assert.equal((JSON.parse(welcome.toString()) as { action: string }).action, 'welcome');
    client.close();
    await once(client, 'close');
  }
  assert.equal(writes.length, 3);
  for (const [index, count] of writes.entries()) {
    // The close frame that answers the client's comes later, in a write of its own.
    assert.ok(count.chunks >= 2, `handshake ${index}: ${JSON.stringify(count)}`);
    assert.equal(count.calls, 2, `handshake ${index}: one write for the 101 and the welcome, one for the close frame: ${JSON.stringify(count)}`);
  }
});

test('a handshake ws refuses (a bad Sec-WebSocket-Key) still gets its 400 answer, not a corked silence', async (t) => {
  const { url } = await countingServer(t);
  const { port } = new URL(url);
  const { connect } = await import('node:net');
  const socket = connect(Number(port), '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-a-key\r\n\r\n');
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  await once(socket, 'end');
  assert.match(answer, /^HTTP\/1\.1 400 /);
});
