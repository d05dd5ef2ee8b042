/**
 * The Pusher Channels protocol, version 7 (SPEC §10), beside the native one: pusher-js and
 * Laravel Echo connect at /app/{key}, subscribe to public and private channels (private ones
 * signed by the application's auth endpoint), send client events, and receive what anyone
 * publishes on the same channels, native clients included. It calls the same actions and
 * hub as the native protocol; only the frames differ.
 */
import type { Logger } from 'pino';
import type { RawData } from 'ws';
import { subscribe, unsubscribe } from '../actions/channel-membership.js';
import type { ActionScope } from '../actions/scope.js';
import { unixSeconds } from '../clock.js';
import { isValidChannelName } from '../channels/names.js';
import type { Connection } from '../connection/connection.js';
import { SwitchboardError } from '../errors.js';
import type { NodeStats } from '../metrics/stats.js';
import { connectionEstablished, PONG, PusherClose, PusherErrorCode, pusherError, subscriptionError, subscriptionSucceeded } from './pusher-frames.js';
import { PUSHER_WIRE } from './pusher-wire.js';
import type { PusherApp } from './pusher-options.js';
import { verifyChannelAuth } from './signatures.js';
import { WebhookSender } from './webhooks.js';
import { socketIdOf } from './socket-id.js';

/** The app this endpoint serves (pusher-options.ts). */
export type PusherSettings = PusherApp;

/** The app key of a request path `/app/{key}`, or null when the path is not one. */
export function appKeyOf(url: string): string | null {
  const path = url.split('?', 1)[0] ?? '';
  const match = /^\/app\/([^/]+)\/?$/.exec(path);
  return match === null ? null : decodeURIComponent(match[1] as string);
}

interface PusherFrame {
  event?: unknown;
  channel?: unknown;
  data?: unknown;
}

const isPrivate = (channel: string): boolean => channel.startsWith('private-') || channel.startsWith('presence-');

export class PusherProtocol {
  readonly wire = PUSHER_WIRE;
  /** Where client events are reported, with PUSHER_WEBHOOK_URL. */
  private readonly webhooks: WebhookSender | null;

  constructor(
    private readonly scope: ActionScope,
    private readonly settings: PusherSettings,
    private readonly stats: NodeStats,
    private readonly logger: Logger,
  ) {
    const { webhookUrl, key, secret } = settings;
    this.webhooks = webhookUrl === null ? null : new WebhookSender({ url: webhookUrl, key, secret, logger });
  }

  /** Sends what the webhooks still hold (within a few seconds), then stops them. */
  async close(): Promise<void> {
    await this.webhooks?.close();
  }

  opened(connection: Connection): void {
    const key = appKeyOf(connection.request.url);
    if (key !== this.settings.key) {
      connection.sendText(pusherError(PusherClose.UNKNOWN_APP, `App key ${key ?? ''} not in this cluster.`));
      connection.close(PusherClose.UNKNOWN_APP);
      return;
    }
    connection.sendText(connectionEstablished(this.socketId(connection), this.settings.activityTimeout));
    if (!this.scope.hooks.hasConnectHooks) return;
    connection.enqueue(async () => {
      try {
        await this.scope.hooks.connected(connection);
      } catch (error) {
        this.logger.warn({ err: error, connection: connection.id }, 'a connect hook failed for a Pusher connection');
      }
    });
  }

  frame(connection: Connection, data: RawData, isBinary: boolean): void {
    connection.lastSeen = Date.now();
    this.stats.framesReceived++;
    if (!connection.isOpen || isBinary) return;
    let frame: PusherFrame;
    try {
      frame = JSON.parse((data as Buffer).toString('utf8')) as PusherFrame;
    } catch {
      connection.sendText(pusherError(null, 'Invalid JSON'));
      return;
    }
    const event = typeof frame === 'object' && frame !== null ? frame.event : undefined;
    if (typeof event !== 'string') {
      connection.sendText(pusherError(null, 'A frame needs an event'));
      return;
    }
    if (event === 'pusher:pong') return;
    // Everything waits behind the connection's requests in flight, so that replies keep the
    // order of the frames (a client event right after its channel's subscribe finds it subscribed).
    if (event.startsWith('client-')) {
      if (this.admitClientEvent(connection)) connection.enqueue(() => this.clientEvent(connection, event, frame));
      return;
    }
    connection.enqueue(() => {
      if (event === 'pusher:ping') connection.sendText(PONG);
      else if (event === 'pusher:subscribe') return this.subscribe(connection, frame.data);
      else if (event === 'pusher:unsubscribe') this.unsubscribe(connection, frame.data);
      else connection.sendText(pusherError(null, `Unsupported event ${event}`));
    });
  }

