/**
 * Connection lifecycle edges: hook ordering around disconnects, backpressure behind slow
 * hooks, shutdown waiting for the application, closes that ws starts itself, refused
 * handshakes whose client vanishes, and where options come from.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/options.js';
import { ConfigError, SwitchboardError } from '../../src/errors.js';
import { createServer } from '../../src/http/server.js';
import { WebSocketHandler } from '../../src/handler.js';
import { CloseCode, ErrorCode } from '../../src/codes.js';
import { MAX_RECIPIENTS } from '../../src/protocol/inbound.js';
import { TestClient, eventually } from '../helpers/client.js';
import { get } from '../helpers/http.js';
import { startServer } from '../helpers/server.js';

const silent = pino({ level: 'silent' });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((settle) => (resolve = settle));
  return { promise, resolve };
}

test('onDisconnect runs after a pending onConnect finished, and queued requests of a closed connection never run', async (t) => {
  const events: string[] = [];
  const gate = deferred();
  const connectStarted = deferred();
  const disconnected = deferred();
  const server = await startServer({}, (handler) => {
    handler.onConnect(async () => {
      events.push('connect start');
      connectStarted.resolve();
      await gate.promise;
      events.push('connect end');
    });
    handler.onSubscribe(() => {
      events.push('subscribe hook');
    });
    handler.onDisconnect(() => {
      events.push('disconnect');
      disconnected.resolve();
    });
  });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  await connectStarted.promise;
  client.send({ action: 'subscribe', data: { channel: 'queued' }, id: 1 });
  client.socket.terminate();
  await eventually(() => server.handler.connectionCount === 0, 5000, 'the server to see the close');
  gate.resolve();
  await disconnected.promise;
  assert.deepEqual(events, ['connect start', 'connect end', 'disconnect']);
});

test('a burst far above the queue size behind a slow async hook is read with backpressure, not closed', async (t) => {
  const server = await startServer({ maxMessagesPerMinute: 0 }, (handler) => {
    handler.onMessage(() => new Promise<void>((resolve) => setTimeout(resolve, 1)));
  });
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  await client.subscribe('busy');
  const count = 500;
  for (let index = 0; index < count; index++) client.send({ action: 'message', data: { channel: 'busy', message: index }, id: `m${index}` });
  await client.next((frame) => frame.id === `m${count - 1}`, 30_000);
  const acks = client.received((frame) => frame.action === 'message_sent');
  assert.equal(acks.length, count);
  assert.deepEqual(
    acks.map((frame) => frame.id),
    Array.from({ length: count }, (_, index) => `m${index}`),
  );
  assert.equal(client.socket.readyState, client.socket.OPEN);
});

test('server.close() waits for async disconnect hooks before it resolves', async (t) => {
  let hookFinished = false;
  const server = await startServer({}, (handler) => {
    handler.onDisconnect(async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      hookFinished = true;
    });
  });
  t.after(() => server.close());
  await TestClient.connect(server.url);
  await server.close();
  assert.equal(hookFinished, true);
});

test('an oversized frame is reported to onDisconnect as 1009 and the connection leaves its channels at once', async (t) => {
  const codes: number[] = [];
  const server = await startServer({ maxPayload: 1024 }, (handler) => handler.onDisconnect((_connection, close) => void codes.push(close.code)));
  t.after(() => server.close());
  const big = await TestClient.connect(server.url);
  const other = await TestClient.connect(server.url);
  await big.subscribe('room');
  await other.subscribe('room');
  big.sendRaw('x'.repeat(2048));
  await eventually(() => server.handler.channelCount === 1 && codes.length === 1, 5000, 'the oversized client to be gone');
  assert.deepEqual(codes, [CloseCode.MESSAGE_TOO_BIG]);
  assert.equal((await other.publish('room', 'still here')).recipients_count, 1);
});

test('a client that resets the connection right after a refused upgrade does not bring the server down', async (t) => {
  const server = await startServer({ path: '/ws' });
  t.after(() => server.close());
  for (let attempt = 0; attempt < 20; attempt++) {
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(server.port, '127.0.0.1', () => {
        socket.write(
          'GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
        socket.resetAndDestroy();
        resolve();
      });
      socket.on('error', () => resolve());
    });
  }
  const health = await get(`${server.httpUrl}/healthz`);
  assert.equal(health.status, 200);
});

test('a subscribe hook refusing with an empty string gets the default reason', async (t) => {
  const server = await startServer({}, (handler) => handler.onSubscribe(() => ''));
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  const reply = await client.subscribe('room');
  assert.equal(reply.code, ErrorCode.FORBIDDEN);
  assert.notEqual(reply.error, '');
});

test('handler.publish rejects a channel that is not a string', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  await assert.rejects(server.handler.publish(123 as unknown as string, 'x'), (error: unknown) => {
    return error instanceof SwitchboardError && error.code === ErrorCode.INVALID_CHANNEL;
  });
});

test('handler.publish validates recipients as a client message does', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const invalid = (error: unknown): boolean => error instanceof SwitchboardError && error.code === ErrorCode.INVALID_MESSAGE && /recipients/.test(error.message);
  await assert.rejects(server.handler.publish('news', 'x', { recipients: 'alice' as unknown as string[] }), invalid);
  await assert.rejects(server.handler.publish('news', 'x', { recipients: [{ id: 1 }] as unknown as string[] }), invalid);
  await assert.rejects(server.handler.publish('news', 'x', { recipients: Array.from({ length: MAX_RECIPIENTS + 1 }, (_, index) => index) }), invalid);
  await assert.rejects(server.handler.publish('news', null), (error: unknown) => error instanceof SwitchboardError && error.code === ErrorCode.INVALID_MESSAGE);
  assert.equal(server.handler.stats.messagesPublished, 0);
  assert.equal(await server.handler.publish('news', 'x', { recipients: ['alice', 7] }), 0);
  assert.equal(server.handler.stats.messagesPublished, 1);
});

test('a handler reads no environment: its options are defaults < options in code', (t) => {
  process.env.WS_MAX_PAYLOAD = '4096';
  t.after(() => {
    delete process.env.WS_MAX_PAYLOAD;
  });
  const handler = new WebSocketHandler({ heartbeatInterval: 9, logger: silent });
  assert.equal(handler.options.maxPayload, DEFAULTS.maxPayload);
  assert.equal(handler.options.heartbeatInterval, 9);
});

test('loadConfig gives a handler defaults < .env < environment < options in code', (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'switchboard-env-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  writeFileSync(join(cwd, '.env'), 'WS_MAX_CHANNELS_PER_CONNECTION=7\nWS_HEARTBEAT_INTERVAL=5\n');
  const handler = new WebSocketHandler({ ...loadConfig({ cwd, env: { WS_MAX_PAYLOAD: '4096', WS_HEARTBEAT_INTERVAL: '7' }, options: { heartbeatInterval: 9 } }), logger: silent });
  assert.equal(handler.options.maxChannelsPerConnection, 7);
  assert.equal(handler.options.maxPayload, 4096);
  assert.equal(handler.options.heartbeatInterval, 9);
});

test('createServer without a handler reads the environment once, under options in code', (t) => {
  process.env.WS_MAX_PAYLOAD = '4096';
  t.after(() => {
    delete process.env.WS_MAX_PAYLOAD;
  });
  const server = createServer({ host: '127.0.0.1', port: 0, shutdownTimeout: 1, logger: silent });
  t.after(() => server.close());
  assert.equal(server.handler.options.maxPayload, 4096);
  assert.equal(server.options.maxPayload, 4096);
});

test('createServer with a handler refuses connection options, which belong to the handler', () => {
  const handler = new WebSocketHandler({ logger: silent });
  assert.throws(() => createServer({ port: 0, maxPayload: 200 }, handler), (error: unknown) => {
    return error instanceof ConfigError && /maxPayload/.test(error.message);
  });
});

test('createServer with a handler takes its listener options and keeps the handler limits', async (t) => {
  const handler = new WebSocketHandler({ maxPayload: 2048, logger: silent, shutdownTimeout: 1 });
  const server = createServer({ host: '127.0.0.1', port: 0, path: '/live' }, handler);
  t.after(() => server.close());
  const address = await server.listen();
  assert.equal(server.options.maxPayload, 2048);
  assert.match(address.url, /\/live$/);
  const status = await new Promise<number>((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port: address.port, path: '/live' }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', reject);
    request.end();
  });
  assert.equal(status, 426);
});

test('a publisher receives its own message before the message_sent ack, and a burst keeps its order', async (t) => {
  const server = await startServer({ maxMessagesPerMinute: 0 });
  t.after(() => server.close());
  const publisher = await TestClient.connect(server.url);
  await publisher.subscribe('order');
  const before = publisher.frames.length;
  for (let index = 0; index < 50; index++) publisher.send({ action: 'message', data: { channel: 'order', message: index }, id: index });
  await publisher.next((frame) => frame.action === 'message_sent' && frame.id === 49);
  const seen = publisher.frames.slice(before).map((frame) => (frame.action === 'message' ? `m${String(frame.message)}` : `a${String(frame.id)}`));
  assert.deepEqual(
    seen,
    Array.from({ length: 50 }, (_, index) => [`m${index}`, `a${index}`]).flat(),
  );
});

test('a client that sends a request and then closes still gets the reply before the close', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const client = await TestClient.connect(server.url);
  client.send({ action: 'ping', id: 'last' });
  client.close(1000);
  const close = await client.closed;
  assert.equal(close.code, 1000);
  assert.equal(client.frames.filter((frame) => frame.id === 'last').length, 1);
});

test('a broker whose leave throws (instead of rejecting) does not take the server down', async (t) => {
  const { MemoryBroker } = await import('../../src/broker/memory.js');
  class ThrowingBroker extends MemoryBroker {
    override leave(): Promise<void> {
      throw new Error('broken broker');
    }
  }
  const server = await startServer({ broker: new ThrowingBroker() });
  t.after(() => server.close());
  const leaving = await TestClient.connect(server.url);
  await leaving.subscribe('room');
  leaving.close();
  await leaving.closed;
  const other = await TestClient.connect(server.url);
  assert.equal((await other.subscribe('room')).success, true);
  assert.equal((await get(`${server.httpUrl}/healthz`)).status, 200);
});
