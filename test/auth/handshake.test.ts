/**
 * Authentication at the handshake (SPEC §5, §3): the token sources in their order, the
 * claims the welcome frame reports, and the 401 refusals, over real WebSocket connections
 * to a real server on 127.0.0.1 and a free port. Tokens are made here with jose.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload } from 'jose';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import type { HandlerOptions } from '../../src/handler.js';
import { TestClient, settle, type Frame } from '../helpers/client.js';
import { assertErrorBody, refusedHandshake } from '../helpers/http.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'handshake-test-secret-of-at-least-32-bytes';
const ISSUER = 'https://issuer.switchboard.test';
const AUDIENCE = 'switchboard-test';

/** No heartbeat frames and no rate limit during these tests. */
const QUIET: HandlerOptions = { heartbeatInterval: 3600, maxMessagesPerMinute: 0 };

const keyDir = mkdtempSync(join(tmpdir(), 'switchboard-handshake-'));
after(() => rmSync(keyDir, { recursive: true, force: true }));

async function publicKeyFile(alg: 'RS256' | 'ES256'): Promise<{ privateKey: CryptoKey; pemPath: string; pem: string }> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const pem = await exportSPKI(publicKey);
  const pemPath = join(keyDir, `${alg}.pem`);
  writeFileSync(pemPath, pem);
  return { privateKey, pemPath, pem };
}

const rsa = await publicKeyFile('RS256');
const ec = await publicKeyFile('ES256');
const otherRsa = await generateKeyPair('RS256');

const secretKey = (secret: string): Uint8Array => new TextEncoder().encode(secret);
const unixNow = (): number => Math.floor(Date.now() / 1000);

interface SignOptions {
  alg?: string;
  key?: CryptoKey | Uint8Array;
  /** Seconds since the epoch; null leaves `exp` out. @default an hour from now */
  exp?: number | null;
}

/** A signed token with `claims`; HS256 with SECRET unless told otherwise. */
async function sign(claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  const { alg = 'HS256', key = secretKey(SECRET), exp = unixNow() + 3600 } = options;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt();
  if (exp !== null) jwt.setExpirationTime(exp);
  return jwt.sign(key);
}

async function start(t: TestContext, options: HandlerOptions = {}, setup?: Parameters<typeof startServer>[1]): Promise<TestServer> {
  const server = await startServer({ ...QUIET, auth: { secret: SECRET }, ...options }, setup);
  t.after(() => server.close());
  return server;
}

async function connect(t: TestContext, url: string, options: ClientOptions = {}): Promise<TestClient> {
  const client = await TestClient.connect(url, options);
  t.after(() => client.close());
  return client;
}

const bearer = (token: string): ClientOptions => ({ headers: { Authorization: `Bearer ${token}` } });

function withQueryToken(url: string, token: string): string {
  const target = new URL(url);
  target.searchParams.set('token', token);
  return target.toString();
}

/** The identity fields of a welcome frame. */
function identityOf(welcome: Frame): Pick<Frame, 'authenticated' | 'user_id' | 'role'> {
  return { authenticated: welcome.authenticated, user_id: welcome.user_id, role: welcome.role };
}

/**
 * Connects with WebSocket subprotocols (which TestClient cannot send) and waits for the
 * welcome frame.
 */
async function connectWithSubprotocols(t: TestContext, url: string, protocols: string[]): Promise<{ socket: WebSocket; welcome: Frame }> {
  const socket = new WebSocket(url, protocols);
  t.after(() => socket.terminate());
  const welcome = await new Promise<Frame>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no welcome frame within 10 s')), 10_000);
    socket.once('message', (data: RawData) => {
      clearTimeout(timer);
      resolve(JSON.parse((data as Buffer).toString('utf8')) as Frame);
    });
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) => reject(new Error(`handshake refused with HTTP ${response.statusCode}`)));
  });
  return { socket, welcome };
}

