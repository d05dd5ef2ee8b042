/**
 * The presence and history switches (SPEC §1, §4): WS_PRESENCE, WS_HISTORY_SIZE,
 * WS_HISTORY_TTL and WS_RECOVERY_MAX (parsed, bad values refused with a one-line error
 * naming the variable), the channels file's per-rule `presence` and `history` (validated),
 * and which channels get which features (channels/features.ts): the first matching rule
 * decides, no match means none, `{user_id}` matches any one segment, and without a
 * channels file the options apply to every channel.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { ChannelFeatures } from '../../src/channels/features.js';
import type { ChannelRule } from '../../src/channels/rules.js';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import { loadConfig } from '../../src/config/load.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import type { ConfigError } from '../../src/errors.js';
import { WebSocketHandler } from '../../src/handler.js';
import { configError } from '../helpers/config.js';

const fromEnv = (env: Record<string, string>) => resolveOptions(layerFromEnv(env));
const fromCode = (options: Record<string, unknown>) => resolveOptions(layerFromOptions(options));

/** SPEC §1: one line, starting with "ENV (option): " and saying what is wrong. */
function assertNames(error: ConfigError, env: string, option: string): void {
  assert.ok(!/[\r\n]/.test(error.message), `one line: ${JSON.stringify(error.message)}`);
  const prefix = `${env} (${option}): `;
  assert.ok(error.message.startsWith(prefix), `should start with '${prefix}': ${error.message}`);
  assert.ok(error.message.length > prefix.length + 3, `should say what is wrong: ${error.message}`);
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-features-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a channels file holding `document` (any JSON) and returns its path. */
function channelsFile(t: TestContext, document: unknown): string {
  const path = join(tempDir(t), 'channels.json');
  writeFileSync(path, JSON.stringify(document));
  return path;
}

const rule = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ pattern: 'chat.*', subscribe: ['*'], publish: ['*'], ...extra });

void describe('the environment variables', () => {
  void test('the defaults: no presence, no history (size 0), a ttl of 3600 s, recoveryMax 1000', (t) => {
    const options = resolveOptions();
    assert.equal(options.presence, false);
    assert.deepEqual(options.history, { size: 0, ttl: 3600 });
    assert.equal(options.recoveryMax, 1000);
    assert.deepEqual(loadConfig({ cwd: tempDir(t), env: {} }).history, { size: 0, ttl: 3600 });
  });

  const cases: ReadonlyArray<{ env: string; option: string; accepts: ReadonlyArray<readonly [string, unknown]>; refuses: readonly string[] }> = [
    {
      env: 'WS_PRESENCE',
      option: 'presence',
      accepts: [['true', true], ['1', true], ['yes', true], ['on', true], [' TRUE ', true], ['false', false], ['0', false], ['no', false], ['off', false], ['', false]],
      refuses: ['maybe', '2', 'enabled', 'truee'],
    },
    {
      env: 'WS_HISTORY_SIZE',
      option: 'history.size',
      accepts: [['0', 0], ['1', 1], ['100', 100], [' 250 ', 250], ['1000000', 1_000_000]],
      refuses: ['-1', 'ten', '1.5', '', '1e3', '0x10', '1000001'],
    },
    {
      env: 'WS_HISTORY_TTL',
      option: 'history.ttl',
      accepts: [['1', 1], ['60', 60], ['86400', 86400]],
      refuses: ['0', '-1', 'hour', '1.5', '', '1h'],
    },
    {
      env: 'WS_RECOVERY_MAX',
      option: 'recoveryMax',
      accepts: [['0', 0], ['5', 5], ['1000', 1000], ['100000', 100_000]],
      refuses: ['-1', 'lots', '2.5', '', '1e3'],
    },
  ];

  for (const { env, option, accepts, refuses } of cases) {
    void test(`${env} sets ${option}`, () => {
      for (const [raw, expected] of accepts) {
        let value: unknown = fromEnv({ [env]: raw });
        for (const part of option.split('.')) value = (value as Record<string, unknown>)[part];
        assert.deepEqual(value, expected, `${env}=${JSON.stringify(raw)}`);
      }
    });

    void test(`${env}: a bad value is refused with a one-line error naming ${env} and ${option}`, () => {
      for (const raw of refuses) {
        const error = configError(() => fromEnv({ [env]: raw }));
        assertNames(error, env, option);
        if (raw.trim() !== '') assert.ok(error.message.includes(raw), `the value is quoted: ${error.message}`);
      }
    });
  }

  void test('WS_HISTORY_SIZE and WS_HISTORY_TTL are independent: setting one keeps the default of the other', () => {
    assert.deepEqual(fromEnv({ WS_HISTORY_SIZE: '50' }).history, { size: 50, ttl: 3600 });
    assert.deepEqual(fromEnv({ WS_HISTORY_TTL: '30' }).history, { size: 0, ttl: 30 });
  });

  void test('options in code win over the environment; a bad value in code names the variable too', (t) => {
    const options = loadConfig({
      cwd: tempDir(t),
      env: { WS_PRESENCE: 'false', WS_HISTORY_SIZE: '10', WS_HISTORY_TTL: '20', WS_RECOVERY_MAX: '30' },
      options: { presence: true, history: { size: 11 }, recoveryMax: 31 },
    });
    assert.equal(options.presence, true);
    assert.deepEqual(options.history, { size: 11, ttl: 20 });
    assert.equal(options.recoveryMax, 31);

    assertNames(configError(() => fromCode({ presence: 'sometimes' })), 'WS_PRESENCE', 'presence');
    assertNames(configError(() => fromCode({ history: { size: -3 } })), 'WS_HISTORY_SIZE', 'history.size');
    assertNames(configError(() => fromCode({ history: { ttl: 0 } })), 'WS_HISTORY_TTL', 'history.ttl');
    assertNames(configError(() => fromCode({ history: { size: 1.5 } })), 'WS_HISTORY_SIZE', 'history.size');
    assertNames(configError(() => fromCode({ recoveryMax: -1 })), 'WS_RECOVERY_MAX', 'recoveryMax');
  });

  void test('history in code must be an object of size and ttl', () => {
    for (const history of [5, 'big', null, true]) {
      const error = configError(() => fromCode({ history }));
      assert.ok(!error.message.includes('\n'));
      assert.match(error.message, /^history: /, error.message);
    }
    assert.match(configError(() => fromCode({ history: { size: 5, keep: 3 } })).message, /^history\.keep: unknown option/);
  });

  void test('the handler refuses bad values the same way', () => {
    assertNames(configError(() => new WebSocketHandler({ history: { size: -1 }, logger: pino({ level: 'silent' }) })), 'WS_HISTORY_SIZE', 'history.size');
  });

  void test('check-config shows the four values', () => {
    const rows = describeOptions(fromEnv({ WS_PRESENCE: 'yes', WS_HISTORY_SIZE: '64', WS_HISTORY_TTL: '90', WS_RECOVERY_MAX: '12' }));
    const shown = Object.fromEntries(rows.map(({ env, value }) => [env, value]));
    assert.equal(shown.WS_PRESENCE, 'true');
    assert.equal(shown.WS_HISTORY_SIZE, '64');
    assert.equal(shown.WS_HISTORY_TTL, '90');
    assert.equal(shown.WS_RECOVERY_MAX, '12');
  });
});

