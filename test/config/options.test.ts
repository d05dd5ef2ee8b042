import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import { layerFromOptions } from '../../src/config/fields.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/options.js';
import { resolveOptions } from '../../src/config/resolve.js';
import { assertNames, configError, fromCode, fromEnv, SPEC_DEFAULTS, tempDir, valueAt } from './config-fixtures.js';

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
  { env: 'WS_HANDSHAKE_TIMEOUT', option: 'handshakeTimeout', accepts: [['10', 10], ['0.5', 0.5], [' 30 ', 30]], refuses: ['0', '-1', 'soon', '', '1e3', '3000000'] },
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
