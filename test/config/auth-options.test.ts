import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { ChannelRule } from '../../src/channels/rules.js';
import { layerFromEnv, layerFromOptions } from '../../src/config/fields.js';
import { type SwitchboardOptions } from '../../src/config/options.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import type { ConfigError } from '../../src/errors.js';
import { configError } from '../helpers/config.js';

function fromEnv(env: Record<string, string>): SwitchboardOptions {
  return resolveOptions(layerFromEnv(env));
}

function fromCode(options: Record<string, unknown>): SwitchboardOptions {
  return resolveOptions(layerFromOptions(options));
}


/** Asserts SPEC §1's shape of a config error: one line, starting with `prefix`, saying more than that. */
function assertOneLine(error: ConfigError, prefix: string): void {
  assert.ok(!/[\r\n]/.test(error.message), `message should be one line: ${JSON.stringify(error.message)}`);
  assert.ok(error.message.startsWith(prefix), `message should start with '${prefix}': ${error.message}`);
  assert.ok(error.message.length > prefix.length + 3, `message should say what is wrong: ${error.message}`);
}

/** A fresh directory under the OS temp dir, removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-auth-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeFile(dir: string, name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** An Ed25519 public key as a PEM file in `dir`. */
function publicKeyFile(dir: string): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  return writeFile(dir, 'jwt.pub.pem', publicKey.export({ type: 'spki', format: 'pem' }) as string);
}

const RULES: ChannelRule[] = [
  { pattern: 'chat.*', subscribe: ['*'], publish: ['user'] },
  { pattern: 'admin.**', subscribe: ['admin'], publish: ['admin'], presence: true, history: { size: 10, ttl: 60 } },
  { pattern: '**', subscribe: ['authenticated'], publish: [] },
];

const CHANNELS_PREFIX = 'WS_CHANNELS_FILE (channels): ';

void describe('WS_ALLOW_ANONYMOUS', () => {
  void test('defaults to true', () => {
    assert.equal(fromEnv({}).allowAnonymous, true);
  });

  void test('reads true and false words from the environment', () => {
    assert.equal(fromEnv({ WS_ALLOW_ANONYMOUS: 'true' }).allowAnonymous, true);
    assert.equal(fromEnv({ WS_ALLOW_ANONYMOUS: 'false', TOKEN_SECRET: 's3cret' }).allowAnonymous, false);
    assert.equal(fromEnv({ WS_ALLOW_ANONYMOUS: '0', TOKEN_SECRET: 's3cret' }).allowAnonymous, false);
  });

  void test('takes a boolean in code', () => {
    assert.equal(fromCode({ allowAnonymous: false, auth: { secret: 's3cret' } }).allowAnonymous, false);
  });

  void test('a value that is not a boolean is a ConfigError naming WS_ALLOW_ANONYMOUS', () => {
    assertOneLine(
      configError(() => fromEnv({ WS_ALLOW_ANONYMOUS: 'maybe' })),
      'WS_ALLOW_ANONYMOUS (allowAnonymous): ',
    );
  });

  void test('false without TOKEN_SECRET or JWT_PUBLIC_KEY is a ConfigError naming WS_ALLOW_ANONYMOUS', () => {
    assertOneLine(configError(() => fromEnv({ WS_ALLOW_ANONYMOUS: 'false' })), 'WS_ALLOW_ANONYMOUS (allowAnonymous): ');
    assertOneLine(configError(() => fromCode({ allowAnonymous: false })), 'WS_ALLOW_ANONYMOUS (allowAnonymous): ');
  });

  void test('false with only JWT_PUBLIC_KEY is accepted', (t) => {
    const options = fromEnv({ WS_ALLOW_ANONYMOUS: 'false', JWT_PUBLIC_KEY: publicKeyFile(tempDir(t)) });
    assert.equal(options.allowAnonymous, false);
  });
});