void describe('presence and history in the channels file', () => {
  void test('a file whose rules have presence and history is read with them', (t) => {
    const path = channelsFile(t, { rules: [rule({ presence: true, history: { size: 10, ttl: 60 } }), { pattern: '**', subscribe: ['*'], publish: [] }] });
    const options = fromEnv({ WS_CHANNELS_FILE: path });
    assert.equal(options.channels?.source, path);
    assert.deepEqual(options.channels?.rules[0], { pattern: 'chat.*', subscribe: ['*'], publish: ['*'], presence: true, history: { size: 10, ttl: 60 } });
    assert.equal(options.channels?.rules[1]?.presence, undefined);
    assert.equal(options.channels?.rules[1]?.history, undefined);
  });

  const BAD_HISTORY: readonly unknown[] = [
    5,
    'yes',
    true,
    null,
    [],
    {},
    { size: 10 },
    { ttl: 10 },
    { size: 0, ttl: 10 },
    { size: 10, ttl: 0 },
    { size: -1, ttl: 10 },
    { size: 1.5, ttl: 10 },
    { size: '10', ttl: 10 },
    { size: 10, ttl: '60' },
    { size: 10, ttl: 60, extra: 1 },
  ];

  void test('a rule with a bad history shape is refused: one line naming WS_CHANNELS_FILE, the file and the rule', (t) => {
    for (const history of BAD_HISTORY) {
      const path = channelsFile(t, { rules: [{ pattern: '**', subscribe: ['*'], publish: [] }, rule({ history })] });
      const error = configError(() => fromEnv({ WS_CHANNELS_FILE: path }));
      assertNames(error, 'WS_CHANNELS_FILE', 'channels');
      assert.ok(error.message.includes(path), error.message);
      assert.match(error.message, /rules\[1\]\.history/, `${JSON.stringify(history)}: ${error.message}`);
    }
  });

  void test('a rule whose presence is not a boolean is refused', (t) => {
    for (const presence of ['true', 1, 0, null, {}, []]) {
      const path = channelsFile(t, { rules: [rule({ presence })] });
      const error = configError(() => fromEnv({ WS_CHANNELS_FILE: path }));
      assertNames(error, 'WS_CHANNELS_FILE', 'channels');
      assert.match(error.message, /rules\[0\]\.presence/, `${JSON.stringify(presence)}: ${error.message}`);
    }
  });

  void test('rules in code are validated the same way', () => {
    const error = configError(() => fromCode({ channels: { rules: [rule({ history: { size: 10 } })] } }));
    assertNames(error, 'WS_CHANNELS_FILE', 'channels');
    assert.match(error.message, /rules\[0\]\.history/);
    assertNames(configError(() => fromCode({ channels: { rules: [rule({ presence: 'yes' })] } })), 'WS_CHANNELS_FILE', 'channels');
    assertNames(configError(() => fromCode({ channels: { rules: [rule({ histroy: { size: 1, ttl: 1 } })] } })), 'WS_CHANNELS_FILE', 'channels');
  });
});

