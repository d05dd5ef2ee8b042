/**
 * Subscribing and unsubscribing (SPEC §2, §4): the channel rules, the per-connection
 * channel limit and the application's subscribe hooks, in that order.
 */
import type { Connection } from '../connection/connection.js';
import { SwitchboardError } from '../errors.js';
import { ErrorCode } from '../codes.js';
import type { Joined, Resume } from '../hub/hub.js';
import type { ChannelName } from '../types.js';
import type { ActionScope } from './scope.js';

/**
 * Puts the connection in `channel`; subscribing twice is not an error and never
 * duplicates delivery. Resolves once subscribed cluster-wide with what the ack says (on
 * a channel with history, the position, and whether `resume` was honoured); the caller
 * acknowledges, then calls `release()` for the replay. Resolves null when the connection
 * closed meanwhile; throws a SwitchboardError when refused. `checkRules: false` leaves the
 * channel rules out (the Pusher protocol has its own: public, or signed).
 */
export async function subscribe(scope: ActionScope, connection: Connection, channel: ChannelName, resume: Resume | null = null, checkRules = true): Promise<Joined | null> {
  if (checkRules && !scope.permissions.can('subscribe', channel, connection)) {
    throw new SwitchboardError(ErrorCode.FORBIDDEN, `not allowed to subscribe to ${channel}`);
  }
  if (!connection.channels.has(channel)) {
    if (connection.channels.size >= scope.maxChannelsPerConnection) {
      throw new SwitchboardError(ErrorCode.TOO_MANY_CHANNELS, `a connection may subscribe to at most ${scope.maxChannelsPerConnection} channels`);
    }
    await scope.hooks.checkSubscribe(connection, channel);
    if (!connection.isOpen) return null;
  }
  const joined = await scope.hub.join(connection, channel, resume);
  return connection.isOpen ? joined : null;
}

/** Takes the connection out of `channel` (nothing happens when it was not in it). */
export function unsubscribe(scope: ActionScope, connection: Connection, channel: ChannelName): void {
  scope.hub.leave(connection, channel);
}

/**
 * After a token renewal that may carry fewer roles: leaves the channels the connection
 * may no longer read, and returns them so that the protocol can tell the client.
 */
export function leaveForbiddenChannels(scope: ActionScope, connection: Connection): ChannelName[] {
  const left: ChannelName[] = [];
  for (const channel of connection.channelList()) {
    if (scope.permissions.can('subscribe', channel, connection)) continue;
    scope.hub.leave(connection, channel);
    left.push(channel);
  }
  return left;
}
