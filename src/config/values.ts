/** Values the configuration takes apart or compares: Redis and webhook URLs, browser origins. */

/** The parts of a `redis://` or `rediss://` URL, or null when it is not one. */
export function parseRedisUrl(text: string): { host: string; port: number; username: string | null; password: string | null; database: number; tls: boolean } | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') return null;
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  if (!/^\d{0,5}$/.test(dbText)) return null;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    username: url.username === '' ? null : decodeURIComponent(url.username),
    password: url.password === '' ? null : decodeURIComponent(url.password),
    database: dbText === '' ? 0 : Number(dbText),
    tls: url.protocol === 'rediss:',
  };
}

/** A URL as it may be shown: the password masked. */
export function maskedRedisUrl(text: string): string {
  return maskedUrl(text);
}

/** A URL as it may be shown: its password masked. */
export function maskedUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return '(set, not shown)';
  }
}

/** Origins compare case-insensitively and without trailing slashes. */
export function normalizeOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}