void describe('WS_CHANNELS_FILE', () => {
  void test('defaults to null (no rules)', () => {
    assert.equal(fromEnv({}).channels, null);
  });

  void test('reads the rules from a JSON file into { source, rules }', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: RULES }, null, 2));
    assert.deepEqual(fromEnv({ WS_CHANNELS_FILE: file }).channels, { source: file, rules: RULES });
  });

  void test('keeps presence and history of rules read from the file', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: RULES }));
    const admin = fromEnv({ WS_CHANNELS_FILE: file }).channels?.rules[1];
    assert.equal(admin?.presence, true);
    assert.deepEqual(admin?.history, { size: 10, ttl: 60 });
  });

  void test('an empty WS_CHANNELS_FILE means no rules', () => {
    assert.equal(fromEnv({ WS_CHANNELS_FILE: '' }).channels, null);
  });

  void test('a missing file is a one-line ConfigError naming WS_CHANNELS_FILE and the file', (t) => {
    const file = join(tempDir(t), 'missing.json');
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: file }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes(file), error.message);
  });

  void test('a directory is a one-line ConfigError naming WS_CHANNELS_FILE and the path', (t) => {
    const dir = join(tempDir(t), 'channels.d');
    mkdirSync(dir);
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: dir }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes(dir), error.message);
  });

  void test('invalid JSON is a one-line ConfigError naming WS_CHANNELS_FILE and the file', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', '{ "rules": [ ');
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: file }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes(file), error.message);
  });

  void test('invalid JSON in a file written over several lines (a trailing comma) still gives a one-line ConfigError', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', '{\n  "rules": [\n    { "pattern": "**", "subscribe": ["*"], "publish": [] },\n  ]\n}\n');
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: file }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes(file), error.message);
  });

  void test('an invalid rule is a one-line ConfigError naming WS_CHANNELS_FILE, the file and the rule position', (t) => {
    const rules = [RULES[0], { pattern: 'a.**.b', subscribe: ['*'], publish: [] }];
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules }, null, 2));
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: file }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes(file), error.message);
    assert.ok(error.message.includes('rules[1]'), error.message);
  });

  void test('an invalid rule whose pattern holds a line break still gives a one-line ConfigError', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: [{ pattern: 'chat\nroom', subscribe: ['*'], publish: [] }] }));
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: file }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes('rules[0]'), error.message);
  });

  void test('a file that is valid JSON but not { rules } is a ConfigError naming WS_CHANNELS_FILE and the file', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify(RULES));
    const error = configError(() => fromEnv({ WS_CHANNELS_FILE: file }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes(file), error.message);
  });

  void test('channels in code as { rules } resolve to source "(options in code)" and those rules', () => {
    assert.deepEqual(fromCode({ channels: { rules: RULES } }).channels, { source: '(options in code)', rules: RULES });
  });

  void test('channels in code as a path read that file', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: RULES }));
    assert.deepEqual(fromCode({ channels: file }).channels, { source: file, rules: RULES });
  });

  void test('channels in code with an invalid rule is a one-line ConfigError naming WS_CHANNELS_FILE and the rule position', () => {
    const error = configError(() => fromCode({ channels: { rules: [RULES[0], RULES[1], { pattern: 'x', subscribe: 'admin', publish: [] }] } }));
    assertOneLine(error, CHANNELS_PREFIX);
    assert.ok(error.message.includes('rules[2]'), error.message);
  });

  void test('channels: null in code means no rules', () => {
    assert.equal(fromCode({ channels: null }).channels, null);
  });

  void test('channels in code win over WS_CHANNELS_FILE in the environment', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: [RULES[2]] }));
    const options = resolveOptions(layerFromEnv({ WS_CHANNELS_FILE: file }), layerFromOptions({ channels: { rules: RULES } }));
    assert.deepEqual(options.channels?.rules, RULES);
  });

  void test('resolved channels passed back in code keep their source and rules', (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: RULES }));
    const resolved = fromEnv({ WS_CHANNELS_FILE: file }).channels;
    assert.deepEqual(fromCode({ channels: resolved }).channels, { source: file, rules: RULES });
  });
});

