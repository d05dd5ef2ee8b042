/**
 * The soak's JWTs: HS256 with the secret the server was started with, one user id per
 * connection, valid longer than the run (an expiry would close connections with 4001).
 */
import { SignJWT } from 'jose';

export function tokenSigner(secret: string, ttlSeconds: number): (user: string) => Promise<string> {
  const key = new TextEncoder().encode(secret);
  return (user) =>
    new SignJWT({ user_id: user, role: 'user' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(key);
}