void describe('token sources', () => {
  void test('a valid token in the Authorization: Bearer header authenticates the connection', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ user_id: 42, role: 'admin' })));
    assert.equal(client.welcome.action, 'welcome');
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 42, role: 'admin' });
  });

  void test('a valid token in the ?token= query authenticates the connection', async (t) => {
    const server = await start(t);
    const client = await connect(t, withQueryToken(server.url, await sign({ user_id: 7, role: 'user' })));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 7, role: 'user' });
  });

  void test('a valid token in the subprotocols bearer, <jwt> authenticates the connection and the server selects bearer', async (t) => {
    const server = await start(t);
    const token = await sign({ user_id: 9, role: 'viewer' });
    const { socket, welcome } = await connectWithSubprotocols(t, server.url, ['bearer', token]);
    assert.equal(socket.protocol, 'bearer');
    assert.equal(welcome.action, 'welcome');
    assert.deepEqual(identityOf(welcome), { authenticated: true, user_id: 9, role: 'viewer' });
  });

  void test('a bad token in the subprotocols is refused with 401', async (t) => {
    const server = await start(t);
    const forged = await sign({ user_id: 9 }, { key: secretKey('not-the-server-secret-but-long-enough') });
    // ws only checks the selected subprotocol on a 101, so the header can be set by hand here.
    assertErrorBody(await refusedHandshake(server.url, { headers: { 'Sec-WebSocket-Protocol': `bearer, ${forged}` } }), 401);
  });

  void test('the header wins over the query: a bad query token is ignored when the header carries a good one', async (t) => {
    const server = await start(t);
    const forged = await sign({ user_id: 666, role: 'admin' }, { key: secretKey('not-the-server-secret-but-long-enough') });
    const good = await sign({ user_id: 42, role: 'user' });
    const client = await connect(t, withQueryToken(server.url, forged), bearer(good));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 42, role: 'user' });
  });

  void test('the header wins over the query: a bad header token is refused with 401 even when the query carries a good one', async (t) => {
    const server = await start(t);
    const forged = await sign({ user_id: 666 }, { key: secretKey('not-the-server-secret-but-long-enough') });
    const good = await sign({ user_id: 42, role: 'user' });
    assertErrorBody(await refusedHandshake(withQueryToken(server.url, good), bearer(forged)), 401);
  });

  void test('the query wins over the subprotocols: a bad subprotocol token is ignored when the query carries a good one', async (t) => {
    const server = await start(t);
    const forged = await sign({ user_id: 666 }, { key: secretKey('not-the-server-secret-but-long-enough') });
    const good = await sign({ user_id: 42, role: 'user' });
    const { welcome } = await connectWithSubprotocols(t, withQueryToken(server.url, good), ['bearer', forged]);
    assert.deepEqual(identityOf(welcome), { authenticated: true, user_id: 42, role: 'user' });
  });
});

void describe('claims in the welcome frame', () => {
  void test('user_id comes from sub when there is no user_id claim, as the string it is', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ sub: 'alice', role: 'user' })));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 'alice', role: 'user' });
  });

  void test('a string user_id claim is reported as a string', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ user_id: 'u-17', role: 'user' })));
    assert.equal(client.welcome.user_id, 'u-17');
  });

  void test('a comma-separated role claim is reported as given', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ user_id: 1, role: 'admin,editor' })));
    assert.equal(client.welcome.role, 'admin,editor');
  });

  void test('a roles array claim is reported as the roles joined with commas', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ user_id: 1, roles: ['editor', 'moderator'] })));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 1, role: 'editor,moderator' });
  });

  void test('a valid token without any role claim is reported with role null', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ user_id: 1 })));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 1, role: null });
  });
});

