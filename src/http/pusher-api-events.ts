/**
 * Triggering events through the Pusher HTTP API (pusher-api.ts): `POST /apps/{id}/events`
 * and `POST /apps/{id}/batch_events`. An event `{name, data}` on a channel is published as
 * the native message `{event: name, data}` (data the string the SDK sent): Pusher clients
 * receive it as that event (pusher-wire.ts), native clients as that message. Every event of
 * a request is checked before any is published.
 */
import { isValidChannelName } from '../channels/names.js';
import { serverToUserOf } from '../pusher/pusher-user.js';
import type { WebSocketHandler } from '../handler.js';
import type { ConnectionId } from '../types.js';
import { infoAttributes, isObject, PusherApiError, type InfoAttribute } from './pusher-api-request.js';
import { isPresence } from '../pusher/pusher-presence.js';
import { connectionIdOf } from '../pusher/socket-id.js';

/** Pusher's limits: an event's data in bytes, channels per event, events per batch, an event name's length. */
export const MAX_DATA_BYTES = 10 * 1024;
export const MAX_CHANNELS_PER_EVENT = 100;
export const MAX_BATCH_EVENTS = 10;
export const MAX_EVENT_NAME_LENGTH = 200;

export interface ApiEvent {
  readonly name: string;
  readonly data: string;
  readonly channels: readonly string[];
  /** The connection `socket_id` names: it does not receive the event. */
  readonly exclude: ConnectionId | null;
  readonly info: ReadonlySet<InfoAttribute>;
}

/** The attributes Pusher answers for one channel: `{subscription_count?, user_count?}`. */
export type ChannelAttributes = { subscription_count?: number; user_count?: number };

/** `POST /events`: `{name, data, channel | channels, socket_id?, info?}` → `{}`, or `{channels: {name: attributes}}` with `info`. */
export async function triggerEvent(handler: WebSocketHandler, body: Record<string, unknown>): Promise<object> {
  const event = parseEvent(body, '', 'channel or channels');
  await publish(handler, event);
  if (event.info.size === 0) return {};
  return { channels: await channelAttributes(handler, event.channels, event.info) };
}

/** `POST /batch_events`: `{batch: [{channel, name, data, socket_id?, info?}, ...]}` → `{}`, or `{batch: [attributes, ...]}` with `info`. */
export async function triggerBatch(handler: WebSocketHandler, body: Record<string, unknown>): Promise<object> {
  const { batch } = body;
  if (!Array.isArray(batch)) throw new PusherApiError(400, 'batch must be an array of events');
  if (batch.length === 0) throw new PusherApiError(400, 'batch is empty');
  if (batch.length > MAX_BATCH_EVENTS) throw new PusherApiError(400, `Batch too large: ${batch.length} events, at most ${MAX_BATCH_EVENTS}`);
  const events = batch.map((item: unknown, index) => {
    if (!isObject(item)) throw new PusherApiError(400, `batch[${index}] must be a JSON object`);
    return parseEvent(item, `batch[${index}].`, 'channel');
  });
  // In order: a batch's events on one channel arrive as they were listed.
  for (const event of events) await publish(handler, event);
  if (events.every((event) => event.info.size === 0)) return {};
  const wanted = events.filter((event) => event.info.size > 0);
  const union = new Set(wanted.flatMap((event) => [...event.info]));
  const attributes = await channelAttributes(handler, [...new Set(wanted.flatMap((event) => event.channels))], union);
  return { batch: events.map((event) => pick(attributes[event.channels[0] as string] ?? {}, event.info)) };
}

/**
 * One event, checked as Pusher checks it; `where` prefixes the fields in messages
 * (`batch[2].`). A batch's event names one `channel`; a single event, `channel` or `channels`.
 */
function parseEvent(body: Record<string, unknown>, where: string, channelFields: 'channel' | 'channel or channels'): ApiEvent {
  const { name, data, channel, channels, socket_id: socketId, info } = body;
  if (typeof name !== 'string' || name === '') throw new PusherApiError(400, `${where}name is required: the event's name, a non-empty string`);
  if (name.length > MAX_EVENT_NAME_LENGTH) throw new PusherApiError(400, `${where}name is longer than ${MAX_EVENT_NAME_LENGTH} characters`);
  if (typeof data !== 'string') throw new PusherApiError(400, `${where}data is required: the event's data, a string`);
  const bytes = Buffer.byteLength(data, 'utf8');
  if (bytes > MAX_DATA_BYTES) throw new PusherApiError(413, `${where}data is ${bytes} bytes: the limit is ${MAX_DATA_BYTES} (10 KB)`);
  return {
    name,
    data,
    channels: channelsOf(where, channelFields === 'channel' ? { channel } : { channel, channels }),
    exclude: excluded(where, socketId),
    info: infoAttributes(info, `${where}info`),
  };
}

