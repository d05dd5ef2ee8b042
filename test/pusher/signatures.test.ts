/**
 * Pusher's signatures (SPEC §10) against Pusher's published test vectors and the real
 * `pusher` server SDK (v5): channel authorization, user sign-in, HTTP API requests the SDK
 * signs and sends to a capturing node:http server, and webhooks.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import Pusher from 'pusher';
import {
  apiStringToSign,
  channelAuth,
  md5Hex,
  safeEqual,
  signApiRequest,
  userAuth,
  verifyApiRequest,
  verifyChannelAuth,
  verifyUserAuth,
  verifyWebhookSignature,
  webhookHeaders,
  webhookSignature,
  type ApiAuthFailure,
  type ApiRequest,
} from '../../src/pusher/signatures.js';

// Pusher's documented example credentials.
const KEY = '278d425bdf160c739803';
const SECRET = '7ad3773142a6692b25b8';
const APP_ID = '3';
const CREDENTIALS = { key: KEY, secret: SECRET };

const sdk = new Pusher({ appId: APP_ID, key: KEY, secret: SECRET, cluster: 'mt1' });

void describe('published test vectors', () => {
  void test('private channel: 1234.1234 on private-foobar', () => {
    const auth = '278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4';
    assert.equal(channelAuth(KEY, SECRET, '1234.1234', 'private-foobar'), auth);
    assert.equal(sdk.authorizeChannel('1234.1234', 'private-foobar').auth, auth);
    assert.ok(verifyChannelAuth(KEY, SECRET, '1234.1234', 'private-foobar', auth));
  });

  void test('presence channel: the published signature is over user_info {"name":"Mr. Pusher"}', () => {
    // Pusher's docs (and the Go, Java, PHP, Haskell libraries' tests) pair afaed3… with "Mr. Pusher".
    const channelData = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}';
    const auth = '278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c';
    assert.equal(channelAuth(KEY, SECRET, '1234.1234', 'presence-foobar', channelData), auth);
    // The SDK types user_id as a string; the published example has the number 10.
    const fromSdk = sdk.authorizeChannel('1234.1234', 'presence-foobar', { user_id: 10 as unknown as string, user_info: { name: 'Mr. Pusher' } });
    assert.deepEqual(fromSdk, { auth, channel_data: channelData });
    assert.ok(verifyChannelAuth(KEY, SECRET, '1234.1234', 'presence-foobar', auth, channelData));
  });

  void test('presence channel with {"name":"Mr. Channels"}: a different signature, as the SDK computes it', () => {
    const channelData = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}';
    const fromSdk = sdk.authorizeChannel('1234.1234', 'presence-foobar', { user_id: 10 as unknown as string, user_info: { name: 'Mr. Channels' } });
    assert.equal(fromSdk.channel_data, channelData);
    assert.equal(fromSdk.auth, '278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80');
    assert.equal(channelAuth(KEY, SECRET, '1234.1234', 'presence-foobar', channelData), fromSdk.auth);
  });

  void test("the HTTP API's worked example: POST /apps/3/events at 1353088179", () => {
    const body = '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}';
    assert.equal(md5Hex(body), 'ec365a775a4cd0599faeb73354201b6f');
    const query = {
      auth_key: KEY,
      auth_timestamp: '1353088179',
      auth_version: '1.0',
      body_md5: 'ec365a775a4cd0599faeb73354201b6f',
      auth_signature: 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c',
    };
    assert.deepEqual(verifyApiRequest({ method: 'POST', path: '/apps/3/events', query, body }, CREDENTIALS, 1353088179_000), { ok: true });
    assert.deepEqual(signApiRequest({ method: 'POST', path: '/apps/3/events', body }, CREDENTIALS, 1353088179_000), query);
  });
});

void describe('channel authorization', () => {
  const channelData = JSON.stringify({ user_id: 'u-1', user_info: { name: 'Ada' } });

  void test('matches the SDK for private, presence and encrypted-looking channel names', () => {
    for (const [socketId, channel] of [
      ['1.1', 'private-a'],
      ['98765.43210', 'private-chat.room_1=@,;'],
      ['123456789012345.1', 'private-x'],
    ] as const) {
      assert.equal(channelAuth(KEY, SECRET, socketId, channel), sdk.authorizeChannel(socketId, channel).auth);
    }
    const presence = sdk.authorizeChannel('5.6', 'presence-room', { user_id: 'u-1', user_info: { name: 'Ada' } });
    assert.equal(presence.channel_data, channelData);
    assert.equal(channelAuth(KEY, SECRET, '5.6', 'presence-room', channelData), presence.auth);
  });

  void test('verification refuses another key, secret, socket, channel or channel_data', () => {
    const { auth } = sdk.authorizeChannel('5.6', 'presence-room', { user_id: 'u-1', user_info: { name: 'Ada' } });
    assert.ok(verifyChannelAuth(KEY, SECRET, '5.6', 'presence-room', auth, channelData));
    const signature = auth.slice(auth.indexOf(':') + 1);
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.6', 'presence-room', `otherkey:${signature}`, channelData), 'key part');
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.6', 'presence-room', signature, channelData), 'no key part');
    assert.ok(!verifyChannelAuth(KEY, 'other-secret', '5.6', 'presence-room', auth, channelData), 'secret');
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.7', 'presence-room', auth, channelData), 'socket id');
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.6', 'presence-roomy', auth, channelData), 'channel');
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.6', 'presence-room', auth, channelData.replace('Ada', 'Eve')), 'channel_data');
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.6', 'presence-room', auth), 'channel_data left out');
    assert.ok(!verifyChannelAuth(KEY, SECRET, '5.6', 'presence-room', auth.toUpperCase(), channelData), 'case');
  });

  void test('verification refuses auth values that are not strings', () => {
    for (const auth of [undefined, null, 42, {}, ['a'], true]) assert.equal(verifyChannelAuth(KEY, SECRET, '1.1', 'private-a', auth), false);
  });
});

void describe('user sign-in', () => {
  void test('matches the SDK and verifies what it signs', () => {
    for (const user of [{ id: '1' }, { id: '42', user_info: { name: 'Ada' }, watchlist: ['2'] }]) {
      const { auth, user_data: userData } = sdk.authenticateUser('1234.1234', user);
      assert.equal(userAuth(KEY, SECRET, '1234.1234', userData), auth);
      assert.ok(verifyUserAuth(KEY, SECRET, '1234.1234', userData, auth));
    }
  });

  void test('signs socketId::user::userData, not the channel form', () => {
    const { auth, user_data: userData } = sdk.authenticateUser('1.2', { id: '1' });
    assert.notEqual(channelAuth(KEY, SECRET, '1.2', userData), auth);
    assert.ok(!verifyChannelAuth(KEY, SECRET, '1.2', '', auth, userData));
  });

  void test('verification refuses another socket, user data, key or secret', () => {
    const { auth, user_data: userData } = sdk.authenticateUser('1.2', { id: '1' });
    assert.ok(!verifyUserAuth(KEY, SECRET, '1.3', userData, auth));
    assert.ok(!verifyUserAuth(KEY, SECRET, '1.2', '{"id":"2"}', auth));
    assert.ok(!verifyUserAuth('k', SECRET, '1.2', userData, auth));
    assert.ok(!verifyUserAuth(KEY, 'nope', '1.2', userData, auth));
    assert.ok(!verifyUserAuth(KEY, SECRET, '1.2', userData, undefined));
  });
});

void describe('webhooks', () => {
  const body = JSON.stringify({ time_ms: 1700000000000, events: [{ name: 'channel_occupied', channel: 'private-a' }] });

  void test("the SDK's webhook() validation accepts our headers and signature", () => {
    const headers = Object.fromEntries(Object.entries(webhookHeaders(KEY, SECRET, body)).map(([name, value]) => [name.toLowerCase(), value]));
    const hook = sdk.webhook({ headers, rawBody: body });
    assert.equal(hook.isValid(), true);
    assert.deepEqual(hook.getEvents(), [{ name: 'channel_occupied', channel: 'private-a' }]);
    assert.equal(headers['x-pusher-signature'], webhookSignature(SECRET, body));
  });

  void test("the SDK's validation refuses a changed body or another secret", () => {
    const signature = webhookSignature(SECRET, body);
    const tampered = body.replace('private-a', 'private-b');
    assert.equal(sdk.webhook({ headers: { 'x-pusher-key': KEY, 'x-pusher-signature': signature, 'content-type': 'application/json' }, rawBody: tampered }).isValid(), false);
    const other = webhookSignature('other-secret', body);
    assert.equal(sdk.webhook({ headers: { 'x-pusher-key': KEY, 'x-pusher-signature': other, 'content-type': 'application/json' }, rawBody: body }).isValid(), false);
  });

  void test('verifyWebhookSignature checks the body byte for byte', () => {
    const signature = webhookSignature(SECRET, body);
    assert.ok(verifyWebhookSignature(SECRET, body, signature));
    assert.ok(verifyWebhookSignature(SECRET, Buffer.from(body), signature));
    assert.ok(!verifyWebhookSignature(SECRET, `${body} `, signature));
    assert.ok(!verifyWebhookSignature('x', body, signature));
    assert.ok(!verifyWebhookSignature(SECRET, body, undefined));
  });
});

// ---------------------------------------------------------------------------------------
// HTTP API: requests the real SDK signs and sends
// ---------------------------------------------------------------------------------------

interface Captured {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Buffer;
}

/** A node:http server that records every request and answers 200 `{}`; and an SDK pointed at it. */
async function capturingSdk(t: TestContext): Promise<{ pusher: Pusher; requests: Captured[] }> {
  const requests: Captured[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const target = request.url ?? '/';
      const mark = target.indexOf('?');
      requests.push({
        method: request.method ?? '',
        path: mark === -1 ? target : target.slice(0, mark),
        query: new URLSearchParams(mark === -1 ? '' : target.slice(mark + 1)),
        body: Buffer.concat(chunks),
      });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { pusher: new Pusher({ appId: APP_ID, key: KEY, secret: SECRET, host: '127.0.0.1', port: String(port), useTLS: false }), requests };
}

const asRequest = (captured: Captured): ApiRequest => ({ method: captured.method, path: captured.path, query: captured.query, body: captured.body });

function assertRefused(request: ApiRequest, reason: ApiAuthFailure, credentials = CREDENTIALS, now = Date.now()): void {
  const result = verifyApiRequest(request, credentials, now);
  assert.equal(result.ok, false, `expected '${reason}', but the request was accepted`);
  if (result.ok) return;
  assert.equal(result.reason, reason, result.message);
  assert.ok(!/[\r\n]/.test(result.message), `one line: ${result.message}`);
  assert.ok(!result.message.includes(SECRET), 'the message never holds the secret');
  const expected = request.query instanceof URLSearchParams ? request.query.get('auth_signature') : null;
  if (reason !== 'bad signature' && expected !== null) assert.ok(!result.message.includes(expected));
}

/** The captured query with one parameter changed (or removed, with `value` null). */
function withParam(query: URLSearchParams, name: string, value: string | null): URLSearchParams {
  const copy = new URLSearchParams(query);
  if (value === null) copy.delete(name);
  else copy.set(name, value);
  return copy;
}

void describe('HTTP API requests signed by the pusher SDK', () => {
  void test('every kind of request the SDK sends verifies, as URLSearchParams and as an object', async (t) => {
    const { pusher, requests } = await capturingSdk(t);
    await pusher.trigger('ch', 'ev', { a: 1 });
    await pusher.trigger(['private-a', 'presence-b'], 'ev', 'text', { socket_id: '123.456', info: 'user_count,subscription_count' });
    await pusher.triggerBatch([{ channel: 'a', name: 'x', data: { n: 1 } }, { channel: 'b', name: 'y', data: 'z', info: 'subscription_count' }]);
    await pusher.get({ path: '/channels' });
    await pusher.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } });
    await pusher.get({ path: '/channels/presence-b', params: { info: 'user_count,subscription_count' } });
    await pusher.get({ path: '/channels/presence-b/users' });
    await pusher.terminateUserConnections('42');
    await pusher.sendToUser('42', 'hello', { a: 'é ü' });
    assert.equal(requests.length, 9);
    for (const captured of requests) {
      const request = asRequest(captured);
      assert.deepEqual(verifyApiRequest(request, CREDENTIALS), { ok: true }, `${captured.method} ${captured.path}?${captured.query.toString()}`);
      const asObject = { ...request, query: Object.fromEntries(captured.query) };
      assert.deepEqual(verifyApiRequest(asObject, CREDENTIALS), { ok: true });
      assert.ok(captured.path.startsWith(`/apps/${APP_ID}/`));
    }
    const [trigger, , , list, filtered] = requests as [Captured, Captured, Captured, Captured, Captured];
    assert.equal(trigger.method, 'POST');
    assert.equal(trigger.query.get('body_md5'), md5Hex(trigger.body));
    assert.equal(list.method, 'GET');
    assert.equal(list.query.has('body_md5'), false, 'a GET without a body carries no body_md5');
    assert.equal(filtered.query.get('filter_by_prefix'), 'presence-');
  });

  void test('tampered requests are refused, each with its reason', async (t) => {
    const { pusher, requests } = await capturingSdk(t);
    await pusher.trigger('ch', 'ev', { a: 1 });
    await pusher.get({ path: '/channels', params: { filter_by_prefix: 'presence-' } });
    const [post, get] = requests.map(asRequest) as [ApiRequest, ApiRequest];
    const postQuery = post.query as URLSearchParams;
    const getQuery = get.query as URLSearchParams;

    assertRefused({ ...post, body: Buffer.from('{"name":"ev","data":"{\\"a\\":2}","channels":["ch"]}') }, 'bad body_md5');
    assertRefused({ ...post, body: '' }, 'bad body_md5');
    assertRefused({ ...post, query: withParam(postQuery, 'body_md5', null) }, 'bad body_md5');
    assertRefused({ ...get, body: 'smuggled' }, 'bad body_md5');
    assertRefused({ ...get, query: withParam(getQuery, 'filter_by_prefix', 'private-') }, 'bad signature');
    assertRefused({ ...get, query: withParam(getQuery, 'info', 'user_count') }, 'bad signature');
    assertRefused({ ...get, path: '/apps/4/channels' }, 'bad signature');
    assertRefused({ ...get, method: 'POST' }, 'bad signature');
    assertRefused({ ...get, query: withParam(getQuery, 'auth_signature', '0'.repeat(64)) }, 'bad signature');
    assertRefused(get, 'bad signature', { key: KEY, secret: 'wrong-secret' });
    assertRefused(get, 'bad key', { key: 'another-key', secret: SECRET });
    assertRefused({ ...get, query: withParam(getQuery, 'auth_key', 'another-key') }, 'bad key');
    assertRefused(get, 'stale timestamp', CREDENTIALS, Date.now() + 601_000);
    assertRefused(get, 'stale timestamp', CREDENTIALS, Date.now() - 601_000);
    assertRefused({ ...get, query: withParam(getQuery, 'auth_timestamp', 'soon') }, 'stale timestamp');
    for (const name of ['auth_key', 'auth_timestamp', 'auth_version', 'auth_signature']) {
      assertRefused({ ...get, query: withParam(getQuery, name, null) }, 'missing params');
    }
    assertRefused({ ...get, query: withParam(getQuery, 'auth_version', '2.0') }, 'missing params');
    const repeated = new URLSearchParams(getQuery);
    repeated.append('filter_by_prefix', 'presence-');
    assertRefused({ ...get, query: repeated }, 'bad signature');
  });

  void test('the timestamp may be up to 600 s off either way', async (t) => {
    const { pusher, requests } = await capturingSdk(t);
    await pusher.get({ path: '/channels' });
    const request = asRequest(requests[0] as Captured);
    const signedAt = Number((request.query as URLSearchParams).get('auth_timestamp')) * 1000;
    assert.deepEqual(verifyApiRequest(request, CREDENTIALS, signedAt + 600_000), { ok: true });
    assert.deepEqual(verifyApiRequest(request, CREDENTIALS, signedAt - 600_000), { ok: true });
    assertRefused(request, 'stale timestamp', CREDENTIALS, signedAt + 600_001);
  });

  void test('a bad signature says what was to be signed, on one line, without the expected signature', async (t) => {
    const { pusher, requests } = await capturingSdk(t);
    await pusher.get({ path: '/channels' });
    const request = asRequest(requests[0] as Captured);
    const result = verifyApiRequest(request, { key: KEY, secret: 'wrong-secret' });
    assert.ok(!result.ok && result.reason === 'bad signature');
    assert.ok(result.message.includes(JSON.stringify(apiStringToSign('GET', request.path, new Map(request.query as URLSearchParams)))));
    assert.ok(!result.message.includes(signApiRequest({ method: 'GET', path: request.path }, { key: KEY, secret: 'wrong-secret' }).auth_signature as string));
  });
});