void describe('which channels have which features', () => {
  const NO_DEFAULTS = { presence: false, history: { size: 0, ttl: 3600 } };

  void test('without a channels file the options apply to every channel', () => {
    const off = new ChannelFeatures(null, NO_DEFAULTS);
    assert.equal(off.presence('any.channel'), false);
    assert.equal(off.history('any.channel'), null, 'size 0: no history');

    const on = new ChannelFeatures(null, { presence: true, history: { size: 25, ttl: 90 } });
    for (const channel of ['a', 'chat.room', 'user.7.inbox', 'x.y.z.w']) {
      assert.equal(on.presence(channel), true, channel);
      assert.deepEqual(on.history(channel), { size: 25, ttl: 90 }, channel);
    }
    assert.deepEqual(on.of('a'), { presence: true, history: { size: 25, ttl: 90 } });
  });

  void test('with rules, the options are ignored: only the rules switch features on', () => {
    const features = new ChannelFeatures([{ pattern: '**', subscribe: ['*'], publish: ['*'] }], { presence: true, history: { size: 25, ttl: 90 } });
    assert.equal(features.presence('chat.room'), false);
    assert.equal(features.history('chat.room'), null);
  });

  void test('the first matching rule decides, even when a later one would switch features on; no match, none', () => {
    const rules: ChannelRule[] = [
      { pattern: 'chat.private', subscribe: ['admin'], publish: ['admin'] },
      { pattern: 'chat.*', subscribe: ['*'], publish: ['*'], presence: true, history: { size: 100, ttl: 3600 } },
      { pattern: 'news.**', subscribe: ['*'], publish: [], history: { size: 5, ttl: 60 } },
      { pattern: 'lobby', subscribe: ['*'], publish: ['*'], presence: true },
      { pattern: 'chat.*', subscribe: ['*'], publish: ['*'], presence: false },
    ];
    const features = new ChannelFeatures(rules, { presence: true, history: { size: 9, ttl: 9 } });
    assert.deepEqual(features.of('chat.private'), { presence: false, history: null });
    assert.deepEqual(features.of('chat.public'), { presence: true, history: { size: 100, ttl: 3600 } });
    assert.deepEqual(features.of('news'), { presence: false, history: { size: 5, ttl: 60 } }, '`**` matches no further segment too');
    assert.deepEqual(features.of('news.world.europe'), { presence: false, history: { size: 5, ttl: 60 } });
    assert.deepEqual(features.of('lobby'), { presence: true, history: null });
    assert.deepEqual(features.of('chat.public.deeper'), { presence: false, history: null }, '`*` is one segment');
    assert.deepEqual(features.of('unmatched'), { presence: false, history: null });
    // Asked again (from the cache): the same answer.
    assert.deepEqual(features.of('chat.public'), { presence: true, history: { size: 100, ttl: 3600 } });
    assert.deepEqual(features.of('chat.private'), { presence: false, history: null });
  });

  void test('`{user_id}` matches any one segment for features: they belong to the channel, not to whoever asks', () => {
    const rules: ChannelRule[] = [
      { pattern: 'user.{user_id}.inbox', subscribe: ['authenticated'], publish: ['authenticated'], presence: true, history: { size: 20, ttl: 600 } },
      { pattern: 'user.**', subscribe: ['admin'], publish: ['admin'] },
    ];
    const features = new ChannelFeatures(rules, NO_DEFAULTS);
    for (const channel of ['user.7.inbox', 'user.alice.inbox', 'user.x-1@y.inbox']) {
      assert.deepEqual(features.of(channel), { presence: true, history: { size: 20, ttl: 600 } }, channel);
    }
    assert.deepEqual(features.of('user.7.outbox'), { presence: false, history: null });
    assert.deepEqual(features.of('user.7'), { presence: false, history: null });
    assert.deepEqual(features.of('user.7.inbox.more'), { presence: false, history: null });
  });

  void test('the handler takes its features from the channels file', async (t) => {
    const path = channelsFile(t, { rules: [rule({ presence: true, history: { size: 3, ttl: 60 } }), { pattern: 'plain.*', subscribe: ['*'], publish: ['*'] }] });
    const handler = new WebSocketHandler({ channels: path, logger: pino({ level: 'silent' }), shutdownTimeout: 1 });
    await handler.start();
    t.after(() => handler.close());
    for (let index = 1; index <= 5; index++) await handler.publishMessage('chat.room', index);
    const page = await handler.history('chat.room');
    assert.equal(page.offset, 5);
    assert.deepEqual(
      page.messages.map((message) => message.offset),
      [3, 4, 5],
      'size 3 from the rule',
    );
    assert.deepEqual((await handler.presence('chat.room')).members, []);
    assert.equal((await handler.publishMessage('plain.room', 'x')).position, null);
  });
});
