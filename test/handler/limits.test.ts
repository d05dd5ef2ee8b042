/**
 * SPEC §3 over real sockets: heartbeat, inactivity timeout, dead peers, the rate limit,
 * maxPayload, connection limits, allowed origins, slow consumers and graceful close.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { WebSocket, type RawData } from 'ws';
import { WebSocketHandler } from '../../src/handler.js';
import { CloseCode, ErrorCode, ErrorText } from '../../src/codes.js';
import { assertErrorBody, refusedHandshake } from '../helpers/http.js';
import { TestClient, eventually, isMessageOn, settle, type CloseInfo, type Frame } from '../helpers/client.js';
import { RawWebSocket } from '../helpers/raw.js';
import { startServer } from '../helpers/server.js';

/** For things that must happen: generous, so a loaded machine does not fail the test. */
const GENEROUS_MS = 15_000;
/** A hung handshake or wait fails its test instead of the whole run. */
const SUITE = { timeout: 60_000 };

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function closedWithin(client: TestClient, ms = GENEROUS_MS): Promise<CloseInfo> {
  return within(client.closed, ms, 'the connection to close');
}

/** Sends a WebSocket ping control frame and waits for the pong: every frame sent before it has been read by the server. */
async function controlRoundTrip(client: TestClient): Promise<void> {
  const pong = once(client.socket, 'pong');
  client.socket.ping();
  await within(pong, GENEROUS_MS, 'a pong control frame');
}

const isError = (code: string) => (frame: Frame) => frame.type === 'error' && frame.code === code;

/** The reply carrying `id`, wherever it is among the frames received. */
async function replyWithId(client: TestClient, id: string | number): Promise<Frame> {
  const find = (): Frame | undefined => client.frames.find((frame) => frame.id === id);
  await eventually(() => find() !== undefined, GENEROUS_MS, `the reply to request ${id}`);
  return find() as Frame;
}

/** Sends `count` ping requests with ids `first`, `first + 1`, ... without waiting. */
function sendPings(client: TestClient, count: number, first = 1): void {
  for (let id = first; id < first + count; id++) client.send({ action: 'ping', id });
}

// ---- heartbeat ---------------------------------------------------------------------------

