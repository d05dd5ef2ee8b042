import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { loadConfig, readEnvFile } from '../../src/config/load.js';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import { DEFAULTS, type SwitchboardOptions } from '../../src/config/options.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import { ConfigError } from '../../src/errors.js';

/** SPEC §1's defaults, written out so that a wrong DEFAULTS object fails the test. */
const SPEC_DEFAULTS: SwitchboardOptions = {
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
const SPEC_FIELDS: ReadonlyArray<readonly [env: string, option: string]> = [
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
  ['WS_API_KEY', 'apiKey'],
  ['PUSHER_APP_ID', 'pusher.appId'],
  ['PUSHER_APP_KEY', 'pusher.key'],
  ['PUSHER_APP_SECRET', 'pusher.secret'],
  ['PUSHER_CLIENT_EVENTS', 'pusher.clientEvents'],
  ['PUSHER_ACTIVITY_TIMEOUT', 'pusher.activityTimeout'],
  ['PUSHER_WEBHOOK_URL', 'pusher.webhookUrl'],
];

function fromEnv(env: Record<string, string>): SwitchboardOptions {
  return resolveOptions(layerFromEnv(env));
}

function fromCode(options: Record<string, unknown>): SwitchboardOptions {
  return resolveOptions(layerFromOptions(options));
}

/** The value at a dotted option path, e.g. 'ssl.cert'. */
function valueAt(options: SwitchboardOptions, option: string): unknown {
  let value: unknown = options;
  for (const part of option.split('.')) value = (value as Record<string, unknown>)[part];
  return value;
}

/** Runs `fn`, which must throw a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
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
function assertNames(error: ConfigError, env: string, option: string): void {
  assert.ok(!/[\r\n]/.test(error.message), `message should be one line: ${JSON.stringify(error.message)}`);
  const prefix = `${env} (${option}): `;
  assert.ok(error.message.startsWith(prefix), `message should start with '${prefix}': ${error.message}`);
  assert.ok(error.message.length > prefix.length + 3, `message should say what is wrong: ${error.message}`);
}

/** A fresh directory under the OS temp dir, removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A self-signed certificate and its key, made once with the openssl command. */
const tlsPair = ((): { cert: string; key: string } => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

/** A real PEM file in `dir`: the test certificate when `name` mentions "cert", else its key. */
function pemFile(dir: string, name: string): string {
  const path = join(dir, name);
  writeFileSync(path, name.includes('cert') ? tlsPair.cert : tlsPair.key);
  return path;
}

void describe('defaults', () => {
  void test('resolving no layers gives the SPEC defaults', () => {
    assert.deepEqual(resolveOptions(), SPEC_DEFAULTS);
  });

  void test('DEFAULTS holds the SPEC defaults', () => {
    assert.deepEqual(DEFAULTS, SPEC_DEFAULTS);
  });

  void test('loadConfig with no .env, an empty environment and no flags gives the SPEC defaults', (t) => {
    assert.deepEqual(loadConfig({ cwd: tempDir(t), env: {} }), SPEC_DEFAULTS);
  });

  void test('the resolved options are a copy that can be changed without touching DEFAULTS', () => {
    const options = resolveOptions();
    options.port = 1;
    options.ssl.enabled = true;
    assert.equal(DEFAULTS.port, 9501);
    assert.equal(DEFAULTS.ssl.enabled, false);
    assert.equal(resolveOptions().ssl.enabled, false);
  });

  void test('environment variables that are not Switchboard options are ignored', () => {
    assert.deepEqual(fromEnv({ PATH: '/usr/bin', WS_UNKNOWN: 'x', PORT: '1' }), SPEC_DEFAULTS);
  });
});

interface EnvCase {
  env: string;
  option: string;
  accepts: ReadonlyArray<readonly [raw: string, expected: unknown]>;
  refuses: readonly string[];
}

const ENV_CASES: readonly EnvCase[] = [
  { env: 'WS_HOST', option: 'host', accepts: [['127.0.0.1', '127.0.0.1'], ['  ::1 ', '::1']], refuses: ['', '   '] },
  {
    env: 'WS_PORT',
    option: 'port',
    accepts: [['8080', 8080], ['0', 0], ['65535', 65535], [' 9000 ', 9000]],
    refuses: ['abc', '65536', '-1', '80.5', '', '0x50', '1e3'],
  },
  {
    env: 'WS_PATH',
    option: 'path',
    accepts: [['/ws', '/ws'], ['/api/socket', '/api/socket']],
    refuses: ['ws', '', '/ws?x=1', '/ws#top', '/a b'],
  },
  {
    env: 'WS_SSL_ENABLED',
    option: 'ssl.enabled',
    accepts: [['false', false], ['0', false], ['no', false], ['off', false], ['FALSE', false], ['', false]],
    refuses: ['maybe', '2', 'enabled'],
  },
  { env: 'WS_SSL_CERT', option: 'ssl.cert', accepts: [['/etc/tls/cert.pem', '/etc/tls/cert.pem'], ['', null]], refuses: [] },
  { env: 'WS_SSL_KEY', option: 'ssl.key', accepts: [['/etc/tls/key.pem', '/etc/tls/key.pem'], ['', null]], refuses: [] },
  {
    env: 'WS_WORKER_NUM',
    option: 'workers',
    accepts: [['1', 1], ['4', 4], ['1024', 1024], ['auto', availableParallelism()], ['AUTO', availableParallelism()]],
    refuses: ['0', '-2', 'many', '1.5', '1025', ''],
  },
  { env: 'REDIS_ENABLED', option: 'redis.enabled', accepts: [['true', true], ['0', false]], refuses: ['maybe'] },
  { env: 'REDIS_HOST', option: 'redis.host', accepts: [['redis.internal', 'redis.internal']], refuses: ['', '  '] },
  { env: 'REDIS_PORT', option: 'redis.port', accepts: [['6380', 6380]], refuses: ['0', '65536', 'six', ''] },
  { env: 'REDIS_DATABASE', option: 'redis.database', accepts: [['0', 0], ['15', 15]], refuses: ['-1', 'x', ''] },
  { env: 'REDIS_PREFIX', option: 'redis.prefix', accepts: [['app1:', 'app1:'], ['sb', 'sb']], refuses: ['', 'a b', 'x{y}', 'p{', 'x'.repeat(65)] },
  {
    env: 'WS_DAEMONIZE',
    option: 'daemonize',
    accepts: [['true', true], ['1', true], ['yes', true], ['on', true], ['TRUE', true], [' Yes ', true], ['false', false], ['0', false], ['no', false], ['off', false], ['', false]],
    refuses: ['maybe', '2'],
  },
  { env: 'WS_PID_FILE', option: 'pidFile', accepts: [['/run/switchboard.pid', '/run/switchboard.pid']], refuses: ['', '  '] },
  { env: 'WS_LOG_FILE', option: 'logFile', accepts: [['/var/log/switchboard.log', '/var/log/switchboard.log'], ['', null]], refuses: [] },
  {
    env: 'WS_LOG_LEVEL',
    option: 'logLevel',
    accepts: [
      ['trace', 'trace'],
      ['debug', 'debug'],
      ['info', 'info'],
      ['warn', 'warn'],
      ['error', 'error'],
      ['silent', 'silent'],
      ['WARN', 'warn'],
      ['warning', 'warn'],
      // Swoole's numbers: 0 DEBUG, 1 TRACE, 2 INFO, 3 NOTICE, 4 WARNING, 5 ERROR, 6 NONE.
      ['0', 'debug'],
      ['1', 'trace'],
      ['2', 'info'],
      ['3', 'info'],
      ['4', 'warn'],
      ['5', 'error'],
      ['6', 'silent'],
    ],
    refuses: ['7', '-1', '1.5', 'verbose', 'notice', ''],
  },
  {
    env: 'WS_HEARTBEAT_INTERVAL',
    option: 'heartbeatInterval',
    accepts: [['45', 45], ['0.5', 0.5]],
    refuses: ['0', '-5', 'abc', '1e3', '', '3000000'],
  },
  { env: 'WS_CONNECTION_TIMEOUT', option: 'connectionTimeout', accepts: [['600', 600], ['1.25', 1.25]], refuses: ['0', 'x', '-300'] },
  { env: 'WS_SHUTDOWN_TIMEOUT', option: 'shutdownTimeout', accepts: [['5', 5], ['2.5', 2.5]], refuses: ['0', '-1', 'soon'] },
  {
    env: 'WS_MAX_MESSAGES_PER_MINUTE',
    option: 'maxMessagesPerMinute',
    accepts: [['0', 0], ['120', 120]],
    refuses: ['-1', 'ten', '1.5'],
  },
  { env: 'WS_MAX_PAYLOAD', option: 'maxPayload', accepts: [['64', 64], ['1048576', 1048576]], refuses: ['63', '0', 'big'] },
  {
    env: 'WS_MAX_CHANNELS_PER_CONNECTION',
    option: 'maxChannelsPerConnection',
    accepts: [['1', 1], ['500', 500]],
    refuses: ['0', '-1', 'many'],
  },
  { env: 'WS_MAX_CONNECTIONS', option: 'maxConnections', accepts: [['0', 0], ['10000', 10000]], refuses: ['-1', 'lots'] },
  { env: 'WS_MAX_CONNECTIONS_PER_IP', option: 'maxConnectionsPerIp', accepts: [['0', 0], ['20', 20]], refuses: ['1.5', '-3'] },
  {
    env: 'WS_MAX_BUFFERED_BYTES',
    option: 'maxBufferedBytes',
    accepts: [['1024', 1024], ['4194304', 4194304]],
    refuses: ['1023', '10', 'huge'],
  },
  {
    env: 'WS_ALLOWED_ORIGINS',
    option: 'allowedOrigins',
    accepts: [
      ['https://app.example.com', ['https://app.example.com']],
      ['https://a.example.com, http://localhost:3000/', ['https://a.example.com', 'http://localhost:3000']],
      ['HTTPS://App.Example.COM', ['https://app.example.com']],
      ['https://a.example.com,,https://b.example.com', ['https://a.example.com', 'https://b.example.com']],
      ['', null],
      [' , ', null],
    ],
    refuses: ['example.com', 'https://a.example.com/path', '*', 'https://a.example.com,ftp'],
  },
];

void describe('coercion from environment strings', () => {
  for (const { env, option, accepts, refuses } of ENV_CASES) {
    for (const [raw, expected] of accepts) {
      void test(`${env}=${JSON.stringify(raw)} gives ${option} ${JSON.stringify(expected)}`, () => {
        assert.deepEqual(valueAt(fromEnv({ [env]: raw }), option), expected);
      });
    }
    for (const raw of refuses) {
      void test(`${env}=${JSON.stringify(raw)} is a one-line ConfigError naming ${env} (${option})`, () => {
        assertNames(
          configError(() => fromEnv({ [env]: raw })),
          env,
          option,
        );
      });
    }
  }

  void test('the message quotes the value that was refused', () => {
    assert.ok(configError(() => fromEnv({ WS_PORT: 'abc' })).message.includes("'abc'"));
  });

  void test('an invalid origin in a list is named in the message', () => {
    assert.ok(configError(() => fromEnv({ WS_ALLOWED_ORIGINS: 'https://ok.example.com,nope' })).message.includes("'nope'"));
  });

  void test('a value containing a line break still yields a one-line message', () => {
    for (const [env, option, raw] of [
      ['WS_PORT', 'port', '80\n80'],
      ['WS_PATH', 'path', '/ws\nx'],
      ['WS_LOG_LEVEL', 'logLevel', 'info\r\nx'],
    ] as const) {
      assertNames(
        configError(() => fromEnv({ [env]: raw })),
        env,
        option,
      );
    }
  });
});

void describe('typed values passed in code', () => {
  void test('a numeric port is used as it is', () => {
    assert.equal(fromCode({ port: 9000 }).port, 9000);
  });

  void test('a numeric string port is coerced like the environment', () => {
    assert.equal(fromCode({ port: '9000' }).port, 9000);
  });

  void test('a port that is not an integer in range is a ConfigError naming WS_PORT (port)', () => {
    for (const port of [1.5, -1, 65536, true, null, Number.NaN, [80], { port: 80 }]) {
      assertNames(
        configError(() => fromCode({ port })),
        'WS_PORT',
        'port',
      );
    }
  });

  void test('a bigint port is a ConfigError, not a TypeError', () => {
    assertNames(
      configError(() => fromCode({ port: 9000n })),
      'WS_PORT',
      'port',
    );
  });

  void test('a host that is not a string is a ConfigError naming WS_HOST (host)', () => {
    assertNames(
      configError(() => fromCode({ host: 127001 })),
      'WS_HOST',
      'host',
    );
  });

  void test('boolean options take booleans', () => {
    assert.equal(fromCode({ daemonize: true }).daemonize, true);
    assert.equal(fromCode({ daemonize: false }).daemonize, false);
  });

  void test('a number for a boolean option is a ConfigError naming WS_DAEMONIZE (daemonize)', () => {
    assertNames(
      configError(() => fromCode({ daemonize: 1 })),
      'WS_DAEMONIZE',
      'daemonize',
    );
  });

  void test('fractional seconds are accepted for intervals', () => {
    const options = fromCode({ heartbeatInterval: 0.25, connectionTimeout: 1.5, shutdownTimeout: 0.1 });
    assert.equal(options.heartbeatInterval, 0.25);
    assert.equal(options.connectionTimeout, 1.5);
    assert.equal(options.shutdownTimeout, 0.1);
  });

  void test('seconds that are not a positive finite number are a ConfigError naming the variable', () => {
    for (const value of [0, -1, Number.POSITIVE_INFINITY, Number.NaN, true]) {
      assertNames(
        configError(() => fromCode({ heartbeatInterval: value })),
        'WS_HEARTBEAT_INTERVAL',
        'heartbeatInterval',
      );
    }
  });

  void test('several workers in code are accepted', () => {
    assert.equal(fromCode({ workers: 2 }).workers, 2);
  });

  void test('workers 0 in code is a ConfigError naming WS_WORKER_NUM (workers)', () => {
    assertNames(
      configError(() => fromCode({ workers: 0 })),
      'WS_WORKER_NUM',
      'workers',
    );
  });

  void test('a Swoole log level number in code is mapped like the environment', () => {
    assert.equal(fromCode({ logLevel: 4 }).logLevel, 'warn');
    assert.equal(fromCode({ logLevel: 0 }).logLevel, 'debug');
  });

  void test('a log level number outside 0-6 in code is a ConfigError naming WS_LOG_LEVEL (logLevel)', () => {
    for (const logLevel of [7, -1, 2.5]) {
      assertNames(
        configError(() => fromCode({ logLevel })),
        'WS_LOG_LEVEL',
        'logLevel',
      );
    }
  });

  void test('allowedOrigins as an array is normalized', () => {
    assert.deepEqual(fromCode({ allowedOrigins: ['https://A.example.com/', ' http://localhost:8080 '] }).allowedOrigins, [
      'https://a.example.com',
      'http://localhost:8080',
    ]);
  });

  void test('allowedOrigins as an empty array or null allows any origin', () => {
    assert.equal(fromCode({ allowedOrigins: [] }).allowedOrigins, null);
    assert.equal(fromCode({ allowedOrigins: null }).allowedOrigins, null);
  });

  void test('allowedOrigins with a non-string entry is a ConfigError naming WS_ALLOWED_ORIGINS (allowedOrigins)', () => {
    assertNames(
      configError(() => fromCode({ allowedOrigins: ['https://a.example.com', 42] })),
      'WS_ALLOWED_ORIGINS',
      'allowedOrigins',
    );
  });

  void test('null clears the optional paths', () => {
    const options = fromCode({ logFile: null, ssl: { cert: null, key: null } });
    assert.equal(options.logFile, null);
    assert.equal(options.ssl.cert, null);
    assert.equal(options.ssl.key, null);
  });

  void test('a cert path that is not a string is a ConfigError naming WS_SSL_CERT (ssl.cert)', () => {
    assertNames(
      configError(() => fromCode({ ssl: { cert: 5 } })),
      'WS_SSL_CERT',
      'ssl.cert',
    );
  });

  void test('a log file that is not a string is a ConfigError naming WS_LOG_FILE (logFile)', () => {
    assertNames(
      configError(() => fromCode({ logFile: false })),
      'WS_LOG_FILE',
      'logFile',
    );
  });

  void test('options set to undefined keep their defaults', () => {
    assert.deepEqual(fromCode({ port: undefined, ssl: { enabled: undefined } }), SPEC_DEFAULTS);
  });

  void test('an unknown option in code is a one-line ConfigError naming it', () => {
    const error = configError(() => layerFromOptions({ prot: 9000 }));
    assert.ok(error.message.includes('prot'), error.message);
    assert.ok(!error.message.includes('\n'));
  });

  void test('an unknown ssl option in code is a ConfigError naming it with its ssl. prefix', () => {
    const error = configError(() => layerFromOptions({ ssl: { crt: '/etc/cert.pem' } }));
    assert.ok(error.message.includes('ssl.crt'), error.message);
  });

  void test('ssl given as something other than an object is a ConfigError', () => {
    configError(() => layerFromOptions({ ssl: true }));
  });

  void test('loadConfig rejects an unknown option in code', (t) => {
    const error = configError(() => loadConfig({ cwd: tempDir(t), env: {}, options: { prot: 1 } as Record<string, unknown> }));
    assert.ok(error.message.includes('prot'), error.message);
  });

  void test('errors from values in code name the environment variable too', () => {
    assertNames(
      configError(() => fromCode({ maxPayload: 10 })),
      'WS_MAX_PAYLOAD',
      'maxPayload',
    );
  });
});

void describe('ssl', () => {
  void test('a certificate file that is not PEM is a ConfigError naming WS_SSL_CERT', (t) => {
    const dir = tempDir(t);
    const cert = join(dir, 'cert.pem');
    writeFileSync(cert, 'not a certificate');
    assertNames(configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: pemFile(dir, 'key.pem') })), 'WS_SSL_CERT', 'ssl.cert');
  });

  void test('a key file that is not PEM is a ConfigError naming WS_SSL_KEY', (t) => {
    const dir = tempDir(t);
    const key = join(dir, 'key.pem');
    writeFileSync(key, 'not a key');
    assertNames(configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: pemFile(dir, 'cert.pem'), WS_SSL_KEY: key })), 'WS_SSL_KEY', 'ssl.key');
  });

  void test('a certificate path that is a directory is a ConfigError naming WS_SSL_CERT', (t) => {
    const dir = tempDir(t);
    assertNames(configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: dir, WS_SSL_KEY: pemFile(dir, 'key.pem') })), 'WS_SSL_CERT', 'ssl.cert');
  });

  void test('a key that does not belong to the certificate is a ConfigError naming both', (t) => {
    const dir = tempDir(t);
    const otherKey = join(dir, 'other-key.pem');
    writeFileSync(otherKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const error = configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: pemFile(dir, 'cert.pem'), WS_SSL_KEY: otherKey }));
    assert.match(error.message, /^WS_SSL_CERT \/ WS_SSL_KEY \(ssl\.cert \/ ssl\.key\): the key does not fit the certificate/);
  });

  void test('enabled without a cert is a ConfigError naming WS_SSL_CERT (ssl.cert)', () => {
    assertNames(
      configError(() => fromEnv({ WS_SSL_ENABLED: 'true' })),
      'WS_SSL_CERT',
      'ssl.cert',
    );
  });

  void test('enabled with a cert but without a key is a ConfigError naming WS_SSL_KEY (ssl.key)', (t) => {
    const cert = pemFile(tempDir(t), 'cert.pem');
    assertNames(
      configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert })),
      'WS_SSL_KEY',
      'ssl.key',
    );
  });

  void test('enabled with a cert file that does not exist is a ConfigError naming WS_SSL_CERT and the path', (t) => {
    const dir = tempDir(t);
    const missing = join(dir, 'missing-cert.pem');
    const error = configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: missing, WS_SSL_KEY: pemFile(dir, 'key.pem') }));
    assertNames(error, 'WS_SSL_CERT', 'ssl.cert');
    assert.ok(error.message.includes(missing), error.message);
  });

  void test('enabled with a key file that does not exist is a ConfigError naming WS_SSL_KEY and the path', (t) => {
    const dir = tempDir(t);
    const missing = join(dir, 'missing-key.pem');
    const error = configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: pemFile(dir, 'cert.pem'), WS_SSL_KEY: missing }));
    assertNames(error, 'WS_SSL_KEY', 'ssl.key');
    assert.ok(error.message.includes(missing), error.message);
  });

  void test(
    'enabled with a cert file without read permission is a ConfigError naming WS_SSL_CERT',
    { skip: process.getuid?.() === 0 ? 'root can read any file' : false },
    (t) => {
      const dir = tempDir(t);
      const cert = pemFile(dir, 'cert.pem');
      chmodSync(cert, 0o000);
      assertNames(
        configError(() => fromEnv({ WS_SSL_ENABLED: 'true', WS_SSL_CERT: cert, WS_SSL_KEY: pemFile(dir, 'key.pem') })),
        'WS_SSL_CERT',
        'ssl.cert',
      );
    },
  );

  void test('enabled with readable cert and key files resolves with their paths', (t) => {
    const dir = tempDir(t);
    const cert = pemFile(dir, 'cert.pem');
    const key = pemFile(dir, 'key.pem');
    assert.deepEqual(fromEnv({ WS_SSL_ENABLED: 'yes', WS_SSL_CERT: cert, WS_SSL_KEY: key }).ssl, { enabled: true, cert, key });
  });

  void test('enabled in code with readable files resolves', (t) => {
    const dir = tempDir(t);
    const ssl = { enabled: true, cert: pemFile(dir, 'cert.pem'), key: pemFile(dir, 'key.pem') };
    assert.deepEqual(fromCode({ ssl }).ssl, ssl);
  });

  void test('cert and key files are not checked while ssl is disabled', () => {
    const ssl = fromEnv({ WS_SSL_CERT: '/nonexistent/cert.pem', WS_SSL_KEY: '/nonexistent/key.pem' }).ssl;
    assert.deepEqual(ssl, { enabled: false, cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' });
  });
});

