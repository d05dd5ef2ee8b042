/**
 * The application API of WebSocketHandler (SPEC §1 "Library API"): lifecycle hooks,
 * custom actions, publishing and attaching to an existing HTTP server, exercised over
 * real WebSocket connections.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { SwitchboardError } from '../../src/errors.js';
import { WebSocketHandler, type HandlerOptions } from '../../src/handler.js';
import { ErrorCode, ErrorText } from '../../src/codes.js';
import { refusedHandshake } from '../helpers/http.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** No heartbeat pings during a test (they would be extra frames) and no rate limit. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0 };

async function start(t: TestContext, setup: (handler: WebSocketHandler) => void, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, ...options }, setup);
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, url: string): Promise<TestClient> {
  const client = await TestClient.connect(url);
  t.after(() => client.close());
  return client;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/** Rejects when `promise` has not settled within a generous time, so a missing call fails instead of hanging. */
function within<T>(promise: Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const isError = (frame: Frame): boolean => frame.type === 'error';
const withId =
  (id: unknown) =>
  (frame: Frame): boolean =>
    frame.id === id;

/** Waits until a matching frame has arrived, including frames a `request` skipped over. */
async function arrival(client: TestClient, predicate: (frame: Frame) => boolean): Promise<Frame> {
  await eventually(() => client.frames.some(predicate), 5000, 'a matching frame');
  return client.frames.find(predicate) as Frame;
}

/**
 * Proves the server has received every frame this client sent before: `ws` answers a
 * ping control frame as soon as it reads it, without waiting behind the connection's
 * pending requests, and frames of one connection are read in order.
 */
async function receivedByServer(client: TestClient): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no pong control frame within 5000 ms')), 5000);
    client.socket.once('pong', () => {
      clearTimeout(timer);
      resolve();
    });
    client.socket.ping();
  });
}

describe('onConnect', () => {
  test('onConnect runs once for each connection, with its connection id', async (t) => {
    const seen: string[] = [];
    const server = await start(t, (handler) => handler.onConnect((connection) => void seen.push(connection.id)));
    const clients = [await connect(t, server.url), await connect(t, server.url), await connect(t, server.url)];
    const ids = clients.map((client) => client.welcome.connection_id as string);
    await eventually(() => seen.length >= 3, 5000, 'three onConnect calls');
    await Promise.all(clients.map(settle));
    assert.deepEqual([...seen].sort(), [...ids].sort());
  });

  test('an async onConnect runs to completion for each connection', async (t) => {
    const finished: string[] = [];
    const server = await start(t, (handler) =>
      handler.onConnect(async (connection) => {
        await new Promise((resolve) => setImmediate(resolve));
        finished.push(connection.id);
      }),
    );
    const clients = [await connect(t, server.url), await connect(t, server.url)];
    await eventually(() => finished.length >= 2, 5000, 'two async onConnect calls');
    assert.deepEqual([...finished].sort(), clients.map((client) => client.welcome.connection_id as string).sort());
  });

  test('frames sent right after connecting are handled after an async onConnect finishes', async (t) => {
    const gate = deferred();
    const server = await start(t, (handler) => {
      handler.onConnect(async (connection) => {
        await gate.promise;
        connection.data.ready = true;
      });
      handler.onAction('ready', (context) => context.connection.data.ready === true);
    });
    const client = await connect(t, server.url);
    client.send({ action: 'ready', id: 'r' });
    await receivedByServer(client);
    assert.equal(client.received(withId('r')).length, 0, 'no reply while onConnect is pending');
    gate.resolve();
    assert.deepEqual(await client.next(withId('r')), { success: true, action: 'ready', data: true, id: 'r' });
  });

  test('connection.send from onConnect reaches the client after the welcome', async (t) => {
    const server = await start(t, (handler) => handler.onConnect((connection) => connection.send({ action: 'greeting', to: connection.id })));
    const client = await connect(t, server.url);
    const greeting = await client.next((frame) => frame.action === 'greeting');
    assert.deepEqual(greeting, { action: 'greeting', to: client.welcome.connection_id });
    assert.equal(client.frames.indexOf(client.welcome), 0);
  });

  test('a throwing onConnect yields INTERNAL_ERROR to that client, which stays connected', async (t) => {
    const server = await start(t, (handler) =>
      handler.onConnect(() => {
        throw new Error('connect hook exploded');
      }),
    );
    const client = await connect(t, server.url);
    const error = await client.next(isError);
    assert.deepEqual(error, { type: 'error', success: false, code: ErrorCode.INTERNAL_ERROR, error: ErrorText.INTERNAL_ERROR, action: null });
    assert.equal((await client.subscribe('chat.room.1')).success, true);
  });
});

