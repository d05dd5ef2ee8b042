/**
 * The Pusher protocol's frames (version 7), as pusher-js and Laravel Echo read them. Pusher
 * sends `data` as a JSON string in events, and as an object in its errors.
 */
import type { ChannelName } from '../types.js';

export function pusherEvent(event: string, data: unknown, channel?: ChannelName): string {
  return JSON.stringify(channel === undefined ? { event, data } : { event, channel, data });
}

export function connectionEstablished(socketId: string, activityTimeout: number): string {
  return pusherEvent('pusher:connection_established', JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeout }));
}

export function pusherError(code: number | null, message: string): string {
  return pusherEvent('pusher:error', { code, message });
}

export const PONG = pusherEvent('pusher:pong', '{}');

export function subscriptionSucceeded(channel: ChannelName, data: object = {}): string {
  return pusherEvent('pusher_internal:subscription_succeeded', JSON.stringify(data), channel);
}

export function subscriptionError(channel: ChannelName, type: string, error: string, status: number): string {
  return pusherEvent('pusher:subscription_error', { type, error, status }, channel);
}

/** Pusher's close codes (4000–4099: do not reconnect; 4100–4199: reconnect after a while; 4200–4299: reconnect now). */
export const PusherClose = {
  /** The app key in the URL is not this server's. */
  UNKNOWN_APP: 4001,
  /** Over capacity (a slow consumer): reconnect after a backoff. */
  OVER_CAPACITY: 4100,
  /** The user sign-in failed. */
  SIGNIN_FAILED: 4009,
  /** Closed for silence: no pong. */
  NO_PONG: 4201,
} as const;

export const PusherErrorCode = {
  /** A client event over the rate limit. */
  CLIENT_EVENT_RATE_LIMIT: 4301,
} as const;
