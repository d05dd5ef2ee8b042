/** Loading the configuration: TLS files, the layers' precedence, env files, and check-config's listing (SPEC §1). */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, readEnvFile } from '../../src/config/load.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import { assertNames, configError, fromCode, fromEnv, pemFile, SPEC_FIELDS, tempDir } from './config-fixtures.js';

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