void describe('heartbeat', SUITE, () => {
  void test('the server sends a JSON {action: "ping", time} frame every heartbeatInterval', async (t) => {
    const server = await startServer({ heartbeatInterval: 0.2 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    const pings: Frame[] = [];
    for (let count = 0; count < 3; count++) pings.push(await client.next((frame) => frame.action === 'ping', GENEROUS_MS));
    for (const ping of pings) {
      assert.deepEqual(Object.keys(ping).sort(), ['action', 'time']);
      assert.ok(Number.isInteger(ping.time), 'time is whole unix seconds');
      // Unix seconds, not milliseconds: within a day of now.
      assert.ok(Math.abs((ping.time as number) - Date.now() / 1000) < 86_400, `time ${String(ping.time)} is unix seconds`);
    }
  });

  void test('the server also sends WebSocket ping control frames every heartbeatInterval', async (t) => {
    const server = await startServer({ heartbeatInterval: 0.2 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    let controlPings = 0;
    client.socket.on('ping', () => controlPings++);
    await eventually(() => controlPings >= 3, GENEROUS_MS, 'three ping control frames');
  });

  void test('the welcome frame announces heartbeat_interval', async (t) => {
    const server = await startServer({ heartbeatInterval: 0.2 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    assert.equal(client.welcome.heartbeat_interval, 0.2);
  });
});

// ---- inactivity timeout and dead peers -----------------------------------------------------

void describe('inactivity timeout', SUITE, () => {
  void test('a client that sends nothing and does not answer pings gets the timeout frame, then close 4008', async (t) => {
    const server = await startServer({ heartbeatInterval: 0.2, connectionTimeout: 0.5 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url, { autoPong: false });
    const close = await closedWithin(client);
    assert.equal(close.code, CloseCode.TIMEOUT);
    const last = client.frames[client.frames.length - 1];
    assert.deepEqual(last, { action: 'timeout', message: ErrorText.TIMEOUT });
    assert.equal(ErrorText.TIMEOUT, 'Connection timed out due to inactivity');
  });

  void test('a client that answers every JSON ping with a pong frame stays open over several timeout periods', async (t) => {
    const server = await startServer({ heartbeatInterval: 0.1, connectionTimeout: 0.5 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url, { autoPong: false });
    client.socket.on('message', (data: RawData) => {
      if ((JSON.parse((data as Buffer).toString('utf8')) as Frame).action === 'ping') client.send({ action: 'pong' });
    });
    // 25 heartbeats span five timeout periods.
    await eventually(() => client.received((frame) => frame.action === 'ping').length >= 25, 30_000, '25 heartbeats');
    await settle(client);
    assert.equal(client.received((frame) => frame.action === 'timeout').length, 0);
    assert.equal(client.socket.readyState, WebSocket.OPEN);
  });

  void test('a client whose library answers ping control frames stays open over several timeout periods', async (t) => {
    const server = await startServer({ heartbeatInterval: 0.1, connectionTimeout: 0.5 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url); // ws answers control pings itself (autoPong)
    await eventually(() => client.received((frame) => frame.action === 'ping').length >= 25, 30_000, '25 heartbeats');
    await settle(client);
    assert.equal(client.received((frame) => frame.action === 'timeout').length, 0);
    assert.equal(client.socket.readyState, WebSocket.OPEN);
  });

  void test('a dead peer (never reads, never answers) is dropped after connectionTimeout', async (t) => {
    const disconnects: number[] = [];
    const server = await startServer({ heartbeatInterval: 0.2, connectionTimeout: 0.5 }, (handler) => {
      handler.onDisconnect((_connection, close) => {
        disconnects.push(close.code);
      });
    });
    t.after(() => server.close());
    const peer = await RawWebSocket.connect(server.port);
    t.after(() => peer.destroy());
    peer.stopReading();
    assert.equal(server.handler.connectionCount, 1);
    await eventually(() => server.handler.connectionCount === 0, GENEROUS_MS, 'the dead peer to be dropped');
    await eventually(() => disconnects.length === 1, GENEROUS_MS, 'the disconnect hook');
    assert.deepEqual(disconnects, [CloseCode.TIMEOUT]);
  });
});

// ---- rate limit ----------------------------------------------------------------------------

void describe('rate limit', SUITE, () => {
  const LIMIT = 5;

  void test('maxMessagesPerMinute frames sent in a burst are all accepted', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    sendPings(client, LIMIT);
    for (let id = 1; id <= LIMIT; id++) {
      const reply = await replyWithId(client, id);
      assert.equal(reply.action, 'pong', `reply to frame ${id}: ${JSON.stringify(reply)}`);
    }
  });

  void test('the frame after a burst gets RATE_LIMITED with its id and a retry_after of about a minute', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    const sentAt = Date.now();
    sendPings(client, LIMIT + 1);
    const reply = await replyWithId(client, LIMIT + 1);
    const repliedAt = Date.now();
    const { retry_after: retryAfter, ...rest } = reply;
    assert.deepEqual(rest, {
      type: 'error',
      success: false,
      code: ErrorCode.RATE_LIMITED,
      error: 'Rate limit exceeded. Please slow down.',
      action: 'ping',
      id: LIMIT + 1,
    });
    assert.equal(typeof retryAfter, 'number');
    // The oldest accepted frame left at or after sentAt, so a frame is accepted again no
    // sooner than sentAt + 60 s, and this reply was computed no later than repliedAt.
    assert.ok((retryAfter as number) <= 60, `retry_after ${String(retryAfter)} <= 60`);
    assert.ok((retryAfter as number) >= 60 - (repliedAt - sentAt) / 1000 - 0.001, `retry_after ${String(retryAfter)} is the time until the window frees up`);
  });

  void test('invalid frames (bad JSON, binary) count toward the limit', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    for (let count = 0; count < LIMIT - 1; count++) client.sendRaw('not json');
    client.sendRaw(Buffer.from('{"action":"ping"}'), { binary: true });
    client.send({ action: 'ping', id: 'after-invalid' });
    const reply = await replyWithId(client, 'after-invalid');
    assert.equal(reply.code, ErrorCode.RATE_LIMITED);
    assert.equal(client.received(isError(ErrorCode.INVALID_JSON)).length, LIMIT - 1);
    assert.equal(client.received(isError(ErrorCode.INVALID_MESSAGE)).length, 1);
  });

  void test('JSON pongs answering server pings and control pongs do not count toward the limit', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT, heartbeatInterval: 0.05 });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    // Answer 3 × LIMIT server pings, each with a JSON pong, plus as many control pongs.
    for (let answered = 0; answered < 3 * LIMIT; answered++) {
      await client.next((frame) => frame.action === 'ping', GENEROUS_MS);
      client.send({ action: 'pong' });
      client.socket.pong();
    }
    sendPings(client, LIMIT + 1);
    for (let id = 1; id <= LIMIT; id++) assert.equal((await replyWithId(client, id)).action, 'pong');
    // The limit is in force: the next frame is the first one over it.
    assert.equal((await replyWithId(client, LIMIT + 1)).code, ErrorCode.RATE_LIMITED);
    assert.equal(client.received((frame) => frame.type === 'error').length, 1);
  });

  void test('JSON pongs nobody asked for count toward the limit', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    for (let count = 0; count < LIMIT; count++) client.send({ action: 'pong' });
    client.send({ action: 'ping', id: 'over' });
    assert.equal((await replyWithId(client, 'over')).code, ErrorCode.RATE_LIMITED);
  });

  void test('a client that sends more than maxMessagesPerMinute further frames while limited is closed with 4029, not before', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    sendPings(client, 2 * LIMIT);
    await eventually(() => client.received(isError(ErrorCode.RATE_LIMITED)).length === LIMIT, GENEROUS_MS, `${LIMIT} RATE_LIMITED replies`);
    // A server that had closed the connection would not answer this control ping.
    await controlRoundTrip(client);
    assert.equal(client.socket.readyState, WebSocket.OPEN, `open after ${LIMIT} refused frames`);
    assert.equal(client.received(isError(ErrorCode.RATE_LIMITED)).length, LIMIT);
    client.send({ action: 'ping', id: 'one-too-many' });
    const close = await closedWithin(client);
    assert.equal(close.code, CloseCode.FLOODING);
  });

  void test('unsolicited pongs sent while limited count toward the 4029 close', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    sendPings(client, LIMIT + 1);
    await replyWithId(client, LIMIT + 1);
    for (let count = 0; count < LIMIT; count++) client.send({ action: 'pong' });
    const close = await closedWithin(client);
    assert.equal(close.code, CloseCode.FLOODING);
  });

  void test('other clients are unaffected while one is rate-limited', async (t) => {
    const server = await startServer({ maxMessagesPerMinute: LIMIT });
    t.after(() => server.close());
    const flooder = await TestClient.connect(server.url);
    const other = await TestClient.connect(server.url);
    sendPings(flooder, LIMIT + 1);
    assert.equal((await replyWithId(flooder, LIMIT + 1)).code, ErrorCode.RATE_LIMITED);
    assert.equal((await other.subscribe('chat.room.1')).success, true);
    const delivered = other.next(isMessageOn('chat.room.1'));
    assert.equal((await other.publish('chat.room.1', 'still flowing')).action, 'message_sent');
    assert.equal((await delivered).message, 'still flowing');
    assert.equal(other.received((frame) => frame.type === 'error').length, 0);
  });
});

