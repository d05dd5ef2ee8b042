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
import { ConfigError, SwitchboardError } from '../errors.js';
import { CloseCode } from '../codes.js';
import type { NodeStats } from '../metrics/stats.js';
import { connectionEstablished, PONG, pusherEvent, PusherClose, PusherErrorCode, pusherError, subscriptionError, subscriptionSucceeded } from './pusher-frames.js';
import { PUSHER_WIRE } from './pusher-wire.js';
import type { PusherApp } from './pusher-options.js';
import { CACHE_CHANNEL } from '../channels/features.js';
import { lastEventFrame } from './pusher-cache.js';
import { ChannelOccupancy } from './pusher-occupancy.js';
import { announceGone, announceJoin, announceLeave, isPresence, presenceList, presenceMember, type PresenceMember } from './pusher-presence.js';
import { verifyChannelAuth, verifyUserAuth } from './signatures.js';
import { serverToUserOf, signedInUserId } from './pusher-user.js';
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

/** Pusher's limit on a client event's data. */
const MAX_CLIENT_EVENT_BYTES = 10 * 1024;

/**
 * A channel name both protocols can carry: Pusher's characters (no `,` or `;`, which the
 * native grammar lacks) and the native grammar's (no `:`, which Pusher's lacks).
 */
export function isPusherChannelName(channel: string): boolean {
  return isValidChannelName(channel) && !channel.includes(':');
}

export class PusherProtocol {
  readonly wire = PUSHER_WIRE;
  /** The user each signed-in connection signed in as. */
  private readonly signedIn = new WeakMap<Connection, string>();
  /** Where client events are reported, with PUSHER_WEBHOOK_URL. */
  private readonly webhooks: WebhookSender | null;