void describe('loadConfig: precedence', () => {
  void test('a .env file overrides the defaults', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=7000\n');
    assert.equal(loadConfig({ cwd, env: {} }).port, 7000);
  });

  void test('the environment overrides the .env file', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=7000\n');
    assert.equal(loadConfig({ cwd, env: { WS_PORT: '7100' } }).port, 7100);
  });

  void test('flags override the environment', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=7000\n');
    assert.equal(loadConfig({ cwd, env: { WS_PORT: '7100' }, flags: { port: '7200' } }).port, 7200);
  });

  void test('options in code override flags', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=7000\n');
    assert.equal(loadConfig({ cwd, env: { WS_PORT: '7100' }, flags: { port: '7200' }, options: { port: 7300 } }).port, 7300);
  });

  void test('each field takes its value from the strongest layer that sets it', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), ['WS_HOST=10.0.0.1', 'WS_PORT=7000', 'WS_PATH=/from-file', 'WS_SHUTDOWN_TIMEOUT=2', 'WS_LOG_LEVEL=error'].join('\n'));
    const options = loadConfig({
      cwd,
      env: { WS_PORT: '7100', WS_PATH: '/from-env', WS_SHUTDOWN_TIMEOUT: '3' },
      flags: { shutdownTimeout: '4', path: '/from-flags' },
      options: { path: '/from-code' },
    });
    assert.equal(options.host, '10.0.0.1');
    assert.equal(options.logLevel, 'error');
    assert.equal(options.port, 7100);
    assert.equal(options.shutdownTimeout, 4);
    assert.equal(options.path, '/from-code');
    assert.equal(options.heartbeatInterval, 30);
  });

  void test('ssl fields from different layers are merged', (t) => {
    const cwd = tempDir(t);
    const cert = pemFile(cwd, 'cert.pem');
    const key = pemFile(cwd, 'key.pem');
    writeFileSync(join(cwd, '.env'), `WS_SSL_CERT=${cert}\n`);
    const options = loadConfig({ cwd, env: { WS_SSL_KEY: key }, options: { ssl: { enabled: true } } });
    assert.deepEqual(options.ssl, { enabled: true, cert, key });
  });

  void test('a bad value in a weaker layer is ignored when a stronger layer overrides it', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=abc\n');
    assert.equal(loadConfig({ cwd, env: { WS_PORT: '8000' } }).port, 8000);
  });

  void test('a bad value in the .env file is a ConfigError naming its variable', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=abc\n');
    assertNames(
      configError(() => loadConfig({ cwd, env: {} })),
      'WS_PORT',
      'port',
    );
  });

  void test('a bad flag is a ConfigError naming the variable and option', (t) => {
    assertNames(
      configError(() => loadConfig({ cwd: tempDir(t), env: {}, flags: { port: 'abc' } })),
      'WS_PORT',
      'port',
    );
  });

  void test('quotes and comments in the .env file are understood', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), '# a comment\nWS_HOST="127.0.0.1"\nWS_PATH=\'/quoted\'\n');
    const options = loadConfig({ cwd, env: {} });
    assert.equal(options.host, '127.0.0.1');
    assert.equal(options.path, '/quoted');
  });
});