describe('onDisconnect', () => {
  test('onDisconnect receives the close code and reason the client sent', async (t) => {
    const closed = deferred<{ id: string; close: { code: number; reason: string } }>();
    const server = await start(t, (handler) => handler.onDisconnect((connection, close) => closed.resolve({ id: connection.id, close })));
    const client = await connect(t, server.url);
    client.socket.close(4100, 'bye');
    assert.deepEqual(await within(closed.promise, 'onDisconnect'), { id: client.welcome.connection_id, close: { code: 4100, reason: 'bye' } });
  });

  test('onDisconnect receives the code the server closed the connection with', async (t) => {
    const closed = deferred<number>();
    const server = await start(t, (handler) => {
      handler.onDisconnect((_connection, close) => closed.resolve(close.code));
      handler.onAction('leave', (context) => context.connection.close(4400, 'asked to leave'));
    });
    const client = await connect(t, server.url);
    client.send({ action: 'leave' });
    assert.equal(await within(closed.promise, 'onDisconnect'), 4400);
    assert.deepEqual(await within(client.closed, 'the close frame'), { code: 4400, reason: 'asked to leave' });
  });
});

describe('onSubscribe', () => {
  test('onSubscribe is called with the connection and the channel name', async (t) => {
    const calls: Array<[string, string]> = [];
    const server = await start(t, (handler) => handler.onSubscribe((connection, channel) => void calls.push([connection.id, channel])));
    const client = await connect(t, server.url);
    await client.subscribe('chat.room.1');
    assert.deepEqual(calls, [[client.welcome.connection_id, 'chat.room.1']]);
  });

  test('onSubscribe returning true or nothing allows the subscription', async (t) => {
    const server = await start(t, (handler) => {
      handler.onSubscribe(() => true);
      handler.onSubscribe(() => undefined);
    });
    const client = await connect(t, server.url);
    assert.deepEqual(await client.subscribe('chat.room.1'), { success: true, action: 'subscribe', channel: 'chat.room.1', id: 1 });
  });

  test('onSubscribe returning false refuses with FORBIDDEN and the request id', async (t) => {
    const server = await start(t, (handler) => handler.onSubscribe(() => false));
    const client = await connect(t, server.url);
    const reply = await client.subscribe('chat.room.1');
    assert.equal(reply.code, ErrorCode.FORBIDDEN);
    assert.equal(reply.action, 'subscribe');
    assert.equal(reply.id, 1);
    assert.equal(typeof reply.error, 'string');
    assert.notEqual(reply.error, '');
  });

  test('onSubscribe returning a string refuses with FORBIDDEN and that string as the text', async (t) => {
    const server = await start(t, (handler) => handler.onSubscribe((_connection, channel) => `members only: ${channel}`));
    const client = await connect(t, server.url);
    assert.deepEqual(await client.subscribe('club.vip'), {
      type: 'error',
      success: false,
      code: ErrorCode.FORBIDDEN,
      error: 'members only: club.vip',
      action: 'subscribe',
      id: 1,
    });
  });

  test('a client refused by onSubscribe receives nothing from that channel', async (t) => {
    const server = await start(t, (handler) => handler.onSubscribe((_connection, channel) => channel !== 'secret'));
    const client = await connect(t, server.url);
    assert.equal((await client.subscribe('secret')).code, ErrorCode.FORBIDDEN);
    await client.subscribe('open');
    assert.equal(await server.handler.publish('secret', 'hidden'), 0);
    // Written to the socket after the message on 'secret' would have been.
    await server.handler.publish('open', 'marker');
    await client.next(isMessageOn('open'));
    assert.equal(client.received(isMessageOn('secret')).length, 0);
  });

  test('an async onSubscribe delays the subscribe ack until it resolves', async (t) => {
    const gate = deferred();
    const server = await start(t, (handler) =>
      handler.onSubscribe(async () => {
        await gate.promise;
      }),
    );
    const client = await connect(t, server.url);
    client.send({ action: 'subscribe', data: { channel: 'chat.room.1' }, id: 's' });
    await receivedByServer(client);
    assert.equal(client.received(withId('s')).length, 0, 'no ack while onSubscribe is pending');
    gate.resolve();
    assert.deepEqual(await client.next(withId('s')), { success: true, action: 'subscribe', channel: 'chat.room.1', id: 's' });
  });

  test('a message sent right after subscribe waits for an async onSubscribe and is accepted', async (t) => {
    const gate = deferred();
    const server = await start(t, (handler) =>
      handler.onSubscribe(async () => {
        await gate.promise;
      }),
    );
    const client = await connect(t, server.url);
    client.send({ action: 'subscribe', data: { channel: 'chat.room.1' }, id: 's' });
    client.send({ action: 'message', data: { channel: 'chat.room.1', message: 'right away' }, id: 'm' });
    await receivedByServer(client);
    gate.resolve();
    assert.deepEqual(await client.next(withId('m')), {
      success: true,
      action: 'message_sent',
      channel: 'chat.room.1',
      recipients_count: 1,
      id: 'm',
    });
    assert.equal((await arrival(client, isMessageOn('chat.room.1'))).message, 'right away');
  });
});

