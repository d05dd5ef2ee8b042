/**
 * The Pusher endpoint's configuration (SPEC §10, README "Configuration"): PUSHER_APP_ID,
 * PUSHER_APP_KEY, PUSHER_APP_SECRET, PUSHER_CLIENT_EVENTS, PUSHER_ACTIVITY_TIMEOUT and
 * PUSHER_WEBHOOK_URL, from the environment, a .env file and options in code; each bad value
 * a one-line ConfigError; the secret never printed, by check-config included.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULTS, type SwitchboardOptions } from '../../src/config/options.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import type { ConfigError } from '../../src/errors.js';
import { pusherApp } from '../../src/pusher/pusher-options.js';
import { cliEnv, linesOf, tempDir } from '../helpers/cli.js';
import { configError } from '../helpers/config.js';

const SECRET = 'pusher-very-secret-7ad3773142a6';
const APP = { PUSHER_APP_ID: '12345', PUSHER_APP_KEY: 'app-key_1.x', PUSHER_APP_SECRET: SECRET };

const fromEnv = (env: Record<string, string>): SwitchboardOptions => resolveOptions(layerFromEnv(env));
const fromCode = (options: Record<string, unknown>): SwitchboardOptions => resolveOptions(layerFromOptions(options));

/** SPEC §1's shape of a config error: one line, starting with `prefix`, saying more than that. */
function assertOneLine(error: ConfigError, prefix: string): void {
  assert.ok(!/[\r\n]/.test(error.message), `message should be one line: ${JSON.stringify(error.message)}`);
  assert.ok(error.message.startsWith(prefix), `message should start with '${prefix}': ${error.message}`);
  assert.ok(error.message.length > prefix.length + 3, `message should say what is wrong: ${error.message}`);
}

void describe('defaults', () => {
  void test('the endpoint is off, client events off, activity timeout 30, no webhook', () => {
    const options = resolveOptions();
    assert.deepEqual(options.pusher, { appId: null, key: null, secret: null, clientEvents: false, activityTimeout: 30, webhookUrl: null });
    assert.deepEqual(DEFAULTS.pusher, options.pusher);
    assert.equal(pusherApp(options), null);
  });

  void test('client events, activity timeout and webhook alone do not turn it on', () => {
    const options = fromEnv({ PUSHER_CLIENT_EVENTS: 'true', PUSHER_ACTIVITY_TIMEOUT: '10', PUSHER_WEBHOOK_URL: 'http://localhost:8080/hook' });
    assert.equal(pusherApp(options), null);
    assert.equal(options.pusher.clientEvents, true);
  });
});

void describe('from the environment', () => {
  void test('id, key and secret turn the endpoint on', () => {
    const options = fromEnv({ ...APP, PUSHER_CLIENT_EVENTS: 'yes', PUSHER_ACTIVITY_TIMEOUT: ' 120 ', PUSHER_WEBHOOK_URL: ' https://hooks.example.com/pusher?token=abc ' });
    assert.deepEqual(options.pusher, {
      appId: '12345',
      key: 'app-key_1.x',
      secret: SECRET,
      clientEvents: true,
      activityTimeout: 120,
      webhookUrl: 'https://hooks.example.com/pusher?token=abc',
    });
    assert.deepEqual(pusherApp(options), { ...options.pusher });
  });

  void test('id and key are trimmed; the secret is taken byte for byte', () => {
    const options = fromEnv({ PUSHER_APP_ID: ' my-app ', PUSHER_APP_KEY: '\tkey\n', PUSHER_APP_SECRET: ' s e c r e t ' });
    assert.equal(options.pusher.appId, 'my-app');
    assert.equal(options.pusher.key, 'key');
    assert.equal(options.pusher.secret, ' s e c r e t ');
  });

  void test('an empty variable is unset', () => {
    assert.equal(pusherApp(fromEnv({ PUSHER_APP_ID: '', PUSHER_APP_KEY: '', PUSHER_APP_SECRET: '', PUSHER_WEBHOOK_URL: '  ' })), null);
  });

  void test('a .env file is read, and the environment wins over it', (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), `PUSHER_APP_ID=1\nPUSHER_APP_KEY=file-key\nPUSHER_APP_SECRET=${SECRET}\nPUSHER_ACTIVITY_TIMEOUT=15\n`);
    const options = loadConfig({ cwd, env: { PUSHER_APP_KEY: 'env-key' } });
    assert.deepEqual([options.pusher.appId, options.pusher.key, options.pusher.secret, options.pusher.activityTimeout], ['1', 'env-key', SECRET, 15]);
  });
});