void describe('loadConfig: env files', () => {
  void test('an explicit env file relative to cwd is read instead of .env', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), 'WS_PORT=7000\nWS_HOST=10.0.0.1\n');
    writeFileSync(join(cwd, 'custom.env'), 'WS_PORT=7400\n');
    const options = loadConfig({ cwd, env: {}, envFile: 'custom.env' });
    assert.equal(options.port, 7400);
    assert.equal(options.host, '0.0.0.0');
  });

  void test('an explicit env file may be an absolute path', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'absolute.env');
    writeFileSync(file, 'WS_PORT=7500\n');
    assert.equal(loadConfig({ cwd: tempDir(t), env: {}, envFile: file }).port, 7500);
  });

  void test('an explicit env file that does not exist is a one-line ConfigError naming the file', (t) => {
    const cwd = tempDir(t);
    const error = configError(() => loadConfig({ cwd, env: {}, envFile: 'missing.env' }));
    assert.ok(!error.message.includes('\n'), error.message);
    assert.ok(error.message.includes('missing.env'), error.message);
  });

  void test('a missing default .env is not an error', (t) => {
    assert.equal(loadConfig({ cwd: tempDir(t), env: { WS_PORT: '7600' } }).port, 7600);
  });

  void test('readEnvFile returns nothing for a missing file that is not required', (t) => {
    assert.deepEqual(readEnvFile(join(tempDir(t), '.env'), false), {});
  });

  void test('readEnvFile throws a ConfigError for a missing file that is required', (t) => {
    configError(() => readEnvFile(join(tempDir(t), '.env'), true));
  });

  void test('readEnvFile returns the variables of a file', (t) => {
    const file = join(tempDir(t), 'vars.env');
    writeFileSync(file, 'WS_PORT=7000\nOTHER=x\n');
    assert.deepEqual({ ...readEnvFile(file, true) }, { WS_PORT: '7000', OTHER: 'x' });
  });

  void test('an explicit env file that is a directory is a ConfigError', (t) => {
    const cwd = tempDir(t);
    mkdirSync(join(cwd, 'dir.env'));
    configError(() => loadConfig({ cwd, env: {}, envFile: 'dir.env' }));
  });
});

