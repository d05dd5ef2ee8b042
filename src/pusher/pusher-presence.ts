/**
 * Pusher presence channels (`presence-*`, SPEC §10): a member is a user, not a connection.
 * The subscriber gets the members of every node with their `user_info`; the others hear
 * `member_added` when a user's first connection joins and `member_removed` when its last
 * one leaves, never the joiner itself. The member's info travels with its membership in the
 * broker (Member.info), so the list is the same on every node.
 */
import type { ActionScope } from '../actions/scope.js';
import type { Member } from '../broker/broker.js';
import type { Connection } from '../connection/connection.js';
import type { ChannelName, UserId } from '../types.js';
import type { MemberInfo } from '../views/cluster-view.js';
import { pusherEvent } from './pusher-frames.js';

export const isPresence = (channel: ChannelName): boolean => channel.startsWith('presence-');

/** What `channel_data` says of the member: its user id, and its info as JSON text. */
export interface PresenceMember {
  readonly userId: UserId;
  readonly info: string;
}

/** The member a presence subscription's `channel_data` describes; null when it describes none. */
export function presenceMember(channelData: unknown): PresenceMember | null {
  if (typeof channelData !== 'string') return null;
  let data: unknown;
  try {
    data = JSON.parse(channelData);
  } catch {
    return null;
  }
  if (typeof data !== 'object' || data === null) return null;
  const { user_id: userId, user_info: info } = data as { user_id?: unknown; user_info?: unknown };
  const valid = (typeof userId === 'string' && userId !== '' && userId.length <= 128) || (typeof userId === 'number' && Number.isSafeInteger(userId));
  return valid ? { userId, info: JSON.stringify(info ?? null) } : null;
}

/** The `presence` part of subscription_succeeded: every user once, with its info. */
export function presenceList(members: readonly MemberInfo[]): { presence: { ids: string[]; hash: Record<string, unknown>; count: number } } {
  const hash: Record<string, unknown> = {};
  for (const member of members) {
    if (member.userId === null) continue;
    const id = String(member.userId);
    if (id in hash) continue;
    hash[id] = member.info === undefined || member.info === null ? null : JSON.parse(member.info);
  }
  const ids = Object.keys(hash);
  return { presence: { ids, hash, count: ids.length } };
}

/** Whether the user has another connection in the channel than `connection`. */
function hasOtherConnection(members: readonly MemberInfo[], userId: UserId, connection: Connection): boolean {
  const key = String(userId);
  return members.some((member) => member.connectionId !== connection.id && member.userId !== null && String(member.userId) === key);
}

/** Announces the user's arrival, unless another of its connections was there already; true when it did. */
export async function announceJoin(scope: ActionScope, connection: Connection, channel: ChannelName, members: readonly MemberInfo[], member: PresenceMember): Promise<boolean> {
  if (hasOtherConnection(members, member.userId, connection)) return false;
  const data = JSON.stringify({ user_id: String(member.userId), user_info: JSON.parse(member.info) as unknown });
  await scope.hub.announce(channel, pusherEvent('pusher_internal:member_added', data, channel), connection.id);
  return true;
}

/**
 * Members that left with their node: each user none of whose connections remains is
 * announced removed, by this node to every node, or (`everywhere: false`, when each node is
 * told on its own) to this node's subscribers.
 */
export async function announceGone(scope: ActionScope, channel: ChannelName, gone: readonly Member[], everywhere: boolean): Promise<string[]> {
  const goneIds = new Set(gone.map((member) => member.connectionId));
  const remaining = (await scope.members(channel)).filter((member) => !goneIds.has(member.connectionId) && member.userId !== null);
  const users = new Set(gone.flatMap((member) => (member.userId === null ? [] : [String(member.userId)])));
  const removed: string[] = [];
  for (const user of users) {
    if (remaining.some((member) => String(member.userId) === user)) continue;
    await scope.hub.announce(channel, pusherEvent('pusher_internal:member_removed', JSON.stringify({ user_id: user }), channel), null, everywhere);
    removed.push(user);
  }
  return removed;
}

/** After the connection left: announces the user's departure when no other connection of it remains; true when it did. */
export async function announceLeave(scope: ActionScope, connection: Connection, channel: ChannelName, userId: UserId): Promise<boolean> {
  const members = await scope.members(channel);
  if (hasOtherConnection(members, userId, connection)) return false;
  await scope.hub.announce(channel, pusherEvent('pusher_internal:member_removed', JSON.stringify({ user_id: String(userId) }), channel), connection.id);
  return true;
}
