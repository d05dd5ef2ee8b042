/**
 * Each connection is an open file. When the process reaches its open-file limit, new
 * connections are accepted and closed at once by libuv, and nothing is logged: clients
 * just fail to connect. So the CLI reads the limit at start (Linux: /proc/self/limits)
 * and warns when it is below what the configuration asks for.
 */
import { readFileSync } from 'node:fs';

/** Files a node needs besides its connections: logs, Redis, the listening socket, Node's own. */
const HEADROOM = 64;
/** Without WS_MAX_CONNECTIONS, a limit below this deserves a word: a default 1024 holds about 1,000 clients. */
const COMFORTABLE = 10_000;

/** The soft limit on open files, or null where it cannot be read (not Linux). */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | null {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return null;
  }
  const match = /^Max open files\s+(\S+)/m.exec(text);
  if (match === null) return null;
  return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

/** The warning to log for this limit and WS_MAX_CONNECTIONS (0 = unlimited), or null when it is enough. */
export function openFileWarning(limit: number | null, maxConnections: number): string | null {
  if (limit === null || !Number.isFinite(limit)) return null;
  const wanted = maxConnections > 0 ? maxConnections + HEADROOM : COMFORTABLE;
  if (limit >= wanted) return null;
  return (
    `the open-file limit is ${limit}: this node can hold about ${Math.max(limit - HEADROOM, 0)} connections, and those beyond are closed as soon as they connect, ` +
    `with nothing logged; raise it (ulimit -n 65536, or LimitNOFILE=65536 in a systemd unit)${maxConnections > 0 ? ` to at least ${wanted} for WS_MAX_CONNECTIONS=${maxConnections}` : ''}`
  );
}