void describe('describeOptions', () => {
  void test('lists every field once, with its environment variable and option name', () => {
    const described = describeOptions(resolveOptions()).map(({ env, option }) => `${env} ${option}`);
    assert.deepEqual([...described].sort(), SPEC_FIELDS.map(([env, option]) => `${env} ${option}`).sort());
  });

  void test('shows the defaults as strings, unset values as (unset)', () => {
    const values = new Map(describeOptions(resolveOptions()).map(({ env, value }) => [env, value]));
    assert.equal(values.get('WS_PORT'), '9501');
    assert.equal(values.get('WS_HOST'), '0.0.0.0');
    assert.equal(values.get('WS_SSL_ENABLED'), 'false');
    assert.equal(values.get('WS_SSL_CERT'), '(unset)');
    assert.equal(values.get('WS_ALLOWED_ORIGINS'), '(unset)');
    assert.equal(values.get('WS_LOG_LEVEL'), 'info');
    assert.equal(values.get('WS_HEARTBEAT_INTERVAL'), '30');
  });

  void test('shows the effective values of the options it is given', () => {
    const options = fromEnv({ WS_PORT: '8000', WS_ALLOWED_ORIGINS: 'https://a.example.com,https://b.example.com', WS_DAEMONIZE: 'on' });
    const values = new Map(describeOptions(options).map(({ env, value }) => [env, value]));
    assert.equal(values.get('WS_PORT'), '8000');
    assert.equal(values.get('WS_ALLOWED_ORIGINS'), 'https://a.example.com,https://b.example.com');
    assert.equal(values.get('WS_DAEMONIZE'), 'true');
  });
});
