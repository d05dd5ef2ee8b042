/**
 * Options: one interface, one DEFAULTS object, one merge, validation right here (SPEC §1).
 *
 * Every option can come from five layers, weakest first: DEFAULTS < `.env` file <
 * process environment < CLI flags < options passed in code. Each layer is flattened to
 * `{ 'ssl.cert': value }` form, merged, and each field's value is coerced and checked
 * by the same function whatever its source, so an error always names both the
 * environment variable and the option in code.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { availableParallelism } from 'node:os';
import { parseChannelRules, RuleError, type ChannelRule } from '../channels/rules.js';
import { ConfigError } from '../errors.js';

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface SslOptions {
  /** Serve wss:// and https://. @default false */
  enabled: boolean;
  /** PEM certificate file path (WS_SSL_CERT). */
  cert: string | null;
  /** PEM private key file path (WS_SSL_KEY). */
  key: string | null;
}

export interface AuthOptions {
  /** HS256/384/512 key (TOKEN_SECRET, GEMVC's name). @default null */
  secret: string | null;
  /** PEM file of the public key for RS*, PS*, ES* and EdDSA tokens (JWT_PUBLIC_KEY). @default null */
  publicKey: string | null;
  /** Required `iss` claim, when set (JWT_ISSUER). @default null */
  issuer: string | null;
  /** Required `aud` claim, when set (JWT_AUDIENCE). @default null */
  audience: string | null;
}

export interface RedisOptions {
  /** Scale out through Redis (SPEC §6); off, the node is on its own (REDIS_ENABLED). @default false */
  enabled: boolean;
  /** (REDIS_HOST) @default '127.0.0.1' */
  host: string;
  /** (REDIS_PORT) @default 6379 */
  port: number;
  /** (REDIS_PASSWORD) @default null */
  password: string | null;
  /** Database number (REDIS_DATABASE). @default 0 */
  database: number;
  /** Prefix of every key and pub/sub channel, so that several clusters can share one Redis (REDIS_PREFIX). @default 'websocket:' */
  prefix: string;
  /** `redis://[:password@]host:port/db` or `rediss://` for TLS; overrides host, port, password and database (REDIS_URL). @default null */
  url: string | null;
}

/** Channel rules and where they came from. */
export interface ChannelRulesSource {
  /** The channels file, or '(options in code)'. */
  source: string;
  rules: ChannelRule[];
}

export interface SwitchboardOptions {
  /** Listen address (WS_HOST). @default '0.0.0.0' */
  host: string;
  /** Listen port; 0 picks a free one (WS_PORT). @default 9501 */
  port: number;
  /** Path on which WebSocket upgrades are accepted (WS_PATH). @default '/' */
  path: string;
  /** TLS (WS_SSL_ENABLED, WS_SSL_CERT, WS_SSL_KEY). */
  ssl: SslOptions;
  /** Worker processes sharing the port; 'auto' resolves to the CPU count; with the CLI only (WS_WORKER_NUM). @default 1 */
  workers: number;
  /** Detach from the terminal, write pidFile, log to logFile (WS_DAEMONIZE). @default false */
  daemonize: boolean;
  /** Where a daemonized server writes its pid (WS_PID_FILE). @default './switchboard.pid' */
  pidFile: string;
  /** Log file; null logs to stdout (a daemon then logs to ./switchboard.log) (WS_LOG_FILE). @default null */
  logFile: string | null;
  /** Log level name, or Swoole's numbers 0–6 in the environment (WS_LOG_LEVEL). @default 'info' */
  logLevel: LogLevelName;
  /** Seconds between server pings (WS_HEARTBEAT_INTERVAL). @default 30 */
  heartbeatInterval: number;
  /** Seconds of silence from a client before it is closed with 4008 (WS_CONNECTION_TIMEOUT). @default 300 */
  connectionTimeout: number;
  /** Frames a connection may send per rolling minute; 0 = unlimited (WS_MAX_MESSAGES_PER_MINUTE). @default 60 */
  maxMessagesPerMinute: number;
  /** Largest inbound frame in bytes; larger ones close with 1009 (WS_MAX_PAYLOAD). @default 65536 */
  maxPayload: number;
  /** Channels one connection may be subscribed to (WS_MAX_CHANNELS_PER_CONNECTION). @default 100 */
  maxChannelsPerConnection: number;
  /** Connections per node; 0 = unlimited (WS_MAX_CONNECTIONS). @default 0 */
  maxConnections: number;
  /** Connections per client IP; 0 = unlimited (WS_MAX_CONNECTIONS_PER_IP). @default 0 */
  maxConnectionsPerIp: number;
  /** Outbound backlog in bytes after which a client is closed as a slow consumer (WS_MAX_BUFFERED_BYTES). @default 1048576 */
  maxBufferedBytes: number;
  /** Origins allowed to connect; null allows any (WS_ALLOWED_ORIGINS, comma-separated). @default null */
  allowedOrigins: string[] | null;
  /** Seconds to drain connections on SIGTERM/SIGINT (WS_SHUTDOWN_TIMEOUT). @default 10 */
  shutdownTimeout: number;
  /** Accept connections without a token (WS_ALLOW_ANONYMOUS). @default true */
  allowAnonymous: boolean;
  /** Channel permission rules; null allows everything (WS_CHANNELS_FILE, or `{ rules }` in code). @default null */
  channels: ChannelRulesSource | null;
  /** Token verification (TOKEN_SECRET, JWT_PUBLIC_KEY, JWT_ISSUER, JWT_AUDIENCE). */
  auth: AuthOptions;
  /** Redis, for several nodes to act as one server (REDIS_*). */
  redis: RedisOptions;
  /** Bearer key of the HTTP API (/api/*); unset, the API answers 404 (WS_API_KEY). @default null */
  apiKey: string | null;
}

