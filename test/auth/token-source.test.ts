import assert from 'node:assert/strict';
import type { IncomingMessage, IncomingHttpHeaders } from 'node:http';
import { describe, test } from 'node:test';
import { redactedHeaders, redactedUrl, tokenFromRequest } from '../../src/auth/token-source.js';

/** A handshake request with just the parts tokenFromRequest reads. */
function request(headers: IncomingHttpHeaders, url?: string): IncomingMessage {
  return { headers, url } as unknown as IncomingMessage;
}

const HEADER_TOKEN = 'header.token.jwt';
const QUERY_TOKEN = 'query.token.jwt';
const PROTOCOL_TOKEN = 'protocol.token.jwt';

void describe('tokenFromRequest: Authorization header', () => {
  void test('reads the token from Authorization: Bearer', () => {
    assert.equal(tokenFromRequest(request({ authorization: `Bearer ${HEADER_TOKEN}` }, '/')), HEADER_TOKEN);
  });

  void test('the Bearer scheme is case-insensitive', () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      assert.equal(tokenFromRequest(request({ authorization: `${scheme} ${HEADER_TOKEN}` }, '/')), HEADER_TOKEN, scheme);
    }
  });

  void test('a non-Bearer Authorization header is not a token', () => {
    assert.equal(tokenFromRequest(request({ authorization: 'Basic dXNlcjpwYXNz' }, '/')), null);
    assert.equal(tokenFromRequest(request({ authorization: HEADER_TOKEN }, '/')), null);
  });

  void test('a non-Bearer Authorization header does not hide the ?token= query', () => {
    assert.equal(tokenFromRequest(request({ authorization: 'Basic dXNlcjpwYXNz' }, `/?token=${QUERY_TOKEN}`)), QUERY_TOKEN);
  });

  void test("'Bearer' without a token is not a token", () => {
    assert.equal(tokenFromRequest(request({ authorization: 'Bearer ' }, '/')), null);
    assert.equal(tokenFromRequest(request({ authorization: 'Bearer' }, `/?token=${QUERY_TOKEN}`)), QUERY_TOKEN);
  });
});

void describe('tokenFromRequest: ?token= query', () => {
  void test('reads the token from ?token=', () => {
    assert.equal(tokenFromRequest(request({}, `/?token=${QUERY_TOKEN}`)), QUERY_TOKEN);
  });

  void test('reads the token from ?token= among other query parameters', () => {
    assert.equal(tokenFromRequest(request({}, `/ws?room=1&token=${QUERY_TOKEN}&debug=true`)), QUERY_TOKEN);
  });

  void test('an empty ?token= is no token', () => {
    assert.equal(tokenFromRequest(request({}, '/ws?token=')), null);
    assert.equal(tokenFromRequest(request({}, '/ws?token=&room=1')), null);
  });

  void test('an empty ?token= does not hide the bearer subprotocol', () => {
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': `bearer, ${PROTOCOL_TOKEN}` }, '/ws?token=')), PROTOCOL_TOKEN);
  });

  void test('a query parameter merely containing "token" in its name is not the token', () => {
    assert.equal(tokenFromRequest(request({}, '/ws?mytoken=abc&tokens=def&token_type=x')), null);
  });
});

void describe('tokenFromRequest: bearer subprotocol', () => {
  void test("reads the token from the subprotocols 'bearer, <jwt>'", () => {
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': `bearer, ${PROTOCOL_TOKEN}` }, '/')), PROTOCOL_TOKEN);
  });

  void test('reads the token when other subprotocols come before and after the bearer pair', () => {
    const header = `chat.v1, bearer, ${PROTOCOL_TOKEN}, json`;
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': header }, '/')), PROTOCOL_TOKEN);
  });

  void test("reads the token from 'bearer,<jwt>' without a space", () => {
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': `bearer,${PROTOCOL_TOKEN}` }, '/')), PROTOCOL_TOKEN);
  });

  void test("'bearer' as the last subprotocol, with nothing after it, is no token", () => {
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': 'chat.v1, bearer' }, '/')), null);
  });

  void test('subprotocols without bearer carry no token', () => {
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': `chat.v1, ${PROTOCOL_TOKEN}` }, '/')), null);
  });
});

