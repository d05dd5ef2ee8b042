import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload } from 'jose';
import { MAX_TOKEN_LENGTH, mintToken, parseDuration, TokenError, TokenVerifier, type Identity } from '../../src/auth/tokens.js';
import type { AuthOptions } from '../../src/config/options.js';
import { ErrorCode } from '../../src/codes.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs512-0123456789abcdef';

/** A directory for public key files, since JWT_PUBLIC_KEY is a path. */
const keyDir = mkdtempSync(join(tmpdir(), 'switchboard-tokens-'));
after(() => rmSync(keyDir, { recursive: true, force: true }));

function authOptions(overrides: Partial<AuthOptions>): AuthOptions {
  return { secret: null, publicKey: null, issuer: null, audience: null, ...overrides };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Claims of a token valid for an hour, for user 42. */
function validClaims(extra: JWTPayload = {}): JWTPayload {
  return { user_id: 42, exp: nowSeconds() + 3600, ...extra };
}

function base64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

async function signWithSecret(claims: JWTPayload, secret: string = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

interface KeyPair {
  privateKey: CryptoKey;
  /** Path of the public key as a PEM file. */
  publicKeyFile: string;
  publicKeyPem: string;
}

let keyCount = 0;
async function keyPair(alg: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const publicKeyPem = await exportSPKI(publicKey);
  const publicKeyFile = join(keyDir, `${alg}-${++keyCount}.pub.pem`);
  writeFileSync(publicKeyFile, publicKeyPem);
  return { privateKey, publicKeyFile, publicKeyPem };
}

const ASYMMETRIC_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;
const keys = new Map<string, KeyPair>();
for (const alg of ASYMMETRIC_ALGORITHMS) keys.set(alg, await keyPair(alg));

function keyFor(alg: string): KeyPair {
  const pair = keys.get(alg);
  if (pair === undefined) throw new Error(`no test key for ${alg}`);
  return pair;
}

async function signWithKey(claims: JWTPayload, alg: string, pair: KeyPair = keyFor(alg)): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(pair.privateKey);
}

/** Replaces a token's payload, keeping its header and signature. */
function withPayload(token: string, claims: JWTPayload): string {
  const [header, , signature] = token.split('.');
  return `${header}.${base64url(claims)}.${signature}`;
}

/** Flips one bit in the first byte of a token's signature. */
function withFlippedSignatureByte(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const bytes = Buffer.from(signature, 'base64url');
  bytes[0] = (bytes[0] as number) ^ 0x01;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}

async function identityOf(verifier: TokenVerifier, token: string): Promise<Identity> {
  return verifier.verify(token);
}

/** Verifies a token that must be refused and returns the TokenError. */
async function refusal(verifier: TokenVerifier, token: string): Promise<TokenError> {
  try {
    const identity = await verifier.verify(token);
    assert.fail(`expected the token to be refused, got ${JSON.stringify(identity)}`);
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    return error;
  }
}

async function assertInvalid(verifier: TokenVerifier, token: string): Promise<void> {
  const error = await refusal(verifier, token);
  assert.equal(error.code, ErrorCode.TOKEN_INVALID, `expected TOKEN_INVALID, got ${error.code}: ${error.message}`);
}

const secretVerifier = (): TokenVerifier => new TokenVerifier(authOptions({ secret: SECRET }));
const publicKeyVerifier = (alg: string): TokenVerifier => new TokenVerifier(authOptions({ publicKey: keyFor(alg).publicKeyFile }));

void describe('TokenVerifier: accepted algorithms', () => {
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    void test(`accepts an ${alg} token signed with TOKEN_SECRET`, async () => {
      const identity = await identityOf(secretVerifier(), await signWithSecret(validClaims(), SECRET, alg));
      assert.equal(identity.userId, 42);
    });
  }

  for (const alg of ASYMMETRIC_ALGORITHMS) {
    void test(`accepts an ${alg} token signed with the private half of JWT_PUBLIC_KEY`, async () => {
      const identity = await identityOf(publicKeyVerifier(alg), await signWithKey(validClaims(), alg));
      assert.equal(identity.userId, 42);
    });
  }

  void test('with both TOKEN_SECRET and JWT_PUBLIC_KEY configured, HS256 and RS256 tokens are both accepted', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, publicKey: keyFor('RS256').publicKeyFile }));
    assert.equal((await identityOf(verifier, await signWithSecret(validClaims({ user_id: 1 })))).userId, 1);
    assert.equal((await identityOf(verifier, await signWithKey(validClaims({ user_id: 2 }), 'RS256'))).userId, 2);
  });

  void test('a verifier without TOKEN_SECRET or JWT_PUBLIC_KEY is not enabled and refuses every token', async () => {
    const verifier = new TokenVerifier(authOptions({}));
    assert.equal(verifier.enabled, false);
    await assertInvalid(verifier, await signWithSecret(validClaims()));
  });

  void test('a verifier with a key is enabled', () => {
    assert.equal(secretVerifier().enabled, true);
    assert.equal(publicKeyVerifier('ES256').enabled, true);
  });
});