function channelsOf(where: string, fields: { channel: unknown; channels?: unknown }): string[] {
  const { channel, channels } = fields;
  if (channel !== undefined && channels !== undefined) throw new PusherApiError(400, `Give ${where}channel or ${where}channels, not both`);
  let names: unknown[];
  if (channels !== undefined) {
    if (!Array.isArray(channels) || channels.length === 0) throw new PusherApiError(400, `${where}channels must be a non-empty array of channel names`);
    if (channels.length > MAX_CHANNELS_PER_EVENT) throw new PusherApiError(400, `${where}channels names ${channels.length} channels: at most ${MAX_CHANNELS_PER_EVENT}`);
    names = channels;
  } else if (channel !== undefined) {
    names = [channel];
  } else {
    throw new PusherApiError(400, `${where}channel${'channels' in fields ? ' or channels' : ''} is required`);
  }
  for (const name of names) {
    if (!isValidChannelName(name) && (typeof name !== 'string' || serverToUserOf(name) === null)) {
      throw new PusherApiError(400, `Invalid channel name ${JSON.stringify(name)}: up to 128 of A-Z a-z 0-9 _ - : @ = in dot-separated segments`);
    }
  }
  // A channel named twice receives the event once.
  return [...new Set(names as string[])];
}

/** The connection a `socket_id` names (null when none is given); 400 for a malformed one. */
function excluded(where: string, socketId: unknown): ConnectionId | null {
  if (socketId === undefined || socketId === null) return null;
  const connectionId = typeof socketId === 'string' ? connectionIdOf(socketId) : null;
  if (connectionId === null) throw new PusherApiError(400, `Invalid ${where}socket_id ${JSON.stringify(socketId)}: expected the form 123.456`);
  return connectionId;
}

async function publish(handler: WebSocketHandler, event: ApiEvent): Promise<void> {
  const message = { event: event.name, data: event.data };
  const options = event.exclude === null ? {} : { exclude: event.exclude };
  await Promise.all(event.channels.map((channel) => handler.publishMessage(channel, message, options)));
}

/**
 * The requested attributes of each channel: `subscription_count` from the cluster's channel
 * counts (one query for all), `user_count` (presence channels only) from each one's members.
 */
export async function channelAttributes(handler: WebSocketHandler, channels: readonly string[], info: ReadonlySet<InfoAttribute>): Promise<Record<string, ChannelAttributes>> {
  const counts = info.has('subscription_count') ? new Map((await handler.clusterChannels()).map(({ channel, subscribers }) => [channel, subscribers])) : null;
  const users = info.has('user_count') ? await userCounts(handler, channels.filter(isPresence)) : null;
  const attributes: Record<string, ChannelAttributes> = {};
  for (const channel of channels) {
    const entry: ChannelAttributes = {};
    if (counts !== null) entry.subscription_count = counts.get(channel) ?? 0;
    const userCount = users?.get(channel);
    if (userCount !== undefined) entry.user_count = userCount;
    attributes[channel] = entry;
  }
  return attributes;
}

/** The distinct user ids among a channel's members, anonymous ones left out, as Pusher's strings. */
export async function distinctUsers(handler: WebSocketHandler, channel: string): Promise<string[]> {
  const members = await handler.channelMembers(channel);
  return [...new Set(members.flatMap((member) => (member.userId === null ? [] : [String(member.userId)])))];
}

export async function userCounts(handler: WebSocketHandler, channels: readonly string[]): Promise<Map<string, number>> {
  const counts = await Promise.all(channels.map(async (channel) => [channel, (await distinctUsers(handler, channel)).length] as const));
  return new Map(counts);
}

function pick(attributes: ChannelAttributes, info: ReadonlySet<InfoAttribute>): ChannelAttributes {
  const picked: ChannelAttributes = {};
  if (info.has('subscription_count') && attributes.subscription_count !== undefined) picked.subscription_count = attributes.subscription_count;
  if (info.has('user_count') && attributes.user_count !== undefined) picked.user_count = attributes.user_count;
  return picked;
}
