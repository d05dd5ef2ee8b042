/**
 * WS_HANDSHAKE_TIMEOUT (handshakeTimeout) over real sockets: a request or WebSocket
 * upgrade that has not arrived in full within it is answered 408 and its socket closed,
 * whatever the peer does (sends half, trickles, sends nothing, never closes its side);
 * slow but complete handshakes, upgraded WebSockets and keep-alive connections between
 * requests are left alone. The bounds below are liveness bounds (something must happen
 * at all), never a measure of speed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { requestTimeouts, tlsHandshakeTimeout } from '../../src/http/request-limits.js';
import { TestClient, eventually, isMessageOn, settle } from '../helpers/client.js';
import { cliEnv, runCli, spawnCli, tempDir, within } from '../helpers/cli.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** Long enough for anything that must happen on a loaded machine; a hang fails the test instead of the run. */
const LIVENESS_MS = 15_000;
const SUITE = { timeout: 60_000 };

const UPGRADE_REQUEST = [
  'GET / HTTP/1.1',
  'Host: 127.0.0.1',
  'Upgrade: websocket',
  'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version: 13',
  '',
  '',
].join('\r\n');
/** The upgrade request without the blank line that ends its headers. */
const HALF_UPGRADE = UPGRADE_REQUEST.slice(0, UPGRADE_REQUEST.indexOf('Sec-WebSocket-Key'));

interface RawPeer {
  socket: Socket;
  /** Everything the server sent, once the socket has closed. */
  closed: Promise<string>;
}

/** A TCP connection that sends `text` (possibly nothing) and then nothing more. */
async function rawPeer(t: TestContext, port: number, text: string, options: { allowHalfOpen?: boolean } = {}): Promise<RawPeer> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  // A reset after the answer is a close like another here.
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (text !== '') socket.write(text, 'latin1');
  return { socket, closed };
}

function assert408(answer: string): void {
  assert.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/, `answer: ${JSON.stringify(answer)}`);
  assert.match(answer, /\r\nContent-Type: application\/json\r\n/);
  assert.match(answer, /\r\nConnection: close\r\n/);
  assert.ok(answer.endsWith('\r\n\r\n{"error":"request timeout"}'), `answer: ${JSON.stringify(answer)}`);
}

