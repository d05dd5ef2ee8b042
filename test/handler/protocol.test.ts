/**
 * The wire protocol of SPEC §2, spoken over real WebSocket connections to a real server
 * on 127.0.0.1 and a free port. Nothing here holds credentials: every connection is
 * anonymous.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { HandlerOptions } from '../../src/handler.js';
import { SwitchboardError } from '../../src/errors.js';
import { ErrorCode, ErrorText } from '../../src/codes.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * No heartbeat pings during a test (they would be extra frames), and no rate limit unless a
 * test is about it: several tests send hundreds of frames.
 */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0 };

/** Generous: these waits are for things that must happen, on a shared, noisy machine. */
const LONG_WAIT_MS = 20_000;

async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...QUIET, ...options });
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, server: TestServer): Promise<TestClient> {
  const client = await TestClient.connect(server.url);
  t.after(() => client.close());
  return client;
}

interface ExpectedError {
  code: string;
  action: string | null;
  /** The request id the error must echo; when absent the frame must carry no `id`. */
  id?: string | number;
  /** Exact text, or a pattern the text must match; otherwise any non-empty text. */
  error?: string | RegExp;
}

/** Asserts SPEC §2's error frame: exactly {type, success, code, error, action, id?}. */
function assertErrorFrame(frame: Frame, expected: ExpectedError): void {
  const keys = ['action', 'code', 'error', 'success', 'type', ...(expected.id === undefined ? [] : ['id'])].sort();
  assert.deepEqual(Object.keys(frame).sort(), keys, `error frame fields of ${JSON.stringify(frame)}`);
  assert.equal(frame.type, 'error');
  assert.equal(frame.success, false);
  assert.equal(frame.code, expected.code);
  assert.equal(frame.action, expected.action);
  if (expected.id !== undefined) assert.equal(frame.id, expected.id);
  assert.equal(typeof frame.error, 'string');
  if (typeof expected.error === 'string') assert.equal(frame.error, expected.error);
  else if (expected.error !== undefined) assert.match(frame.error as string, expected.error);
  else assert.notEqual(frame.error, '');
}

const isError = (frame: Frame): boolean => frame.type === 'error';

/**
 * Waits until a matching frame has arrived, wherever it is among the frames received.
 * Unlike `client.next`, it also finds frames that a `request` skipped over while waiting
 * for its reply (a publisher's own copy of a message arrives before its ack).
 */
async function arrival(client: TestClient, predicate: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
  await eventually(() => client.frames.some(predicate), timeoutMs, 'a matching frame');
  return client.frames.find(predicate) as Frame;
}
const messagesOn = (client: TestClient, channel: string): unknown[] => client.received(isMessageOn(channel)).map((frame) => frame.message);
const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index);

/** One of every kind of frame the server must refuse without closing the connection. */
interface BadFrame {
  kind: string;
  payload: string | Buffer;
  code: ErrorCode;
}
const BAD_FRAMES: readonly BadFrame[] = [
  { kind: 'a frame that is not JSON', payload: '{"action": "ping"', code: ErrorCode.INVALID_JSON },
  { kind: 'a JSON value that is not an object', payload: '[1, 2, 3]', code: ErrorCode.INVALID_MESSAGE },
  { kind: 'a frame without action', payload: '{"data": {}}', code: ErrorCode.INVALID_MESSAGE },
  { kind: 'a frame with an unknown field', payload: '{"action": "ping", "extra": 1}', code: ErrorCode.INVALID_MESSAGE },
  { kind: 'a field of the wrong type', payload: '{"action": "subscribe", "data": {"channel": 7}}', code: ErrorCode.INVALID_MESSAGE },
  { kind: 'a binary frame', payload: Buffer.from('{"action":"ping"}'), code: ErrorCode.INVALID_MESSAGE },
  { kind: 'an unknown action', payload: '{"action": "teleport"}', code: ErrorCode.UNKNOWN_ACTION },
  { kind: 'a malformed channel name', payload: '{"action": "subscribe", "data": {"channel": "a..b"}}', code: ErrorCode.INVALID_CHANNEL },
  {
    kind: 'a message to a channel not subscribed',
    payload: '{"action": "message", "data": {"channel": "elsewhere", "message": 1}}',
    code: ErrorCode.NOT_SUBSCRIBED,
  },
];

