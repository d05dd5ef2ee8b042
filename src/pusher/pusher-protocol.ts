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
import type { ChannelName } from '../types.js';
import { SwitchboardError } from '../errors.js';
import type { NodeStats } from '../metrics/stats.js';
import { connectionEstablished, PONG, PusherClose, PusherErrorCode, pusherError, subscriptionError, subscriptionSucceeded } from './pusher-frames.js';
import { PUSHER_WIRE } from './pusher-wire.js';
import type { PusherApp } from './pusher-options.js';
import { announceGone, announceJoin, announceLeave, isPresence, presenceList, presenceMember, type PresenceMember } from './pusher-presence.js';
import { verifyChannelAuth } from './signatures.js';
import { WebhookSender } from './webhooks.js';
import { socketIdOf } from './socket-id.js';

/** The app this endpoint serves (pusher-options.ts). */
export type PusherSettings = PusherApp;

/** The app key of a request path `/app/{key}`, or null when the path is not one. */
export function appKeyOf(url: string): string | null {
  const path = url.split('?', 1)[0] ?? '';
  const match = /^\/app\/([^/]+)\/?$/.exec(path);
  if (match === null) return null;
  try {
    return decodeURIComponent(match[1] as string);
  } catch {
    // A malformed escape names no key: an unknown one, refused as such.
    return match[1] as string;
  }
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
    scope.hub.onMembersGone((channel, members, everywhere) => {
      if (!isPresence(channel)) return;
      announceGone(scope, channel, members, everywhere).catch((error: unknown) => logger.warn({ err: error, channel }, 'member_removed for a dead node could not be sent'));
    });
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
    if (isPrivate(channel)) {
      const signed = typeof auth === 'string' && verifyChannelAuth(this.settings.key, this.settings.secret, this.socketId(connection), channel, auth, typeof channelData === 'string' ? channelData : undefined);
      if (!signed) {
        connection.sendText(subscriptionError(channel, 'AuthError', `Invalid signature: expected HMAC SHA256 hex digest of ${this.socketId(connection)}:${channel}`, 401));
        return;
      }
    }
    const member = isPresence(channel) ? this.presenceMember(connection, channel, channelData) : null;
    if (member === undefined) return;
    const already = connection.channels.has(channel);
    try {
      // Pusher's own rules decide (public, or signed): the native channel rules are not asked.
      const joined = await subscribe(this.scope, connection, channel, null, false);
      if (joined === null) return;
      if (member === null) {
        connection.sendText(subscriptionSucceeded(channel));
        joined.release();
        return;
      }
      const members = await this.scope.members(channel);
      connection.sendText(subscriptionSucceeded(channel, presenceList(members)));
      joined.release();
      if (already) return;
      announceJoin(this.scope, connection, channel, members, member).catch((error: unknown) =>
        this.logger.warn({ err: error, connection: connection.id, channel }, 'a presence member_added could not be sent'),
      );
    } catch (error) {
      if (member !== null && !already) connection.memberInfo?.delete(channel);
      const message = error instanceof SwitchboardError ? error.message : 'the subscription failed';
      if (!(error instanceof SwitchboardError)) this.logger.error({ err: error, connection: connection.id, channel }, 'Pusher subscribe failed');
      connection.sendText(subscriptionError(channel, 'Error', message, error instanceof SwitchboardError ? 403 : 500));
    }
  }

  private unsubscribe(connection: Connection, data: unknown): void {
    const channel = typeof data === 'object' && data !== null ? (data as { channel?: unknown }).channel : undefined;
    if (typeof channel !== 'string') return;
    unsubscribe(this.scope, connection, channel);
    this.leftPresence(connection, channel);
  }

  /** The connection closed: the users it was the last connection of leave their presence channels. */
  closed(connection: Connection): void {
    for (const channel of [...(connection.memberInfo?.keys() ?? [])]) this.leftPresence(connection, channel);
  }

  /**
   * The member a presence subscription makes of the connection, from its signed channel_data
   * (the user id becomes the connection's); undefined (refused, and told why) when it makes none.
   */
  private presenceMember(connection: Connection, channel: ChannelName, channelData: unknown): PresenceMember | undefined {
    const member = presenceMember(channelData);
    if (member === null) {
      connection.sendText(subscriptionError(channel, 'AuthError', 'channel_data must be JSON with a user_id', 400));
      return undefined;
    }
    if (connection.userId !== null && String(connection.userId) !== String(member.userId)) {
      connection.sendText(subscriptionError(channel, 'AuthError', 'a connection is one user on every presence channel', 400));
      return undefined;
    }
    connection.userId = member.userId;
    (connection.memberInfo ??= new Map()).set(channel, member.info);
    return member;
  }

  private leftPresence(connection: Connection, channel: ChannelName): void {
    if (connection.memberInfo?.delete(channel) !== true || connection.userId === null) return;
    announceLeave(this.scope, connection, channel, connection.userId).catch((error: unknown) =>
      this.logger.warn({ err: error, connection: connection.id, channel }, 'a presence member_removed could not be sent'),
    );
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