/** What callers pass: any subset, nested `ssl` included. */
export type SwitchboardConfig = Partial<Omit<SwitchboardOptions, 'ssl' | 'auth' | 'channels' | 'redis'>> & {
  ssl?: Partial<SslOptions>;
  auth?: Partial<AuthOptions>;
  redis?: Partial<RedisOptions>;
  /** A channels file path, or the rules themselves. */
  channels?: string | { rules: ChannelRule[] } | ChannelRulesSource | null;
};

export const DEFAULTS: Readonly<SwitchboardOptions> = Object.freeze({
  host: '0.0.0.0',
  port: 9501,
  path: '/',
  ssl: Object.freeze({ enabled: false, cert: null, key: null }),
  workers: 1,
  daemonize: false,
  pidFile: './switchboard.pid',
  logFile: null,
  logLevel: 'info',
  heartbeatInterval: 30,
  connectionTimeout: 300,
  maxMessagesPerMinute: 60,
  maxPayload: 65536,
  maxChannelsPerConnection: 100,
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  maxBufferedBytes: 1048576,
  allowedOrigins: null,
  shutdownTimeout: 10,
  allowAnonymous: true,
  channels: null,
  auth: Object.freeze({ secret: null, publicKey: null, issuer: null, audience: null }),
  redis: Object.freeze({ enabled: false, host: '127.0.0.1', port: 6379, password: null, database: 0, prefix: 'websocket:', url: null }),
  apiKey: null,
});

/** A value a field cannot take; the message says what is wrong with it. */
class Problem extends Error {}

type Coerce = (value: unknown) => unknown;

/** Escapes control characters, so that a message quoting a file or a value stays on one line. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
  return text.replace(/[\u0000-\u001f\u007f]/g, (char) => JSON.stringify(char).slice(1, -1));
}

/** Quotes a value for a one-line error message, whatever it holds. */
function show(value: unknown): string {
  if (typeof value === 'string') return `'${oneLine(value)}'`;
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function integer(min: number, max: number): Coerce {
  return (value) => {
    const number = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < min || number > max) {
      throw new Problem(`${show(value)} is not an integer between ${min} and ${max}`);
    }
    return number;
  };
}

/** Seconds: a positive number, fractions allowed (tests and demos use short intervals). */
function seconds(value: unknown): number {
  const number = typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number) || number <= 0 || number > 2_147_483) {
    throw new Problem(`${show(value)} is not a positive number of seconds`);
  }
  return number;
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off', '']);

function boolean(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  throw new Problem(`${show(value)} is not a boolean (true or false)`);
}

function nonEmptyString(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new Problem(`${show(value)} is not a non-empty string`);
  return value.trim();
}

function optionalString(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw new Problem(`${show(value)} is not a string`);
  return value.trim() === '' ? null : value.trim();
}

