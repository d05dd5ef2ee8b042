/**
 * The Pusher endpoint's settings, out of the resolved options (SPEC §10): the endpoint is on
 * when PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET are all set (resolveOptions()
 * refuses some without the others).
 */
import type { PusherOptions } from '../config/options.js';

/** A configured Pusher app: credentials present. */
export interface PusherApp {
  appId: string;
  key: string;
  secret: string;
  clientEvents: boolean;
  /** Seconds; sent as `activity_timeout` in `pusher:connection_established`. */
  activityTimeout: number;
  webhookUrl: string | null;
}

/** The Pusher app of these options, or null when the endpoint is off. */
export function pusherApp(options: { pusher: PusherOptions }): PusherApp | null {
  const { appId, key, secret, clientEvents, activityTimeout, webhookUrl } = options.pusher;
  if (appId === null || key === null || secret === null) return null;
  return { appId, key, secret, clientEvents, activityTimeout, webhookUrl };
}
