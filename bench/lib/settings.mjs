// What every part of the benchmark agrees on: where it lives, the secret the servers verify
// tokens with, and the channel the fan-out scenarios publish on.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/ */
export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository (dist/cli/main.js is Switchboard's CLI). */
export const ROOT = join(BENCH_DIR, '..');
/** TOKEN_SECRET of every server; tokens.mjs signs HS256 tokens with it. */
export const SECRET = 'benchmark-secret-0123456789abcdef0123456789abcdef';
export const CHANNEL = 'bench';