describe('welcome frame', () => {
  test('the first frame is a welcome with the connection id, the heartbeat interval and an anonymous identity', async (t) => {
    const server = await start(t, { heartbeatInterval: 45 });
    const client = await connect(t, server);
    const welcome = client.frames[0] as Frame;
    assert.equal(typeof welcome.connection_id, 'string');
    assert.notEqual(welcome.connection_id, '');
    assert.deepEqual(welcome, {
      action: 'welcome',
      connection_id: welcome.connection_id,
      heartbeat_interval: 45,
      authenticated: false,
      user_id: null,
      role: null,
    });
  });

  test('connection ids differ between connections, also after earlier ones closed', async (t) => {
    const server = await start(t);
    const ids: unknown[] = [];
    for (let round = 0; round < 3; round++) {
      const clients = await Promise.all(range(4).map(() => connect(t, server)));
      ids.push(...clients.map((client) => client.welcome.connection_id));
      for (const client of clients) client.close();
      await Promise.all(clients.map((client) => client.closed));
    }
    assert.equal(new Set(ids).size, ids.length, `ids: ${JSON.stringify(ids)}`);
  });
});

describe('subscribe and unsubscribe', () => {
  test('subscribe is acknowledged with the channel and the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'subscribe', data: { channel: 'chat.room.1' }, id: 'sub-1' });
    assert.deepEqual(await client.next((frame) => frame.id === 'sub-1'), {
      success: true,
      action: 'subscribe',
      channel: 'chat.room.1',
      id: 'sub-1',
    });
  });

  test('subscribing to a channel already subscribed is acknowledged again, not refused', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    await client.subscribe('chat.room.1');
    client.send({ action: 'subscribe', data: { channel: 'chat.room.1' }, id: 7 });
    assert.deepEqual(await client.next((frame) => frame.id === 7), { success: true, action: 'subscribe', channel: 'chat.room.1', id: 7 });
  });

  test('subscribing twice never duplicates delivery', async (t) => {
    const server = await start(t);
    const subscriber = await connect(t, server);
    const publisher = await connect(t, server);
    await subscriber.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    await publisher.subscribe('chat.room.1');
    const ack = await publisher.publish('chat.room.1', 'once');
    assert.equal(ack.recipients_count, 2);
    // A duplicate would be written right after the first copy, before this later message.
    await publisher.publish('chat.room.1', 'marker');
    await subscriber.next((frame) => isMessageOn('chat.room.1')(frame) && frame.message === 'marker');
    assert.deepEqual(messagesOn(subscriber, 'chat.room.1'), ['once', 'marker']);
  });

  test('unsubscribe is acknowledged with the channel and the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    await client.subscribe('chat.room.1');
    client.send({ action: 'unsubscribe', data: { channel: 'chat.room.1' }, id: 'unsub-1' });
    assert.deepEqual(await client.next((frame) => frame.id === 'unsub-1'), {
      success: true,
      action: 'unsubscribe',
      channel: 'chat.room.1',
      id: 'unsub-1',
    });
  });

  test('unsubscribe from a channel never subscribed is acknowledged', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'unsubscribe', data: { channel: 'never.joined' }, id: 3 });
    assert.deepEqual(await client.next((frame) => frame.id === 3), { success: true, action: 'unsubscribe', channel: 'never.joined', id: 3 });
  });

  test('a client receives nothing from a channel after unsubscribing', async (t) => {
    const server = await start(t);
    const leaver = await connect(t, server);
    const publisher = await connect(t, server);
    await leaver.subscribe('chat.room.1');
    await leaver.subscribe('chat.marker');
    await publisher.subscribe('chat.room.1');
    await publisher.subscribe('chat.marker');
    await publisher.publish('chat.room.1', 'before');
    await leaver.next((frame) => isMessageOn('chat.room.1')(frame) && frame.message === 'before');
    await leaver.request('unsubscribe', { channel: 'chat.room.1' });
    const ack = await publisher.publish('chat.room.1', 'after');
    assert.equal(ack.recipients_count, 1);
    // Published later by the same publisher: once it arrives, 'after' would have too.
    await publisher.publish('chat.marker', 'marker');
    await leaver.next(isMessageOn('chat.marker'));
    assert.deepEqual(messagesOn(leaver, 'chat.room.1'), ['before']);
  });

  test('channel names at the edges of the grammar are accepted', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    for (const channel of ['a', 'x'.repeat(128), 'AZ-az_09:@=.b.c', 'user.42.inbox']) {
      const reply = await client.subscribe(channel);
      assert.equal(reply.success, true, `subscribe to ${channel}: ${JSON.stringify(reply)}`);
      assert.equal(reply.channel, channel);
    }
  });

  test('subscribe to a malformed channel name fails with INVALID_CHANNEL and the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const badNames = ['', 'a..b', '.a', 'a.', 'has space', 'x'.repeat(129), 'slash/ed', 'star.*', 'ümlaut', 'tab\tbed'];
    for (const [index, channel] of badNames.entries()) {
      client.send({ action: 'subscribe', data: { channel }, id: index });
      assertErrorFrame(await client.next((frame) => frame.id === index), { code: ErrorCode.INVALID_CHANNEL, action: 'subscribe', id: index });
    }
  });

  test('unsubscribe and message also refuse a malformed channel name with INVALID_CHANNEL', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'unsubscribe', data: { channel: 'a..b' }, id: 'u' });
    assertErrorFrame(await client.next((frame) => frame.id === 'u'), { code: ErrorCode.INVALID_CHANNEL, action: 'unsubscribe', id: 'u' });
    client.send({ action: 'message', data: { channel: 'a b', message: 1 }, id: 'm' });
    assertErrorFrame(await client.next((frame) => frame.id === 'm'), { code: ErrorCode.INVALID_CHANNEL, action: 'message', id: 'm' });
  });
});

