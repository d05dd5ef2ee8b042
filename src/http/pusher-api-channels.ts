/**
 * The Pusher HTTP API's queries and its one command on users (pusher-api.ts), answered from
 * the cluster-wide views: `GET /channels`, `GET /channels/{name}`,
 * `GET /channels/{name}/users` and `POST /users/{id}/terminate_connections`.
 */
import { isValidChannelName } from '../channels/names.js';
import type { WebSocketHandler } from '../handler.js';
import { distinctUsers, userCounts, type ChannelAttributes } from './pusher-api-events.js';
import { decodeSegment, infoAttributes, PusherApiError } from './pusher-api-request.js';
import { isPresence } from '../pusher/pusher-presence.js';

/**
 * `GET /channels?filter_by_prefix=&info=`: the occupied channels, `{channels: {name: {}}}`;
 * `info=user_count` (only with a `presence-` prefix) adds each one's `user_count`,
 * `info=subscription_count` its `subscription_count`.
 */
export async function listChannels(handler: WebSocketHandler, query: URLSearchParams): Promise<object> {
  const prefix = query.get('filter_by_prefix') ?? '';
  const info = infoAttributes(query.get('info'));
  if (info.has('user_count') && !isPresence(prefix)) {
    throw new PusherApiError(400, 'info=user_count is only valid with filter_by_prefix=presence- (presence channels have users)');
  }
  const occupied = (await handler.clusterChannels()).filter(({ channel, subscribers }) => subscribers > 0 && channel.startsWith(prefix));
  const users = info.has('user_count') ? await userCounts(handler, occupied.map(({ channel }) => channel)) : null;
  const channels: Record<string, ChannelAttributes> = {};
  for (const { channel, subscribers } of occupied) {
    const attributes: ChannelAttributes = {};
    if (users !== null) attributes.user_count = users.get(channel) ?? 0;
    if (info.has('subscription_count')) attributes.subscription_count = subscribers;
    channels[channel] = attributes;
  }
  return { channels };
}

/**
 * `GET /channels/{name}?info=`: `{occupied}`, plus `subscription_count` and (presence
 * channels only, 400 otherwise) `user_count` when asked for.
 */
export async function channelState(handler: WebSocketHandler, segment: string, query: URLSearchParams): Promise<object> {
  const channel = channelIn(segment);
  const info = infoAttributes(query.get('info'));
  if (info.has('user_count') && !isPresence(channel)) throw new PusherApiError(400, `info=user_count is only valid for presence channels, not ${JSON.stringify(channel)}`);
  const members = await handler.channelMembers(channel);
  const state: { occupied: boolean; subscription_count?: number; user_count?: number } = { occupied: members.length > 0 };
  if (info.has('subscription_count')) state.subscription_count = members.length;
  if (info.has('user_count')) state.user_count = new Set(members.flatMap((member) => (member.userId === null ? [] : [String(member.userId)]))).size;
  return state;
}

/** `GET /channels/{name}/users`: a presence channel's distinct users, `{users: [{id}]}`; 400 for any other channel. */
export async function channelUsers(handler: WebSocketHandler, segment: string): Promise<object> {
  const channel = channelIn(segment);
  if (!isPresence(channel)) throw new PusherApiError(400, `Users are only listed for presence channels, not ${JSON.stringify(channel)}`);
  return { users: (await distinctUsers(handler, channel)).map((id) => ({ id })) };
}

/** `POST /users/{id}/terminate_connections`: closes every connection of that user, on every node → `{}`. */
export async function terminateConnections(handler: WebSocketHandler, segment: string): Promise<object> {
  const userId = decodeSegment(segment, 'user id');
  if (userId === '') throw new PusherApiError(400, 'The user id in the path is empty');
  await handler.disconnect({ userId });
  return {};
}

function channelIn(segment: string): string {
  const channel = decodeSegment(segment, 'channel name');
  if (!isValidChannelName(channel)) throw new PusherApiError(400, `Invalid channel name ${JSON.stringify(channel)}`);
  return channel;
}