describe('onMessage', () => {
  test('onMessage is called with the connection, the channel, the message and the recipients', async (t) => {
    const calls: Array<{ id: string; channel: string; message: unknown; recipients: readonly string[] | null }> = [];
    const server = await start(t, (handler) => handler.onMessage((connection, outgoing) => void calls.push({ id: connection.id, ...outgoing })));
    const client = await connect(t, server.url);
    await client.subscribe('chat.room.1');
    await client.publish('chat.room.1', { text: 'one' });
    await client.publish('chat.room.1', 'two', { recipients: [7, 'eight'] });
    const id = client.welcome.connection_id as string;
    assert.deepEqual(calls, [
      { id, channel: 'chat.room.1', message: { text: 'one' }, recipients: null },
      { id, channel: 'chat.room.1', message: 'two', recipients: ['7', 'eight'] },
    ]);
  });

  test('onMessage returning false refuses with FORBIDDEN and the request id', async (t) => {
    const server = await start(t, (handler) => handler.onMessage(() => false));
    const client = await connect(t, server.url);
    await client.subscribe('chat.room.1');
    const reply = await client.publish('chat.room.1', 'spam');
    assert.equal(reply.code, ErrorCode.FORBIDDEN);
    assert.equal(reply.action, 'message');
    assert.equal(reply.id, 2);
  });

  test('onMessage returning a string refuses with FORBIDDEN and that string as the text', async (t) => {
    const server = await start(t, (handler) => handler.onMessage(() => 'no shouting'));
    const client = await connect(t, server.url);
    await client.subscribe('chat.room.1');
    assert.deepEqual(await client.publish('chat.room.1', 'HELLO'), {
      type: 'error',
      success: false,
      code: ErrorCode.FORBIDDEN,
      error: 'no shouting',
      action: 'message',
      id: 2,
    });
  });

  test('a message refused by onMessage is delivered to nobody', async (t) => {
    const server = await start(t, (handler) => handler.onMessage((_connection, outgoing) => outgoing.message !== 'spam'));
    const sender = await connect(t, server.url);
    const subscriber = await connect(t, server.url);
    await sender.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    assert.equal((await sender.publish('chat.room.1', 'spam')).code, ErrorCode.FORBIDDEN);
    await sender.publish('chat.room.1', 'marker');
    await subscriber.next(isMessageOn('chat.room.1'));
    await arrival(sender, isMessageOn('chat.room.1'));
    for (const client of [sender, subscriber]) {
      assert.deepEqual(
        client.received(isMessageOn('chat.room.1')).map((frame) => frame.message),
        ['marker'],
      );
    }
  });

  test('onMessage returning {message} replaces what every subscriber receives', async (t) => {
    const server = await start(t, (handler) =>
      handler.onMessage((_connection, outgoing) => ({ message: { wrapped: outgoing.message, by: 'hook' } })),
    );
    const sender = await connect(t, server.url);
    const subscriber = await connect(t, server.url);
    await sender.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    assert.equal((await sender.publish('chat.room.1', 'raw')).recipients_count, 2);
    const expected = { wrapped: 'raw', by: 'hook' };
    assert.deepEqual((await subscriber.next(isMessageOn('chat.room.1'))).message, expected);
    assert.deepEqual((await arrival(sender, isMessageOn('chat.room.1'))).message, expected);
  });

  test('an async onMessage that rejects yields INTERNAL_ERROR and delivers nothing', async (t) => {
    const server = await start(t, (handler) =>
      handler.onMessage(async (_connection, outgoing) => {
        await Promise.resolve();
        if (outgoing.message === 'boom') throw new Error('message hook exploded');
      }),
    );
    const sender = await connect(t, server.url);
    const subscriber = await connect(t, server.url);
    await sender.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    assert.deepEqual(await sender.publish('chat.room.1', 'boom'), {
      type: 'error',
      success: false,
      code: ErrorCode.INTERNAL_ERROR,
      error: ErrorText.INTERNAL_ERROR,
      action: 'message',
      id: 2,
    });
    await sender.publish('chat.room.1', 'marker');
    await subscriber.next(isMessageOn('chat.room.1'));
    assert.deepEqual(
      subscriber.received(isMessageOn('chat.room.1')).map((frame) => frame.message),
      ['marker'],
    );
  });
});

