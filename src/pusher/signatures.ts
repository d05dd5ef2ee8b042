/**
 * Pusher's signatures (SPEC §10), as its server SDKs make them: channel authorization
 * (`private-`/`presence-` subscriptions), user sign-in, the HTTP API's signed query string,
 * and webhooks. Pure functions over node:crypto; every comparison of a signature is
 * constant-time.
 *
 * - Channel auth: `key:hex(HMAC-SHA256(secret, "socket_id:channel[:channel_data]"))`.
 * - User auth: `key:hex(HMAC-SHA256(secret, "socket_id::user::user_data"))`.
 * - HTTP API: `auth_signature = hex(HMAC-SHA256(secret, "METHOD\npath\nquery"))`, the query
 *   being every parameter but `auth_signature`, keys lowercased, sorted, joined `k=v` with `&`,
 *   values as they were signed (not URL-escaped); `auth_timestamp` within 600 s;
 *   `body_md5` the hex MD5 of the body.
 * - Webhooks: `X-Pusher-Signature: hex(HMAC-SHA256(secret, body))`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Bytes as they travel: a string is taken as UTF-8. */
export type Bytes = string | Uint8Array;

/** hex(HMAC-SHA256(secret, data)). */
export function hmacSha256Hex(secret: string, data: Bytes): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

/** hex(MD5(body)), Pusher's `body_md5`. */
export function md5Hex(body: Bytes): string {
  return createHash('md5').update(body).digest('hex');
}

/**
 * Constant-time string equality. Both sides are hashed first, so that neither the content nor
 * the length of the expected value leaks through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(a), digest(b));
}

// ---------------------------------------------------------------------------------------
// Channel authorization and user sign-in
// ---------------------------------------------------------------------------------------

/**
 * The `auth` of a `pusher:subscribe` to a private or presence channel:
 * `key:hex(HMAC-SHA256(secret, "socketId:channel[:channelData]"))`. `channelData` is the
 * presence channel's `channel_data` string exactly as the client sends it.
 */
export function channelAuth(key: string, secret: string, socketId: string, channel: string, channelData?: string): string {
  const signed = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${key}:${hmacSha256Hex(secret, signed)}`;
}

/** Whether `auth` (as received, whatever its type) is channelAuth(...): key part and signature both. */
export function verifyChannelAuth(key: string, secret: string, socketId: string, channel: string, auth: unknown, channelData?: string): boolean {
  return typeof auth === 'string' && safeEqual(auth, channelAuth(key, secret, socketId, channel, channelData));
}

/**
 * The `auth` of a `pusher:signin`: `key:hex(HMAC-SHA256(secret, "socketId::user::userData"))`.
 * `userData` is the `user_data` string exactly as the client sends it.
 */
export function userAuth(key: string, secret: string, socketId: string, userData: string): string {
  return `${key}:${hmacSha256Hex(secret, `${socketId}::user::${userData}`)}`;
}

/** Whether `auth` (as received, whatever its type) is userAuth(...). */
export function verifyUserAuth(key: string, secret: string, socketId: string, userData: string, auth: unknown): boolean {
  return typeof auth === 'string' && safeEqual(auth, userAuth(key, secret, socketId, userData));
}

// ---------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------

/** `X-Pusher-Signature` of a webhook: hex(HMAC-SHA256(secret, body)). */
export function webhookSignature(secret: string, body: Bytes): string {
  return hmacSha256Hex(secret, body);
}

/** Whether `signature` (as received, whatever its type) signs `body`. */
export function verifyWebhookSignature(secret: string, body: Bytes, signature: unknown): boolean {
  return typeof signature === 'string' && safeEqual(signature.toLowerCase(), webhookSignature(secret, body));
}

/** The headers of a webhook POST, as the Pusher SDKs' `webhook()` validation reads them. */
export function webhookHeaders(key: string, secret: string, body: Bytes): Record<string, string> {
  return { 'Content-Type': 'application/json', 'X-Pusher-Key': key, 'X-Pusher-Signature': webhookSignature(secret, body) };
}

// ---------------------------------------------------------------------------------------
// HTTP API requests
// ---------------------------------------------------------------------------------------

/** How far `auth_timestamp` may be from the server's clock, either way, in seconds. */
export const API_TIMESTAMP_WINDOW_SECONDS = 600;

/**
 * A request's query parameters, decoded: URLSearchParams, or an object such as
 * `Object.fromEntries(url.searchParams)` or node:querystring's (an array for a repeated key).
 */
export type QueryParams = URLSearchParams | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface ApiRequest {
  /** HTTP method, any case (signed upper-cased). */
  method: string;
  /** The request path as received, without the query: `/apps/123/events`. Not percent-decoded. */
  path: string;
  query: QueryParams;
  /** The raw body, byte for byte; absent or empty for none. */
  body?: Bytes | null;
}

export interface ApiCredentials {
  key: string;
  secret: string;
}

export type ApiAuthFailure = 'bad key' | 'stale timestamp' | 'bad body_md5' | 'bad signature' | 'missing params';

export type ApiAuthResult =
  | { ok: true }
  | {
      ok: false;
      reason: ApiAuthFailure;
      /** One line for the 401's body; never holds the secret or the expected signature. */
      message: string;
    };

/**
 * The query's parameters with lowercased keys; a key given twice (or in two cases) is
 * returned as `repeated`: no Pusher SDK signs such a query.
 */
function lowercaseParams(query: QueryParams): { params: Map<string, string>; repeated: string | null } {
  const entries: Array<[string, string]> = [];
  if (query instanceof URLSearchParams) {
    for (const [name, value] of query) entries.push([name, value]);
  } else {
    for (const [name, value] of Object.entries(query)) {
      if (value === undefined) continue;
      if (typeof value === 'string') entries.push([name, value]);
      else for (const each of value) entries.push([name, each]);
    }
  }
  const params = new Map<string, string>();
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (params.has(lower)) return { params, repeated: lower };
    params.set(lower, value);
  }
  return { params, repeated: null };
}

/** Code-unit order, as the Node SDK's sort and PHP's ksort order these keys. */
function byKey(a: [string, string], b: [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * What Pusher signs for an API request: `METHOD\npath\nquery`, the query being every
 * parameter but `auth_signature`, keys lowercased and sorted, joined `k=v` with `&`.
 */
export function apiStringToSign(method: string, path: string, params: ReadonlyMap<string, string> | Readonly<Record<string, string>>): string {
  const entries: Array<[string, string]> = params instanceof Map ? [...(params as ReadonlyMap<string, string>)] : Object.entries(params as Readonly<Record<string, string>>);
  const query = entries
    .map(([name, value]): [string, string] => [name.toLowerCase(), value])
    .filter(([name]) => name !== 'auth_signature')
    .sort(byKey)
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  return `${method.toUpperCase()}\n${path}\n${query}`;
}

const fail = (reason: ApiAuthFailure, message: string): ApiAuthResult => ({ ok: false, reason, message });

/** Quotes request data in a one-line message: JSON escapes, so newlines and controls stay on one line. */
const quote = (text: string): string => JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…` : text);