  constructor(
    private readonly scope: ActionScope,
    private readonly settings: PusherSettings,
    private readonly maxMessagesPerMinute: number,
    private readonly stats: NodeStats,
    private readonly logger: Logger,
  ) {
    // A socket_id is the connection id in digits: a node id that is not one of ours has none.
    if (socketIdOf(`${scope.hub.nodeId}-1`) === null) throw new ConfigError(`the Pusher endpoint needs node ids made by newNodeId(); '${scope.hub.nodeId}' is not one`);
    const { webhookUrl, key, secret } = settings;
    this.webhooks = webhookUrl === null ? null : new WebhookSender({ url: webhookUrl, key, secret, logger });
    const webhooks = this.webhooks;
    const occupancy = webhooks === null ? null : new ChannelOccupancy(scope, (event) => webhooks.send(event));
    const failed = (what: string) => (error: unknown) => logger.warn({ err: error }, `the ${what} webhook could not be decided`);
    if (occupancy !== null) {
      scope.hub.onMembership((change, channel, connection) => void (change === 'join' ? occupancy.joined(channel, connection) : occupancy.left(channel, connection)).catch(failed(`channel ${change}`)));
    }
    scope.hub.onMembersGone((channel, members, everywhere) => {
      occupancy?.gone(channel, members, everywhere).catch(failed('channel_vacated'));
      if (!isPresence(channel)) return;
      announceGone(scope, channel, members, everywhere).then(
        // Told to every node by this one: the webhook goes once. Told to each node on its own
        // (workers), none of them can say it alone, and none sends it.
        (users) => everywhere && users.forEach((user) => this.webhooks?.send({ name: 'member_removed', channel, user_id: user })),
        (error: unknown) => logger.warn({ err: error, channel }, 'member_removed for a dead node could not be sent'),
      );
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
      connection.close(PusherClose.UNKNOWN_APP, 'unknown app key');
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
    const now = Date.now();
    connection.lastSeen = now;
    this.stats.framesReceived++;
    this.stats.bytesReceived += Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    if (!connection.isOpen || isBinary) return;
    let frame: PusherFrame | null = null;
    try {
      frame = JSON.parse((data as Buffer).toString('utf8')) as PusherFrame;
    } catch {
      // Answered below, after the rate limit: a bad frame counts like any other.
    }
    const event = typeof frame === 'object' && frame !== null ? frame.event : undefined;
    // Answers to the server's pings are free; everything else counts against the rate limit.
    if (event === 'pusher:pong') return;
    if (!this.admit(connection, now, typeof event === 'string' && event.startsWith('client-'))) return;
    // Everything waits behind the connection's requests in flight, so that replies keep the
    // order of the frames (a client event right after its channel's subscribe finds it subscribed).
    if (frame === null || typeof event !== 'string') {
      const problem = frame === null ? 'Invalid JSON' : 'A frame needs an event';
      connection.enqueue(() => connection.sendText(pusherError(null, problem)));
      return;
    }
    const received = frame;
    if (event.startsWith('client-')) {
      connection.enqueue(() => this.clientEvent(connection, event, received));
      return;
    }
    connection.enqueue(() => {
      if (event === 'pusher:ping') connection.sendText(PONG);
      else if (event === 'pusher:subscribe') return this.subscribe(connection, received.data);
      else if (event === 'pusher:unsubscribe') this.unsubscribe(connection, received.data);
      else if (event === 'pusher:signin') this.signin(connection, received.data);
      else connection.sendText(pusherError(null, `Unsupported event ${event}`));
    });
  }

  /**
   * The rate limit (`maxMessagesPerMinute`, as for native clients): a frame over it is refused
   * (a client event with Pusher's 4301), and a client that keeps sending while refused is
   * closed as a native flooder is (4029: pusher-js does not come back after a 40xx close).
   */
  private admit(connection: Connection, now: number, clientEvent: boolean): boolean {
    if (connection.rateLimiter.take(now) === 0) return true;
    this.stats.rateLimited++;
    if (connection.rateLimiter.refusedSinceLastAccepted > this.maxMessagesPerMinute) {
      connection.close(CloseCode.FLOODING);
      return false;
    }
    const message = clientEvent ? 'Client event rejected due to rate limit' : 'Rate limit exceeded. Please slow down.';
    connection.enqueue(() => connection.sendText(pusherError(clientEvent ? PusherErrorCode.CLIENT_EVENT_RATE_LIMIT : null, message)));
    return false;
  }

  private socketId(connection: Connection): string {
    return socketIdOf(connection.id) as string;
  }

  private async subscribe(connection: Connection, data: unknown): Promise<void> {
    const { channel, auth, channel_data: channelData } = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    if (typeof channel === 'string' && serverToUserOf(channel) !== null) return this.subscribeToUser(connection, channel);
    if (typeof channel !== 'string' || !isPusherChannelName(channel)) {
      const problem = 'Invalid channel name: letters, digits and _ - = @ . (no empty part between dots), at most 128 characters';
      connection.sendText(subscriptionError(typeof channel === 'string' ? channel : '', 'InvalidChannel', problem, 400));
      return;
    }
    if (isPrivate(channel)) {
      // channel_data is signed on presence channels only: elsewhere it would let the signature of
      // `private-a:b` open `private-a` with channel_data "b".
      const signedData = isPresence(channel) && typeof channelData === 'string' ? channelData : undefined;
      const signed = typeof auth === 'string' && verifyChannelAuth(this.settings.key, this.settings.secret, this.socketId(connection), channel, auth, signedData);
      if (!signed) {
        connection.sendText(subscriptionError(channel, 'AuthError', `Invalid signature: expected HMAC SHA256 hex digest of ${this.socketId(connection)}:${channel}`, 401));
        return;
      }
    }
    const member = isPresence(channel) ? this.presenceMember(connection, channel, channelData) : null;
    if (member === undefined) return;
    const already = connection.channels.has(channel);
    try {
      // A signed channel is the application's to grant; a public one is open as far as the
      // channel rules open it to anyone (a Pusher client carries no token).
      const joined = await subscribe(this.scope, connection, channel, null, !isPrivate(channel));
      if (joined === null) return;
      const members = member === null ? null : await this.scope.members(channel);
      const cached = CACHE_CHANNEL.test(channel) && !already ? await lastEventFrame(this.scope, channel, joined.position) : null;
      connection.sendText(subscriptionSucceeded(channel, members === null ? {} : presenceList(members)));
      if (cached !== null) connection.sendText(cached);
      // Then the live events held since the join: the replay's order is the history's.
      joined.release();
      if (member === null || members === null || already) return;
      announceJoin(this.scope, connection, channel, members, member).then(
        (added) => added && this.webhooks?.send({ name: 'member_added', channel, user_id: String(member.userId) }),
        (error: unknown) => this.logger.warn({ err: error, connection: connection.id, channel }, 'a presence member_added could not be sent'),
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

  /** `pusher:signin`: a user signed by the application becomes the connection's; a bad signature closes it (4009). */
  private signin(connection: Connection, data: unknown): void {
    const { user_data: userData, auth } = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    const id = typeof userData === 'string' && verifyUserAuth(this.settings.key, this.settings.secret, this.socketId(connection), userData, auth) ? signedInUserId(userData) : null;
    if (id === null || (connection.userId !== null && String(connection.userId) !== id)) {
      connection.sendText(pusherError(PusherClose.SIGNIN_FAILED, 'Invalid user_data or signature'));
      connection.close(PusherClose.SIGNIN_FAILED, 'sign-in failed');
      return;
    }
    connection.userId = id;
    this.signedIn.set(connection, id);
    connection.sendText(pusherEvent('pusher:signin_success', { user_data: userData }));
  }

  /** `#server-to-user-{id}`: only for the connection signed in as that user. */
  private async subscribeToUser(connection: Connection, channel: ChannelName): Promise<void> {
    if (this.signedIn.get(connection) !== serverToUserOf(channel)) {
      connection.sendText(subscriptionError(channel, 'AuthError', 'sign in as this user first', 403));
      return;
    }
    const joined = await subscribe(this.scope, connection, channel, null, false);
    if (joined === null) return;
    connection.sendText(subscriptionSucceeded(channel));
    joined.release();
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
    const userId = connection.userId;
    announceLeave(this.scope, connection, channel, userId).then(
      (removed) => removed && this.webhooks?.send({ name: 'member_removed', channel, user_id: String(userId) }),
      (error: unknown) => this.logger.warn({ err: error, connection: connection.id, channel }, 'a presence member_removed could not be sent'),
    );
  }

  /** A `client-*` event: opt-in, on a private or presence channel the sender is in, never echoed. */
  private async clientEvent(connection: Connection, event: string, frame: PusherFrame): Promise<void> {
    const { channel, data } = frame;
    if (!this.settings.clientEvents) {
      connection.sendText(pusherError(null, 'To send client events, you must enable this feature (PUSHER_CLIENT_EVENTS=true)'));
      return;
    }
    if (typeof channel !== 'string' || !isPrivate(channel) || !connection.channels.has(channel)) {
      connection.sendText(pusherError(null, 'Client events are only for private and presence channels the client is subscribed to'));
      return;
    }
    if (channel.startsWith('private-encrypted-')) {
      // The server cannot encrypt for the others, and must not relay plaintext on an encrypted channel.
      connection.sendText(pusherError(null, 'Client events are not supported on encrypted channels'));
      return;
    }
    const text = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    if (Buffer.byteLength(text) > MAX_CLIENT_EVENT_BYTES) {
      connection.sendText(pusherError(null, `Client event data is limited to ${MAX_CLIENT_EVENT_BYTES} bytes`));
      return;
    }
    let message: unknown = { event, data: data ?? null };
    try {
      // The application's message hooks see client events as they see native messages.
      message = await this.scope.hooks.checkMessage(connection, { channel, message, recipients: null });
    } catch (error) {
      connection.sendText(pusherError(null, error instanceof SwitchboardError ? error.message : 'the client event was refused'));
      return;
    }
    this.webhooks?.send({
      name: 'client_event',
      channel,
      event,
      data: text,
      socket_id: this.socketId(connection),
      ...(connection.userId !== null && { user_id: String(connection.userId) }),
    });
    this.scope.hub
      .publish({ channel, message, sender: connection.id, userId: connection.userId, time: unixSeconds(), recipients: null }, false, connection.id)
      .catch((error: unknown) => this.logger.warn({ err: error, connection: connection.id, channel }, 'a client event could not be published'));
  }
}
