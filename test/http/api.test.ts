/**
 * The HTTP API (SPEC §7) on one node, over real sockets: POST /api/publish, GET /api/stats,
 * GET /api/channels[/NAME], POST /api/disconnect, the Bearer key (404 without one, 401 for
 * a wrong one), and the 400s for bad and oversized bodies. Subscribers are real WebSocket
 * clients; the cluster-wide behaviour is in test/broker/redis-api.test.ts.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import type { ClientOptions } from 'ws';
import { mintToken } from '../../src/auth/tokens.js';
import { TestClient, eventually, isMessageOn, settle, type Frame } from '../helpers/client.js';
import { apiRequest, assertErrorBody, assertJson, request, type HttpAnswer } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';
import type { HandlerOptions } from '../../src/handler.js';

/** A hung request fails its test instead of the whole run. */
const SUITE = { timeout: 60_000 };

const KEY = 'test-key';
const SECRET = 'http-api-test-secret-of-at-least-32-bytes';
const CHANNEL = 'chat.room.1';
/** How long to keep listening for a frame that must not come. */
const QUIET_MS = 300;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A server with the API on (key KEY), tokens signed with SECRET, no rate limit; closed after the test. */
async function start(t: TestContext, options: HandlerOptions = {}): Promise<TestServer> {
  const server = await startServer({ apiKey: KEY, auth: { secret: SECRET }, maxMessagesPerMinute: 0, ...options });
  t.after(() => server.close());
  return server;
}

/** A WebSocket client, anonymous unless `userId` is given (then authenticated by a token in the handshake). */
async function connect(t: TestContext, server: TestServer, userId?: string | number): Promise<TestClient> {
  const options: ClientOptions = {};
  if (userId !== undefined) {
    const token = await mintToken(server.handler.options.auth, { userId, role: 'user', ttlSeconds: 3600 });
    options.headers = { Authorization: `Bearer ${token}` };
  }
  const client = await TestClient.connect(server.url, options);
  t.after(() => client.close());
  return client;
}

async function subscribe(clients: readonly TestClient[], channel: string = CHANNEL): Promise<void> {
  for (const client of clients) {
    const ack = await client.subscribe(channel);
    assert.equal(ack.success, true, `subscribe ack: ${JSON.stringify(ack)}`);
  }
}

/** A request to the API with the right key. */
function api(server: TestServer, method: string, path: string, body?: unknown): Promise<HttpAnswer> {
  return apiRequest(`${server.httpUrl}${path}`, KEY, method, body);
}

/** The 200 JSON body of an API answer. */
async function ok(answer: Promise<HttpAnswer>): Promise<Record<string, unknown>> {
  return assertJson(await answer, 200);
}

/** A 400 with a `{"error"}` body; returns the message. */
function badRequest(answer: HttpAnswer): string {
  assertErrorBody(answer, 400);
  return (JSON.parse(answer.body) as { error: string }).error;
}

const connectionId = (client: TestClient): string => client.welcome.connection_id as string;
const messagesOn = (client: TestClient, channel: string = CHANNEL): Frame[] => client.received(isMessageOn(channel));

/** Every API route, with a body that would be valid for it. */
const ROUTES: ReadonlyArray<{ method: string; path: string; body?: unknown }> = [
  { method: 'POST', path: '/api/publish', body: { channel: CHANNEL, message: 'hello' } },
  { method: 'GET', path: '/api/stats' },
  { method: 'GET', path: '/api/channels' },
  { method: 'GET', path: `/api/channels/${CHANNEL}` },
  { method: 'POST', path: '/api/disconnect', body: { user_id: 'alice' } },
];

void describe('the HTTP API without WS_API_KEY', SUITE, () => {
  void test('every /api path, existing or not, with any method, answers 404 with a JSON {"error"} body', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const attempts = [
      ...ROUTES,
      { method: 'GET', path: '/api' },
      { method: 'GET', path: '/api/' },
      { method: 'GET', path: '/api/no/such/endpoint' },
      { method: 'DELETE', path: '/api/stats' },
      { method: 'PUT', path: '/api/publish', body: { channel: CHANNEL, message: 'hello' } },
      { method: 'GET', path: '/api/publish' },
      { method: 'POST', path: '/api/stats?x=1', body: {} },
    ];
    for (const { method, path, body } of attempts) {
      for (const key of [null, KEY, '']) {
        const answer = await apiRequest(`${server.httpUrl}${path}`, key, method, body);
        assert.equal(answer.status, 404, `${method} ${path} with key ${String(key)}: ${answer.body}`);
        assertErrorBody(answer, 404);
        assert.equal(answer.headers['www-authenticate'], undefined, 'no hint that a key would help');
      }
    }
  });

  void test('a publish to the switched-off API reaches no subscriber and a disconnect closes nobody', async (t) => {
    const server = await startServer({ auth: { secret: SECRET } });
    t.after(() => server.close());
    const alice = await connect(t, server, 'alice');
    await subscribe([alice]);
    assert.equal((await apiRequest(`${server.httpUrl}/api/publish`, KEY, 'POST', { channel: CHANNEL, message: 'nope' })).status, 404);
    assert.equal((await apiRequest(`${server.httpUrl}/api/disconnect`, KEY, 'POST', { user_id: 'alice' })).status, 404);
    await sleep(QUIET_MS);
    await settle(alice);
    assert.deepEqual(messagesOn(alice), []);
  });
});