/** A secret is taken byte for byte: trimming would make it differ from what the issuer signs with. */
function secretString(value: unknown): string | null {
  if (value === null || value === '') return null;
  if (typeof value !== 'string' || value.trim() === '') throw new Problem('must be a non-empty string');
  return value;
}

/**
 * Sent as `Authorization: Bearer <key>`: printable ASCII only. A space could not be sent
 * whole, and HTTP headers arrive as latin1, so a UTF-8 key could never match.
 */
function apiKey(value: unknown): string | null {
  const key = secretString(value);
  if (key !== null && !/^[\x21-\x7e]+$/.test(key)) throw new Problem('must be printable ASCII without spaces');
  return key;
}

function urlPath(value: unknown): string {
  const path = nonEmptyString(value);
  if (!path.startsWith('/') || /[?#\s]/.test(path)) throw new Problem(`${show(value)} is not a URL path starting with '/'`);
  return path;
}

const LOG_LEVEL_NAMES = new Set<LogLevelName>(['trace', 'debug', 'info', 'warn', 'error', 'silent']);
// Swoole's levels: 0 DEBUG, 1 TRACE, 2 INFO, 3 NOTICE, 4 WARNING, 5 ERROR, 6 NONE.
const SWOOLE_LOG_LEVELS: readonly LogLevelName[] = ['debug', 'trace', 'info', 'info', 'warn', 'error', 'silent'];

function logLevel(value: unknown): LogLevelName {
  if (typeof value === 'number' || (typeof value === 'string' && /^\s*\d+\s*$/.test(value))) {
    const level = SWOOLE_LOG_LEVELS[Number(value)];
    if (level !== undefined) return level;
  }
  if (typeof value === 'string') {
    const name = value.trim().toLowerCase();
    if (name === 'warning') return 'warn';
    if (LOG_LEVEL_NAMES.has(name as LogLevelName)) return name as LogLevelName;
  }
  throw new Problem(`${show(value)} is not a log level (trace, debug, info, warn, error, silent, or Swoole's 0–6)`);
}

function workers(value: unknown): number {
  if (typeof value === 'string' && value.trim().toLowerCase() === 'auto') return availableParallelism();
  return integer(1, 1024)(value) as number;
}

/** A key prefix: braces would change the hash tags that keep a channel's keys on one Redis Cluster slot. */
function redisPrefix(value: unknown): string {
  if (typeof value !== 'string' || !/^[^\s{}]{1,64}$/.test(value)) {
    throw new Problem(`${show(value)} is not a key prefix: 1 to 64 characters, no spaces or braces`);
  }
  return value;
}

function redisUrl(value: unknown): string | null {
  if (value === null || value === '') return null;
  if (typeof value === 'string') {
    const url = parseRedisUrl(value.trim());
    if (url !== null) return value.trim();
  }
  // The URL may hold a password: it never goes into the message.
  throw new Problem('is not a URL like redis://[:password@]host:port/db (or rediss:// for TLS); value not shown');
}

/** The parts of a `redis://` or `rediss://` URL, or null when it is not one. */
export function parseRedisUrl(text: string): { host: string; port: number; username: string | null; password: string | null; database: number; tls: boolean } | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') return null;
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  if (!/^\d{0,5}$/.test(dbText)) return null;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    username: url.username === '' ? null : decodeURIComponent(url.username),
    password: url.password === '' ? null : decodeURIComponent(url.password),
    database: dbText === '' ? 0 : Number(dbText),
    tls: url.protocol === 'rediss:',
  };
}

/** A URL as it may be shown: the password masked. */
export function maskedRedisUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return '(set, not shown)';
  }
}

/** Origins compare case-insensitively and without trailing slashes. */
export function normalizeOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

function origins(value: unknown): string[] | null {
  if (value === null) return null;
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list) || !list.every((entry) => typeof entry === 'string')) {
    throw new Problem(`${show(value)} is not a comma-separated list of origins`);
  }
  const normalized = list.map(normalizeOrigin).filter((origin) => origin !== '');
  for (const origin of normalized) {
    if (!/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/.test(origin)) throw new Problem(`'${origin}' is not an origin like https://example.com`);
  }
  return normalized.length === 0 ? null : normalized;
}

