/**
 * The open-file limit, checked before anything starts: the server holds one descriptor per
 * connection, and inherits the soak's limit. Too low a limit would otherwise show up minutes
 * later as EMFILE in the middle of the ramp (connection.ts reports that too, in one line).
 */
import { readFileSync } from 'node:fs';

/** Descriptors a process needs beyond its connections: files, pipes, the inspector, Redis. */
const SLACK = 256;

/** The soft limit on open files of this process, or null where /proc does not say. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((text) => text.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === undefined) return null;
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return null;
  }
}

/** One line saying why the limit is too low for this many connections, or null when it is enough. */
export function openFileProblem(connections: number, publishers: number): string | null {
  const limit = openFileLimit();
  const needed = connections + publishers + SLACK;
  if (limit === null || limit >= needed) return null;
  return `the open-file limit (ulimit -n) is ${limit}, and ${connections} connections need about ${needed} in the server: raise it with \`ulimit -n 65536\` (npm run soak does) or run fewer --connections`;
}
