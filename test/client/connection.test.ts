/**
 * The client SDK's connection (SPEC §9): its states, reconnecting after every close it did
 * not ask for (a server restart on the same port, POST /api/disconnect, a server gone
 * silent) and subscribing again afterwards, never after close(); answering the server's
 * JSON pings; and letting go of a socket whose handshake is under way without crashing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import { NodeWebSocket, Scope, WAIT_MS, disconnectViaApi, next, reach, record, sleep } from '../helpers/sdk.js';

/** Longer than a few reconnect delays (FAST: at most 200 ms): time enough for a reconnect that should not happen. */
const QUIET_SPELL_MS = 600;

void describe('states', () => {
  void test('connecting -> connected -> disconnected -> connecting -> connected -> closed, and no reconnect after close()', async (t) => {
    const scope = new Scope(t);
    let connections = 0;
    const server = await scope.server({}, (handler) => handler.onConnect(() => void connections++));
    const client = scope.client(server.url);
    assert.equal(client.state, 'connecting', 'it connects as soon as it is made');
    const trace = record(client);
    await reach(client, 'connected');
    assert.equal(typeof client.connectionId, 'string');

    const back = next(client, 'connected');
    await server.handler.disconnect({ connectionId: client.connectionId as string });
    await back;
    assert.deepEqual(trace.states, ['connected', 'disconnected', 'connecting', 'connected']);
    assert.equal(connections, 2);

    client.close();
    assert.equal(client.state, 'closed');
    assert.equal(client.connectionId, null);
    await sleep(QUIET_SPELL_MS);
    assert.deepEqual(trace.states, ['connected', 'disconnected', 'connecting', 'connected', 'closed']);
    assert.equal(connections, 2, 'the server saw no new connection after close()');
    assert.equal(server.handler.connectionCount, 0);
  });

  void test('close() while a reconnect is pending cancels it', async (t) => {
    const scope = new Scope(t);
    let connections = 0;
    const server = await scope.server({}, (handler) => handler.onConnect(() => void connections++));
    const client = scope.client(server.url, { reconnect: { minDelay: 200, maxDelay: 400 } });
    await reach(client, 'connected');
    const lost = reach(client, 'disconnected');
    await server.handler.disconnect({ connectionId: client.connectionId as string });
    await lost;
    client.close();
    await sleep(QUIET_SPELL_MS + 400);
    assert.equal(client.state, 'closed');
    assert.equal(connections, 1);
  });

  void test('autoConnect: false stays disconnected until connect()', async (t) => {
    const scope = new Scope(t);
    let connections = 0;
    const server = await scope.server({}, (handler) => handler.onConnect(() => void connections++));
    const client = scope.client(server.url, { autoConnect: false });
    const trace = record(client);
    await sleep(QUIET_SPELL_MS);
    assert.equal(client.state, 'disconnected');
    assert.equal(connections, 0);
    assert.deepEqual(trace.states, []);
    client.connect();
    await reach(client, 'connected');
    assert.deepEqual(trace.states, ['connecting', 'connected']);
    assert.equal(connections, 1);
  });

  void test('reconnect: false stays disconnected after a loss', async (t) => {
    const scope = new Scope(t);
    let connections = 0;
    const server = await scope.server({}, (handler) => handler.onConnect(() => void connections++));
    const client = scope.client(server.url, { reconnect: false });
    await reach(client, 'connected');
    const trace = record(client);
    await server.handler.disconnect({ connectionId: client.connectionId as string });
    await reach(client, 'disconnected');
    await sleep(QUIET_SPELL_MS);
    assert.deepEqual(trace.states, ['disconnected']);
    assert.equal(connections, 1);
    // connect() still works.
    client.connect();
    await reach(client, 'connected');
    assert.equal(connections, 2);
  });
});

void describe('reconnecting', () => {
  void test('after the server restarts on the same port, and the subscriptions are made again', async (t) => {
    const scope = new Scope(t);
    const first = await scope.server();
    const client = scope.client(first.url);
    const news = client.subscribe('news');
    await news.ready;
    const firstId = client.connectionId;
    const resubscribed = next(news, 'subscribed');
    const lost = next(client, 'disconnected');
    await first.close();
    assert.equal((await lost).code, 1001, 'a server shutting down closes with 1001');

    const second = await scope.server({}, undefined, first.port);
    await resubscribed;
    assert.notEqual(client.connectionId, firstId);
    assert.equal(second.handler.connectionCount, 1);
    const delivered = next(news, 'message');
    assert.equal(await second.handler.publish('news', 'after the restart'), 1, 'the new server has the client subscribed');
    assert.equal((await delivered).message, 'after the restart');
  });

  void test('after POST /api/disconnect (1000, "disconnected by server")', async (t) => {
    const scope = new Scope(t);
    const server = await scope.server();
    const client = scope.client(server.url);
    const room = client.subscribe('room.1');
    await room.ready;
    const firstId = client.connectionId;
    const lost = next(client, 'disconnected');
    const back = next(client, 'connected');
    const resubscribed = next(room, 'subscribed');
    const answer = await disconnectViaApi(server, firstId);
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual(JSON.parse(answer.body), { success: true, disconnected: 1 });
    assert.deepEqual(await lost, { code: 1000, reason: 'disconnected by server' });
    const welcome = await back;
    assert.notEqual(welcome.connection_id, firstId);
    assert.equal(client.connectionId, welcome.connection_id);
    await resubscribed;
    const delivered = next(room, 'message');
    await server.handler.publish('room.1', 'welcome back');
    assert.equal((await delivered).message, 'welcome back');
  });
});