describe('maxChannelsPerConnection', () => {
  test('subscribing beyond maxChannelsPerConnection fails with TOO_MANY_CHANNELS and the request id', async (t) => {
    const server = await start(t, { maxChannelsPerConnection: 2 });
    const client = await connect(t, server);
    await client.subscribe('one');
    await client.subscribe('two');
    client.send({ action: 'subscribe', data: { channel: 'three' }, id: 'third' });
    assertErrorFrame(await client.next((frame) => frame.id === 'third'), {
      code: ErrorCode.TOO_MANY_CHANNELS,
      action: 'subscribe',
      id: 'third',
    });
  });

  test('a subscription refused with TOO_MANY_CHANNELS leaves the client unsubscribed', async (t) => {
    const server = await start(t, { maxChannelsPerConnection: 1 });
    const client = await connect(t, server);
    await client.subscribe('one');
    assert.equal((await client.subscribe('two')).code, ErrorCode.TOO_MANY_CHANNELS);
    assert.equal(await server.handler.publish('two', 'hello'), 0);
    assert.equal((await client.publish('two', 'hello')).code, ErrorCode.NOT_SUBSCRIBED);
  });

  test('subscribing again to a channel already held succeeds at the limit', async (t) => {
    const server = await start(t, { maxChannelsPerConnection: 2 });
    const client = await connect(t, server);
    await client.subscribe('one');
    await client.subscribe('two');
    const reply = await client.subscribe('two');
    assert.equal(reply.success, true, JSON.stringify(reply));
  });

  test('unsubscribing frees a slot under maxChannelsPerConnection', async (t) => {
    const server = await start(t, { maxChannelsPerConnection: 2 });
    const client = await connect(t, server);
    await client.subscribe('one');
    await client.subscribe('two');
    await client.request('unsubscribe', { channel: 'one' });
    const reply = await client.subscribe('three');
    assert.equal(reply.success, true, JSON.stringify(reply));
  });
});