void describe('the API key (Authorization: Bearer <WS_API_KEY>)', SUITE, () => {
  const refused: ReadonlyArray<{ what: string; authorization: string | null }> = [
    { what: 'no Authorization header', authorization: null },
    { what: 'an empty header', authorization: '' },
    { what: 'Bearer without a key', authorization: 'Bearer ' },
    { what: 'the key without a scheme', authorization: KEY },
    { what: 'the Basic scheme', authorization: `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}` },
    { what: 'another scheme with the right key', authorization: `Token ${KEY}` },
    { what: 'a wrong key', authorization: 'Bearer wrong-key' },
    { what: 'a prefix of the key', authorization: `Bearer ${KEY.slice(0, -1)}` },
    { what: 'the key with a character more', authorization: `Bearer ${KEY}x` },
    { what: 'the key twice', authorization: `Bearer ${KEY}${KEY}` },
    { what: 'the key in another case', authorization: `Bearer ${KEY.toUpperCase()}` },
    { what: 'two keys, the right one first', authorization: `Bearer ${KEY} other` },
  ];

  void test('every endpoint answers 401 with WWW-Authenticate: Bearer and a JSON error to a missing or wrong key', async (t) => {
    const server = await start(t);
    for (const { what, authorization } of refused) {
      for (const { method, path, body } of [...ROUTES, { method: 'GET', path: '/api/no/such/endpoint' }]) {
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (authorization !== null) headers.Authorization = authorization;
        const answer = await request(`${server.httpUrl}${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
        assert.equal(answer.status, 401, `${what}, ${method} ${path}: ${answer.body}`);
        assertErrorBody(answer, 401);
        assert.equal(answer.headers['www-authenticate'], 'Bearer', `${what}, ${method} ${path}`);
      }
    }
  });

  void test('a publish or a disconnect with a wrong key does nothing', async (t) => {
    const server = await start(t);
    const alice = await connect(t, server, 'alice');
    await subscribe([alice]);
    for (const { authorization } of refused) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (authorization !== null) headers.Authorization = authorization;
      assert.equal((await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers, body: JSON.stringify({ channel: CHANNEL, message: 'forged' }) })).status, 401);
      assert.equal((await request(`${server.httpUrl}/api/disconnect`, { method: 'POST', headers, body: JSON.stringify({ user_id: 'alice' }) })).status, 401);
    }
    await sleep(QUIET_MS);
    await settle(alice);
    assert.deepEqual(messagesOn(alice), [], 'no refused publish was delivered');
    assert.equal(server.handler.connectionCount, 1, 'no refused disconnect closed alice');
    // The same requests with the right key do act: the refusals above were the key's doing.
    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'genuine' })), { success: true, recipients_count: 1 });
    assert.equal((await alice.next(isMessageOn(CHANNEL))).message, 'genuine');
  });

  void test('the right key is accepted, whatever the case of the scheme word (RFC 7235)', async (t) => {
    const server = await start(t);
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const answer = await request(`${server.httpUrl}/api/stats`, { headers: { Authorization: `${scheme} ${KEY}` } });
      assertJson(answer, 200);
    }
  });

  void test('with the right key, an /api path that names no endpoint answers 404 with a JSON error', async (t) => {
    const server = await start(t);
    for (const path of ['/api', '/api/', '/api/nothing', '/api/stats/extra', '/api/publishx']) assertErrorBody(await api(server, 'GET', path), 404);
  });
});

void describe('POST /api/publish', SUITE, () => {
  void test('reaches every WebSocket subscriber of the channel with sender null and user_id null, and counts them', async (t) => {
    const server = await start(t);
    const subscribers = [await connect(t, server), await connect(t, server, 'alice'), await connect(t, server, 7)];
    const elsewhere = await connect(t, server);
    await subscribe(subscribers);
    await subscribe([elsewhere], 'chat.room.2');
    const before = Math.floor(Date.now() / 1000);

    const answer = await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: { text: 'from the backend', n: 1 } }));
    assert.deepEqual(answer, { success: true, recipients_count: 3 });
    for (const client of subscribers) {
      const frame = await client.next(isMessageOn(CHANNEL));
      assert.deepEqual(frame.message, { text: 'from the backend', n: 1 });
      assert.equal(frame.sender, null);
      assert.equal(frame.user_id, null);
      assert.equal(typeof frame.time, 'number');
      assert.ok((frame.time as number) >= before && (frame.time as number) <= Math.ceil(Date.now() / 1000), `time ${String(frame.time)} is unix seconds`);
    }
    await sleep(QUIET_MS);
    for (const client of subscribers) assert.equal(messagesOn(client).length, 1, `${connectionId(client)} got it once`);
    assert.deepEqual(elsewhere.received((frame) => frame.action === 'message'), [], 'a subscriber of another channel gets nothing');
  });

  void test('any JSON value but null is a message: strings, numbers, false, arrays', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    await subscribe([client]);
    for (const message of ['text', 0, false, [1, 'two'], {}]) {
      assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message })), { success: true, recipients_count: 1 });
      assert.deepEqual((await client.next(isMessageOn(CHANNEL))).message, message);
    }
  });

  void test('a channel without subscribers answers recipients_count 0', async (t) => {
    const server = await start(t);
    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: 'nobody.here', message: 'x' })), { success: true, recipients_count: 0 });
  });

  void test('recipients: only subscribers authenticated as a listed user id receive it (ids compared as strings), and the count says how many', async (t) => {
    const server = await start(t);
    const alice = [await connect(t, server, 'alice'), await connect(t, server, 'alice')];
    const user42 = await connect(t, server, 42);
    const bob = await connect(t, server, 'bob');
    const anonymous = await connect(t, server);
    const notSubscribed = await connect(t, server, 'carol');
    await subscribe([...alice, user42, bob, anonymous]);

    const answer = await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'private', recipients: ['alice', '42', 'carol', 'nobody'] }));
    assert.deepEqual(answer, { success: true, recipients_count: 3 });
    for (const client of [...alice, user42]) assert.equal((await client.next(isMessageOn(CHANNEL))).message, 'private');

    // A number in the list matches the token's user id too.
    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'to 42', recipients: [42] })), { success: true, recipients_count: 1 });
    assert.equal((await user42.next(isMessageOn(CHANNEL))).message, 'to 42');

    // An empty list addresses nobody.
    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'to nobody', recipients: [] })), { success: true, recipients_count: 0 });

    await sleep(QUIET_MS);
    for (const client of [bob, anonymous, notSubscribed]) await settle(client);
    assert.deepEqual(messagesOn(bob), [], 'bob is not listed');
    assert.deepEqual(messagesOn(anonymous), [], 'an anonymous subscriber matches no user id');
    assert.deepEqual(messagesOn(notSubscribed), [], 'carol is listed but not subscribed');
    for (const client of alice) assert.deepEqual(messagesOn(client).map((frame) => frame.message), ['private']);
    assert.deepEqual(messagesOn(user42).map((frame) => frame.message), ['private', 'to 42']);
  });

  void test('400 with a message naming the problem for every bad body; nothing is published, and the server keeps serving', async (t) => {
    const server = await start(t);
    const client = await connect(t, server);
    await subscribe([client]);
    const cases: ReadonlyArray<{ what: string; body: string; error: RegExp }> = [
      { what: 'invalid JSON', body: '{"channel": "chat.room.1", "message": ', error: /JSON/ },
      { what: 'not JSON at all', body: 'channel=chat.room.1&message=hi', error: /JSON/ },
      { what: 'an empty body', body: '', error: /empty/ },
      { what: 'a blank body', body: ' \n ', error: /empty/ },
      { what: 'a JSON array', body: JSON.stringify([{ channel: CHANNEL, message: 'hi' }]), error: /object/ },
      { what: 'a JSON string', body: JSON.stringify('hi'), error: /object/ },
      { what: 'a JSON number', body: '42', error: /object/ },
      { what: 'no channel', body: JSON.stringify({ message: 'hi' }), error: /channel.*required/ },
      { what: 'a channel that is not a string', body: JSON.stringify({ channel: 5, message: 'hi' }), error: /channel.*string/ },
      { what: 'an invalid channel name', body: JSON.stringify({ channel: 'chat room!', message: 'hi' }), error: /channel name/ },
      { what: 'an empty segment in the channel name', body: JSON.stringify({ channel: 'chat..room', message: 'hi' }), error: /channel name/ },
      { what: 'a channel name over 128 characters', body: JSON.stringify({ channel: 'a'.repeat(129), message: 'hi' }), error: /channel name/ },
      { what: 'a null message', body: JSON.stringify({ channel: CHANNEL, message: null }), error: /message.*null/ },
      { what: 'no message', body: JSON.stringify({ channel: CHANNEL }), error: /message.*required/ },
      { what: 'an unknown field', body: JSON.stringify({ channel: CHANNEL, message: 'hi', colour: 'red' }), error: /unknown field.*colour/ },
      { what: 'recipients not an array', body: JSON.stringify({ channel: CHANNEL, message: 'hi', recipients: 'alice' }), error: /recipients.*array/ },
      { what: 'recipients with an object', body: JSON.stringify({ channel: CHANNEL, message: 'hi', recipients: ['alice', { id: 1 }] }), error: /recipients/ },
      { what: 'recipients with null', body: JSON.stringify({ channel: CHANNEL, message: 'hi', recipients: [null] }), error: /recipients/ },
      {
        what: 'more than 1000 recipients',
        body: JSON.stringify({ channel: CHANNEL, message: 'hi', recipients: Array.from({ length: 1001 }, (_, index) => `u${index}`) }),
        error: /recipients.*1000/,
      },
    ];
    for (const { what, body, error } of cases) {
      const message = badRequest(await api(server, 'POST', '/api/publish', body));
      assert.match(message, error, what);
    }
    // Exactly 1000 recipients is allowed.
    const thousand = Array.from({ length: 1000 }, (_, index) => `u${index}`);
    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'to a thousand', recipients: thousand })), { success: true, recipients_count: 0 });

    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'after the refusals' })), { success: true, recipients_count: 1 });
    assert.equal((await client.next(isMessageOn(CHANNEL))).message, 'after the refusals');
    await sleep(QUIET_MS);
    assert.deepEqual(messagesOn(client).map((frame) => frame.message), ['after the refusals'], 'no refused body was published');
  });

  void test(
    '400 messages name the fields as the client sent them (channel, not data.channel), and a null body is not an object',

    async (t) => {
      const server = await start(t);
      for (const body of ['[]', '"hi"', '{}', JSON.stringify({ channel: 5, message: 1 }), JSON.stringify({ channel: CHANNEL, message: 1, colour: 'red' })]) {
        const message = badRequest(await api(server, 'POST', '/api/publish', body));
        assert.doesNotMatch(message, /\bdata\b/, `${body} → ${message}`);
      }
      assert.match(badRequest(await api(server, 'POST', '/api/publish', 'null')), /object/);
    },
  );

  void describe('bodies larger than maxPayload (1024 bytes)', () => {
    const LIMIT = 1024;
    const oversized = JSON.stringify({ channel: CHANNEL, message: 'x'.repeat(2000) });
    const headers = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };

    void test('a body just under the limit is published', async (t) => {
      const server = await start(t, { maxPayload: LIMIT });
      const client = await connect(t, server);
      await subscribe([client]);
      const body = JSON.stringify({ channel: CHANNEL, message: 'y'.repeat(LIMIT - 50) });
      assert.ok(Buffer.byteLength(body) <= LIMIT);
      assert.deepEqual(await ok(api(server, 'POST', '/api/publish', body)), { success: true, recipients_count: 1 });
      assert.equal(((await client.next(isMessageOn(CHANNEL))).message as string).length, LIMIT - 50);
    });

    void test('2000 bytes with a Content-Length: 400 naming the limit', async (t) => {
      const server = await start(t, { maxPayload: LIMIT });
      assert.match(badRequest(await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers, body: oversized })), /larger than 1024 bytes/);
    });

    void test('2000 bytes sent chunked, without a Content-Length: 400 naming the limit', async (t) => {
      const server = await start(t, { maxPayload: LIMIT });
      const chunks = oversized.match(/[\s\S]{1,300}/g) ?? [];
      assert.ok(chunks.length > 4);
      const answer = await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers, body: chunks });
      assert.match(badRequest(answer), /larger than 1024 bytes/);
    });

    void test('a Content-Length far beyond what is sent is refused at once, without waiting for the body', async (t) => {
      const server = await start(t, { maxPayload: LIMIT });
      const started = Date.now();
      const answer = await request(`${server.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { ...headers, 'Content-Length': String(100 * 1024 * 1024) },
        body: '{"channel": "chat.room.1", "message": "',
        finish: false,
      });
      assert.match(badRequest(answer), /larger than 1024 bytes/);
      assert.ok(Date.now() - started < 5000, 'answered without waiting for the 100 MB');
    });

    void test('a Content-Length under the limit that hides a longer body: the extra bytes are not read as the body', async (t) => {
      const server = await start(t, { maxPayload: LIMIT });
      const client = await connect(t, server);
      await subscribe([client]);
      // Declares 20 bytes and sends 2000: the first 20 bytes are the body (not valid JSON),
      // and the rest can only be a malformed next request (which Node's parser refuses).
      const answer = await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers: { ...headers, 'Content-Length': '20' }, body: oversized, finish: false });
      assert.equal(answer.status, 400);
      await sleep(QUIET_MS);
      await settle(client);
      assert.deepEqual(messagesOn(client), []);
    });

    void test('after oversized bodies of every kind, the server keeps serving: publishes, stats and WebSocket clients work', async (t) => {
      const server = await start(t, { maxPayload: LIMIT });
      const client = await connect(t, server);
      await subscribe([client]);
      await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers, body: oversized });
      await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers, body: oversized.match(/[\s\S]{1,300}/g) ?? [] });
      await request(`${server.httpUrl}/api/publish`, { method: 'POST', headers: { ...headers, 'Content-Length': String(10 * 1024 * 1024) }, body: 'x'.repeat(2000), finish: false });

      assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'still serving' })), { success: true, recipients_count: 1 });
      assert.equal((await client.next(isMessageOn(CHANNEL))).message, 'still serving');
      assert.equal((await ok(api(server, 'GET', '/api/stats'))).connections, 1);
      const late = await connect(t, server);
      await settle(late);
      await sleep(QUIET_MS);
      assert.deepEqual(messagesOn(client).map((frame) => frame.message), ['still serving'], 'no oversized body was published');
    });
  });

  void test('a wrong method answers 405 with Allow and a JSON error: GET on the POST endpoints, POST on the GET ones', async (t) => {
    const server = await start(t);
    for (const [method, path, allow] of [
      ['GET', '/api/publish', 'POST'],
      ['PUT', '/api/publish', 'POST'],
      ['GET', '/api/disconnect', 'POST'],
      ['DELETE', '/api/disconnect', 'POST'],
      ['POST', '/api/stats', 'GET'],
      ['POST', '/api/channels', 'GET'],
      ['DELETE', `/api/channels/${CHANNEL}`, 'GET'],
    ] as const) {
      const answer = await api(server, method, path);
      assertErrorBody(answer, 405);
      assert.equal(answer.headers.allow, allow, `${method} ${path}`);
    }
  });
});