void describe('TOKEN_SECRET and JWT_* fields', () => {
  void test('default to null', () => {
    assert.deepEqual(fromEnv({}).auth, { secret: null, publicKey: null, issuer: null, audience: null });
  });

  void test('TOKEN_SECRET, JWT_ISSUER and JWT_AUDIENCE are read from the environment', () => {
    const { auth } = fromEnv({ TOKEN_SECRET: 's3cret', JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'switchboard' });
    assert.deepEqual(auth, { secret: 's3cret', publicKey: null, issuer: 'https://auth.example.com', audience: 'switchboard' });
  });

  void test('empty TOKEN_SECRET, JWT_ISSUER and JWT_AUDIENCE mean unset', () => {
    assert.deepEqual(fromEnv({ TOKEN_SECRET: '', JWT_ISSUER: '', JWT_AUDIENCE: '' }).auth, { secret: null, publicKey: null, issuer: null, audience: null });
  });

  void test('JWT_PUBLIC_KEY naming a PEM public key file is kept as the path', (t) => {
    const file = publicKeyFile(tempDir(t));
    assert.equal(fromEnv({ JWT_PUBLIC_KEY: file }).auth.publicKey, file);
  });

  void test('JWT_PUBLIC_KEY naming a missing file is a one-line ConfigError naming JWT_PUBLIC_KEY and the file', (t) => {
    const file = join(tempDir(t), 'missing.pem');
    const error = configError(() => fromEnv({ JWT_PUBLIC_KEY: file }));
    assertOneLine(error, 'JWT_PUBLIC_KEY (auth.publicKey): ');
    assert.ok(error.message.includes(file), error.message);
  });

  void test('JWT_PUBLIC_KEY naming a file that is not a PEM public key is a one-line ConfigError naming JWT_PUBLIC_KEY', (t) => {
    const file = writeFile(tempDir(t), 'not-a-key.pem', 'this is not a key\n');
    const error = configError(() => fromEnv({ JWT_PUBLIC_KEY: file }));
    assertOneLine(error, 'JWT_PUBLIC_KEY (auth.publicKey): ');
    assert.ok(error.message.includes(file), error.message);
  });

  void test('JWT_PUBLIC_KEY naming a key that cannot verify signatures (X25519) is a ConfigError naming JWT_PUBLIC_KEY', (t) => {
    const { publicKey } = generateKeyPairSync('x25519');
    const file = writeFile(tempDir(t), 'x25519.pub.pem', publicKey.export({ type: 'spki', format: 'pem' }) as string);
    assertOneLine(
      configError(() => fromEnv({ JWT_PUBLIC_KEY: file })),
      'JWT_PUBLIC_KEY (auth.publicKey): ',
    );
  });

  void test('auth: { secret } in code sets the secret and leaves the other auth fields at their defaults', () => {
    assert.deepEqual(fromCode({ auth: { secret: 's3cret' } }).auth, { secret: 's3cret', publicKey: null, issuer: null, audience: null });
  });

  void test('auth in code sets issuer, audience and publicKey', (t) => {
    const file = publicKeyFile(tempDir(t));
    assert.deepEqual(fromCode({ auth: { publicKey: file, issuer: 'i', audience: 'a' } }).auth, { secret: null, publicKey: file, issuer: 'i', audience: 'a' });
  });

  void test('auth.secret in code wins over TOKEN_SECRET in the environment', () => {
    const options = resolveOptions(layerFromEnv({ TOKEN_SECRET: 'from-env' }), layerFromOptions({ auth: { secret: 'from-code' } }));
    assert.equal(options.auth.secret, 'from-code');
  });

  void test('an unknown auth.foo in code is a ConfigError naming auth.foo', () => {
    const error = configError(() => layerFromOptions({ auth: { secret: 's3cret', foo: 1 } }));
    assert.ok(error.message.includes('auth.foo'), error.message);
  });

  void test('auth that is not an object in code is a ConfigError naming auth', () => {
    const error = configError(() => layerFromOptions({ auth: 's3cret' }));
    assert.ok(error.message.startsWith('auth'), error.message);
    assert.ok(!error.message.includes('s3cret'), `the message should not echo what may be a secret: ${error.message}`);
  });

  void test('a TOKEN_SECRET that is not a string in code is a ConfigError naming TOKEN_SECRET', () => {
    assertOneLine(
      configError(() => fromCode({ auth: { secret: 12345 } })),
      'TOKEN_SECRET (auth.secret): ',
    );
  });
});