/** `ws` without its automatic answer to ping control frames: only the client's JSON pongs keep it alive. */
class JsonPongsOnly extends NodeWebSocket {
  static pings = 0;
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, { autoPong: false });
    this.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { action?: string }).action === 'ping') JsonPongsOnly.pings++;
    });
  }
}

void describe('heartbeat', () => {
  void test('the client answers JSON pings: the server does not close it for silence', async (t) => {
    const scope = new Scope(t);
    const closes: number[] = [];
    const server = await scope.server({ heartbeatInterval: 0.3, connectionTimeout: 1.2 }, (handler) => handler.onDisconnect((_connection, close) => void closes.push(close.code)));
    const client = scope.client(server.url, { WebSocket: JsonPongsOnly });
    const trace = record(client);
    await reach(client, 'connected');
    const id = client.connectionId;
    // Fourteen pings: over four seconds, three and a half times the connection timeout.
    JsonPongsOnly.pings = 0;
    const deadline = Date.now() + 4 * WAIT_MS;
    while (JsonPongsOnly.pings < 14 && Date.now() < deadline) await sleep(50);
    assert.ok(JsonPongsOnly.pings >= 14, `pings seen: ${JsonPongsOnly.pings}`);
    assert.deepEqual(closes, [], 'the server closed nothing');
    assert.deepEqual(trace.disconnects, []);
    assert.equal(client.state, 'connected');
    assert.equal(client.connectionId, id);
  });

  /** A raw server: a welcome with heartbeat_interval 0.1 on every connection, then silence (it never closes one). */
  async function silentServer(scope: Scope): Promise<{ url: string; closedByClient: number[] }> {
    const { wss, url } = await scope.rawServer();
    const closedByClient: number[] = [];
    let count = 0;
    wss.on('connection', (socket: WebSocket) => {
      const index = ++count;
      socket.send(JSON.stringify({ action: 'welcome', connection_id: `raw-${index}`, heartbeat_interval: 0.1, authenticated: false, user_id: null, role: null }));
      socket.on('close', () => closedByClient.push(index));
    });
    return { url, closedByClient };
  }

  void test('a server gone silent is taken for gone: the client closes the connection and connects again', async (t) => {
    const scope = new Scope(t);
    const { url, closedByClient } = await silentServer(scope);
    const client = scope.client(url, { requestTimeout: 1000 });
    await next(client, 'connected', (welcome) => welcome.connection_id === 'raw-1');
    const trace = record(client);
    await next(client, 'connected', (welcome) => welcome.connection_id === 'raw-2');
    assert.deepEqual(trace.states.slice(0, 3), ['disconnected', 'connecting', 'connected']);
    assert.deepEqual(trace.disconnects[0], { code: 1006, reason: 'the server went silent' });
    const deadline = Date.now() + WAIT_MS;
    while (!closedByClient.includes(1) && Date.now() < deadline) await sleep(20);
    assert.ok(closedByClient.includes(1), 'the client closed the silent connection itself');
  });

  // requestTimeout (the wait for a welcome) is far beyond the wait here: only the watchdog of
  // twice heartbeat_interval (200 ms) can end the silent connection in time.
  void test(
    '... after twice its heartbeat_interval, not after requestTimeout',
    async (t) => {
      const scope = new Scope(t);
      const { url } = await silentServer(scope);
      const client = scope.client(url, { requestTimeout: 60_000 });
      await next(client, 'connected', (welcome) => welcome.connection_id === 'raw-1');
      await next(client, 'connected', (welcome) => welcome.connection_id === 'raw-2', 3000);
    },
  );
});

/** Runs fixtures/drop-while-connecting.ts in a child process; resolves with its exit code and output. */
async function runFixture(scenario: string): Promise<{ code: number | null; output: string }> {
  const fixture = fileURLToPath(new URL('fixtures/drop-while-connecting.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

void describe("letting go of a socket whose handshake is under way (with ws's own WebSocket)", () => {
  void test('close() while connecting does not crash the process', { timeout: 4 * WAIT_MS }, async () => {
    const { code, output } = await runFixture('close');
    assert.equal(code, 0, output);
    assert.match(output, /survived/);
  });

  void test('the watchdog giving up on an unanswered handshake does not crash the process', { timeout: 4 * WAIT_MS }, async () => {
    const { code, output } = await runFixture('watchdog');
    assert.equal(code, 0, output);
    assert.match(output, /survived/);
  });
});