/** A channels file path or rules in code, validated into rules (SPEC §4). */
function channelRules(value: unknown): ChannelRulesSource | null {
  if (value === null) return null;
  let source = '(options in code)';
  let document: unknown = value;
  if (typeof value === 'string') {
    if (value.trim() === '') return null;
    source = value.trim();
    const read = readConfigFile(source);
    if ('problem' in read) throw new Problem(`cannot read '${source}': ${read.problem}`);
    try {
      document = JSON.parse(read.content.toString('utf8')) as unknown;
    } catch (error) {
      throw new Problem(`'${source}' is not valid JSON: ${(error as Error).message}`);
    }
  } else if (typeof value === 'object' && typeof (value as Partial<ChannelRulesSource>).source === 'string') {
    // Already resolved once (the CLI hands its resolved options on).
    source = (value as ChannelRulesSource).source;
    document = { rules: (value as ChannelRulesSource).rules };
  }
  try {
    return { source, rules: parseChannelRules(document) };
  } catch (error) {
    if (!(error instanceof RuleError)) throw error;
    throw new Problem(source === '(options in code)' ? error.message : `'${source}': ${error.message}`);
  }
}

interface Field {
  env: string;
  /** Dotted path of the option in code. */
  option: string;
  coerce: Coerce;
  /** Never printed: check-config shows only whether it is set. */
  secret?: true;
}

/** Every configurable field, with the environment variable that sets it. */
export const FIELDS: readonly Field[] = [
  { env: 'WS_HOST', option: 'host', coerce: nonEmptyString },
  { env: 'WS_PORT', option: 'port', coerce: integer(0, 65535) },
  { env: 'WS_PATH', option: 'path', coerce: urlPath },
  { env: 'WS_SSL_ENABLED', option: 'ssl.enabled', coerce: boolean },
  { env: 'WS_SSL_CERT', option: 'ssl.cert', coerce: optionalString },
  { env: 'WS_SSL_KEY', option: 'ssl.key', coerce: optionalString },
  { env: 'WS_WORKER_NUM', option: 'workers', coerce: workers },
  { env: 'WS_DAEMONIZE', option: 'daemonize', coerce: boolean },
  { env: 'WS_PID_FILE', option: 'pidFile', coerce: nonEmptyString },
  { env: 'WS_LOG_FILE', option: 'logFile', coerce: optionalString },
  { env: 'WS_LOG_LEVEL', option: 'logLevel', coerce: logLevel },
  { env: 'WS_HEARTBEAT_INTERVAL', option: 'heartbeatInterval', coerce: seconds },
  { env: 'WS_CONNECTION_TIMEOUT', option: 'connectionTimeout', coerce: seconds },
  { env: 'WS_MAX_MESSAGES_PER_MINUTE', option: 'maxMessagesPerMinute', coerce: integer(0, 1_000_000) },
  { env: 'WS_MAX_PAYLOAD', option: 'maxPayload', coerce: integer(64, 100 * 1024 * 1024) },
  { env: 'WS_MAX_CHANNELS_PER_CONNECTION', option: 'maxChannelsPerConnection', coerce: integer(1, 1_000_000) },
  { env: 'WS_MAX_CONNECTIONS', option: 'maxConnections', coerce: integer(0, 100_000_000) },
  { env: 'WS_MAX_CONNECTIONS_PER_IP', option: 'maxConnectionsPerIp', coerce: integer(0, 100_000_000) },
  { env: 'WS_MAX_BUFFERED_BYTES', option: 'maxBufferedBytes', coerce: integer(1024, 2 ** 40) },
  { env: 'WS_ALLOWED_ORIGINS', option: 'allowedOrigins', coerce: origins },
  { env: 'WS_SHUTDOWN_TIMEOUT', option: 'shutdownTimeout', coerce: seconds },
  { env: 'WS_ALLOW_ANONYMOUS', option: 'allowAnonymous', coerce: boolean },
  { env: 'WS_CHANNELS_FILE', option: 'channels', coerce: channelRules },
  { env: 'TOKEN_SECRET', option: 'auth.secret', coerce: secretString, secret: true },
  { env: 'JWT_PUBLIC_KEY', option: 'auth.publicKey', coerce: optionalString },
  { env: 'JWT_ISSUER', option: 'auth.issuer', coerce: optionalString },
  { env: 'JWT_AUDIENCE', option: 'auth.audience', coerce: optionalString },
  { env: 'REDIS_ENABLED', option: 'redis.enabled', coerce: boolean },
  { env: 'REDIS_HOST', option: 'redis.host', coerce: nonEmptyString },
  { env: 'REDIS_PORT', option: 'redis.port', coerce: integer(1, 65535) },
  { env: 'REDIS_PASSWORD', option: 'redis.password', coerce: secretString, secret: true },
  { env: 'REDIS_DATABASE', option: 'redis.database', coerce: integer(0, 65535) },
  { env: 'REDIS_PREFIX', option: 'redis.prefix', coerce: redisPrefix },
  { env: 'REDIS_URL', option: 'redis.url', coerce: redisUrl },
  { env: 'WS_API_KEY', option: 'apiKey', coerce: apiKey, secret: true },
];