void describe('describeOptions for auth and channels', () => {
  function described(options: SwitchboardOptions, env: string): string {
    const entry = describeOptions(options).find((item) => item.env === env);
    assert.ok(entry !== undefined, `describeOptions should list ${env}`);
    return entry.value;
  }

  void test("shows TOKEN_SECRET as '(set, hidden)' and never its value", () => {
    const secret = 'very-secret-value-123';
    const options = fromEnv({ TOKEN_SECRET: secret });
    assert.equal(described(options, 'TOKEN_SECRET'), '(set, hidden)');
    assert.ok(!JSON.stringify(describeOptions(options)).includes(secret), 'the secret must not appear anywhere');
  });

  void test("shows an unset TOKEN_SECRET as '(unset)'", () => {
    assert.equal(described(fromEnv({}), 'TOKEN_SECRET'), '(unset)');
  });

  void test("shows channels read from a file as '<file> (N rules)'", (t) => {
    const file = writeFile(tempDir(t), 'channels.json', JSON.stringify({ rules: RULES }));
    assert.equal(described(fromEnv({ WS_CHANNELS_FILE: file }), 'WS_CHANNELS_FILE'), `${file} (3 rules)`);
  });

  void test("shows channels from code as '(options in code) (N rules)'", () => {
    assert.equal(described(fromCode({ channels: { rules: RULES.slice(0, 2) } }), 'WS_CHANNELS_FILE'), '(options in code) (2 rules)');
  });

  void test('shows JWT_PUBLIC_KEY, JWT_ISSUER, JWT_AUDIENCE and WS_ALLOW_ANONYMOUS as their values', (t) => {
    const file = publicKeyFile(tempDir(t));
    const options = fromEnv({ JWT_PUBLIC_KEY: file, JWT_ISSUER: 'issuer-a', JWT_AUDIENCE: 'audience-b', WS_ALLOW_ANONYMOUS: 'false' });
    assert.equal(described(options, 'JWT_PUBLIC_KEY'), file);
    assert.equal(described(options, 'JWT_ISSUER'), 'issuer-a');
    assert.equal(described(options, 'JWT_AUDIENCE'), 'audience-b');
    assert.equal(described(options, 'WS_ALLOW_ANONYMOUS'), 'false');
  });
});

void describe('secrets and public keys that could never work', () => {
  void test('a TOKEN_SECRET of the wrong type is refused without its value in the message', () => {
    const error = configError(() => fromCode({ auth: { secret: Buffer.from('s3cr3t-key') } }));
    assertOneLine(error, 'TOKEN_SECRET (auth.secret): ');
    assert.ok(!error.message.includes('115'), `the bytes must not be shown: ${error.message}`);
    assert.ok(!error.message.includes('s3cr3t'), error.message);
  });

  void test('TOKEN_SECRET is taken byte for byte, surrounding spaces included', () => {
    assert.equal(fromEnv({ TOKEN_SECRET: '  padded secret  ' }).auth.secret, '  padded secret  ');
  });

  void test('an all-whitespace TOKEN_SECRET is refused rather than silently turning authentication off', () => {
    assertOneLine(
      configError(() => fromEnv({ TOKEN_SECRET: '   ' })),
      'TOKEN_SECRET (auth.secret): ',
    );
  });

  const unusable: Array<[string, () => string]> = [
    ['an RSA key under 2048 bits', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string],
    ['an Ed448 key', () => generateKeyPairSync('ed448').publicKey.export({ type: 'spki', format: 'pem' }) as string],
    ['an EC key on secp256k1', () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string],
  ];
  for (const [what, pem] of unusable) {
    void test(`JWT_PUBLIC_KEY holding ${what} is a ConfigError at start-up`, (t) => {
      const file = writeFile(tempDir(t), 'key.pem', pem());
      assertOneLine(
        configError(() => fromEnv({ JWT_PUBLIC_KEY: file })),
        'JWT_PUBLIC_KEY (auth.publicKey): ',
      );
    });
  }
});
