/**
 * Pusher user sign-in (SPEC §10): `pusher:signin` with `user_data` signed over
 * `socket_id::user::user_data` makes the connection that user, and lets it subscribe to
 * `#server-to-user-{id}`, the channel the server SDKs' `sendToUser` publishes on. No other
 * connection can subscribe to it, native ones included (`#` is outside their grammar).
 */
import type { ChannelName } from '../types.js';

export const SERVER_TO_USER = '#server-to-user-';

/** A user id a server-to-user channel can be named after. */
const USER_ID = /^[A-Za-z0-9_\-=@.]{1,128}$/;

/** The user a `#server-to-user-{id}` channel is for; null for any other channel. */
export function serverToUserOf(channel: ChannelName): string | null {
  if (!channel.startsWith(SERVER_TO_USER)) return null;
  const id = channel.slice(SERVER_TO_USER.length);
  return USER_ID.test(id) ? id : null;
}

/** The id of signed `user_data` (`{"id": "...", ...}`); null when it names no usable one. */
export function signedInUserId(userData: string): string | null {
  let data: unknown;
  try {
    data = JSON.parse(userData);
  } catch {
    return null;
  }
  const id = typeof data === 'object' && data !== null ? (data as { id?: unknown }).id : undefined;
  return typeof id === 'string' && USER_ID.test(id) ? id : null;
}