// ---- maxPayload ----------------------------------------------------------------------------

void describe('maxPayload', SUITE, () => {
  const MAX_PAYLOAD = 1024;

  /** A valid ping request of exactly `bytes` bytes (ASCII), padded through its id. */
  function pingOfSize(bytes: number): { text: string; id: string } {
    const empty = JSON.stringify({ action: 'ping', id: '' });
    const id = 'x'.repeat(bytes - empty.length);
    const text = JSON.stringify({ action: 'ping', id });
    assert.equal(Buffer.byteLength(text), bytes);
    return { text, id };
  }

  void test('a frame larger than maxPayload closes the connection with 1009', async (t) => {
    const server = await startServer({ maxPayload: MAX_PAYLOAD });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    client.sendRaw(pingOfSize(MAX_PAYLOAD + 1).text);
    const close = await closedWithin(client);
    assert.equal(close.code, CloseCode.MESSAGE_TOO_BIG);
  });

  void test('a frame of exactly maxPayload bytes is accepted', async (t) => {
    const server = await startServer({ maxPayload: MAX_PAYLOAD });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    const ping = pingOfSize(MAX_PAYLOAD);
    client.sendRaw(ping.text);
    assert.equal((await client.next((frame) => frame.id === ping.id)).action, 'pong');
  });

  void test('another client is unaffected when one sends an oversized frame', async (t) => {
    const server = await startServer({ maxPayload: MAX_PAYLOAD });
    t.after(() => server.close());
    const offender = await TestClient.connect(server.url);
    const other = await TestClient.connect(server.url);
    await offender.subscribe('chat.room.1');
    await other.subscribe('chat.room.1');
    offender.sendRaw(pingOfSize(MAX_PAYLOAD + 1).text);
    assert.equal((await closedWithin(offender)).code, CloseCode.MESSAGE_TOO_BIG);
    await eventually(() => server.handler.connectionCount === 1, GENEROUS_MS, 'the server to drop the offender');
    const delivered = other.next(isMessageOn('chat.room.1'));
    const ack = await other.publish('chat.room.1', 'after the offender left');
    assert.equal(ack.recipients_count, 1);
    assert.equal((await delivered).message, 'after the offender left');
    assert.equal(other.socket.readyState, WebSocket.OPEN);
  });
});

