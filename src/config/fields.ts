/**
 * Every configurable field: its environment variable, its option in code, and the one
 * function that coerces and checks its value whatever layer it comes from.
 */
import { availableParallelism } from 'node:os';
import { parseChannelRules, RuleError } from '../channels/rules.js';
import { ConfigError } from '../errors.js';
import { readNamedFile } from './file-checks.js';
import type { ChannelRulesSource, LogLevelName, RedisAddress, SwitchboardConfig } from './options.js';
import { normalizeOrigin, parseRedisUrl } from './values.js';

/** A value a field cannot take; the message says what is wrong with it. */
export class Problem extends Error {}

type Coerce = (value: unknown) => unknown;

/** Escapes control characters, so that a message quoting a file or a value stays on one line. */
export function oneLine(text: string): string {
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
  throw new Problem(`${show(value)} is not a boolean: use true, false, yes, no, on, off, 1 or 0`);
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

/**
 * A Pusher app id or key: it goes in a URL path (`/apps/{id}`, `/app/{key}`), where pusher-js
 * and the server SDKs put it unencoded, so printable ASCII without `/`, `?`, `#` or `%`.
 */
function pusherPathSegment(what: string): Coerce {
  return (value) => {
    if (value === null || value === '') return null;
    const text = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
    if (typeof text !== 'string' || !/^[\x21-\x7e]+$/.test(text.trim()) || /[/?#%]/.test(text)) {
      throw new Problem(`${show(value)} is not a Pusher ${what}: printable ASCII without spaces, '/', '?', '#' or '%'`);
    }
    return text.trim();
  };
}

/** Where webhooks go: an http:// or https:// URL. It may hold credentials, so it is never quoted. */
function webhookUrl(value: unknown): string | null {
  if (value === null || (typeof value === 'string' && value.trim() === '')) return null;
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value.trim()) : null;
  } catch {
    url = null;
  }
  if (url === null || url.hostname === '') throw new Problem('is not a URL like https://example.com/pusher/webhook; value not shown');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Problem(`is a ${url.protocol} URL; only http: and https: are supported (value not shown)`);
  return (value as string).trim();
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

/** A list of Redis addresses: 'host:port,host:port' ([v6]:port too), or in code strings or { host, port }. */
function redisAddresses(value: unknown): RedisAddress[] | null {
  if (value === null || value === '') return null;
  const list = typeof value === 'string' ? value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '') : value;
  if (!Array.isArray(list) || list.length === 0) throw new Problem(`${show(value)} is not a comma-separated list of host:port`);
  return list.map((entry: unknown) => {
    if (typeof entry === 'object' && entry !== null) {
      const { host, port } = entry as Partial<RedisAddress>;
      if (typeof host === 'string' && host !== '' && typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535) return { host, port };
      throw new Problem(`${show(entry)} is not an address like { host: '10.0.0.1', port: 26379 }`);
    }
    const match = typeof entry === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(entry) : null;
    const port = match === null ? NaN : Number(match[3]);
    if (match === null || port < 1 || port > 65535) throw new Problem(`${show(entry)} is not host:port (like 10.0.0.1:26379)`);
    return { host: (match[1] ?? match[2]) as string, port };
  });
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
    const read = readNamedFile(source);
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
  { env: 'WS_HANDSHAKE_TIMEOUT', option: 'handshakeTimeout', coerce: seconds },
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
  { env: 'WS_PRESENCE', option: 'presence', coerce: boolean },
  { env: 'WS_HISTORY_SIZE', option: 'history.size', coerce: integer(0, 1_000_000) },
  { env: 'WS_HISTORY_TTL', option: 'history.ttl', coerce: integer(1, 2_147_483) },
  { env: 'WS_RECOVERY_MAX', option: 'recoveryMax', coerce: integer(0, 1_000_000) },
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
  { env: 'REDIS_SENTINELS', option: 'redis.sentinels', coerce: redisAddresses },
  { env: 'REDIS_SENTINEL_NAME', option: 'redis.sentinelName', coerce: optionalString },
  { env: 'REDIS_CLUSTER_NODES', option: 'redis.clusterNodes', coerce: redisAddresses },
  { env: 'WS_API_KEY', option: 'apiKey', coerce: apiKey, secret: true },
  { env: 'PUSHER_APP_ID', option: 'pusher.appId', coerce: pusherPathSegment('app id') },
  { env: 'PUSHER_APP_KEY', option: 'pusher.key', coerce: pusherPathSegment('app key') },
  { env: 'PUSHER_APP_SECRET', option: 'pusher.secret', coerce: secretString, secret: true },
  { env: 'PUSHER_CLIENT_EVENTS', option: 'pusher.clientEvents', coerce: boolean },
  { env: 'PUSHER_ACTIVITY_TIMEOUT', option: 'pusher.activityTimeout', coerce: integer(1, 2_147_483) },
  { env: 'PUSHER_WEBHOOK_URL', option: 'pusher.webhookUrl', coerce: webhookUrl },
];

/** Options made of nested fields, like `ssl: { enabled, cert, key }`. */
const NESTED_OPTIONS: Readonly<Record<string, string>> = {
  ssl: '{ enabled, cert, key }',
  history: '{ size, ttl }',
  auth: '{ secret, publicKey, issuer, audience }',
  redis: '{ enabled, host, port, password, database, prefix, url, sentinels, sentinelName, clusterNodes }',
  pusher: '{ appId, key, secret, clientEvents, activityTimeout, webhookUrl }',
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