describe('message', () => {
  test('every subscriber, the sender included, receives the exact message frame', async (t) => {
    const server = await start(t);
    const sender = await connect(t, server);
    const others = [await connect(t, server), await connect(t, server)];
    for (const client of [sender, ...others]) await client.subscribe('chat.room.1');
    const before = Math.floor(Date.now() / 1000);
    sender.send({ action: 'message', data: { channel: 'chat.room.1', message: { text: 'hi' } }, id: 1 });
    const received = await Promise.all([sender, ...others].map((client) => client.next(isMessageOn('chat.room.1'))));
    const after = Math.floor(Date.now() / 1000);
    for (const frame of received) {
      const time = frame.time as number;
      assert.ok(Number.isInteger(time), `time ${String(time)} is an integer`);
      assert.ok(time >= before && time <= after, `time ${time} is between ${before} and ${after}`);
      assert.deepEqual(frame, {
        action: 'message',
        channel: 'chat.room.1',
        message: { text: 'hi' },
        sender: sender.welcome.connection_id,
        user_id: null,
        time,
      });
    }
  });

  test('message_sent acknowledges with the channel, recipients_count and the request id', async (t) => {
    const server = await start(t);
    const clients = await Promise.all(range(3).map(() => connect(t, server)));
    for (const client of clients) await client.subscribe('chat.room.1');
    const sender = clients[0] as TestClient;
    sender.send({ action: 'message', data: { channel: 'chat.room.1', message: 'hello' }, id: 'msg-1' });
    assert.deepEqual(await sender.next((frame) => frame.id === 'msg-1'), {
      success: true,
      action: 'message_sent',
      channel: 'chat.room.1',
      recipients_count: 3,
      id: 'msg-1',
    });
  });

  test('a message reaches no client subscribed only to other channels', async (t) => {
    const server = await start(t);
    const sender = await connect(t, server);
    const bystander = await connect(t, server);
    await sender.subscribe('chat.room.1');
    await sender.subscribe('chat.room.2');
    await bystander.subscribe('chat.room.2');
    assert.equal((await sender.publish('chat.room.1', 'private')).recipients_count, 1);
    await sender.publish('chat.room.2', 'marker');
    await bystander.next(isMessageOn('chat.room.2'));
    assert.equal(bystander.received(isMessageOn('chat.room.1')).length, 0);
  });

  test('a message to a channel not subscribed fails with NOT_SUBSCRIBED, its text and the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'message', data: { channel: 'chat.room.1', message: 'hi' }, id: 'n1' });
    assertErrorFrame(await client.next((frame) => frame.id === 'n1'), {
      code: ErrorCode.NOT_SUBSCRIBED,
      action: 'message',
      id: 'n1',
      error: 'Not subscribed to channel',
    });
  });

  test('a message refused with NOT_SUBSCRIBED reaches none of the channel subscribers', async (t) => {
    const server = await start(t);
    const outsider = await connect(t, server);
    const subscriber = await connect(t, server);
    await subscriber.subscribe('chat.room.1');
    await outsider.subscribe('chat.marker');
    await subscriber.subscribe('chat.marker');
    assert.equal((await outsider.publish('chat.room.1', 'intrusion')).code, ErrorCode.NOT_SUBSCRIBED);
    await outsider.publish('chat.marker', 'marker');
    await subscriber.next(isMessageOn('chat.marker'));
    assert.equal(subscriber.received(isMessageOn('chat.room.1')).length, 0);
  });

  test('a message with recipients reaches no anonymous subscriber and reports recipients_count 0', async (t) => {
    const server = await start(t);
    const sender = await connect(t, server);
    const subscriber = await connect(t, server);
    await sender.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    const ack = await sender.publish('chat.room.1', 'for users 1 and 2', { recipients: ['1', 2] });
    assert.equal(ack.recipients_count, 0);
    await sender.publish('chat.room.1', 'marker');
    await subscriber.next((frame) => isMessageOn('chat.room.1')(frame) && frame.message === 'marker');
    await arrival(sender, (frame) => isMessageOn('chat.room.1')(frame) && frame.message === 'marker');
    assert.deepEqual(messagesOn(subscriber, 'chat.room.1'), ['marker']);
    assert.deepEqual(messagesOn(sender, 'chat.room.1'), ['marker']);
  });

  test('messages from one publisher arrive at every subscriber in publish order', async (t) => {
    const count = 300;
    const server = await start(t);
    const publisher = await connect(t, server);
    const subscribers = [await connect(t, server), await connect(t, server)];
    for (const client of [publisher, ...subscribers]) await client.subscribe('chat.room.1');
    // Sent back to back, without waiting for acks.
    for (const index of range(count)) publisher.send({ action: 'message', data: { channel: 'chat.room.1', message: index } });
    const isLast = (frame: Frame): boolean => isMessageOn('chat.room.1')(frame) && frame.message === count - 1;
    for (const client of [publisher, ...subscribers]) {
      await client.next(isLast, LONG_WAIT_MS);
      assert.deepEqual(messagesOn(client, 'chat.room.1'), range(count));
    }
  });

  const VALUES: ReadonlyArray<[string, unknown]> = [
    ['a string', 'hello'],
    ['an empty string', ''],
    ['a string with unicode, quotes and control characters', 'grüße 👋 "quoted" \\ \n \u0000'],
    ['an integer', 42],
    ['zero', 0],
    ['a negative fraction', -1.5],
    ['an object', { text: 'hi', nested: { list: [1, null, 'x'], flag: false } }],
    ['an empty object', {}],
    ['an array', [1, 'two', { three: 3 }, null, [true]]],
    ['an empty array', []],
    ['true', true],
    ['false', false],
  ];
  for (const [kind, value] of VALUES) {
    test(`a message that is ${kind} is delivered unchanged`, async (t) => {
      const server = await start(t);
      const sender = await connect(t, server);
      const subscriber = await connect(t, server);
      await sender.subscribe('chat.room.1');
      await subscriber.subscribe('chat.room.1');
      const ack = await sender.publish('chat.room.1', value);
      assert.equal(ack.action, 'message_sent', JSON.stringify(ack));
      assert.deepEqual((await subscriber.next(isMessageOn('chat.room.1'))).message, value);
      assert.deepEqual((await arrival(sender, isMessageOn('chat.room.1'))).message, value);
    });
  }

  test('a message larger than 64 KiB is delivered unchanged', async (t) => {
    const server = await start(t, { maxPayload: 1024 * 1024 });
    const sender = await connect(t, server);
    const subscriber = await connect(t, server);
    await sender.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    const value = { blob: 'ab'.repeat(50_000), tail: 'end' };
    await sender.publish('chat.room.1', value);
    assert.deepEqual((await subscriber.next(isMessageOn('chat.room.1'), LONG_WAIT_MS)).message, value);
  });

  test('a null message is refused with INVALID_MESSAGE naming the message field', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    await client.subscribe('chat.room.1');
    client.send({ action: 'message', data: { channel: 'chat.room.1', message: null }, id: 'null' });
    assertErrorFrame(await client.next((frame) => frame.id === 'null'), {
      code: ErrorCode.INVALID_MESSAGE,
      action: 'message',
      id: 'null',
      error: /\bmessage\b/,
    });
  });
});