/** Sockets the server holds (WebSockets included). */
function connectionsOf(server: TestServer): Promise<number> {
  return new Promise((resolve, reject) => server.server.httpServer.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

async function serverWith(t: TestContext, handshakeTimeout: number, extra: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  const server = await startServer({ handshakeTimeout, ...extra });
  t.after(() => server.close());
  return server;
}

void describe('requests that do not arrive in full', SUITE, () => {
  void test('half an upgrade request is answered 408 and its socket closed', async (t) => {
    const server = await serverWith(t, 0.5);
    const peer = await rawPeer(t, server.port, HALF_UPGRADE);
    assert408(await within(peer.closed, LIVENESS_MS, 'the half-sent handshake to be closed'));
  });

  void test('a connection that sends nothing is answered 408 and closed', async (t) => {
    const server = await serverWith(t, 0.5);
    const peer = await rawPeer(t, server.port, '');
    assert408(await within(peer.closed, LIVENESS_MS, 'the silent connection to be closed'));
  });

  void test('a peer trickling its headers a byte at a time is cut all the same: the bound is for the whole request, not for silence', async (t) => {
    const server = await serverWith(t, 0.5);
    const peer = await rawPeer(t, server.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    let stop = false;
    const trickle = (async () => {
      // Endless headers, one byte every 50 ms: never silent for long, never complete.
      for (let index = 1; !stop && !peer.socket.destroyed; index++) {
        peer.socket.write(index % 40 === 0 ? '\r\nX-Slow: ' : 'a');
        await sleep(50);
      }
    })();
    t.after(() => (stop = true));
    assert408(await within(peer.closed, LIVENESS_MS, 'the trickling handshake to be closed'));
    stop = true;
    await trickle;
  });

  void test('a request whose body never finishes is answered 408 and closed', async (t) => {
    const server = await serverWith(t, 0.5, { apiKey: 'key' });
    const head = 'POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer key\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';
    const peer = await rawPeer(t, server.port, `${head}{"channel":`);
    assert408(await within(peer.closed, LIVENESS_MS, 'the request with an unfinished body to be closed'));
  });

  void test('a peer that never closes its side does not keep its socket on the server', async (t) => {
    const server = await serverWith(t, 0.5);
    const peers = [await rawPeer(t, server.port, HALF_UPGRADE, { allowHalfOpen: true }), await rawPeer(t, server.port, '', { allowHalfOpen: true })];
    assert.equal(await connectionsOf(server), 2);
    // After its answer the server waits a little for the peer to close, then closes anyway.
    await eventually(() => peers.every((peer) => peer.socket.readableEnded), LIVENESS_MS, 'both answers to end');
    let held = -1;
    const poll = setInterval(() => void connectionsOf(server).then((count) => (held = count)), 50);
    t.after(() => clearInterval(poll));
    await eventually(() => held === 0, LIVENESS_MS, 'the server to let go of both sockets');
  });

  void test('200 half-sent handshakes are all closed, and the server serves a normal client meanwhile', async (t) => {
    const server = await serverWith(t, 1);
    const peers = await Promise.all(Array.from({ length: 200 }, () => rawPeer(t, server.port, HALF_UPGRADE)));
    const alice = await TestClient.connect(server.url);
    t.after(() => alice.close());
    await alice.subscribe('chat.room.1');
    // The delivery may come before the ack: wait for it from before the publish.
    const delivered = alice.next(isMessageOn('chat.room.1'));
    await alice.publish('chat.room.1', { text: 'still here' });
    assert.deepEqual((await delivered).message, { text: 'still here' });
    const answers = await within(Promise.all(peers.map((peer) => peer.closed)), LIVENESS_MS, 'all 200 half-sent handshakes to be closed');
    for (const answer of answers) assert408(answer);
    await eventually(() => alice.socket.readyState === alice.socket.OPEN, LIVENESS_MS);
    await settle(alice);
    assert.equal(await connectionsOf(server), 1, 'only the WebSocket is left');
  });
});

void describe('what the timeout leaves alone', SUITE, () => {
  void test('a handshake that arrives slowly but in full within the timeout is accepted', async (t) => {
    const server = await serverWith(t, 5);
    const socket = connect({ host: '127.0.0.1', port: server.port });
    t.after(() => socket.destroy());
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const pieces = UPGRADE_REQUEST.match(/[\s\S]{1,12}/g) ?? [];
    for (const piece of pieces) {
      socket.write(piece);
      await sleep(20);
    }
    await eventually(() => received.includes('"action":"welcome"'), LIVENESS_MS, 'the welcome frame');
    assert.match(received, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  });

  void test('a WebSocket outlives the timeout: it is no longer a request', async (t) => {
    const server = await serverWith(t, 0.5);
    const client = await TestClient.connect(server.url);
    t.after(() => client.close());
    // Several times the timeout and Node's check interval.
    await sleep(2000);
    await settle(client);
    assert.equal(client.socket.readyState, client.socket.OPEN);
  });

  void test('a keep-alive connection idle between two API requests for longer than the timeout serves both', async (t) => {
    const server = await serverWith(t, 0.5, { apiKey: 'key' });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const get = (): Promise<{ status: number; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const outgoing = httpRequest(`${server.httpUrl}/api/stats`, { agent, headers: { Authorization: 'Bearer key' } }, (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, reused: outgoing.reusedSocket }));
        });
        outgoing.on('error', reject);
        outgoing.end();
      });
    assert.deepEqual(await get(), { status: 200, reused: false });
    // Longer than the timeout, well within Node's keep-alive timeout (5 s).
    await sleep(1500);
    assert.deepEqual(await get(), { status: 200, reused: true });
  });
});