// ---- handshake limits ----------------------------------------------------------------------

void describe('maxConnections', SUITE, () => {
  void test('the handshake over maxConnections gets HTTP 503 with a JSON body', async (t) => {
    const server = await startServer({ maxConnections: 2 });
    t.after(() => server.close());
    await TestClient.connect(server.url);
    await TestClient.connect(server.url);
    assertErrorBody(await refusedHandshake(server.url), 503);
    assert.equal(server.handler.connectionCount, 2);
  });

  void test('a new handshake is accepted again once a connection closed', async (t) => {
    const server = await startServer({ maxConnections: 2 });
    t.after(() => server.close());
    const first = await TestClient.connect(server.url);
    await TestClient.connect(server.url);
    assertErrorBody(await refusedHandshake(server.url), 503);
    first.close();
    await first.closed;
    await eventually(() => server.handler.connectionCount === 1, GENEROUS_MS, 'the server to see the close');
    const third = await TestClient.connect(server.url);
    assert.equal(third.socket.readyState, WebSocket.OPEN);
  });
});

void describe('maxConnectionsPerIp', SUITE, () => {
  void test('the handshake over maxConnectionsPerIp gets HTTP 429 with a JSON body', async (t) => {
    const server = await startServer({ maxConnectionsPerIp: 1 });
    t.after(() => server.close());
    await TestClient.connect(server.url);
    assertErrorBody(await refusedHandshake(server.url), 429);
  });

  void test('the limit is per address: another address still connects', async (t) => {
    const server = await startServer({ maxConnectionsPerIp: 1 });
    t.after(() => server.close());
    await TestClient.connect(server.url);
    // All of 127.0.0.0/8 is loopback on Linux; skip where binding another address fails.
    const other = await TestClient.connect(server.url, { localAddress: '127.0.0.2' }).catch((error: unknown) => error as Error);
    if (other instanceof Error) {
      if (/EADDRNOTAVAIL|EINVAL/.test(other.message)) return t.skip('cannot bind 127.0.0.2 here');
      throw other;
    }
    assert.equal(other.socket.readyState, WebSocket.OPEN);
  });

  void test('a closed connection frees its slot for the same address', async (t) => {
    const server = await startServer({ maxConnectionsPerIp: 1 });
    t.after(() => server.close());
    const first = await TestClient.connect(server.url);
    first.close();
    await first.closed;
    await eventually(() => server.handler.connectionCount === 0, GENEROUS_MS, 'the server to see the close');
    const second = await TestClient.connect(server.url);
    assert.equal(second.socket.readyState, WebSocket.OPEN);
  });
});