/** Options made of nested fields, like `ssl: { enabled, cert, key }`. */
const NESTED_OPTIONS: Readonly<Record<string, string>> = {
  ssl: '{ enabled, cert, key }',
  auth: '{ secret, publicKey, issuer, audience }',
  redis: '{ enabled, host, port, password, database, prefix, url }',
};

const FIELD_BY_OPTION = new Map(FIELDS.map((field) => [field.option, field]));

/** One layer of configuration, flattened: `{ 'ssl.cert': '/etc/cert.pem', port: '9000' }`. */
export type ConfigLayer = Readonly<Record<string, unknown>>;

/** Flattens options passed in code into a layer, rejecting names that are not options. */
export function layerFromOptions(options: SwitchboardConfig | Record<string, unknown>): ConfigLayer {
  const layer: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const shape = Object.hasOwn(NESTED_OPTIONS, key) ? NESTED_OPTIONS[key] : undefined;
    if (shape !== undefined) {
      if (typeof value !== 'object' || value === null) throw new ConfigError(`${key}: must be an object like ${shape}`);
      for (const [nestedKey, nestedValue] of Object.entries(value)) {
        if (nestedValue === undefined) continue;
        if (!FIELD_BY_OPTION.has(`${key}.${nestedKey}`)) throw new ConfigError(`${key}.${nestedKey}: unknown option`);
        layer[`${key}.${nestedKey}`] = nestedValue;
      }
      continue;
    }
    if (!FIELD_BY_OPTION.has(key)) throw new ConfigError(`${key}: unknown option`);
    layer[key] = value;
  }
  return layer;
}

/** Picks the fields' environment variables out of an environment into a layer. */
export function layerFromEnv(env: Readonly<Record<string, string | undefined>>): ConfigLayer {
  const layer: Record<string, unknown> = {};
  for (const field of FIELDS) {
    const value = env[field.env];
    if (value !== undefined) layer[field.option] = value;
  }
  return layer;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const dot = path.indexOf('.');
  if (dot === -1) {
    target[path] = value;
    return;
  }
  const head = path.slice(0, dot);
  const nested = (target[head] ??= {}) as Record<string, unknown>;
  nested[path.slice(dot + 1)] = value;
}

/** Reads a file named by the configuration, or says in a few words why it cannot. */
function readConfigFile(path: string): { content: Buffer } | { problem: string } {
  try {
    if (!statSync(path).isFile()) return { problem: 'not a regular file' };
    return { content: readFileSync(path) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code) };
  }
}

/** Checks that the TLS files exist, hold PEM a TLS server can use, and belong together. */
function checkTlsFiles(certPath: string | null, keyPath: string | null): void {
  const files = { cert: null as Buffer | null, key: null as Buffer | null };
  for (const [which, env, path] of [
    ['cert', 'WS_SSL_CERT', certPath],
    ['key', 'WS_SSL_KEY', keyPath],
  ] as const) {
    if (path === null) throw new ConfigError(`${env} (ssl.${which}): required when WS_SSL_ENABLED is true`);
    const read = readConfigFile(path);
    if ('problem' in read) throw new ConfigError(`${env} (ssl.${which}): cannot read '${path}': ${read.problem}`);
    files[which] = read.content;
  }
  try {
    new X509Certificate(files.cert as Buffer);
  } catch {
    throw new ConfigError(`WS_SSL_CERT (ssl.cert): '${certPath}' is not a PEM certificate`);
  }
  try {
    createPrivateKey(files.key as Buffer);
  } catch {
    throw new ConfigError(`WS_SSL_KEY (ssl.key): '${keyPath}' is not a PEM private key (or it is encrypted)`);
  }
  try {
    createSecureContext({ cert: files.cert as Buffer, key: files.key as Buffer });
  } catch (error) {
    throw new ConfigError(`WS_SSL_CERT / WS_SSL_KEY (ssl.cert / ssl.key): the key does not fit the certificate (${(error as Error).message})`);
  }
}

