/** The Redis options of SPEC §1: REDIS_* in the environment, GEMVC's `redis: {...}` in code. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import { parseRedisUrl } from '../../src/config/values.js';
import { configError } from '../helpers/config.js';

const fromEnv = (env: Record<string, string>) => resolveOptions(layerFromEnv(env));
const fromCode = (options: Record<string, unknown>) => resolveOptions(layerFromOptions(options));


void describe('Redis options', () => {
  void test('Redis is off by default, with the SPEC defaults for the rest', () => {
    assert.deepEqual(resolveOptions().redis, { enabled: false, host: '127.0.0.1', port: 6379, password: null, database: 0, prefix: 'websocket:', url: null, sentinels: null, sentinelName: null, clusterNodes: null });
  });

  void test('every REDIS_* variable sets its option', () => {
    const { redis } = fromEnv({
      REDIS_ENABLED: 'true',
      REDIS_HOST: 'cache.internal',
      REDIS_PORT: '6380',
      REDIS_PASSWORD: 's3cret',
      REDIS_DATABASE: '2',
      REDIS_PREFIX: 'chat:',
    });
    assert.deepEqual(redis, { enabled: true, host: 'cache.internal', port: 6380, password: 's3cret', database: 2, prefix: 'chat:', url: null, sentinels: null, sentinelName: null, clusterNodes: null });
  });

  void test("GEMVC's redis option in code is accepted", () => {
    const { redis } = fromCode({ redis: { enabled: true, host: '127.0.0.1', port: 6379, prefix: 'websocket:' } });
    assert.equal(redis.enabled, true);
    assert.equal(redis.prefix, 'websocket:');
  });

  void test('an unknown redis option in code is a ConfigError naming it', () => {
    assert.match(configError(() => fromCode({ redis: { enabled: true, cluster: true } })).message, /^redis\.cluster: unknown option/);
  });

  void test('REDIS_URL overrides host, port, password and database', () => {
    const { redis } = fromEnv({ REDIS_HOST: 'ignored', REDIS_PORT: '1', REDIS_URL: 'redis://:p%40ss@redis.example.com:6390/3' });
    assert.equal(redis.host, 'redis.example.com');
    assert.equal(redis.port, 6390);
    assert.equal(redis.password, 'p@ss');
    assert.equal(redis.database, 3);
  });

  void test('a REDIS_URL without port or database takes 6379 and 0', () => {
    const { redis } = fromEnv({ REDIS_URL: 'redis://localhost', REDIS_DATABASE: '5' });
    assert.equal(redis.port, 6379);
    assert.equal(redis.database, 0);
    assert.equal(redis.password, null);
  });

  void test('rediss:// is understood as Redis over TLS', () => {
    assert.equal(parseRedisUrl('rediss://redis.example.com:6380')?.tls, true);
    assert.equal(parseRedisUrl('redis://redis.example.com')?.tls, false);
  });

  void test('a REDIS_URL that is not a redis:// URL is a ConfigError that does not show the value', () => {
    for (const url of ['http://:hunter2@example.com', 'redis://', 'redis://:hunter2@host/notanumber', 'not a url hunter2']) {
      const error = configError(() => fromEnv({ REDIS_URL: url }));
      assert.ok(error.message.startsWith('REDIS_URL (redis.url): '), error.message);
      assert.ok(!error.message.includes('hunter2'), `the URL may hold a password: ${error.message}`);
    }
  });

  void test('a prefix with braces or spaces is refused: braces would break the hash tags', () => {
    for (const prefix of ['a{b', 'x}', 'a b', '']) {
      assert.ok(configError(() => fromEnv({ REDIS_PREFIX: prefix })).message.startsWith('REDIS_PREFIX (redis.prefix): '));
    }
  });

  void test('a bad REDIS_PASSWORD is refused without showing it', () => {
    const error = configError(() => fromCode({ redis: { password: 42 } }));
    assert.ok(error.message.startsWith('REDIS_PASSWORD (redis.password): '), error.message);
    assert.ok(!error.message.includes('42'));
  });

  void test('check-config hides the password and masks it in the URL', () => {
    const rows = describeOptions(fromEnv({ REDIS_PASSWORD: 'topsecret', REDIS_URL: 'redis://user:topsecret@redis.example.com:6390/1' }));
    const values = new Map(rows.map(({ env, value }) => [env, value]));
    assert.equal(values.get('REDIS_URL'), 'redis://user:***@redis.example.com:6390/1');
    assert.equal(values.get('REDIS_PASSWORD'), '(set, hidden)');
    assert.equal(values.get('REDIS_HOST'), 'redis.example.com');
    assert.ok(!JSON.stringify(rows).includes('topsecret'));
  });

  void test('check-config masks the password however the URL is written', () => {
    for (const url of ['REDIS://:topsecret@host:6379', 'Redis://user:topsecret@host', 'redis://:top%40secret@host/2', 'rediss://u:topsecret@host']) {
      const shown = describeOptions(fromEnv({ REDIS_URL: url })).find(({ env }) => env === 'REDIS_URL')?.value ?? '';
      assert.ok(!shown.includes('topsecret') && !shown.includes('top%40secret') && !shown.includes('secret'), `${url} shown as ${shown}`);
      assert.match(shown, /\*\*\*@host/);
    }
  });

  void test('WS_WORKER_NUM=auto resolves to a number of at least one', () => {
    assert.ok(fromEnv({ WS_WORKER_NUM: 'auto' }).workers >= 1);
  });
});
