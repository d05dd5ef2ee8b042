/**
 * Redis Sentinel and Redis Cluster in the configuration (SPEC §1): REDIS_SENTINELS,
 * REDIS_SENTINEL_NAME and REDIS_CLUSTER_NODES, their host:port lists, and the checks
 * that keep one topology at a time (they replace REDIS_HOST/PORT and REDIS_URL).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import { cliEnv, runCli, tempDir } from '../helpers/cli.js';
import { assertNames, configError } from './config-fixtures.js';

const fromEnv = (env: Record<string, string>) => resolveOptions(layerFromEnv(env)).redis;
const fromCode = (redis: Record<string, unknown>) => resolveOptions(layerFromOptions({ redis })).redis;
const SENTINEL_NAME = { REDIS_SENTINEL_NAME: 'mymaster' };

const LISTS = [
  ['REDIS_SENTINELS', 'redis.sentinels', SENTINEL_NAME],
  ['REDIS_CLUSTER_NODES', 'redis.clusterNodes', {}],
] as const;

void describe('host:port lists', () => {
  void test('both are unset by default, and so is the master name', () => {
    const redis = resolveOptions().redis;
    assert.deepEqual([redis.sentinels, redis.sentinelName, redis.clusterNodes], [null, null, null]);
  });

  for (const [env, option, extra] of LISTS) {
    const key = option.slice('redis.'.length) as 'sentinels' | 'clusterNodes';

    void test(`${env}: comma-separated host:port, spaces and empty entries ignored`, () => {
      assert.deepEqual(fromEnv({ [env]: ' 10.0.0.1:26379 , sentinel-2.internal:26380, ', ...extra })[key], [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-2.internal', port: 26380 },
      ]);
    });

    void test(`${env}: an IPv6 address in brackets, beside others`, () => {
      assert.deepEqual(fromEnv({ [env]: '[::1]:26379,[fe80::1]:7000,10.0.0.1:1', ...extra })[key], [
        { host: '::1', port: 26379 },
        { host: 'fe80::1', port: 7000 },
        { host: '10.0.0.1', port: 1 },
      ]);
    });

    void test(`${env}: an empty value is unset`, () => {
      assert.equal(fromEnv({ [env]: '' })[key], null);
    });

    void test(`${env}: a bad entry is refused with one line naming the variable and the entry`, () => {
      for (const bad of ['host', 'h:0', 'h:65536', 'h:abc', ':26379', '::1:26379', '[::1]', 'a b:1', 'h:1:2', '[::1]:26379x', 'ok:1,bad', 'h:1\nx:2']) {
        const error = configError(() => fromEnv({ [env]: bad, ...extra }));
        assertNames(error, env, option);
        const entry = bad.split(',').at(-1) as string;
        assert.ok(error.message.includes(JSON.stringify(entry).slice(1, -1)), `${JSON.stringify(bad)}: ${error.message}`);
      }
    });

    void test(`${env}: a list without any entry is refused`, () => {
      for (const bad of [',', ' , ']) assertNames(configError(() => fromEnv({ [env]: bad, ...extra })), env, option);
    });
  }
});

void describe('in code', () => {
  void test('takes { host, port } objects and host:port strings, mixed', () => {
    const redis = fromCode({ sentinels: [{ host: '10.0.0.1', port: 26379 }, '10.0.0.2:26380', '[::1]:26381'], sentinelName: 'mymaster' });
    assert.deepEqual(redis.sentinels, [
      { host: '10.0.0.1', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
      { host: '::1', port: 26381 },
    ]);
    assert.equal(redis.sentinelName, 'mymaster');
    assert.deepEqual(fromCode({ clusterNodes: ['10.0.0.1:7000', { host: '10.0.0.2', port: 7001 }] }).clusterNodes, [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
    ]);
  });

  void test('a bad address in code is refused naming the variable and the option', () => {
    for (const bad of [[{ host: '', port: 1 }], [{ host: 'a', port: '1' }], [{ host: 'a' }], [{ host: 'a', port: 70000 }], 42, [], ['x'], [null]]) {
      assertNames(configError(() => fromCode({ clusterNodes: bad })), 'REDIS_CLUSTER_NODES', 'redis.clusterNodes');
    }
  });

  void test('null in code clears a list set in the environment', () => {
    assert.equal(resolveOptions(layerFromEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000' }), layerFromOptions({ redis: { clusterNodes: null } })).redis.clusterNodes, null);
  });
});

void describe('one topology at a time', () => {
  void test('REDIS_SENTINEL_NAME is required with REDIS_SENTINELS (an empty one too)', () => {
    for (const name of [{}, { REDIS_SENTINEL_NAME: '' }, { REDIS_SENTINEL_NAME: '  ' }] as Array<Record<string, string>>) {
      const error = configError(() => fromEnv({ REDIS_SENTINELS: '10.0.0.1:26379', ...name }));
      assertNames(error, 'REDIS_SENTINEL_NAME', 'redis.sentinelName');
      assert.match(error.message, /required with REDIS_SENTINELS/);
    }
  });

  void test('REDIS_SENTINEL_NAME without REDIS_SENTINELS is refused', () => {
    const error = configError(() => fromEnv(SENTINEL_NAME));
    assertNames(error, 'REDIS_SENTINEL_NAME', 'redis.sentinelName');
    assert.match(error.message, /without REDIS_SENTINELS/);
  });

  void test('REDIS_SENTINELS and REDIS_CLUSTER_NODES together are refused, naming both', () => {
    const error = configError(() => fromEnv({ REDIS_SENTINELS: '10.0.0.1:26379', ...SENTINEL_NAME, REDIS_CLUSTER_NODES: '10.0.0.1:7000' }));
    assert.ok(!/[\r\n]/.test(error.message));
    assert.match(error.message, /^REDIS_SENTINELS \(redis\.sentinels\) and REDIS_CLUSTER_NODES \(redis\.clusterNodes\): /);
  });

  void test('REDIS_URL with either is refused, without showing the URL', () => {
    for (const topology of [{ REDIS_SENTINELS: '10.0.0.1:26379', ...SENTINEL_NAME }, { REDIS_CLUSTER_NODES: '10.0.0.1:7000' }] as Array<Record<string, string>>) {
      const error = configError(() => fromEnv({ ...topology, REDIS_URL: 'redis://:hunter2@redis.example.com:6379/0' }));
      assertNames(error, 'REDIS_URL', 'redis.url');
      assert.ok(!error.message.includes('hunter2') && !error.message.includes('redis.example.com'), error.message);
    }
  });

  void test('REDIS_DATABASE other than 0 is refused with a cluster, taken with sentinels', () => {
    assertNames(configError(() => fromEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000', REDIS_DATABASE: '3' })), 'REDIS_DATABASE', 'redis.database');
    assert.equal(fromEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000', REDIS_DATABASE: '0' }).database, 0);
    assert.equal(fromEnv({ REDIS_SENTINELS: '10.0.0.1:26379', ...SENTINEL_NAME, REDIS_DATABASE: '3' }).database, 3);
  });

  void test('REDIS_HOST, REDIS_PORT and REDIS_PASSWORD may stay set beside either', () => {
    const redis = fromEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000', REDIS_HOST: 'ignored', REDIS_PORT: '6380', REDIS_PASSWORD: 'pw' });
    assert.deepEqual([redis.clusterNodes, redis.password], [[{ host: '10.0.0.1', port: 7000 }], 'pw']);
  });
});

void describe('check-config', { timeout: 60_000 }, () => {
  void test('shows the lists as host:port, IPv6 in brackets, and the master name', () => {
    const rows = describeOptions(resolveOptions(layerFromEnv({ REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380', ...SENTINEL_NAME })));
    const values = new Map(rows.map(({ env, value }) => [env, value]));
    assert.equal(values.get('REDIS_SENTINELS'), '10.0.0.1:26379,[::1]:26380');
    assert.equal(values.get('REDIS_SENTINEL_NAME'), 'mymaster');
    assert.equal(values.get('REDIS_CLUSTER_NODES'), '(unset)');
  });

  void test('the CLI prints them, and refuses a sentinel list without its master name in one line, exit 2', async (t) => {
    const cwd = tempDir(t);
    const shown = await runCli(t, ['check-config'], { cwd, env: cliEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,[::1]:7001' }) });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^\s+REDIS_CLUSTER_NODES\s+10\.0\.0\.1:7000,\[::1\]:7001\s+\(redis\.clusterNodes\)$/m);
    const refused = await runCli(t, ['check-config'], { cwd, env: cliEnv({ REDIS_SENTINELS: '10.0.0.1:26379' }) });
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /REDIS_SENTINEL_NAME \(redis\.sentinelName\): required/);
  });
});