describe('hook errors', () => {
  const throwOnBoom = (handler: WebSocketHandler): void => {
    handler.onSubscribe((_connection, channel) => {
      if (channel === 'boom') throw new Error('subscribe hook exploded');
    });
  };

  test('a throwing onSubscribe yields INTERNAL_ERROR with the request id', async (t) => {
    const server = await start(t, throwOnBoom);
    const client = await connect(t, server.url);
    client.send({ action: 'subscribe', data: { channel: 'boom' }, id: 'b' });
    assert.deepEqual(await client.next(withId('b')), {
      type: 'error',
      success: false,
      code: ErrorCode.INTERNAL_ERROR,
      error: ErrorText.INTERNAL_ERROR,
      action: 'subscribe',
      id: 'b',
    });
  });

  test('a hook error is sent to the requesting client only', async (t) => {
    const server = await start(t, throwOnBoom);
    const culprit = await connect(t, server.url);
    const bystander = await connect(t, server.url);
    await bystander.subscribe('chat.room.1');
    assert.equal((await culprit.subscribe('boom')).code, ErrorCode.INTERNAL_ERROR);
    await settle(bystander);
    assert.equal(bystander.received(isError).length, 0);
  });

  test('after a hook throws, the server keeps serving that client and the others', async (t) => {
    const server = await start(t, throwOnBoom);
    const culprit = await connect(t, server.url);
    const bystander = await connect(t, server.url);
    await bystander.subscribe('chat.room.1');
    assert.equal((await culprit.subscribe('boom')).code, ErrorCode.INTERNAL_ERROR);
    assert.equal((await culprit.subscribe('chat.room.1')).success, true);
    assert.equal((await culprit.publish('chat.room.1', 'still alive')).recipients_count, 2);
    assert.equal((await bystander.next(isMessageOn('chat.room.1'))).message, 'still alive');
    const latecomer = await connect(t, server.url);
    assert.equal((await latecomer.subscribe('chat.room.1')).success, true);
  });

  test('a hook throwing SwitchboardError sends its code and text', async (t) => {
    const server = await start(t, (handler) =>
      handler.onSubscribe(() => {
        throw new SwitchboardError(ErrorCode.UNAUTHORIZED, 'log in to join');
      }),
    );
    const client = await connect(t, server.url);
    assert.deepEqual(await client.subscribe('chat.room.1'), {
      type: 'error',
      success: false,
      code: ErrorCode.UNAUTHORIZED,
      error: 'log in to join',
      action: 'subscribe',
      id: 1,
    });
  });
});