describe('malformed frames', () => {
  test('a frame that is not JSON gets INVALID_JSON with the text "Invalid message format"', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    for (const payload of ['{"action": "ping"', 'hello', '', "{'action': 'ping'}", '{"action":"ping"} trailing']) {
      client.sendRaw(payload);
      assertErrorFrame(await client.next(isError), { code: ErrorCode.INVALID_JSON, action: null, error: 'Invalid message format' });
    }
  });

  test('a JSON value that is not an object gets INVALID_MESSAGE', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    for (const payload of ['[1, 2]', '"ping"', '42', 'null', 'true']) {
      client.sendRaw(payload);
      assertErrorFrame(await client.next(isError), { code: ErrorCode.INVALID_MESSAGE, action: null });
    }
  });

  test('a frame without action gets INVALID_MESSAGE naming action, with the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ data: { channel: 'chat.room.1' }, id: 'no-action' });
    assertErrorFrame(await client.next((frame) => frame.id === 'no-action'), {
      code: ErrorCode.INVALID_MESSAGE,
      action: null,
      id: 'no-action',
      error: /\baction\b/,
    });
  });

  test('an unknown top-level field gets INVALID_MESSAGE naming that field', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'ping', id: 9, colour: 'red' });
    assertErrorFrame(await client.next((frame) => frame.id === 9), { code: ErrorCode.INVALID_MESSAGE, action: 'ping', id: 9, error: /\bcolour\b/ });
  });

  test('an unknown data field gets INVALID_MESSAGE naming that field', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'subscribe', data: { channel: 'chat.room.1', colour: 'red' }, id: 10 });
    assertErrorFrame(await client.next((frame) => frame.id === 10), {
      code: ErrorCode.INVALID_MESSAGE,
      action: 'subscribe',
      id: 10,
      error: /\bcolour\b/,
    });
  });

  const WRONG_TYPES: ReadonlyArray<{ what: string; frame: Record<string, unknown>; action: string | null; field: RegExp }> = [
    { what: 'an action that is not a string', frame: { action: 5 }, action: null, field: /\baction\b/ },
    { what: 'data that is not an object', frame: { action: 'subscribe', data: 'chat' }, action: 'subscribe', field: /\bdata\b/ },
    { what: 'a channel that is not a string', frame: { action: 'subscribe', data: { channel: 5 } }, action: 'subscribe', field: /\bchannel\b/ },
    { what: 'a missing channel', frame: { action: 'unsubscribe', data: {} }, action: 'unsubscribe', field: /\bchannel\b/ },
    { what: 'a negative since', frame: { action: 'subscribe', data: { channel: 'a', since: -1 } }, action: 'subscribe', field: /\bsince\b/ },
    { what: 'an epoch that is not a string', frame: { action: 'subscribe', data: { channel: 'a', epoch: 5 } }, action: 'subscribe', field: /\bepoch\b/ },
    { what: 'a missing message', frame: { action: 'message', data: { channel: 'a' } }, action: 'message', field: /\bmessage\b/ },
    {
      what: 'recipients that are not a list',
      frame: { action: 'message', data: { channel: 'a', message: 1, recipients: 'all' } },
      action: 'message',
      field: /\brecipients\b/,
    },
    {
      what: 'recipients holding an object',
      frame: { action: 'message', data: { channel: 'a', message: 1, recipients: [{}] } },
      action: 'message',
      field: /\brecipients\b/,
    },
  ];
  for (const { what, frame, action, field } of WRONG_TYPES) {
    test(`${what} gets INVALID_MESSAGE naming the field, with the request id`, async (t) => {
      const server = await start(t);
      const client = await connect(t, server);
      client.send({ ...frame, id: 'typed' });
      assertErrorFrame(await client.next((reply) => reply.id === 'typed'), { code: ErrorCode.INVALID_MESSAGE, action, id: 'typed', error: field });
    });
  }

  test('an id that is neither a string nor a number gets INVALID_MESSAGE naming id, and the frame keeps its action', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'ping', id: { nested: true } });
    assertErrorFrame(await client.next(isError), { code: ErrorCode.INVALID_MESSAGE, action: 'ping', error: /\bid\b/ });
  });

  test('a binary frame gets INVALID_MESSAGE', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.sendRaw(Buffer.from(JSON.stringify({ action: 'ping', id: 1 })));
    assertErrorFrame(await client.next(isError), { code: ErrorCode.INVALID_MESSAGE, action: null });
  });

  test('an unknown action gets UNKNOWN_ACTION "Unknown action: x" with the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'x', id: 'what' });
    assert.deepEqual(await client.next((frame) => frame.id === 'what'), {
      type: 'error',
      success: false,
      code: ErrorCode.UNKNOWN_ACTION,
      error: 'Unknown action: x',
      action: 'x',
      id: 'what',
    });
  });

  test('an action named like a member of Object.prototype is an unknown action', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    for (const action of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      client.send({ action, id: action });
      assertErrorFrame(await client.next((frame) => frame.id === action), {
        code: ErrorCode.UNKNOWN_ACTION,
        action,
        id: action,
        error: ErrorText.unknownAction(action),
      });
    }
  });

  for (const bad of BAD_FRAMES) {
    test(`the connection keeps subscribing and publishing after ${bad.kind}`, async (t) => {
      const server = await start(t);
      const client = await connect(t, server);
      client.sendRaw(bad.payload);
      assert.equal((await client.next(isError)).code, bad.code);
      assert.equal((await client.subscribe('chat.room.1')).success, true);
      assert.equal((await client.publish('chat.room.1', 'still here')).recipients_count, 1);
      assert.equal((await arrival(client, isMessageOn('chat.room.1'))).message, 'still here');
    });
  }

  test('other clients keep receiving, in order, while one client sends garbage', async (t) => {
    const count = 100;
    const server = await start(t);
    const publisher = await connect(t, server);
    const subscriber = await connect(t, server);
    const vandal = await connect(t, server);
    await publisher.subscribe('chat.room.1');
    await subscriber.subscribe('chat.room.1');
    for (const index of range(count)) {
      publisher.send({ action: 'message', data: { channel: 'chat.room.1', message: index } });
      vandal.sendRaw((BAD_FRAMES[index % BAD_FRAMES.length] as BadFrame).payload);
    }
    await subscriber.next((frame) => isMessageOn('chat.room.1')(frame) && frame.message === count - 1, LONG_WAIT_MS);
    assert.deepEqual(messagesOn(subscriber, 'chat.room.1'), range(count));
    assert.equal(subscriber.received(isError).length, 0);
    await settle(vandal);
    assert.equal(vandal.received(isError).length, count);
  });
});

