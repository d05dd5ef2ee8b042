/**
 * When a JWT expires (ms since the epoch), read from its `exp` claim without checking it (the
 * server does that): null for a token without one, or one that is not a JWT.
 */
export function tokenExpiry(token: string): number | null {
  try {
    const payload = token.split('.')[1] ?? '';
    const { exp } = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}
