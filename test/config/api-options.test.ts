/** WS_API_KEY (SPEC §7): the bearer key of the HTTP API. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layerFromEnv } from '../../src/config/fields.js';
import { describeOptions, resolveOptions } from '../../src/config/resolve.js';
import { ConfigError } from '../../src/errors.js';

const fromEnv = (env: Record<string, string>) => resolveOptions(layerFromEnv(env));

test('WS_API_KEY is off by default and taken byte for byte when set', () => {
  assert.equal(resolveOptions().apiKey, null);
  assert.equal(fromEnv({ WS_API_KEY: 'k3y-with_symbols/+=' }).apiKey, 'k3y-with_symbols/+=');
});

test('a WS_API_KEY with a space is refused without showing it: it could never be sent in an Authorization header', () => {
  assert.throws(
    () => fromEnv({ WS_API_KEY: 'two words' }),
    (error: unknown) => error instanceof ConfigError && error.message.startsWith('WS_API_KEY (apiKey): must be printable ASCII without spaces') && !error.message.includes('two words'),
  );
});

test('a WS_API_KEY with non-ASCII characters is refused: headers arrive as latin1, so it could never match', () => {
  assert.throws(() => fromEnv({ WS_API_KEY: 'pässword' }), (error: unknown) => error instanceof ConfigError && !error.message.includes('pässword'));
});

test('check-config never prints the API key', () => {
  const rows = describeOptions(fromEnv({ WS_API_KEY: 'super-secret-key' }));
  assert.equal(rows.find(({ env }) => env === 'WS_API_KEY')?.value, '(set, hidden)');
  assert.ok(!JSON.stringify(rows).includes('super-secret-key'));
});