describe('ping and pong', () => {
  test('ping is answered with pong carrying the unix time and the request id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const before = Math.floor(Date.now() / 1000);
    client.send({ action: 'ping', id: 'p1' });
    const reply = await client.next((frame) => frame.id === 'p1');
    const after = Math.floor(Date.now() / 1000);
    assert.equal(reply.action, 'pong');
    assert.equal(reply.id, 'p1');
    const time = reply.time as number;
    assert.ok(Number.isInteger(time) && time >= before && time <= after, `time ${String(time)} is between ${before} and ${after}`);
  });

  test('the pong reply has exactly the fields action, time and id', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    client.send({ action: 'ping', id: 'p2' });
    const reply = await client.next((frame) => frame.id === 'p2');
    assert.deepEqual(reply, { action: 'pong', time: reply.time, id: 'p2' });
  });

  test('a pong frame gets no reply', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    const before = client.frames.length;
    client.send({ action: 'pong', id: 'answer' });
    client.send({ action: 'pong' });
    await settle(client);
    const after = client.frames.slice(before);
    assert.equal(after.length, 1, `frames after the pongs: ${JSON.stringify(after)}`);
    assert.equal((after[0] as Frame).action, 'pong');
    assert.notEqual((after[0] as Frame).id, 'answer');
  });
});