void describe('allowedOrigins', SUITE, () => {
  const allowedOrigins = ['https://app.example.com', 'HTTP://Localhost:3000/'];

  void test('an Origin not in allowedOrigins gets HTTP 403 with a JSON body', async (t) => {
    const server = await startServer({ allowedOrigins });
    t.after(() => server.close());
    assertErrorBody(await refusedHandshake(server.url, { origin: 'https://evil.example.com' }), 403);
    assert.equal(server.handler.connectionCount, 0);
  });

  void test('a listed Origin is accepted whatever its case and trailing slash', async (t) => {
    const server = await startServer({ allowedOrigins });
    t.after(() => server.close());
    const upper = await TestClient.connect(server.url, { origin: 'HTTPS://APP.Example.com/' });
    const plain = await TestClient.connect(server.url, { origin: 'http://localhost:3000' });
    assert.equal(upper.socket.readyState, WebSocket.OPEN);
    assert.equal(plain.socket.readyState, WebSocket.OPEN);
  });

  void test('a handshake without an Origin header (a non-browser client) is accepted', async (t) => {
    const server = await startServer({ allowedOrigins });
    t.after(() => server.close());
    const client = await TestClient.connect(server.url);
    assert.equal(client.socket.readyState, WebSocket.OPEN);
  });
});

// ---- slow consumers ------------------------------------------------------------------------

/** A plain `ws` client that keeps no frames, for floods too large to record. */
async function openQuiet(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  socket.on('error', () => undefined);
  await within(once(socket, 'open'), GENEROUS_MS, 'the handshake');
  return socket;
}

function replyTo(socket: WebSocket, request: { action: string; data?: unknown; id: string }): Promise<Frame> {
  const reply = new Promise<Frame>((resolve) => {
    const onMessage = (data: RawData): void => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      if (frame.id !== request.id) return;
      socket.off('message', onMessage);
      resolve(frame);
    };
    socket.on('message', onMessage);
  });
  socket.send(JSON.stringify(request));
  return within(reply, GENEROUS_MS, `the reply to ${request.id}`);
}