void describe('tokenFromRequest: precedence and absence', () => {
  const all = (): IncomingHttpHeaders => ({ authorization: `Bearer ${HEADER_TOKEN}`, 'sec-websocket-protocol': `bearer, ${PROTOCOL_TOKEN}` });

  void test('the Authorization header wins over ?token= and the subprotocol', () => {
    assert.equal(tokenFromRequest(request(all(), `/?token=${QUERY_TOKEN}`)), HEADER_TOKEN);
  });

  void test('the Authorization header wins over the subprotocol', () => {
    assert.equal(tokenFromRequest(request(all(), '/')), HEADER_TOKEN);
  });

  void test('?token= wins over the subprotocol', () => {
    assert.equal(tokenFromRequest(request({ 'sec-websocket-protocol': `bearer, ${PROTOCOL_TOKEN}` }, `/?token=${QUERY_TOKEN}`)), QUERY_TOKEN);
  });

  void test('a request with no token anywhere gives null', () => {
    assert.equal(tokenFromRequest(request({ host: 'localhost' }, '/ws?room=1')), null);
    assert.equal(tokenFromRequest(request({}, '/')), null);
  });

  void test('a request without a url gives null rather than throwing', () => {
    assert.equal(tokenFromRequest(request({})), null);
  });
});

void describe('redactedUrl', () => {
  void test('masks the token when it is the first query parameter', () => {
    const url = redactedUrl(`/ws?token=${QUERY_TOKEN}&room=1`);
    assert.ok(!url.includes(QUERY_TOKEN), url);
    assert.equal(new URLSearchParams(url.split('?')[1]).get('room'), '1');
    assert.match(url, /^\/ws\?token=[^&]+&room=1$/);
  });

  void test('masks the token when it comes after other query parameters', () => {
    const url = redactedUrl(`/ws?room=1&debug=true&token=${QUERY_TOKEN}`);
    assert.ok(!url.includes(QUERY_TOKEN), url);
    assert.match(url, /^\/ws\?room=1&debug=true&token=[^&]+$/);
  });

  void test('masks the token in the middle and keeps the parameters on both sides', () => {
    const url = redactedUrl(`/ws?a=1&token=${QUERY_TOKEN}&b=2`);
    assert.ok(!url.includes(QUERY_TOKEN), url);
    const params = new URLSearchParams(url.split('?')[1]);
    assert.equal(params.get('a'), '1');
    assert.equal(params.get('b'), '2');
  });

  void test('masks every token parameter when there are several', () => {
    const url = redactedUrl('/ws?token=first.secret&x=1&token=second.secret');
    assert.ok(!url.includes('first.secret') && !url.includes('second.secret'), url);
    assert.ok(url.includes('x=1'), url);
  });

  void test('leaves a URL without a token unchanged', () => {
    for (const url of ['/', '/ws', '/ws?room=1&debug=true', '/ws?mytoken=abc&tokens=def&token_type=x']) {
      assert.equal(redactedUrl(url), url);
    }
  });

  void test('masks the token of every URL from which tokenFromRequest reads a query token', () => {
    // URLSearchParams decodes parameter names, so tokenFromRequest reads `to%6Ben` as `token`.
    for (const url of [`/ws?token=${QUERY_TOKEN}`, `/ws?a=1&token=${QUERY_TOKEN}`, `/ws?to%6Ben=${QUERY_TOKEN}`, `/ws?%74oken=${QUERY_TOKEN}`]) {
      assert.equal(tokenFromRequest(request({}, url)), QUERY_TOKEN, url);
      assert.ok(!redactedUrl(url).includes(QUERY_TOKEN), `token left in ${redactedUrl(url)}`);
    }
  });
});

void describe('redactedHeaders', () => {
  void test('masks a Bearer token in Authorization and the token after bearer in the subprotocols, keeping the rest', () => {
    const headers = redactedHeaders({
      authorization: 'Bearer aaa.bbb.ccc',
      'sec-websocket-protocol': 'chat, bearer, aaa.bbb.ccc',
      origin: 'https://example.com',
    });
    assert.equal(headers.authorization, 'Bearer [redacted]');
    assert.equal(headers['sec-websocket-protocol'], 'chat, bearer, [redacted]');
    assert.equal(headers.origin, 'https://example.com');
  });
});