/**
 * Verifies an HTTP API request signed as Pusher signs it (its SDKs, Laravel's broadcaster):
 * `auth_key` is the app's key, `auth_version` is 1.0, `auth_timestamp` is within 600 s of
 * `nowMs`, `body_md5` is the body's MD5 (required with a body; with none, absent or the MD5
 * of nothing), and `auth_signature` signs the method, path and query. A failure says why,
 * in a message fit for the 401 response.
 */
export function verifyApiRequest(request: ApiRequest, credentials: ApiCredentials, nowMs: number = Date.now()): ApiAuthResult {
  const { params, repeated } = lowercaseParams(request.query);
  const missing = ['auth_key', 'auth_timestamp', 'auth_version', 'auth_signature'].filter((name) => !params.has(name));
  if (missing.length > 0) return fail('missing params', `Missing query parameters: ${missing.join(', ')}`);
  if (repeated !== null) return fail('bad signature', `Query parameter ${quote(repeated)} is given more than once`);
  const get = (name: string): string => params.get(name) as string;

  if (!safeEqual(get('auth_key'), credentials.key)) return fail('bad key', `Unknown auth_key ${quote(get('auth_key'))}`);
  if (get('auth_version') !== '1.0') return fail('missing params', `Unsupported auth_version ${quote(get('auth_version'))}: only 1.0 is known`);

  const timestamp = get('auth_timestamp');
  const nowSeconds = nowMs / 1000;
  if (!/^\d{1,15}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > API_TIMESTAMP_WINDOW_SECONDS) {
    return fail(
      'stale timestamp',
      `Timestamp expired: auth_timestamp ${quote(timestamp)} is not within ${API_TIMESTAMP_WINDOW_SECONDS}s of server time ${Math.floor(nowSeconds)}`,
    );
  }

  const body = request.body ?? '';
  const bodyMd5 = params.get('body_md5');
  if (body.length > 0 && bodyMd5 === undefined) return fail('bad body_md5', 'Missing body_md5: a request with a body must sign its MD5');
  if (bodyMd5 !== undefined && !safeEqual(bodyMd5.toLowerCase(), md5Hex(body))) {
    return fail('bad body_md5', 'body_md5 does not match the MD5 of the request body');
  }

  const stringToSign = apiStringToSign(request.method, request.path, params);
  if (!safeEqual(get('auth_signature').toLowerCase(), hmacSha256Hex(credentials.secret, stringToSign))) {
    return fail('bad signature', `Invalid signature: expected the HMAC-SHA256 hex digest of ${quote(stringToSign)} with the app's secret`);
  }
  return { ok: true };
}

/**
 * Signs an API request as the Pusher SDKs do, for tests and tools: the query parameters to
 * send (`params` plus `auth_key`, `auth_timestamp`, `auth_version`, `body_md5` when there is
 * a body, and `auth_signature`). URL-encode them to send them; they are signed unencoded.
 */
export function signApiRequest(
  request: { method: string; path: string; params?: Readonly<Record<string, string>>; body?: Bytes | null },
  credentials: ApiCredentials,
  nowMs: number = Date.now(),
): Record<string, string> {
  const params: Record<string, string> = {
    ...request.params,
    auth_key: credentials.key,
    auth_timestamp: String(Math.floor(nowMs / 1000)),
    auth_version: '1.0',
  };
  if (request.body !== undefined && request.body !== null && request.body.length > 0) params.body_md5 = md5Hex(request.body);
  params.auth_signature = hmacSha256Hex(credentials.secret, apiStringToSign(request.method, request.path, params));
  return params;
}