void describe('public-key tokens', () => {
  void test('an RS256 token is accepted when the matching public key PEM is configured', async (t) => {
    const server = await start(t, { auth: { publicKey: rsa.pemPath } });
    const token = await sign({ user_id: 5, role: 'user' }, { alg: 'RS256', key: rsa.privateKey });
    const client = await connect(t, server.url, bearer(token));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 5, role: 'user' });
  });

  void test('an ES256 token is accepted when the matching public key PEM is configured', async (t) => {
    const server = await start(t, { auth: { publicKey: ec.pemPath } });
    const token = await sign({ user_id: 6, role: 'user' }, { alg: 'ES256', key: ec.privateKey });
    const client = await connect(t, server.url, bearer(token));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 6, role: 'user' });
  });

  void test('an RS256 token signed by another key is refused with 401', async (t) => {
    const server = await start(t, { auth: { publicKey: rsa.pemPath } });
    const token = await sign({ user_id: 5 }, { alg: 'RS256', key: otherRsa.privateKey });
    assertErrorBody(await refusedHandshake(server.url, bearer(token)), 401);
  });

  void test('an HS256 token whose HMAC key is the public key PEM is refused with 401 when only a public key is configured', async (t) => {
    const server = await start(t, { auth: { publicKey: rsa.pemPath } });
    const token = await sign({ user_id: 5, role: 'admin' }, { alg: 'HS256', key: secretKey(rsa.pem) });
    assertErrorBody(await refusedHandshake(server.url, bearer(token)), 401);
  });

  void test('an RS256 token is refused with 401 when only a secret is configured', async (t) => {
    const server = await start(t);
    const token = await sign({ user_id: 5 }, { alg: 'RS256', key: rsa.privateKey });
    assertErrorBody(await refusedHandshake(server.url, bearer(token)), 401);
  });
});

void describe('refused tokens', () => {
  interface BadToken {
    kind: string;
    token: () => Promise<string>;
  }
  const BAD_TOKENS: readonly BadToken[] = [
    { kind: 'with a bad signature', token: () => sign({ user_id: 1 }, { key: secretKey('not-the-server-secret-but-long-enough') }) },
    {
      kind: 'whose payload was altered after signing',
      token: async () => {
        const [header, , signature] = (await sign({ user_id: 1, role: 'user' })).split('.');
        const payload = Buffer.from(JSON.stringify({ user_id: 1, role: 'admin', exp: unixNow() + 3600 })).toString('base64url');
        return `${header}.${payload}.${signature}`;
      },
    },
    { kind: 'that has expired', token: () => sign({ user_id: 1 }, { exp: unixNow() - 60 }) },
    { kind: 'with alg none', token: () => Promise.resolve(new UnsecuredJWT({ user_id: 1 }).setExpirationTime(unixNow() + 3600).encode()) },
    { kind: 'without an exp claim', token: () => sign({ user_id: 1 }, { exp: null }) },
    { kind: 'without a user_id or sub claim', token: () => sign({ role: 'admin' }) },
    { kind: 'that is not a JWT at all', token: () => Promise.resolve('not-a-jwt') },
  ];
  for (const { kind, token } of BAD_TOKENS) {
    void test(`a token ${kind} is refused with 401 and a one-line JSON body`, async (t) => {
      const server = await start(t);
      assertErrorBody(await refusedHandshake(server.url, bearer(await token())), 401);
    });
  }

  void test('a token with the configured issuer and audience is accepted', async (t) => {
    const server = await start(t, { auth: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } });
    const client = await connect(t, server.url, bearer(await sign({ user_id: 3, iss: ISSUER, aud: AUDIENCE })));
    assert.equal(client.welcome.authenticated, true);
  });

  const ISSUER_CASES: ReadonlyArray<{ kind: string; claims: JWTPayload }> = [
    { kind: 'a wrong issuer', claims: { user_id: 3, iss: 'https://elsewhere.test', aud: AUDIENCE } },
    { kind: 'no issuer', claims: { user_id: 3, aud: AUDIENCE } },
    { kind: 'a wrong audience', claims: { user_id: 3, iss: ISSUER, aud: 'another-service' } },
    { kind: 'no audience', claims: { user_id: 3, iss: ISSUER } },
  ];
  for (const { kind, claims } of ISSUER_CASES) {
    void test(`a token with ${kind} is refused with 401 when issuer and audience are configured`, async (t) => {
      const server = await start(t, { auth: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } });
      assertErrorBody(await refusedHandshake(server.url, bearer(await sign(claims))), 401);
    });
  }
});