void describe('over TLS', SUITE, () => {
  let dir = '';
  let tls = { cert: '', key: '' };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
    tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tls.key, '-out', tls.cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void test('a TCP connection that never starts its TLS handshake is closed', async (t) => {
    const server = await serverWith(t, 0.5, { ssl: { enabled: true, ...tls } });
    const peer = await rawPeer(t, server.port, '');
    assert.equal(await within(peer.closed, LIVENESS_MS, 'the silent TLS connection to be closed'), '');
  });

  void test('a TLS handshake trickled a byte at a time is closed', async (t) => {
    const server = await serverWith(t, 0.5, { ssl: { enabled: true, ...tls } });
    // The start of a ClientHello record, then its body one byte every 50 ms, never complete.
    const peer = await rawPeer(t, server.port, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03');
    let stop = false;
    t.after(() => (stop = true));
    const trickle = (async () => {
      while (!stop && !peer.socket.destroyed) {
        peer.socket.write(Buffer.of(0));
        await sleep(50);
      }
    })();
    await within(peer.closed, LIVENESS_MS, 'the trickling TLS handshake to be closed');
    stop = true;
    await trickle;
  });
});

void describe('the setting', SUITE, () => {
  void test('seconds become Node\'s header and request timeouts, checked a few times per timeout and at least once a second', () => {
    assert.deepEqual(requestTimeouts(10), { headersTimeout: 10_000, requestTimeout: 10_000, connectionsCheckingInterval: 1000 });
    assert.deepEqual(requestTimeouts(0.5), { headersTimeout: 500, requestTimeout: 500, connectionsCheckingInterval: 125 });
    // 0 would switch Node's timeouts off.
    assert.equal(requestTimeouts(0.0001).headersTimeout, 1);
    assert.equal(tlsHandshakeTimeout(0.0001), 1);
    assert.equal(tlsHandshakeTimeout(2.5), 2500);
  });

  void test('the default, 10 s, is what the server is made with', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const http = server.server.httpServer as typeof server.server.httpServer & { connectionsCheckingInterval: number };
    assert.equal(server.handler.options.handshakeTimeout, 10);
    assert.deepEqual([http.headersTimeout, http.requestTimeout, http.connectionsCheckingInterval], [10_000, 10_000, 1000]);
  });

  void test('the largest value the option takes is one Node accepts', async (t) => {
    const server = await serverWith(t, 2_147_483);
    assert.equal(server.server.httpServer.headersTimeout, 2_147_483_000);
    const client = await TestClient.connect(server.url);
    t.after(() => client.close());
    await settle(client);
  });

  void test('WS_HANDSHAKE_TIMEOUT reaches the CLI\'s server, and check-config shows it', async (t) => {
    const cwd = tempDir(t);
    const shown = async (env: Record<string, string>): Promise<string | undefined> => {
      const result = await runCli(t, ['check-config'], { cwd, env: cliEnv(env) });
      assert.equal(result.code, 0, result.stderr);
      return /^\s+WS_HANDSHAKE_TIMEOUT\s+(\S+)\s+\(handshakeTimeout\)$/m.exec(result.stdout)?.[1];
    };
    assert.equal(await shown({}), '10');
    assert.equal(await shown({ WS_HANDSHAKE_TIMEOUT: '0.5' }), '0.5');

    const cli = spawnCli(t, ['start'], { cwd, env: cliEnv({ WS_HOST: '127.0.0.1', WS_PORT: '0', WS_HANDSHAKE_TIMEOUT: '0.5' }) });
    const port = Number(new URL(await cli.listeningUrl()).port);
    const peer = await rawPeer(t, port, HALF_UPGRADE);
    assert408(await within(peer.closed, LIVENESS_MS, 'the CLI server to close the half-sent handshake'));
  });
});