  /** Client events count against `maxMessagesPerMinute`; one over it is refused with 4301. */
  private admitClientEvent(connection: Connection): boolean {
    if (connection.rateLimiter.take(Date.now()) === 0) return true;
    this.stats.rateLimited++;
    connection.enqueue(() => connection.sendText(pusherError(PusherErrorCode.CLIENT_EVENT_RATE_LIMIT, 'Client event rejected due to rate limit')));
    return false;
  }

  private socketId(connection: Connection): string {
    return socketIdOf(connection.id) ?? '0.0';
  }

  private async subscribe(connection: Connection, data: unknown): Promise<void> {
    const { channel, auth, channel_data: channelData } = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    if (typeof channel !== 'string' || !isValidChannelName(channel)) {
      connection.sendText(subscriptionError(typeof channel === 'string' ? channel : '', 'InvalidChannel', 'Invalid channel name', 400));
      return;
    }
    if (channel.startsWith('presence-')) {
      // Not yet: members with their user_info, cluster-wide, are still to come. Refused
      // plainly rather than half-served (pusher-js expects the member list in the reply).
      connection.sendText(subscriptionError(channel, 'UnsupportedFeature', 'presence channels are not supported by this server yet', 501));
      return;
    }
    if (isPrivate(channel)) {
      const signed = typeof auth === 'string' && verifyChannelAuth(this.settings.key, this.settings.secret, this.socketId(connection), channel, auth, typeof channelData === 'string' ? channelData : undefined);
      if (!signed) {
        connection.sendText(subscriptionError(channel, 'AuthError', `Invalid signature: expected HMAC SHA256 hex digest of ${this.socketId(connection)}:${channel}`, 401));
        return;
      }
    }
    try {
      // Pusher's own rules decide (public, or signed): the native channel rules are not asked.
      const joined = await subscribe(this.scope, connection, channel, null, false);
      if (joined === null) return;
      connection.sendText(subscriptionSucceeded(channel));
      joined.release();
    } catch (error) {
      const message = error instanceof SwitchboardError ? error.message : 'the subscription failed';
      if (!(error instanceof SwitchboardError)) this.logger.error({ err: error, connection: connection.id, channel }, 'Pusher subscribe failed');
      connection.sendText(subscriptionError(channel, 'Error', message, error instanceof SwitchboardError ? 403 : 500));
    }
  }

  private unsubscribe(connection: Connection, data: unknown): void {
    const channel = typeof data === 'object' && data !== null ? (data as { channel?: unknown }).channel : undefined;
    if (typeof channel === 'string') unsubscribe(this.scope, connection, channel);
  }

  /** A `client-*` event: opt-in, on a private or presence channel the sender is in, never echoed. */
  private clientEvent(connection: Connection, event: string, frame: PusherFrame): void {
    const { channel, data } = frame;
    if (!this.settings.clientEvents) {
      connection.sendText(pusherError(null, 'To send client events, you must enable this feature (PUSHER_CLIENT_EVENTS=true)'));
      return;
    }
    if (typeof channel !== 'string' || !isPrivate(channel) || !connection.channels.has(channel)) {
      connection.sendText(pusherError(null, 'Client events are only for private and presence channels the client is subscribed to'));
      return;
    }
    const message = { event, data };
    this.webhooks?.send({
      name: 'client_event',
      channel,
      event,
      data: typeof data === 'string' ? data : JSON.stringify(data ?? null),
      socket_id: this.socketId(connection),
      ...(connection.userId !== null && { user_id: String(connection.userId) }),
    });
    this.scope.hub
      .publish({ channel, message, sender: connection.id, userId: connection.userId, time: unixSeconds(), recipients: null }, false, connection.id)
      .catch((error: unknown) => this.logger.warn({ err: error, connection: connection.id, channel }, 'a client event could not be published'));
  }
}