void describe('anonymous connections', () => {
  void test('without a token and with allowAnonymous true the welcome frame is anonymous', async (t) => {
    const server = await start(t, { allowAnonymous: true });
    const client = await connect(t, server.url);
    assert.deepEqual(identityOf(client.welcome), { authenticated: false, user_id: null, role: null });
  });

  void test('without a token and with allowAnonymous false the handshake is refused with 401 and a one-line JSON body', async (t) => {
    const server = await start(t, { allowAnonymous: false });
    assertErrorBody(await refusedHandshake(server.url), 401);
  });

  void test('with allowAnonymous false a valid token is accepted', async (t) => {
    const server = await start(t, { allowAnonymous: false });
    const client = await connect(t, server.url, bearer(await sign({ user_id: 11, role: 'user' })));
    assert.deepEqual(identityOf(client.welcome), { authenticated: true, user_id: 11, role: 'user' });
  });

  void test('with allowAnonymous true a bad token is still refused with 401 rather than connected anonymously', async (t) => {
    const server = await start(t, { allowAnonymous: true });
    const forged = await sign({ user_id: 1 }, { key: secretKey('not-the-server-secret-but-long-enough') });
    assertErrorBody(await refusedHandshake(server.url, bearer(forged)), 401);
  });
});

void describe('around the handshake', () => {
  void test('the request URL an onConnect hook sees has the ?token= value redacted', async (t) => {
    let resolveUrl!: (url: string) => void;
    const seen = new Promise<string>((resolve) => (resolveUrl = resolve));
    const server = await start(t, {}, (handler) => handler.onConnect((connection) => resolveUrl(connection.request.url)));
    const token = await sign({ user_id: 21, role: 'user' });
    const client = await connect(t, withQueryToken(server.url, token));
    assert.equal(client.welcome.authenticated, true);
    const url = await seen;
    assert.ok(!url.includes(token), `the URL ${url} does not contain the token`);
    for (const part of token.split('.')) assert.ok(!url.includes(part), `the URL ${url} contains no part of the token`);
  });

  void test('refused handshakes do not disturb clients already connected', async (t) => {
    const server = await start(t);
    const client = await connect(t, server.url, bearer(await sign({ user_id: 1, role: 'user' })));
    await client.subscribe('room');
    const forged = await sign({ user_id: 1 }, { key: secretKey('not-the-server-secret-but-long-enough') });
    for (let attempt = 0; attempt < 10; attempt++) assertErrorBody(await refusedHandshake(server.url, bearer(forged)), 401);
    const sent = await client.publish('room', 'still here');
    assert.equal(sent.recipients_count, 1);
    await settle(client);
    assert.equal(client.socket.readyState, WebSocket.OPEN);
  });

  void test('401 refusals give their connection slot back: after many, maxConnectionsPerIp good connections still open', async (t) => {
    const limit = 2;
    const server = await start(t, { maxConnectionsPerIp: limit });
    const forged = await sign({ user_id: 1 }, { key: secretKey('not-the-server-secret-but-long-enough') });
    // A leaked slot would turn the third refusal into a 429.
    for (let attempt = 0; attempt < 10; attempt++) assertErrorBody(await refusedHandshake(server.url, bearer(forged)), 401);
    const good = await sign({ user_id: 1, role: 'user' });
    for (let index = 0; index < limit; index++) {
      const client = await connect(t, server.url, bearer(good));
      assert.equal(client.welcome.authenticated, true);
    }
    assert.equal(server.handler.connectionCount, limit);
  });
});
