/** Reads configuration from a `.env` file and the process environment (SPEC §1). */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError } from '../errors.js';
import { layerFromEnv, layerFromOptions, type ConfigLayer } from './fields.js';
import type { SwitchboardConfig, SwitchboardOptions } from './options.js';
import { resolveOptions } from './resolve.js';

export interface LoadConfigInput {
  /** The process environment. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** An explicit env file (`--env-file`); it must exist. Without it `.env` in `cwd` is read if present. */
  envFile?: string;
  /** @default process.cwd() */
  cwd?: string;
  /** CLI flags, as option names (`port`, `host`, `workers`, `daemonize`). */
  flags?: ConfigLayer;
  /** Options passed in code: the strongest layer. */
  options?: SwitchboardConfig;
}

/** Reads an env file into a plain object. A missing default `.env` is not an error. */
export function readEnvFile(path: string, required: boolean): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!required && code === 'ENOENT') return {};
    const what = required ? '--env-file' : '.env';
    throw new ConfigError(`${what}: cannot read '${path}': ${code === 'ENOENT' ? 'no such file' : String(code)}`);
  }
  return parseEnv(text) as Record<string, string>;
}

/** Resolves the effective options: defaults < .env < environment < flags < code. */
export function loadConfig(input: LoadConfigInput = {}): SwitchboardOptions {
  const cwd = input.cwd ?? process.cwd();
  const envFile = input.envFile !== undefined ? resolve(cwd, input.envFile) : resolve(cwd, '.env');
  const fileValues = readEnvFile(envFile, input.envFile !== undefined);
  return resolveOptions(
    layerFromEnv(fileValues),
    layerFromEnv(input.env ?? process.env),
    input.flags ?? {},
    layerFromOptions(input.options ?? {}),
  );
}