interface Stats {
  connections: number;
  channels: number;
  messages_in_per_second: number;
  messages_out_per_second: number;
  uptime: number;
  nodes: Array<Record<string, unknown>>;
}

const stats = async (server: TestServer): Promise<Stats> => (await ok(api(server, 'GET', '/api/stats'))) as unknown as Stats;

/** Polls /api/stats until `check` holds; returns the stats that satisfied it. */
async function statsWhen(server: TestServer, check: (stats: Stats) => boolean, what: string, timeoutMs = 15_000): Promise<Stats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await stats(server);
    if (check(current)) return current;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last stats: ${JSON.stringify(current)}`);
    await sleep(200);
  }
}

void describe('GET /api/stats', SUITE, () => {
  void test('a fresh node: no connections, no channels, rates 0, one node (this one, ready) and an uptime', async (t) => {
    const server = await start(t);
    const body = await stats(server);
    assert.equal(body.connections, 0);
    assert.equal(body.channels, 0);
    assert.equal(body.messages_in_per_second, 0);
    assert.equal(body.messages_out_per_second, 0);
    assert.equal(typeof body.uptime, 'number');
    assert.ok(body.uptime >= 0);
    assert.equal(body.nodes.length, 1);
    const [node] = body.nodes;
    assert.equal(node?.id, server.handler.nodeId);
    assert.equal(node?.ready, true);
    assert.equal(node?.connections, 0);
    assert.equal(typeof node?.uptime, 'number');
  });

  void test('connections and channels follow what real clients do', async (t) => {
    const server = await start(t);
    const clients = [await connect(t, server), await connect(t, server, 'alice'), await connect(t, server)];
    const [first, second, third] = clients as [TestClient, TestClient, TestClient];
    await subscribe([first, second], 'chat.room.1');
    await subscribe([second], 'chat.room.2');
    await subscribe([third], 'news');

    let body = await stats(server);
    assert.equal(body.connections, 3);
    assert.equal(body.channels, 3);
    assert.equal(body.nodes[0]?.connections, 3);
    assert.equal(body.nodes[0]?.channels, 3);

    third.close();
    await third.closed;
    body = await statsWhen(server, (current) => current.connections === 2, 'the closed connection to be gone');
    assert.equal(body.channels, 2, 'news lost its only subscriber');

    assert.equal((await second.request('unsubscribe', { channel: 'chat.room.2' })).success, true);
    assert.equal((await stats(server)).channels, 1);
  });

  void test('messages_in_per_second and messages_out_per_second rise above 0 after a burst of publishes', async (t) => {
    const server = await start(t);
    const subscribers = [await connect(t, server), await connect(t, server)];
    await subscribe(subscribers);
    // Rates are sampled once a second: let the first sample be taken before the burst.
    await sleep(1200);
    for (let index = 0; index < 20; index++) await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: index }));
    const [publisher] = subscribers as [TestClient];
    for (let index = 0; index < 20; index++) await publisher.publish(CHANNEL, `ws ${index}`);
    const body = await statsWhen(server, (current) => current.messages_in_per_second > 0 && current.messages_out_per_second > 0, 'rates above 0');
    // Each message went to two subscribers: out cannot be less than in.
    assert.ok(body.messages_out_per_second >= body.messages_in_per_second, `out ${body.messages_out_per_second} ≥ in ${body.messages_in_per_second}`);
    assert.equal(body.nodes[0]?.messages_in_per_second, body.messages_in_per_second);
  });

  void test('the uptime counts seconds since the node started', async (t) => {
    const server = await start(t);
    const first = (await stats(server)).uptime;
    await sleep(2100);
    const second = (await stats(server)).uptime;
    assert.ok(second - first >= 1 && second - first <= 4, `${first} → ${second}`);
  });
});

interface ChannelList {
  channels: Array<{ channel: string; subscribers: number }>;
}
interface ChannelMembers {
  channel: string;
  subscribers: number;
  members: Array<{ connection_id: string; user_id: string | number | null; node: string }>;
}

const channelList = async (server: TestServer): Promise<ChannelList> => (await ok(api(server, 'GET', '/api/channels'))) as unknown as ChannelList;
const members = async (server: TestServer, name: string): Promise<ChannelMembers> => (await ok(api(server, 'GET', `/api/channels/${name}`))) as unknown as ChannelMembers;
const byId = (a: { connection_id: string }, b: { connection_id: string }): number => (a.connection_id < b.connection_id ? -1 : 1);

void describe('GET /api/channels and /api/channels/NAME', SUITE, () => {
  void test('lists the channels with their subscriber counts, most subscribed first', async (t) => {
    const server = await start(t);
    assert.deepEqual(await channelList(server), { channels: [] });
    const clients = [await connect(t, server), await connect(t, server), await connect(t, server)];
    await subscribe(clients, 'big');
    await subscribe(clients.slice(0, 1), 'small');
    await subscribe(clients.slice(1), 'middle');
    assert.deepEqual(await channelList(server), {
      channels: [
        { channel: 'big', subscribers: 3 },
        { channel: 'middle', subscribers: 2 },
        { channel: 'small', subscribers: 1 },
      ],
    });
  });

  void test('a channel whose subscribers all left (unsubscribed or closed) disappears from the list', async (t) => {
    const server = await start(t);
    const [stays, unsubscribes, closes] = [await connect(t, server), await connect(t, server), await connect(t, server)];
    await subscribe([stays], 'kept');
    await subscribe([unsubscribes, closes], 'left');
    assert.deepEqual((await channelList(server)).channels, [
      { channel: 'left', subscribers: 2 },
      { channel: 'kept', subscribers: 1 },
    ]);
    assert.equal((await unsubscribes.request('unsubscribe', { channel: 'left' })).success, true);
    assert.deepEqual((await channelList(server)).channels, [
      { channel: 'kept', subscribers: 1 },
      { channel: 'left', subscribers: 1 },
    ]);
    closes.close();
    await closes.closed;
    await eventually(() => server.handler.channelCount === 1, 5000, 'the closed connection to leave its channel');
    assert.deepEqual((await channelList(server)).channels, [{ channel: 'kept', subscribers: 1 }]);
    assert.deepEqual(await members(server, 'left'), { channel: 'left', subscribers: 0, members: [] });
  });

  void test("one channel's members: connection ids as in the welcome frames, user ids of the token's type (null when anonymous), this node's id", async (t) => {
    const server = await start(t);
    const anonymous = await connect(t, server);
    const alice = await connect(t, server, 'alice');
    const numeric = await connect(t, server, 42);
    const outsider = await connect(t, server, 'outsider');
    await subscribe([anonymous, alice, numeric]);
    await subscribe([outsider], 'elsewhere');

    const body = await members(server, CHANNEL);
    assert.equal(body.channel, CHANNEL);
    assert.equal(body.subscribers, 3);
    const node = server.handler.nodeId;
    assert.deepEqual(
      [...body.members].sort(byId),
      [
        { connection_id: connectionId(anonymous), user_id: null, node },
        { connection_id: connectionId(alice), user_id: 'alice', node },
        { connection_id: connectionId(numeric), user_id: 42, node },
      ].sort(byId),
    );
  });

  void test('a numeric user id and a string one of the same digits show as 42 and "42", in welcome and in the member list; recipients match both', async (t) => {
    const server = await start(t);
    const numeric = await connect(t, server, 42);
    const text = await connect(t, server, '42');
    assert.equal(numeric.welcome.user_id, 42);
    assert.equal(text.welcome.user_id, '42');
    await subscribe([numeric, text]);

    const node = server.handler.nodeId;
    assert.deepEqual(
      [...(await members(server, CHANNEL)).members].sort(byId),
      [
        { connection_id: connectionId(numeric), user_id: 42, node },
        { connection_id: connectionId(text), user_id: '42', node },
      ].sort(byId),
    );
    // Recipients compare user ids as strings (SPEC): one '42' addresses both.
    assert.deepEqual(await ok(api(server, 'POST', '/api/publish', { channel: CHANNEL, message: 'to 42', recipients: ['42'] })), { success: true, recipients_count: 2 });
    for (const client of [numeric, text]) await client.next(isMessageOn(CHANNEL));
  });

  void test('a URL-encoded channel name is decoded, and the plain form of the same name works too', async (t) => {
    const server = await start(t);
    const name = 'team:1@acme=x.room_2-b';
    const client = await connect(t, server, 'alice');
    await subscribe([client], name);
    const encoded = encodeURIComponent(name);
    assert.notEqual(encoded, name, 'the name really has characters to encode');
    const expected = { channel: name, subscribers: 1, members: [{ connection_id: connectionId(client), user_id: 'alice', node: server.handler.nodeId }] };
    assert.deepEqual(await members(server, encoded), expected);
    assert.deepEqual(await members(server, name), expected);
    // A query string is not part of the name.
    assert.deepEqual(await members(server, `${encoded}?verbose=1`), expected);
  });

  void test('an invalid channel name in the path answers 400 with a JSON error', async (t) => {
    const server = await start(t);
    for (const name of ['', encodeURIComponent('chat room'), 'chat..room', '.chat', 'chat.', 'a%2Fb', encodeURIComponent('ünïcode'), 'a'.repeat(129), '%ZZ', '%']) {
      const answer = await api(server, 'GET', `/api/channels/${name}`);
      assert.equal(answer.status, 400, `/api/channels/${name}: ${answer.body}`);
      assertErrorBody(answer, 400);
    }
    assert.match(badRequest(await api(server, 'GET', '/api/channels/chat..room')), /channel name/);
  });

  void test('an unknown channel answers 200 with subscribers 0 and no members', async (t) => {
    const server = await start(t);
    assert.deepEqual(await members(server, 'never.used'), { channel: 'never.used', subscribers: 0, members: [] });
  });
});

void describe('POST /api/disconnect', SUITE, () => {
  const CLOSED = { code: 1000, reason: 'disconnected by server' };

  void test('{"user_id"} closes every connection of that user with 1000 "disconnected by server"; the others stay open', async (t) => {
    const server = await start(t);
    const alice = [await connect(t, server, 'alice'), await connect(t, server, 'alice'), await connect(t, server, 'alice')];
    const bob = await connect(t, server, 'bob');
    const anonymous = await connect(t, server);
    // A user id that merely starts like alice's is someone else.
    const alicia = await connect(t, server, 'alice2');
    await subscribe([...alice, bob, anonymous, alicia]);

    assert.deepEqual(await ok(api(server, 'POST', '/api/disconnect', { user_id: 'alice' })), { success: true, disconnected: 3 });
    for (const client of alice) assert.deepEqual(await client.closed, CLOSED);
    for (const client of [bob, anonymous, alicia]) await settle(client);
    await eventually(() => server.handler.connectionCount === 3, 5000, "alice's connections to be gone");
    const left = await members(server, CHANNEL);
    assert.deepEqual(left.members.map((member) => member.user_id).sort(), [null, 'alice2', 'bob'].sort(), 'alice left the channel');
  });

  void test('{"user_id"} as a number closes the connections authenticated as that id', async (t) => {
    const server = await start(t);
    const numeric = [await connect(t, server, 42), await connect(t, server, '42')];
    const other = await connect(t, server, 420);
    assert.deepEqual(await ok(api(server, 'POST', '/api/disconnect', { user_id: 42 })), { success: true, disconnected: 2 });
    for (const client of numeric) assert.deepEqual(await client.closed, CLOSED);
    await settle(other);
  });

  void test('{"connection_id"} closes exactly that connection', async (t) => {
    const server = await start(t);
    const target = await connect(t, server, 'alice');
    const sameUser = await connect(t, server, 'alice');
    const anonymous = await connect(t, server);
    assert.deepEqual(await ok(api(server, 'POST', '/api/disconnect', { connection_id: connectionId(target) })), { success: true, disconnected: 1 });
    assert.deepEqual(await target.closed, CLOSED);
    await settle(sameUser);
    await settle(anonymous);
    // Once closed it is gone: a second request finds nobody.
    await eventually(() => server.handler.connectionCount === 2, 5000, 'the connection to be gone');
    assert.deepEqual(await ok(api(server, 'POST', '/api/disconnect', { connection_id: connectionId(target) })), { success: true, disconnected: 0 });
  });

  void test('nobody matching answers disconnected 0 and closes nothing', async (t) => {
    const server = await start(t);
    const alice = await connect(t, server, 'alice');
    const anonymous = await connect(t, server);
    for (const body of [{ user_id: 'nobody' }, { user_id: 7 }, { connection_id: 'no-such-connection' }, { connection_id: `${connectionId(alice)}0` }]) {
      assert.deepEqual(await ok(api(server, 'POST', '/api/disconnect', body)), { success: true, disconnected: 0 }, JSON.stringify(body));
    }
    await settle(alice);
    await settle(anonymous);
    assert.equal(server.handler.connectionCount, 2);
  });

  void test('400 with a JSON error for both fields, neither, unknown fields, wrong types and bodies that are not objects; nobody is closed', async (t) => {
    const server = await start(t);
    const alice = await connect(t, server, 'alice');
    const id = connectionId(alice);
    const cases: ReadonlyArray<{ what: string; body: unknown; error?: RegExp }> = [
      { what: 'both fields', body: { user_id: 'alice', connection_id: id }, error: /one of/ },
      { what: 'neither field', body: {}, error: /one of/ },
      { what: 'an unknown field', body: { user: 'alice' }, error: /unknown field.*user/ },
      { what: 'a known and an unknown field', body: { user_id: 'alice', force: true }, error: /unknown field.*force/ },
      { what: 'user_id true', body: { user_id: true }, error: /user_id/ },
      { what: 'user_id null', body: { user_id: null }, error: /user_id/ },
      { what: 'user_id an object', body: { user_id: { id: 'alice' } }, error: /user_id/ },
      { what: 'user_id an array', body: { user_id: ['alice'] }, error: /user_id/ },
      { what: 'user_id empty', body: { user_id: '' }, error: /user_id/ },
      { what: 'connection_id a number', body: { connection_id: 5 }, error: /connection_id/ },
      { what: 'connection_id null', body: { connection_id: null }, error: /connection_id/ },
      { what: 'connection_id empty', body: { connection_id: '' }, error: /connection_id/ },
      { what: 'a JSON array', body: JSON.stringify([{ user_id: 'alice' }]), error: /object/ },
      { what: 'a JSON string', body: JSON.stringify('alice'), error: /object/ },
      { what: 'JSON null', body: 'null', error: /object/ },
      { what: 'invalid JSON', body: '{"user_id": ', error: /JSON/ },
      { what: 'an empty body', body: '', error: /empty/ },
    ];
    for (const { what, body, error } of cases) {
      const message = badRequest(await api(server, 'POST', '/api/disconnect', body));
      if (error !== undefined) assert.match(message, error, what);
    }
    await settle(alice);
    assert.equal(server.handler.connectionCount, 1);
  });
});