describe('handler.publish', () => {
  test('handler.publish reaches every subscriber with sender null and user_id null', async (t) => {
    const server = await start(t);
    const clients = [await connect(t, server), await connect(t, server)];
    for (const client of clients) await client.subscribe('news');
    const before = Math.floor(Date.now() / 1000);
    await server.handler.publish('news', { headline: 'from the backend' });
    for (const client of clients) {
      const frame = await client.next(isMessageOn('news'));
      const time = frame.time as number;
      assert.ok(Number.isInteger(time) && time >= before && time <= Math.floor(Date.now() / 1000), `time ${String(time)}`);
      assert.deepEqual(frame, { action: 'message', channel: 'news', message: { headline: 'from the backend' }, sender: null, user_id: null, time });
    }
  });

  test('handler.publish resolves with the number of connections addressed', async (t) => {
    const server = await start(t);
    const clients = await Promise.all(range(3).map(() => connect(t, server)));
    for (const client of clients) await client.subscribe('news');
    assert.equal(await server.handler.publish('news', 'three'), 3);
    assert.equal(await server.handler.publish('nobody.here', 'none'), 0);
  });

  test('handler.publish rejects an invalid channel name with INVALID_CHANNEL', async (t) => {
    const server = await start(t);
    for (const channel of ['', 'a..b', 'with space', 'x'.repeat(129)]) {
      await assert.rejects(server.handler.publish(channel, 'x'), (error: unknown) => {
        assert.ok(error instanceof SwitchboardError, `rejects with a SwitchboardError for '${channel}'`);
        assert.equal(error.code, ErrorCode.INVALID_CHANNEL);
        return true;
      });
    }
  });
});
