/**
 * JWT verification with jose (SPEC §5). HS* tokens are checked with TOKEN_SECRET,
 * RS*, PS*, ES* and EdDSA tokens with JWT_PUBLIC_KEY; the algorithm in a token's header
 * only selects among the keys configured, so a public key can never be used as an HMAC
 * secret and `alg: none` is never accepted.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { readConfigFile } from '../config/config-files.js';
import { errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { AuthOptions } from '../config/options.js';
import { ErrorCode } from '../codes.js';
import type { UserId } from '../types.js';

/** Who a valid token says the connection is. */
export interface Identity {
  userId: UserId;
  /** Role names from `role` (comma-separated, GEMVC) and `roles` (an array). */
  roles: string[];
  /** The role string the welcome and auth frames report (GEMVC's `role` claim as given). */
  role: string | null;
  /** When the token expires, in ms since the epoch. */
  expiresAt: number;
}

/** A token that cannot be accepted; `code` says whether it was bad or only expired. */
export class TokenError extends Error {
  constructor(
    readonly code: typeof ErrorCode.TOKEN_INVALID | typeof ErrorCode.TOKEN_EXPIRED,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

function publicKeyAlgorithms(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? ['ES256'] : curve === 'secp384r1' ? ['ES384'] : curve === 'secp521r1' ? ['ES512'] : [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

function claimedRoles(payload: JWTPayload): { roles: string[]; role: string | null } {
  const roles = new Set<string>();
  let role: string | null = null;
  if (typeof payload.role === 'string') {
    role = payload.role;
    for (const name of payload.role.split(',')) if (name.trim() !== '') roles.add(name.trim());
  } else if (payload.role !== undefined) {
    throw new TokenError(ErrorCode.TOKEN_INVALID, "the 'role' claim must be a string");
  }
  if (payload.roles !== undefined) {
    if (!Array.isArray(payload.roles) || !payload.roles.every((name) => typeof name === 'string')) {
      throw new TokenError(ErrorCode.TOKEN_INVALID, "the 'roles' claim must be an array of strings");
    }
    for (const name of payload.roles) if (name.trim() !== '') roles.add(name.trim());
  }
  const list = [...roles];
  return { roles: list, role: role !== null && role.trim() !== '' ? role : list.length > 0 ? list.join(',') : null };
}

function claimedUserId(payload: JWTPayload): UserId {
  const userId: unknown = payload.user_id ?? payload.sub;
  if ((typeof userId === 'string' && userId !== '') || (typeof userId === 'number' && Number.isFinite(userId))) return userId;
  throw new TokenError(ErrorCode.TOKEN_INVALID, "the token has no 'user_id' or 'sub' claim");
}

/** Longer than any token a real issuer makes; refused before any cryptography is spent on it. */
export const MAX_TOKEN_LENGTH = 8192;

export class TokenVerifier {
  private readonly secret: Uint8Array | null;
  /** The secret imported once per HMAC algorithm: jose would import raw bytes on every call. */
  private readonly hmacKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
  private readonly publicKey: KeyObject | null;
  private readonly options: JWTVerifyOptions;

  constructor(auth: AuthOptions) {
    this.secret = auth.secret === null ? null : new TextEncoder().encode(auth.secret);
    this.publicKey = auth.publicKey === null ? null : createPublicKey(readConfigFile(auth.publicKey));
    const algorithms = [...(this.secret ? HMAC_ALGORITHMS : []), ...(this.publicKey ? publicKeyAlgorithms(this.publicKey) : [])];
    this.options = {
      algorithms,
      requiredClaims: ['exp'],
      ...(auth.issuer !== null && { issuer: auth.issuer }),
      ...(auth.audience !== null && { audience: auth.audience }),
    };
  }

  /** True when a key is configured, so tokens can be accepted at all. */
  get enabled(): boolean {
    return this.secret !== null || this.publicKey !== null;
  }

  /** Verifies a token; throws a TokenError saying why it is not accepted. */
  async verify(token: string): Promise<Identity> {
    if (!this.enabled) throw new TokenError(ErrorCode.TOKEN_INVALID, 'this server accepts no tokens (no TOKEN_SECRET or JWT_PUBLIC_KEY is configured)');
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenError(ErrorCode.TOKEN_INVALID, `the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        (header) => {
          if (header.alg.startsWith('HS')) {
            if (this.secret === null) throw new TokenError(ErrorCode.TOKEN_INVALID, `tokens signed with ${header.alg} are not accepted here`);
            return this.hmacKey(header.alg, this.secret);
          }
          if (this.publicKey === null) throw new TokenError(ErrorCode.TOKEN_INVALID, `tokens signed with ${header.alg} are not accepted here`);
          return this.publicKey;
        },
        this.options,
      ));
    } catch (error) {
      if (error instanceof TokenError) throw error;
      if (error instanceof errors.JWTExpired) throw new TokenError(ErrorCode.TOKEN_EXPIRED, 'the token has expired');
      if (error instanceof errors.JOSEAlgNotAllowed) throw new TokenError(ErrorCode.TOKEN_INVALID, 'the token is signed with an algorithm that is not accepted here');
      if (error instanceof errors.JWSSignatureVerificationFailed) throw new TokenError(ErrorCode.TOKEN_INVALID, 'the token signature is not valid');
      if (error instanceof errors.JWTClaimValidationFailed) throw new TokenError(ErrorCode.TOKEN_INVALID, `the token's '${error.claim}' claim is not accepted`);
      throw new TokenError(ErrorCode.TOKEN_INVALID, 'the token is malformed');
    }
    const { roles, role } = claimedRoles(payload);
    return { userId: claimedUserId(payload), roles, role, expiresAt: (payload.exp as number) * 1000 };
  }

  private hmacKey(alg: string, secret: Uint8Array): Promise<webcrypto.CryptoKey> {
    let key = this.hmacKeys.get(alg);
    if (key === undefined) {
      // Only HS256/384/512 get here: the algorithms option refused every other HS* before.
      key = webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']);
      this.hmacKeys.set(alg, key);
    }
    return key;
  }
}

/** Parses a duration like `90s`, `15m`, `1h` or `7d` into seconds. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (match === null) return null;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(match[1]) * unit;
  return seconds > 0 ? seconds : null;
}

/** Mints an HS256 token with TOKEN_SECRET, for development and tests (`switchboard token`). */
export async function mintToken(
  auth: AuthOptions,
  claims: { userId: UserId; role: string | null; ttlSeconds: number },
): Promise<string> {
  if (auth.secret === null) throw new Error('mintToken: TOKEN_SECRET is not set');
  const jwt = new SignJWT({ user_id: claims.userId, ...(claims.role !== null && { role: claims.role }) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(String(claims.userId))
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (auth.issuer !== null) jwt.setIssuer(auth.issuer);
  if (auth.audience !== null) jwt.setAudience(auth.audience);
  return jwt.sign(new TextEncoder().encode(auth.secret));
}