void test('a client that stops reading is closed with 4009 while a normal subscriber receives every message in order', { timeout: 120_000 }, async (t) => {
  const CHANNEL = 'feed.live';
  const disconnects = new Map<string, number>();
  const server = await startServer({ maxBufferedBytes: 65_536, maxMessagesPerMinute: 0 }, (handler) => {
    handler.onDisconnect((connection, close) => {
      disconnects.set(connection.id, close.code);
    });
  });
  t.after(() => server.close());

  const slow = await RawWebSocket.connect(server.port);
  t.after(() => slow.destroy());
  const slowId = (await slow.nextJson((frame) => frame.action === 'welcome')).connection_id as string;
  slow.send({ action: 'subscribe', data: { channel: CHANNEL }, id: 'sub' });
  assert.equal((await slow.nextJson((frame) => frame.id === 'sub')).success, true);
  slow.stopReading();

  const reader = await openQuiet(server.url);
  const publisher = await openQuiet(server.url);
  t.after(() => {
    reader.terminate();
    publisher.terminate();
  });
  let received = 0;
  const outOfOrder: string[] = [];
  reader.on('message', (data: RawData) => {
    const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame;
    if (frame.action !== 'message' || frame.channel !== CHANNEL) return;
    const seq = (frame.message as { seq: number }).seq;
    if (seq !== received && outOfOrder.length < 5) outOfOrder.push(`expected ${received}, got ${seq}`);
    received++;
  });
  assert.equal((await replyTo(reader, { action: 'subscribe', data: { channel: CHANNEL }, id: 'sub' })).success, true);
  assert.equal((await replyTo(publisher, { action: 'subscribe', data: { channel: CHANNEL }, id: 'sub' })).success, true);

  // Loopback kernel buffers hold megabytes, so the backlog only builds after many messages.
  const pad = 'x'.repeat(1000);
  const BATCH = 100;
  const MAX_MESSAGES = 100_000;
  let sent = 0;
  let batch = 0;
  while (!disconnects.has(slowId) && sent < MAX_MESSAGES) {
    for (let index = 0; index < BATCH; index++) {
      publisher.send(JSON.stringify({ action: 'message', data: { channel: CHANNEL, message: { seq: sent++, pad } } }));
    }
    assert.equal((await replyTo(publisher, { action: 'ping', id: `batch-${batch++}` })).action, 'pong');
    await eventually(() => received === sent, GENEROUS_MS, `the reader to receive message ${sent - 1}`);
  }

  await eventually(() => disconnects.has(slowId), GENEROUS_MS, 'the slow consumer to be closed');
  assert.equal(disconnects.get(slowId), CloseCode.SLOW_CONSUMER);
  assert.equal(server.handler.connectionCount, 2);
  assert.deepEqual(outOfOrder, []);
  assert.equal(received, sent);
  assert.equal(disconnects.size, 1, 'only the slow consumer was closed');
});

// ---- graceful close ------------------------------------------------------------------------

void describe('graceful close', SUITE, () => {
  void test('server.close() closes every client with 1001', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const first = await TestClient.connect(server.url);
    const second = await TestClient.connect(server.url);
    await first.subscribe('chat.room.1');
    const closing = server.close();
    const [firstClose, secondClose] = await Promise.all([closedWithin(first), closedWithin(second)]);
    assert.equal(firstClose.code, CloseCode.GOING_AWAY);
    assert.equal(secondClose.code, CloseCode.GOING_AWAY);
    await within(closing, GENEROUS_MS, 'server.close()');
  });

  void test('handshakes after server.close() are refused', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    await TestClient.connect(server.url);
    await server.close();
    const outcome = await new Promise<string>((resolve) => {
      const socket = new WebSocket(server.url);
      socket.on('unexpected-response', (request, response) => {
        resolve(`HTTP ${response.statusCode}`);
        request.destroy();
      });
      socket.on('open', () => {
        resolve('accepted');
        socket.close();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    assert.ok(outcome === 'HTTP 503' || outcome === 'ECONNREFUSED', `refused, got ${outcome}`);
  });

  void test('handshakes on an attached server while handler.close() drains get HTTP 503 with a JSON body', async (t) => {
    // The application's own server keeps listening while the handler drains (SPEC §1, `attach`).
    const httpServer = createHttpServer((_request, response) => {
      response.writeHead(418, { 'Content-Type': 'text/plain' });
      response.end('the application answered');
    });
    const handler = new WebSocketHandler({ shutdownTimeout: 2 });
    handler.attach(httpServer);
    httpServer.listen(0, '127.0.0.1');
    await once(httpServer, 'listening');
    t.after(async () => {
      await handler.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
    });
    const { port } = httpServer.address() as AddressInfo;
    // A peer that never answers the close frame keeps the drain going until shutdownTimeout.
    const lingering = await RawWebSocket.connect(port);
    t.after(() => lingering.destroy());
    lingering.stopReading();
    const closing = handler.close();
    assertErrorBody(await refusedHandshake(`ws://127.0.0.1:${port}/`), 503);
    await within(closing, GENEROUS_MS, 'handler.close()');
  });
});
