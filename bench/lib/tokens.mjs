// HS256 tokens signed with the bench's SECRET, as a real issuer would make them: for the
// handshake scenario, the publisher and the subscribers of the features scenario.
import { SignJWT } from 'jose';
import { SECRET } from './settings.mjs';

const key = new TextEncoder().encode(SECRET);

/** A token for `user_id` with `role`, valid for an hour. */
export function benchToken(userId, role = 'user') {
  return new SignJWT({ user_id: userId, role }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);
}
