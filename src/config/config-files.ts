/**
 * Files the configuration names (TLS certificate and key, the JWT public key): read once
 * per process, whoever needs them (validation, the HTTPS server, the token verifier).
 * A file changed on disk since (by size, mtime or inode) is read again.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';

const cache = new Map<string, { stamp: string; content: Buffer }>();

function stampOf(stats: Stats): string {
  return `${stats.ino}:${stats.size}:${stats.mtimeMs}`;
}

/** The file's bytes; throws Node's error (ENOENT, EACCES, …) or a plain error when it is not a regular file. */
export function readConfigFile(path: string): Buffer {
  const absolute = resolve(path);
  const stats = statSync(absolute);
  if (!stats.isFile()) throw Object.assign(new Error(`'${path}' is not a regular file`), { code: 'ENOTFILE' });
  const stamp = stampOf(stats);
  const known = cache.get(absolute);
  if (known !== undefined && known.stamp === stamp) return known.content;
  const content = readFileSync(absolute);
  cache.set(absolute, { stamp, content });
  return content;
}