void describe('TokenVerifier: refused tokens', () => {
  const unsecuredByHand = (): string => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(validClaims())}.`;

  void test('an alg "none" token built by hand is TOKEN_INVALID with only TOKEN_SECRET configured', async () => {
    await assertInvalid(secretVerifier(), unsecuredByHand());
  });

  void test('an alg "none" token built by hand is TOKEN_INVALID with only JWT_PUBLIC_KEY configured', async () => {
    await assertInvalid(publicKeyVerifier('RS256'), unsecuredByHand());
  });

  void test('an alg "none" token built by hand is TOKEN_INVALID with both keys configured', async () => {
    await assertInvalid(new TokenVerifier(authOptions({ secret: SECRET, publicKey: keyFor('RS256').publicKeyFile })), unsecuredByHand());
  });

  void test('alg "none" in other spellings (None, NONE) is TOKEN_INVALID', async () => {
    for (const alg of ['None', 'NONE', 'nOnE']) {
      await assertInvalid(secretVerifier(), `${base64url({ alg })}.${base64url(validClaims())}.`);
    }
  });

  void test("an unsecured token from jose's UnsecuredJWT is TOKEN_INVALID", async () => {
    const token = new UnsecuredJWT({ user_id: 42 }).setExpirationTime('1h').encode();
    await assertInvalid(secretVerifier(), token);
    await assertInvalid(publicKeyVerifier('ES256'), token);
  });

  void test('an HS256 token signed with a different secret is TOKEN_INVALID', async () => {
    await assertInvalid(secretVerifier(), await signWithSecret(validClaims(), 'not-the-configured-secret'));
  });

  void test('an HS256 token whose payload was changed after signing is TOKEN_INVALID', async () => {
    const token = await signWithSecret(validClaims({ user_id: 42 }));
    await assertInvalid(secretVerifier(), withPayload(token, validClaims({ user_id: 1, role: 'admin' })));
  });

  void test('an RS256 token whose payload was changed after signing is TOKEN_INVALID', async () => {
    const token = await signWithKey(validClaims({ user_id: 42 }), 'RS256');
    await assertInvalid(publicKeyVerifier('RS256'), withPayload(token, validClaims({ user_id: 1, role: 'admin' })));
  });

  void test('an RS256 token signed with another RSA key is TOKEN_INVALID', async () => {
    const other = await keyPair('RS256');
    await assertInvalid(publicKeyVerifier('RS256'), await signWithKey(validClaims(), 'RS256', other));
  });

  void test('algorithm confusion: an HS256 token keyed with the PEM of JWT_PUBLIC_KEY is TOKEN_INVALID when only the public key is configured', async () => {
    const token = await signWithSecret(validClaims(), keyFor('RS256').publicKeyPem);
    await assertInvalid(publicKeyVerifier('RS256'), token);
  });

  void test('algorithm confusion: an HS256 token keyed with the PEM of JWT_PUBLIC_KEY is TOKEN_INVALID when a secret is configured too', async () => {
    const token = await signWithSecret(validClaims(), keyFor('RS256').publicKeyPem);
    await assertInvalid(new TokenVerifier(authOptions({ secret: SECRET, publicKey: keyFor('RS256').publicKeyFile })), token);
  });

  void test('an RS256 token is TOKEN_INVALID when only TOKEN_SECRET is configured', async () => {
    await assertInvalid(secretVerifier(), await signWithKey(validClaims(), 'RS256'));
  });

  void test('an ES256 token is TOKEN_INVALID when JWT_PUBLIC_KEY holds an RSA key (wrong key type)', async () => {
    await assertInvalid(publicKeyVerifier('RS256'), await signWithKey(validClaims(), 'ES256'));
  });

  void test('an RS256 token is TOKEN_INVALID when JWT_PUBLIC_KEY holds an EC key (wrong key type)', async () => {
    await assertInvalid(publicKeyVerifier('ES256'), await signWithKey(validClaims(), 'RS256'));
  });

  void test('a token without exp is TOKEN_INVALID', async () => {
    await assertInvalid(secretVerifier(), await signWithSecret({ user_id: 42 }));
  });

  void test('an expired token is TOKEN_EXPIRED', async () => {
    const error = await refusal(secretVerifier(), await signWithSecret(validClaims({ exp: nowSeconds() - 60 })));
    assert.equal(error.code, ErrorCode.TOKEN_EXPIRED);
  });

  void test('an expired token with a bad signature is TOKEN_INVALID, not TOKEN_EXPIRED', async () => {
    await assertInvalid(secretVerifier(), await signWithSecret(validClaims({ exp: nowSeconds() - 60 }), 'not-the-configured-secret'));
  });

  void test('a token whose nbf is in the future is TOKEN_INVALID', async () => {
    await assertInvalid(secretVerifier(), await signWithSecret(validClaims({ nbf: nowSeconds() + 3600 })));
  });

  void test('with JWT_ISSUER set, a token from another issuer is TOKEN_INVALID', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, issuer: 'https://auth.example.com' }));
    await assertInvalid(verifier, await signWithSecret(validClaims({ iss: 'https://evil.example.com' })));
  });

  void test('with JWT_ISSUER set, a token without iss is TOKEN_INVALID', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, issuer: 'https://auth.example.com' }));
    await assertInvalid(verifier, await signWithSecret(validClaims()));
  });

  void test('with JWT_ISSUER set, a token from that issuer is accepted', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, issuer: 'https://auth.example.com' }));
    assert.equal((await identityOf(verifier, await signWithSecret(validClaims({ iss: 'https://auth.example.com' })))).userId, 42);
  });

  void test('with JWT_AUDIENCE set, a token for another audience is TOKEN_INVALID', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, audience: 'switchboard' }));
    await assertInvalid(verifier, await signWithSecret(validClaims({ aud: 'another-service' })));
  });

  void test('with JWT_AUDIENCE set, a token without aud is TOKEN_INVALID', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, audience: 'switchboard' }));
    await assertInvalid(verifier, await signWithSecret(validClaims()));
  });

  void test('with JWT_AUDIENCE set, a token for that audience (alone or in a list) is accepted', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET, audience: 'switchboard' }));
    assert.equal((await identityOf(verifier, await signWithSecret(validClaims({ aud: 'switchboard' })))).userId, 42);
    assert.equal((await identityOf(verifier, await signWithSecret(validClaims({ aud: ['billing', 'switchboard'] })))).userId, 42);
  });

  void test('with both JWT_ISSUER and JWT_AUDIENCE set, an RS256 token with both right is accepted', async () => {
    const verifier = new TokenVerifier(authOptions({ publicKey: keyFor('RS256').publicKeyFile, issuer: 'issuer-a', audience: 'audience-b' }));
    const identity = await identityOf(verifier, await signWithKey(validClaims({ iss: 'issuer-a', aud: 'audience-b' }), 'RS256'));
    assert.equal(identity.userId, 42);
  });

  void test('a token with neither user_id nor sub is TOKEN_INVALID', async () => {
    await assertInvalid(secretVerifier(), await signWithSecret({ exp: nowSeconds() + 3600, role: 'admin' }));
  });

  void test('malformed token strings are TOKEN_INVALID', async () => {
    const valid = await signWithSecret(validClaims());
    const [header, payload, signature] = valid.split('.') as [string, string, string];
    const malformed = [
      '',
      'abc',
      'a.b',
      'a.b.c',
      '..',
      `${header}.${payload}`,
      `${header}.${payload}.${signature}.extra`,
      `${base64url('not json')}.${payload}.${signature}`,
      `${header}.${base64url('not json')}.${signature}`,
      `${header}.${base64url('[1,2]')}.${signature}`,
      `Bearer ${valid}`,
    ];
    for (const token of malformed) {
      const error = await refusal(secretVerifier(), token);
      assert.equal(error.code, ErrorCode.TOKEN_INVALID, `${JSON.stringify(token)}: ${error.code}`);
    }
  });
});

void describe('TokenVerifier: claims', () => {
  async function claimsIdentity(claims: JWTPayload): Promise<Identity> {
    return identityOf(secretVerifier(), await signWithSecret(claims));
  }

  void test('a numeric user_id stays a number', async () => {
    const identity = await claimsIdentity(validClaims({ user_id: 7 }));
    assert.equal(identity.userId, 7);
    assert.equal(typeof identity.userId, 'number');
  });

  void test('a string user_id stays a string', async () => {
    const identity = await claimsIdentity(validClaims({ user_id: '7' }));
    assert.equal(identity.userId, '7');
    assert.equal(typeof identity.userId, 'string');
  });

  void test('user_id wins over sub', async () => {
    assert.equal((await claimsIdentity(validClaims({ user_id: 7, sub: 'someone-else' }))).userId, 7);
  });

  void test('sub is the user id when there is no user_id', async () => {
    const claims = validClaims({ sub: 'user-abc' });
    delete claims.user_id;
    assert.equal((await claimsIdentity(claims)).userId, 'user-abc');
  });

  void test("role 'admin, editor' gives roles ['admin', 'editor'] and keeps role as written", async () => {
    const identity = await claimsIdentity(validClaims({ role: 'admin, editor' }));
    assert.deepEqual(identity.roles, ['admin', 'editor']);
    assert.equal(identity.role, 'admin, editor');
  });

  void test('a single role string gives one role', async () => {
    const identity = await claimsIdentity(validClaims({ role: 'user' }));
    assert.deepEqual(identity.roles, ['user']);
    assert.equal(identity.role, 'user');
  });

  void test('a roles array gives those roles', async () => {
    assert.deepEqual((await claimsIdentity(validClaims({ roles: ['admin', 'editor'] }))).roles, ['admin', 'editor']);
  });

  void test('role and roles are merged', async () => {
    const identity = await claimsIdentity(validClaims({ role: 'user, moderator', roles: ['admin', 'user'] }));
    assert.deepEqual([...identity.roles].sort(), ['admin', 'moderator', 'user']);
  });

  void test('a token without role or roles has no roles and role null', async () => {
    const identity = await claimsIdentity(validClaims());
    assert.deepEqual(identity.roles, []);
    assert.equal(identity.role, null);
  });

  void test('a role claim that is not a string is TOKEN_INVALID', async () => {
    for (const role of [1, true, ['admin'], { name: 'admin' }]) {
      const error = await refusal(secretVerifier(), await signWithSecret(validClaims({ role })));
      assert.equal(error.code, ErrorCode.TOKEN_INVALID, JSON.stringify(role));
    }
  });

  void test('a roles claim that is not an array of strings is TOKEN_INVALID', async () => {
    for (const roles of ['admin', [1], [null]]) {
      const error = await refusal(secretVerifier(), await signWithSecret(validClaims({ roles })));
      assert.equal(error.code, ErrorCode.TOKEN_INVALID, JSON.stringify(roles));
    }
  });

  void test('expiresAt is exp in milliseconds', async () => {
    const exp = nowSeconds() + 1234;
    assert.equal((await claimsIdentity(validClaims({ exp }))).expiresAt, exp * 1000);
  });
});

void describe('TokenVerifier: tokens signed outside JavaScript with openssl', () => {
  function signingInput(claims: JWTPayload, alg: string): string {
    return `${base64url({ alg, typ: 'JWT' })}.${base64url(claims)}`;
  }

  void test('accepts an HS256 token signed by `openssl dgst -hmac`', async () => {
    const input = signingInput(validClaims({ user_id: 'openssl-user', role: 'admin' }), 'HS256');
    const signature = execFileSync('openssl', ['dgst', '-sha256', '-hmac', SECRET, '-binary'], { input });
    const identity = await identityOf(secretVerifier(), `${input}.${signature.toString('base64url')}`);
    assert.equal(identity.userId, 'openssl-user');
    assert.deepEqual(identity.roles, ['admin']);
  });

  void test('refuses an openssl HS256 token with one signature byte flipped', async () => {
    const input = signingInput(validClaims(), 'HS256');
    const signature = execFileSync('openssl', ['dgst', '-sha256', '-hmac', SECRET, '-binary'], { input });
    await assertInvalid(secretVerifier(), withFlippedSignatureByte(`${input}.${signature.toString('base64url')}`));
  });

  /** An RSA key pair made by openssl: the private key file and the public key file. */
  const opensslRsa = ((): { privateKey: string; publicKey: string } => {
    const privateKey = join(keyDir, 'openssl-rsa.key.pem');
    const publicKey = join(keyDir, 'openssl-rsa.pub.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', privateKey], { stdio: 'ignore' });
    execFileSync('openssl', ['pkey', '-in', privateKey, '-pubout', '-out', publicKey], { stdio: 'ignore' });
    return { privateKey, publicKey };
  })();

  function opensslRs256(claims: JWTPayload): string {
    const input = signingInput(claims, 'RS256');
    const signature = execFileSync('openssl', ['dgst', '-sha256', '-sign', opensslRsa.privateKey, '-binary'], { input });
    return `${input}.${signature.toString('base64url')}`;
  }

  void test('accepts an RS256 token signed by `openssl dgst -sign` with a key from `openssl genpkey`', async () => {
    const verifier = new TokenVerifier(authOptions({ publicKey: opensslRsa.publicKey }));
    const identity = await identityOf(verifier, opensslRs256(validClaims({ user_id: 99 })));
    assert.equal(identity.userId, 99);
  });

  void test('refuses an openssl RS256 token with one signature byte flipped', async () => {
    const verifier = new TokenVerifier(authOptions({ publicKey: opensslRsa.publicKey }));
    await assertInvalid(verifier, withFlippedSignatureByte(opensslRs256(validClaims())));
  });

  void test('accepts an EdDSA token signed by `openssl pkeyutl -rawin` with an Ed25519 key', async () => {
    const privateKey = join(keyDir, 'openssl-ed25519.key.pem');
    const publicKey = join(keyDir, 'openssl-ed25519.pub.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ED25519', '-out', privateKey], { stdio: 'ignore' });
    execFileSync('openssl', ['pkey', '-in', privateKey, '-pubout', '-out', publicKey], { stdio: 'ignore' });
    const input = signingInput(validClaims({ sub: 'ed-user' }), 'EdDSA');
    const inputFile = join(keyDir, 'ed25519-input.txt');
    writeFileSync(inputFile, input);
    const signature = execFileSync('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', privateKey, '-in', inputFile]);
    const verifier = new TokenVerifier(authOptions({ publicKey }));
    const token = `${input}.${signature.toString('base64url')}`;
    assert.equal((await identityOf(verifier, token)).userId, 42);
    await assertInvalid(verifier, withFlippedSignatureByte(token));
  });
});

void describe('mintToken', () => {
  void test('mints a token the verifier accepts, with user_id, role and an exp ttl seconds ahead', async () => {
    const auth = authOptions({ secret: SECRET });
    const before = nowSeconds();
    const token = await mintToken(auth, { userId: 42, role: 'admin, editor', ttlSeconds: 900 });
    const afterSeconds = nowSeconds();
    const identity = await new TokenVerifier(auth).verify(token);
    assert.equal(identity.userId, 42);
    assert.equal(identity.role, 'admin, editor');
    assert.deepEqual(identity.roles, ['admin', 'editor']);
    assert.ok(identity.expiresAt >= (before + 900) * 1000 && identity.expiresAt <= (afterSeconds + 900) * 1000, `expiresAt ${identity.expiresAt}`);
  });

  void test('a minted token carries user_id as given and sub as its string', async () => {
    const payload = decodeJwt(await mintToken(authOptions({ secret: SECRET }), { userId: 42, role: null, ttlSeconds: 60 }));
    assert.equal(payload.user_id, 42);
    assert.equal(payload.sub, '42');
    const stringPayload = decodeJwt(await mintToken(authOptions({ secret: SECRET }), { userId: 'alice', role: null, ttlSeconds: 60 }));
    assert.equal(stringPayload.user_id, 'alice');
    assert.equal(stringPayload.sub, 'alice');
  });

  void test('a minted token is HS256', async () => {
    const token = await mintToken(authOptions({ secret: SECRET }), { userId: 1, role: null, ttlSeconds: 60 });
    assert.equal(decodeProtectedHeader(token).alg, 'HS256');
  });

  void test('a token minted with role null has no role claim and verifies with no roles', async () => {
    const auth = authOptions({ secret: SECRET });
    const token = await mintToken(auth, { userId: 1, role: null, ttlSeconds: 60 });
    assert.equal('role' in decodeJwt(token), false);
    const identity = await new TokenVerifier(auth).verify(token);
    assert.deepEqual(identity.roles, []);
    assert.equal(identity.role, null);
  });

  void test('a minted token carries iss and aud when JWT_ISSUER and JWT_AUDIENCE are configured, and the verifier requiring them accepts it', async () => {
    const auth = authOptions({ secret: SECRET, issuer: 'issuer-a', audience: 'audience-b' });
    const token = await mintToken(auth, { userId: 5, role: 'user', ttlSeconds: 60 });
    const payload = decodeJwt(token);
    assert.equal(payload.iss, 'issuer-a');
    assert.equal(payload.aud, 'audience-b');
    assert.equal((await new TokenVerifier(auth).verify(token)).userId, 5);
  });

  void test('a minted token carries no iss or aud when they are not configured', async () => {
    const payload = decodeJwt(await mintToken(authOptions({ secret: SECRET }), { userId: 5, role: null, ttlSeconds: 60 }));
    assert.equal(payload.iss, undefined);
    assert.equal(payload.aud, undefined);
  });

  void test('mintToken refuses without TOKEN_SECRET', async () => {
    await assert.rejects(
      mintToken(authOptions({ publicKey: keyFor('RS256').publicKeyFile }), { userId: 1, role: null, ttlSeconds: 60 }),
      (error: unknown) => error instanceof Error && /TOKEN_SECRET/.test(error.message),
    );
  });
});

void describe('parseDuration', () => {
  const accepted: ReadonlyArray<readonly [string, number]> = [
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['7d', 604800],
    ['30', 30],
  ];
  for (const [text, seconds] of accepted) {
    void test(`'${text}' is ${seconds} seconds`, () => {
      assert.equal(parseDuration(text), seconds);
    });
  }

  for (const text of ['0', '0s', '-1', '1w', 'abc', '', '1.5h', 'h']) {
    void test(`'${text}' is refused`, () => {
      assert.equal(parseDuration(text), null);
    });
  }
});

void describe('refusals before any cryptography', () => {
  void test('a token longer than MAX_TOKEN_LENGTH is TOKEN_INVALID', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET }));
    const huge = await signWithSecret(validClaims({ padding: 'x'.repeat(MAX_TOKEN_LENGTH) }));
    await assert.rejects(verifier.verify(huge), (error: unknown) => error instanceof TokenError && error.code === ErrorCode.TOKEN_INVALID);
  });
});

void describe('empty role claim', () => {
  void test("an empty 'role' claim reports role null and no roles", async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET }));
    const identity = await verifier.verify(await signWithSecret(validClaims({ role: '' })));
    assert.equal(identity.role, null);
    assert.deepEqual(identity.roles, []);
  });
});

void describe('the HMAC key imported once', () => {
  void test('HS256, HS384 and HS512 tokens verify one after another with the same verifier', async () => {
    const verifier = new TokenVerifier(authOptions({ secret: SECRET }));
    for (const alg of ['HS256', 'HS384', 'HS512', 'HS256']) {
      assert.equal((await verifier.verify(await signWithSecret(validClaims(), SECRET, alg))).userId, 42, alg);
    }
  });
});
