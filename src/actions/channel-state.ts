/**
 * Reading a channel's presence and history (SPEC §4): needs the right to subscribe to it
 * (not a subscription), and the feature switched on for it (NOT_ENABLED otherwise).
 */
import type { Connection } from '../connection/connection.js';
import { SwitchboardError } from '../errors.js';
import { ErrorCode } from '../codes.js';
import { MAX_HISTORY_LIMIT, type HistoryPage, type HistoryRequest } from '../history/history.js';
import type { ChannelName } from '../types.js';
import type { Presence } from '../views/cluster-view.js';
import type { ActionScope } from './scope.js';

function mayRead(scope: Pick<ActionScope, 'permissions'>, connection: Connection, channel: ChannelName): void {
  if (!scope.permissions.can('subscribe', channel, connection)) throw new SwitchboardError(ErrorCode.FORBIDDEN, `not allowed to subscribe to ${channel}`);
}

/** A client's `presence` action. */
export function presenceFor(scope: ActionScope, connection: Connection, channel: ChannelName): Promise<Presence> {
  mayRead(scope, connection, channel);
  return presenceOf(scope, channel);
}

/** The members of a channel with presence, cluster-wide (for the application, and a client that may read them). */
export async function presenceOf(scope: Pick<ActionScope, 'features' | 'members'>, channel: ChannelName): Promise<Presence> {
  if (!scope.features.presence(channel)) throw new SwitchboardError(ErrorCode.NOT_ENABLED, `presence is not enabled on ${channel}`);
  const members = (await scope.members(channel)).map(({ connectionId, userId }) => ({ connectionId, userId }));
  const users = new Set(members.filter((member) => member.userId !== null).map((member) => String(member.userId)));
  return { members, users: users.size, connections: members.length };
}

/** A client's `history` action. */
export function historyFor(scope: ActionScope, connection: Connection, channel: ChannelName, request: HistoryRequest): Promise<HistoryPage> {
  mayRead(scope, connection, channel);
  return historyOf(scope, channel, request);
}

/** A channel's history: the newest `limit` messages, or those after `since` (oldest first either way). */
export function historyOf(scope: Pick<ActionScope, 'features' | 'hub'>, channel: ChannelName, request: HistoryRequest): Promise<HistoryPage> {
  if (scope.features.history(channel) === null) return Promise.reject(new SwitchboardError(ErrorCode.NOT_ENABLED, `history is not enabled on ${channel}`));
  const limit = Math.min(request.limit ?? MAX_HISTORY_LIMIT, MAX_HISTORY_LIMIT);
  return scope.hub.history(channel, { since: request.since, until: null, limit, seen: null });
}