/**
 * Merges layers (weakest first) over DEFAULTS and validates the result. Throws a
 * ConfigError whose one-line message names the variable, the option and the problem.
 */
export function resolveOptions(...layers: ConfigLayer[]): SwitchboardOptions {
  const merged: Record<string, unknown> = {};
  for (const layer of layers) Object.assign(merged, layer);

  const options = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;
  for (const field of FIELDS) {
    if (!Object.hasOwn(merged, field.option)) continue;
    try {
      setPath(options, field.option, field.coerce(merged[field.option]));
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      // A secret's value never goes into a message that may end up in logs.
      // The coercers of secret fields never quote the value in their messages.
      const problem = field.secret === true ? `${error.message} (value not shown)` : error.message;
      throw new ConfigError(oneLine(`${field.env} (${field.option}): ${problem}`));
    }
  }
  const resolved = options as unknown as SwitchboardOptions;

  if (resolved.redis.url !== null) {
    // redisUrl() accepted it, so it parses.
    const { host, port, password, database } = parseRedisUrl(resolved.redis.url) as NonNullable<ReturnType<typeof parseRedisUrl>>;
    Object.assign(resolved.redis, { host, port, password, database });
  }

  if (resolved.ssl.enabled) checkTlsFiles(resolved.ssl.cert, resolved.ssl.key);
  if (resolved.auth.publicKey !== null) checkPublicKey(resolved.auth.publicKey);
  if (!resolved.allowAnonymous && resolved.auth.secret === null && resolved.auth.publicKey === null) {
    throw new ConfigError('WS_ALLOW_ANONYMOUS (allowAnonymous): false needs TOKEN_SECRET or JWT_PUBLIC_KEY, or no client could ever connect');
  }
  return resolved;
}

function checkPublicKey(path: string): void {
  const read = readConfigFile(path);
  if ('problem' in read) throw new ConfigError(`JWT_PUBLIC_KEY (auth.publicKey): cannot read '${path}': ${read.problem}`);
  let key: KeyObject;
  try {
    key = createPublicKey(read.content);
  } catch {
    throw new ConfigError(`JWT_PUBLIC_KEY (auth.publicKey): '${path}' is not a PEM public key`);
  }
  const type = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails ?? {};
  const problem =
    type === 'rsa' || type === 'rsa-pss'
      ? (details.modulusLength ?? 0) < 2048
        ? `an RSA key of ${details.modulusLength ?? 0} bits; at least 2048 are needed`
        : null
      : type === 'ec'
        ? ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '')
          ? null
          : `an EC key on ${details.namedCurve ?? 'an unknown curve'}; P-256, P-384 or P-521 is needed`
        : type === 'ed25519'
          ? null
          : `a ${type} key; RSA, EC (P-256/384/521) or Ed25519 is needed`;
  if (problem !== null) throw new ConfigError(`JWT_PUBLIC_KEY (auth.publicKey): '${path}' holds ${problem}`);
}

function describeRules({ source, rules }: ChannelRulesSource): string {
  return `${source} (${rules.length} ${rules.length === 1 ? 'rule' : 'rules'})`;
}

/** The effective configuration as environment variables, for `switchboard check-config`. */
export function describeOptions(options: SwitchboardOptions): Array<{ env: string; option: string; value: string }> {
  return FIELDS.map((field) => {
    let value: unknown = options;
    for (const part of field.option.split('.')) value = (value as Record<string, unknown>)[part];
    const shown =
      value === null
        ? '(unset)'
        : field.secret === true
          ? '(set, hidden)'
          : field.option === 'channels'
            ? describeRules(value as ChannelRulesSource)
            : field.option === 'redis.url'
              ? maskedRedisUrl(value as string)
              : Array.isArray(value)
              ? value.join(',')
              : `${value as string | number | boolean}`;
    return { env: field.env, option: field.option, value: shown };
  });
}
