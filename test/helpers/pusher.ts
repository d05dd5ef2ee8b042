/** pusher-js 8 (its Node build, WebSocket transport) as the Pusher tests use it. Not a test file. */
import type { TestContext } from 'node:test';
import PusherJs, { type Channel } from 'pusher-js';
import { channelAuth } from '../../src/pusher/signatures.js';

// pusher-js is CommonJS: its types name the class `default`, while Node hands the class itself over.
export const Pusher = ((PusherJs as unknown as { default?: unknown }).default ?? PusherJs) as typeof PusherJs.default;
export type Pusher = InstanceType<typeof Pusher>;

export const APP = { appId: 'app-1', key: 'app-key', secret: 'app-secret-of-some-length' };
export const WAIT_MS = 10_000;

/** A pusher-js client of the server, signing private channels itself (as an app's auth endpoint would). */
/** A presence member as the application's auth endpoint describes it. */
export interface PresenceUser {
  user_id: string | number;
  user_info?: unknown;
}

/** Where pusher-js (or Laravel Echo) finds the test server: its WebSocket transport on 127.0.0.1, no TLS, no stats. */
export function connectionOptions(server: { port: number }): { cluster: string; wsHost: string; wsPort: number; forceTLS: false; enabledTransports: ['ws']; disableStats: true } {
  return { cluster: 'local', wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws'], disableStats: true };
}

export function pusherClient(t: TestContext, server: { port: number }, key = APP.key, user?: PresenceUser): Pusher {
  const client = new Pusher(key, {
    ...connectionOptions(server),
    channelAuthorization: {
      endpoint: 'unused',
      transport: 'ajax',
      customHandler: ({ socketId, channelName }: { socketId: string; channelName: string }, callback: (error: Error | null, data: { auth: string; channel_data?: string }) => void) => {
        if (!channelName.startsWith('presence-') || user === undefined) return callback(null, { auth: channelAuth(APP.key, APP.secret, socketId, channelName) });
        const channelData = JSON.stringify(user);
        callback(null, { auth: channelAuth(APP.key, APP.secret, socketId, channelName, channelData), channel_data: channelData });
      },
    },
  });
  t.after(() => client.disconnect());
  return client;
}

export function within<T>(promise: Promise<T>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs))]);
}

export const connected = (client: Pusher): Promise<void> => within(new Promise<void>((resolve) => client.connection.bind('connected', () => resolve())), 'connected');
export const subscribed = (channel: Channel): Promise<void> => within(new Promise<void>((resolve) => channel.bind('pusher:subscription_succeeded', () => resolve())), `subscribed to ${channel.name}`);
export const next = <T>(channel: Channel, event: string): Promise<T> => within(new Promise<T>((resolve) => channel.bind(event, (data: T) => resolve(data))), `${event} on ${channel.name}`);


/**
 * Channel rules that let native clients use every channel, Pusher's signed `private-` and
 * `presence-` ones included (without rules, those are Pusher's alone): for the tests where
 * native and Pusher clients share such a channel.
 */
export const NATIVE_MAY_USE_ALL = { rules: [{ pattern: '**', subscribe: ['*'], publish: ['*'] }] };