void describe('the signing rule', () => {
  void test('keys are lowercased and sorted, values are signed as they are, auth_signature left out', () => {
    const toSign = apiStringToSign('get', '/apps/3/channels', { info: 'user_count,subscription_count', Filter_By_Prefix: 'presence-', auth_signature: 'x', auth_key: 'k' });
    assert.equal(toSign, 'GET\n/apps/3/channels\nauth_key=k&filter_by_prefix=presence-&info=user_count,subscription_count');
  });

  void test('signApiRequest signs as the SDK does (its createSignedQueryString)', () => {
    const body = JSON.stringify({ name: 'ev', data: '{}', channel: 'ch' });
    const fromSdk = new URLSearchParams(sdk.createSignedQueryString({ method: 'POST', path: '/apps/3/events', body, params: { info: 'subscription_count' } }));
    const ours = signApiRequest(
      { method: 'POST', path: '/apps/3/events', body, params: { info: 'subscription_count' } },
      CREDENTIALS,
      Number(fromSdk.get('auth_timestamp')) * 1000,
    );
    assert.deepEqual(ours, Object.fromEntries(fromSdk));
  });

  void test('percent-encoded values (as Guzzle sends a PHP SDK query) verify once decoded', () => {
    const signed = signApiRequest({ method: 'GET', path: '/apps/3/channels/presence-b', params: { info: 'user_count,subscription_count' } }, CREDENTIALS);
    const sent = Object.entries(signed).map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&');
    assert.ok(sent.includes('user_count%2Csubscription_count'));
    assert.deepEqual(verifyApiRequest({ method: 'GET', path: '/apps/3/channels/presence-b', query: new URLSearchParams(sent) }, CREDENTIALS), { ok: true });
  });

  void test('query keys arrive in any case: they are lowercased before signing', () => {
    const signed = signApiRequest({ method: 'GET', path: '/apps/3/channels' }, CREDENTIALS);
    const shouting = Object.fromEntries(Object.entries(signed).map(([name, value]) => [name.toUpperCase(), value]));
    assert.deepEqual(verifyApiRequest({ method: 'get', path: '/apps/3/channels', query: shouting }, CREDENTIALS), { ok: true });
  });

  void test('an empty body may carry the MD5 of nothing', () => {
    const signed = signApiRequest({ method: 'POST', path: '/apps/3/users/1/terminate_connections', params: { body_md5: md5Hex('') } }, CREDENTIALS);
    assert.deepEqual(verifyApiRequest({ method: 'POST', path: '/apps/3/users/1/terminate_connections', query: signed, body: '' }, CREDENTIALS), { ok: true });
  });

  void test('safeEqual compares whole strings', () => {
    assert.ok(safeEqual('abc', 'abc'));
    assert.ok(!safeEqual('abc', 'abd'));
    assert.ok(!safeEqual('abc', 'abcd'));
    assert.ok(safeEqual('', ''));
  });
});