describe('onAction', () => {
  test('a custom action receives the data the client sent, the request id and the connection', async (t) => {
    const calls: Array<{ data: unknown; id: unknown; connection: string }> = [];
    const server = await start(t, (handler) =>
      handler.onAction('typing', (context, data) => void calls.push({ data, id: context.id, connection: context.connection.id })),
    );
    const client = await connect(t, server.url);
    client.send({ action: 'typing', data: { channel: 'chat.room.1', on: true }, id: 't1' });
    client.send({ action: 'typing', data: [1, 'two'] });
    client.send({ action: 'typing' });
    await settle(client);
    const connection = client.welcome.connection_id as string;
    assert.deepEqual(calls, [
      { data: { channel: 'chat.room.1', on: true }, id: 't1', connection },
      { data: [1, 'two'], id: null, connection },
      { data: undefined, id: null, connection },
    ]);
  });

  test('a custom action result is sent back as {success, action, data, id}', async (t) => {
    const server = await start(t, (handler) => handler.onAction('sum', (_context, data) => (data as number[]).reduce((a, b) => a + b, 0)));
    const client = await connect(t, server.url);
    assert.deepEqual(await client.request('sum', [1, 2, 3]), { success: true, action: 'sum', data: 6, id: 1 });
  });

  test('an async custom action sends back the value it resolves with', async (t) => {
    const server = await start(t, (handler) =>
      handler.onAction('lookup', async (_context, data) => {
        await new Promise((resolve) => setImmediate(resolve));
        return { found: data };
      }),
    );
    const client = await connect(t, server.url);
    assert.deepEqual(await client.request('lookup', 'key'), { success: true, action: 'lookup', data: { found: 'key' }, id: 1 });
  });

  test('a custom action returning undefined sends no reply', async (t) => {
    let called = 0;
    const server = await start(t, (handler) =>
      handler.onAction('fire', () => {
        called++;
      }),
    );
    const client = await connect(t, server.url);
    const before = client.frames.length;
    client.send({ action: 'fire', id: 'f' });
    await settle(client);
    assert.equal(called, 1);
    const after = client.frames.slice(before);
    assert.deepEqual(
      after.map((frame) => frame.action),
      ['pong'],
      `frames after the action: ${JSON.stringify(after)}`,
    );
  });

  test('a throwing custom action yields INTERNAL_ERROR with the request id', async (t) => {
    const server = await start(t, (handler) =>
      handler.onAction('explode', () => {
        throw new Error('action exploded');
      }),
    );
    const client = await connect(t, server.url);
    assert.deepEqual(await client.request('explode'), {
      type: 'error',
      success: false,
      code: ErrorCode.INTERNAL_ERROR,
      error: ErrorText.INTERNAL_ERROR,
      action: 'explode',
      id: 1,
    });
    assert.equal((await client.subscribe('chat.room.1')).success, true);
  });

  test('a custom action throwing SwitchboardError sends its code and text', async (t) => {
    const server = await start(t, (handler) =>
      handler.onAction('join-game', () => {
        throw new SwitchboardError(ErrorCode.FORBIDDEN, 'the game is full');
      }),
    );
    const client = await connect(t, server.url);
    assert.deepEqual(await client.request('join-game'), {
      type: 'error',
      success: false,
      code: ErrorCode.FORBIDDEN,
      error: 'the game is full',
      action: 'join-game',
      id: 1,
    });
  });

  test('a requireAuth custom action answers UNAUTHORIZED on an anonymous connection without running', async (t) => {
    let called = 0;
    const server = await start(t, (handler) => handler.onAction('secret', () => ++called, { requireAuth: true }));
    const client = await connect(t, server.url);
    const reply = await client.request('secret', { x: 1 });
    assert.equal(reply.type, 'error');
    assert.equal(reply.code, ErrorCode.UNAUTHORIZED);
    assert.equal(reply.action, 'secret');
    assert.equal(reply.id, 1);
    assert.equal(called, 0);
  });

  test('registering a custom action under a built-in name throws', () => {
    const handler = new WebSocketHandler(QUIET);
    for (const name of ['subscribe', 'unsubscribe', 'message', 'ping', 'pong', 'auth', 'presence', 'history']) {
      assert.throws(() => handler.onAction(name, () => undefined), Error, `onAction('${name}')`);
    }
  });

  test('an action nobody registered is still UNKNOWN_ACTION when custom actions exist', async (t) => {
    const server = await start(t, (handler) => handler.onAction('typing', () => true));
    const client = await connect(t, server.url);
    const reply = await client.request('typo');
    assert.equal(reply.code, ErrorCode.UNKNOWN_ACTION);
    assert.equal(reply.error, 'Unknown action: typo');
  });

  test('connection.send from a custom action reaches the client', async (t) => {
    const server = await start(t, (handler) =>
      handler.onAction('notify-me', (context) => {
        context.connection.send({ action: 'notice', text: 'sent by the action' });
      }),
    );
    const client = await connect(t, server.url);
    client.send({ action: 'notify-me' });
    assert.deepEqual(await client.next((frame) => frame.action === 'notice'), { action: 'notice', text: 'sent by the action' });
  });

  test('context.handler lets a custom action publish to a channel', async (t) => {
    const server = await start(t, (handler) =>
      handler.onAction('announce', async (context, data) => ({ recipients: await context.handler.publish('news', data) })),
    );
    const listener = await connect(t, server.url);
    await listener.subscribe('news');
    const caller = await connect(t, server.url);
    assert.deepEqual(await caller.request('announce', 'big news'), { success: true, action: 'announce', data: { recipients: 1 }, id: 1 });
    const frame = await listener.next(isMessageOn('news'));
    assert.equal(frame.message, 'big news');
    assert.equal(frame.sender, null);
  });
});