void describe('in code', () => {
  void test('a pusher object, with a numeric app id taken as a string', () => {
    const options = fromCode({ pusher: { appId: 777, key: 'k', secret: 's', clientEvents: true, activityTimeout: 5, webhookUrl: 'http://127.0.0.1:9/hook' } });
    assert.deepEqual(pusherApp(options), { appId: '777', key: 'k', secret: 's', clientEvents: true, activityTimeout: 5, webhookUrl: 'http://127.0.0.1:9/hook' });
  });

  void test('options in code win over the environment, field by field', (t) => {
    const options = loadConfig({ cwd: tempDir(t), env: { ...APP, PUSHER_CLIENT_EVENTS: 'true' }, options: { pusher: { key: 'code-key', clientEvents: false } } });
    assert.deepEqual([options.pusher.appId, options.pusher.key, options.pusher.clientEvents], ['12345', 'code-key', false]);
  });

  void test('an unknown pusher option, or a pusher that is not an object, is a ConfigError', () => {
    assertOneLine(configError(() => fromCode({ pusher: { appKey: 'x' } })), 'pusher.appKey: ');
    assertOneLine(configError(() => fromCode({ pusher: 'on' })), 'pusher: ');
  });
});

void describe('id, key and secret go together', () => {
  const cases: Array<[set: Array<keyof typeof APP>, prefix: string]> = [
    [['PUSHER_APP_ID'], 'PUSHER_APP_KEY and PUSHER_APP_SECRET (pusher.key, pusher.secret): '],
    [['PUSHER_APP_KEY'], 'PUSHER_APP_ID and PUSHER_APP_SECRET (pusher.appId, pusher.secret): '],
    [['PUSHER_APP_SECRET'], 'PUSHER_APP_ID and PUSHER_APP_KEY (pusher.appId, pusher.key): '],
    [['PUSHER_APP_ID', 'PUSHER_APP_KEY'], 'PUSHER_APP_SECRET (pusher.secret): '],
    [['PUSHER_APP_ID', 'PUSHER_APP_SECRET'], 'PUSHER_APP_KEY (pusher.key): '],
    [['PUSHER_APP_KEY', 'PUSHER_APP_SECRET'], 'PUSHER_APP_ID (pusher.appId): '],
  ];
  for (const [set, prefix] of cases) {
    void test(`only ${set.join(' and ')}: one line naming what is missing`, () => {
      const env = Object.fromEntries(set.map((name) => [name, APP[name]]));
      const error = configError(() => fromEnv(env));
      assertOneLine(error, prefix);
      assert.ok(!error.message.includes(SECRET));
    });
  }

  void test('the same in code', () => {
    assertOneLine(configError(() => fromCode({ pusher: { key: 'k', secret: 's' } })), 'PUSHER_APP_ID (pusher.appId): ');
  });
});

