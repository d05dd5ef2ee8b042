/** What the configuration tests share: the SPEC's defaults and fields written out, and helpers. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import type { SwitchboardOptions } from '../../src/config/options.js';
import { resolveOptions } from '../../src/config/resolve.js';
import { ConfigError } from '../../src/errors.js';

/** SPEC §1's defaults, written out so that a wrong DEFAULTS object fails the test. */
export const SPEC_DEFAULTS: SwitchboardOptions = {
  host: '0.0.0.0',
  port: 9501,
  path: '/',
  ssl: { enabled: false, cert: null, key: null },
  workers: 1,
  daemonize: false,
  pidFile: './switchboard.pid',
  logFile: null,
  logLevel: 'info',
  heartbeatInterval: 30,
  handshakeTimeout: 10,
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
  redis: { enabled: false, host: '127.0.0.1', port: 6379, password: null, database: 0, prefix: 'websocket:', url: null, sentinels: null, sentinelName: null, clusterNodes: null },
  apiKey: null,
  channels: null,
  presence: false,
  history: { size: 0, ttl: 3600 },
  recoveryMax: 1000,
  auth: { secret: null, publicKey: null, issuer: null, audience: null },
  pusher: { appId: null, key: null, secret: null, clientEvents: false, activityTimeout: 30, webhookUrl: null },
};

/** SPEC §1's environment variables and option names for the fields this module owns. */
export const SPEC_FIELDS: ReadonlyArray<readonly [env: string, option: string]> = [
  ['WS_HOST', 'host'],
  ['WS_PORT', 'port'],
  ['WS_PATH', 'path'],
  ['WS_SSL_ENABLED', 'ssl.enabled'],
  ['WS_SSL_CERT', 'ssl.cert'],
  ['WS_SSL_KEY', 'ssl.key'],
  ['WS_WORKER_NUM', 'workers'],
  ['WS_DAEMONIZE', 'daemonize'],
  ['WS_PID_FILE', 'pidFile'],
  ['WS_LOG_FILE', 'logFile'],
  ['WS_LOG_LEVEL', 'logLevel'],
  ['WS_HEARTBEAT_INTERVAL', 'heartbeatInterval'],
  ['WS_HANDSHAKE_TIMEOUT', 'handshakeTimeout'],
  ['WS_CONNECTION_TIMEOUT', 'connectionTimeout'],
  ['WS_MAX_MESSAGES_PER_MINUTE', 'maxMessagesPerMinute'],
  ['WS_MAX_PAYLOAD', 'maxPayload'],
  ['WS_MAX_CHANNELS_PER_CONNECTION', 'maxChannelsPerConnection'],
  ['WS_MAX_CONNECTIONS', 'maxConnections'],
  ['WS_MAX_CONNECTIONS_PER_IP', 'maxConnectionsPerIp'],
  ['WS_MAX_BUFFERED_BYTES', 'maxBufferedBytes'],
  ['WS_ALLOWED_ORIGINS', 'allowedOrigins'],
  ['WS_SHUTDOWN_TIMEOUT', 'shutdownTimeout'],
  ['WS_ALLOW_ANONYMOUS', 'allowAnonymous'],
  ['WS_CHANNELS_FILE', 'channels'],
  ['WS_PRESENCE', 'presence'],
  ['WS_HISTORY_SIZE', 'history.size'],
  ['WS_HISTORY_TTL', 'history.ttl'],
  ['WS_RECOVERY_MAX', 'recoveryMax'],
  ['TOKEN_SECRET', 'auth.secret'],
  ['JWT_PUBLIC_KEY', 'auth.publicKey'],
  ['JWT_ISSUER', 'auth.issuer'],
  ['JWT_AUDIENCE', 'auth.audience'],
  ['REDIS_ENABLED', 'redis.enabled'],
  ['REDIS_HOST', 'redis.host'],
  ['REDIS_PORT', 'redis.port'],
  ['REDIS_PASSWORD', 'redis.password'],
  ['REDIS_DATABASE', 'redis.database'],
  ['REDIS_PREFIX', 'redis.prefix'],
  ['REDIS_URL', 'redis.url'],
  ['REDIS_SENTINELS', 'redis.sentinels'],
  ['REDIS_SENTINEL_NAME', 'redis.sentinelName'],
  ['REDIS_CLUSTER_NODES', 'redis.clusterNodes'],
  ['WS_API_KEY', 'apiKey'],
  ['PUSHER_APP_ID', 'pusher.appId'],
  ['PUSHER_APP_KEY', 'pusher.key'],
  ['PUSHER_APP_SECRET', 'pusher.secret'],
  ['PUSHER_CLIENT_EVENTS', 'pusher.clientEvents'],
  ['PUSHER_ACTIVITY_TIMEOUT', 'pusher.activityTimeout'],
  ['PUSHER_WEBHOOK_URL', 'pusher.webhookUrl'],
];

export function fromEnv(env: Record<string, string>): SwitchboardOptions {
  return resolveOptions(layerFromEnv(env));
}

export function fromCode(options: Record<string, unknown>): SwitchboardOptions {
  return resolveOptions(layerFromOptions(options));
}

/** The value at a dotted option path, e.g. 'ssl.cert'. */
export function valueAt(options: SwitchboardOptions, option: string): unknown {
  let value: unknown = options;
  for (const part of option.split('.')) value = (value as Record<string, unknown>)[part];
  return value;
}

/** Runs `fn`, which must throw a ConfigError, and returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.name, 'ConfigError');
    return error;
  }
  assert.fail('expected a ConfigError, but nothing was thrown');
}

/** Asserts the SPEC §1 shape: one line, starting with "ENV (option): " and saying what is wrong. */
export function assertNames(error: ConfigError, env: string, option: string): void {
  assert.ok(!/[\r\n]/.test(error.message), `message should be one line: ${JSON.stringify(error.message)}`);
  const prefix = `${env} (${option}): `;
  assert.ok(error.message.startsWith(prefix), `message should start with '${prefix}': ${error.message}`);
  assert.ok(error.message.length > prefix.length + 3, `message should say what is wrong: ${error.message}`);
}

/** A fresh directory under the OS temp dir, removed after the test. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A self-signed certificate and its key, made with the openssl command the first time one is asked for. */
let tlsPairMade: { cert: string; key: string } | null = null;
function tlsPair(): { cert: string; key: string } {
  if (tlsPairMade !== null) return tlsPairMade;
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    tlsPairMade = { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
    return tlsPairMade;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A real PEM file in `dir`: the test certificate when `name` mentions "cert", else its key. */
export function pemFile(dir: string, name: string): string {
  const path = join(dir, name);
  writeFileSync(path, name.includes('cert') ? tlsPair().cert : tlsPair().key);
  return path;
}