describe('attach to an existing HTTP server', () => {
  interface App {
    http: HttpServer;
    handler: WebSocketHandler;
    port: number;
  }

  /** A plain node:http application with its own route, and a handler attached at /ws. */
  async function startApp(t: TestContext, setup?: (http: HttpServer) => void): Promise<App> {
    const http = createHttpServer((request, response) => {
      if (request.url === '/hello') {
        response.writeHead(200, { 'Content-Type': 'text/plain' });
        response.end('hello from the app');
        return;
      }
      response.writeHead(404, { 'Content-Type': 'text/plain' });
      response.end('app: not found');
    });
    const handler = new WebSocketHandler({ ...QUIET, shutdownTimeout: 1 });
    handler.attach(http, { path: '/ws' });
    setup?.(http);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      await handler.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });
    return { http, handler, port: (http.address() as AddressInfo).port };
  }

  test('attach accepts WebSocket upgrades on the given path of an existing http server', async (t) => {
    const app = await startApp(t);
    const client = await connect(t, `ws://127.0.0.1:${app.port}/ws`);
    assert.equal(client.welcome.action, 'welcome');
    assert.equal((await client.subscribe('chat.room.1')).success, true);
    assert.equal(await app.handler.publish('chat.room.1', 'over attach'), 1);
    assert.equal((await client.next(isMessageOn('chat.room.1'))).message, 'over attach');
  });

  test("attach leaves the application's own HTTP routes answering", async (t) => {
    const app = await startApp(t);
    const client = await connect(t, `ws://127.0.0.1:${app.port}/ws`);
    const response = await fetch(`http://127.0.0.1:${app.port}/hello`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'hello from the app');
    await settle(client);
  });

  test('attach refuses an upgrade on another path with HTTP 404 when nothing else listens for upgrades', async (t) => {
    const app = await startApp(t);
    const answer = await refusedHandshake(`ws://127.0.0.1:${app.port}/elsewhere`);
    assert.equal(answer.status, 404);
    const body = JSON.parse(answer.body) as { error?: unknown };
    assert.equal(typeof body.error, 'string');
  });

  test('attach leaves an upgrade on another path to another upgrade listener', async (t) => {
    const app = await startApp(t, (http) =>
      http.on('upgrade', (request, socket) => {
        if (request.url === '/legacy') socket.end('HTTP/1.1 418 I\'m a Teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }),
    );
    const answer = await refusedHandshake(`ws://127.0.0.1:${app.port}/legacy`);
    assert.equal(answer.status, 418);
  });
});

describe('reply order', () => {
  test('replies come in the order the frames were sent, even behind a pending async hook', async (t) => {
    const gate = deferred();
    const server = await start(t, (handler) => handler.onSubscribe(() => gate.promise));
    const client = await connect(t, server.url);
    const before = client.frames.length;
    client.send({ action: 'subscribe', data: { channel: 'slow' }, id: 'first' });
    client.sendRaw('not json');
    client.send({ action: 'nope', id: 'third' });
    client.send({ action: 'ping', id: 'fourth' });
    await receivedByServer(client);
    gate.resolve();
    await within(client.next(withId('fourth')), 'the pong');
    const replies = client.frames.slice(before).map((frame) => frame.id ?? frame.code);
    assert.deepEqual(replies, ['first', ErrorCode.INVALID_JSON, 'third', 'fourth']);
  });
});