void describe('bad values: one line naming the variable and the option', () => {
  const bad: Array<[env: string, value: string, prefix: string]> = [
    ['PUSHER_APP_KEY', 'two words', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_KEY', 'a/b', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_KEY', 'key?x=1', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_KEY', 'ke#y', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_KEY', 'k%2F', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_KEY', 'clé', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_KEY', '   ', 'PUSHER_APP_KEY (pusher.key): '],
    ['PUSHER_APP_ID', '1/2', 'PUSHER_APP_ID (pusher.appId): '],
    ['PUSHER_APP_ID', 'my app', 'PUSHER_APP_ID (pusher.appId): '],
    ['PUSHER_APP_SECRET', '   ', 'PUSHER_APP_SECRET (pusher.secret): '],
    ['PUSHER_CLIENT_EVENTS', 'maybe', 'PUSHER_CLIENT_EVENTS (pusher.clientEvents): '],
    ['PUSHER_ACTIVITY_TIMEOUT', '0', 'PUSHER_ACTIVITY_TIMEOUT (pusher.activityTimeout): '],
    ['PUSHER_ACTIVITY_TIMEOUT', '-5', 'PUSHER_ACTIVITY_TIMEOUT (pusher.activityTimeout): '],
    ['PUSHER_ACTIVITY_TIMEOUT', '1.5', 'PUSHER_ACTIVITY_TIMEOUT (pusher.activityTimeout): '],
    ['PUSHER_ACTIVITY_TIMEOUT', 'abc', 'PUSHER_ACTIVITY_TIMEOUT (pusher.activityTimeout): '],
    ['PUSHER_WEBHOOK_URL', 'not a url', 'PUSHER_WEBHOOK_URL (pusher.webhookUrl): '],
    ['PUSHER_WEBHOOK_URL', 'ftp://files.example.com/hook', 'PUSHER_WEBHOOK_URL (pusher.webhookUrl): '],
    ['PUSHER_WEBHOOK_URL', 'ws://example.com/hook', 'PUSHER_WEBHOOK_URL (pusher.webhookUrl): '],
    ['PUSHER_WEBHOOK_URL', '/relative/hook', 'PUSHER_WEBHOOK_URL (pusher.webhookUrl): '],
  ];
  for (const [env, value, prefix] of bad) {
    void test(`${env}=${JSON.stringify(value)}`, () => assertOneLine(configError(() => fromEnv({ ...APP, [env]: value })), prefix));
  }

  void test('in code too: a secret or key that is not a string, a non-integer timeout', () => {
    assertOneLine(configError(() => fromCode({ pusher: { appId: '1', key: 'k', secret: 42 } })), 'PUSHER_APP_SECRET (pusher.secret): ');
    assertOneLine(configError(() => fromCode({ pusher: { appId: '1', key: ['k'], secret: 's' } })), 'PUSHER_APP_KEY (pusher.key): ');
    assertOneLine(configError(() => fromCode({ pusher: { appId: 1.5, key: 'k', secret: 's' } })), 'PUSHER_APP_ID (pusher.appId): ');
    assertOneLine(configError(() => fromCode({ pusher: { activityTimeout: 2.5 } })), 'PUSHER_ACTIVITY_TIMEOUT (pusher.activityTimeout): ');
    assertOneLine(configError(() => fromCode({ pusher: { clientEvents: 'sometimes' } })), 'PUSHER_CLIENT_EVENTS (pusher.clientEvents): ');
  });

  void test('the webhook URL, which may hold a token or a password, is never quoted', () => {
    const url = 'ftp://user:hunter2@example.com/hook?token=s3cr3t';
    const error = configError(() => fromEnv({ PUSHER_WEBHOOK_URL: url }));
    assert.ok(!error.message.includes('hunter2') && !error.message.includes('s3cr3t'), error.message);
  });
});

void describe('check-config', () => {
  void test('describeOptions shows id, key and settings, hides the secret, masks a webhook password', () => {
    const rows = describeOptions(fromEnv({ ...APP, PUSHER_WEBHOOK_URL: 'https://hook:hunter2@hooks.example.com/p' }));
    const shown = new Map(rows.map(({ env, option, value }) => [env, `${value} (${option})`]));
    assert.equal(shown.get('PUSHER_APP_ID'), '12345 (pusher.appId)');
    assert.equal(shown.get('PUSHER_APP_KEY'), 'app-key_1.x (pusher.key)');
    assert.equal(shown.get('PUSHER_APP_SECRET'), '(set, hidden) (pusher.secret)');
    assert.equal(shown.get('PUSHER_CLIENT_EVENTS'), 'false (pusher.clientEvents)');
    assert.equal(shown.get('PUSHER_ACTIVITY_TIMEOUT'), '30 (pusher.activityTimeout)');
    assert.equal(shown.get('PUSHER_WEBHOOK_URL'), 'https://hook:***@hooks.example.com/p (pusher.webhookUrl)');
    assert.ok(!JSON.stringify(rows).includes(SECRET) && !JSON.stringify(rows).includes('hunter2'));
  });

  void test('unset, every PUSHER_ variable shows as unset or its default', () => {
    const shown = new Map(describeOptions(resolveOptions()).map(({ env, value }) => [env, value]));
    assert.deepEqual(
      ['PUSHER_APP_ID', 'PUSHER_APP_KEY', 'PUSHER_APP_SECRET', 'PUSHER_CLIENT_EVENTS', 'PUSHER_ACTIVITY_TIMEOUT', 'PUSHER_WEBHOOK_URL'].map((env) => shown.get(env)),
      ['(unset)', '(unset)', '(unset)', 'false', '30', '(unset)'],
    );
  });

  // The CLI from source (through tsx), as the user runs `switchboard check-config`.
  const CLI_SOURCE = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const TSX = import.meta.resolve('tsx');

  function runCli(cwd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, ['--import', TSX, CLI_SOURCE, ...args], { cwd, env: cliEnv(env), timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
      });
    });
  }

  void test('switchboard check-config prints the Pusher settings and never the secret', { timeout: 90_000 }, async (t) => {
    const cwd = tempDir(t);
    writeFileSync(join(cwd, '.env'), `PUSHER_APP_SECRET=${SECRET}\n`);
    const result = await runCli(cwd, ['check-config'], { PUSHER_APP_ID: '12345', PUSHER_APP_KEY: 'app-key_1.x', PUSHER_CLIENT_EVENTS: 'on' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\s+PUSHER_APP_ID\s+12345\s+\(pusher\.appId\)$/m);
    assert.match(result.stdout, /^\s+PUSHER_APP_KEY\s+app-key_1\.x\s+\(pusher\.key\)$/m);
    assert.match(result.stdout, /^\s+PUSHER_APP_SECRET\s+\(set, hidden\)\s+\(pusher\.secret\)$/m);
    assert.match(result.stdout, /^\s+PUSHER_CLIENT_EVENTS\s+true\s+\(pusher\.clientEvents\)$/m);
    assert.ok(!result.stdout.includes(SECRET) && !result.stderr.includes(SECRET), 'the secret must never be printed');
  });

  void test('switchboard check-config with the key but not the secret exits 2 with one line naming PUSHER_APP_SECRET', { timeout: 90_000 }, async (t) => {
    const result = await runCli(tempDir(t), ['check-config'], { PUSHER_APP_ID: '12345', PUSHER_APP_KEY: 'app-key' });
    assert.equal(result.code, 2, result.stderr);
    assert.deepEqual(linesOf(result.stderr).length, 1, result.stderr);
    assert.match(result.stderr, /^switchboard: PUSHER_APP_SECRET \(pusher\.secret\): /);
  });

  void test('switchboard start with a bad key exits 2 with one line, the secret not in it', { timeout: 90_000 }, async (t) => {
    const result = await runCli(tempDir(t), ['start'], { ...APP, PUSHER_APP_KEY: 'my/key', WS_HOST: '127.0.0.1', WS_PORT: '0' });
    assert.equal(result.code, 2, result.stderr);
    assert.deepEqual(linesOf(result.stderr).length, 1, result.stderr);
    assert.match(result.stderr, /^switchboard: PUSHER_APP_KEY \(pusher\.key\): 'my\/key' is not a Pusher app key/);
    assert.ok(!result.stderr.includes(SECRET) && !result.stdout.includes(SECRET));
  });
});
