/**
 * One merge of the configuration's layers over DEFAULTS, each field checked by its own
 * coercer whatever layer it came from; and the effective values as `check-config`
 * prints them.
 */
import { ConfigError } from '../errors.js';
import { FIELDS, oneLine, Problem, type ConfigLayer } from './fields.js';
import { checkPublicKey, checkTlsFiles } from './file-checks.js';
import { DEFAULTS, type ChannelRulesSource, type SwitchboardOptions } from './options.js';
import { maskedRedisUrl, maskedUrl, parseRedisUrl } from './values.js';

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
  checkPusherApp(resolved);
  checkRedisTopology(resolved);
  resolutions.set(resolved.ssl, JSON.stringify(resolved));
  return resolved;
}

const PUSHER_APP_FIELDS = [
  ['PUSHER_APP_ID', 'pusher.appId', 'appId'],
  ['PUSHER_APP_KEY', 'pusher.key', 'key'],
  ['PUSHER_APP_SECRET', 'pusher.secret', 'secret'],
] as const;

/** The Pusher endpoint needs its app id, key and secret together: some without the others is a mistake. */
function checkPusherApp(options: SwitchboardOptions): void {
  const missing = PUSHER_APP_FIELDS.filter(([, , name]) => options.pusher[name] === null);
  if (missing.length === 0 || missing.length === PUSHER_APP_FIELDS.length) return;
  const set = PUSHER_APP_FIELDS.filter((field) => !missing.includes(field));
  const names = (fields: typeof missing) => fields.map(([env]) => env).join(' and ');
  const optionNames = (fields: typeof missing) => fields.map(([, option]) => option).join(', ');
  throw new ConfigError(
    `${names(missing)} (${optionNames(missing)}): required with ${names(set)}; the Pusher endpoint needs PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET all set (or none)`,
  );
}

/** Sentinel and Cluster replace the one server of host, port and url: one topology at a time, Sentinel with its name. */
function checkRedisTopology({ redis }: SwitchboardOptions): void {
  if (redis.sentinels !== null && redis.clusterNodes !== null) {
    throw new ConfigError('REDIS_SENTINELS (redis.sentinels) and REDIS_CLUSTER_NODES (redis.clusterNodes): set one or the other, not both');
  }
  if ((redis.sentinels === null) !== (redis.sentinelName === null)) {
    throw new ConfigError(
      redis.sentinels === null
        ? 'REDIS_SENTINEL_NAME (redis.sentinelName): set without REDIS_SENTINELS (redis.sentinels), the sentinels to ask for that master'
        : 'REDIS_SENTINEL_NAME (redis.sentinelName): required with REDIS_SENTINELS (redis.sentinels), the name of the master the sentinels watch',
    );
  }
  const topology = redis.sentinels !== null ? 'REDIS_SENTINELS (redis.sentinels)' : redis.clusterNodes !== null ? 'REDIS_CLUSTER_NODES (redis.clusterNodes)' : null;
  if (topology !== null && redis.url !== null) {
    throw new ConfigError(`REDIS_URL (redis.url): names one server, and ${topology} is set; give the password as REDIS_PASSWORD`);
  }
  if (redis.clusterNodes !== null && redis.database !== 0) {
    throw new ConfigError(`REDIS_DATABASE (redis.database): ${redis.database}, but Redis Cluster has database 0 only (REDIS_CLUSTER_NODES is set)`);
  }
}

/** Every resolution as it was checked, known by its `ssl` object, which a shallow copy (`{ ...options, logger }`) keeps. */
const resolutions = new WeakMap<object, string>();

/**
 * `options` when they are what resolveOptions() returned, or a shallow copy of it,
 * unchanged since (the CLI and createServer hand their resolved options on so): then they
 * need not be resolved, nor their files read, again. Otherwise null: changed options are
 * resolved and checked like any others.
 */
export function alreadyResolved(options: object): SwitchboardOptions | null {
  const ssl = (options as { ssl?: unknown }).ssl;
  if (typeof ssl !== 'object' || ssl === null) return null;
  const checked = resolutions.get(ssl);
  return checked !== undefined && JSON.stringify(options) === checked ? (options as SwitchboardOptions) : null;
}

function addressText({ host, port }: { host: string; port: number }): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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
              : field.option === 'pusher.webhookUrl'
              ? maskedUrl(value as string)
              : Array.isArray(value)
              ? value.map((entry: unknown) => (typeof entry === 'object' && entry !== null ? addressText(entry as { host: string; port: number }) : String(entry))).join(',')
              : `${value as string | number | boolean}`;
    return { env: field.env, option: field.option, value: shown };
  });
}
