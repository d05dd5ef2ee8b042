/** Builders for every frame the server sends (SPEC §2, "Server frames"). */
import { unixSeconds } from '../clock.js';
import type { Member } from '../broker/broker.js';
import type { HistoryPage, StreamPosition } from '../history/history.js';
import type { ChannelMessage, ChannelName, ConnectionId, RequestId, UserId } from '../types.js';
import { ErrorText, type ErrorCode } from '../codes.js';

export interface WelcomeFrame {
  action: 'welcome';
  connection_id: ConnectionId;
  heartbeat_interval: number;
  authenticated: boolean;
  user_id: UserId | null;
  role: string | null;
}

export interface ErrorFrame {
  type: 'error';
  success: false;
  code: ErrorCode;
  error: string;
  action: string | null;
  id?: RequestId;
  retry_after?: number;
}

export function errorFrame(
  code: ErrorCode,
  error: string,
  action: string | null,
  id: RequestId | null,
  extra?: { retry_after?: number },
): ErrorFrame {
  const frame: ErrorFrame = { type: 'error', success: false, code, error, action };
  if (id !== null) frame.id = id;
  if (extra?.retry_after !== undefined) frame.retry_after = extra.retry_after;
  return frame;
}

/** Adds the request id to an ack when the request carried one. */
export function ack<T extends object>(body: T, id: RequestId | null): T & { success: true; id?: RequestId } {
  const frame = { success: true as const, ...body };
  return id === null ? frame : { ...frame, id };
}

export function pingFrame(nowMs: number = Date.now()): string {
  return JSON.stringify({ action: 'ping', time: unixSeconds(nowMs) });
}

export const TIMEOUT_FRAME = JSON.stringify({ action: 'timeout', message: ErrorText.TIMEOUT });

/**
 * The frame every subscriber of the channel receives. Built once per delivery on a
 * node, whatever the number of subscribers.
 */
export function channelMessageFrame(message: ChannelMessage): string {
  return JSON.stringify({
    action: 'message',
    channel: message.channel,
    message: message.message,
    sender: message.sender,
    user_id: message.userId,
    time: message.time,
  });
}

/**
 * A presence event: the connection id and user id only, never other claims of the token
 * (SPEC §4). Serialized once per event for every subscriber.
 */
export function presenceFrame(change: 'join' | 'leave', channel: ChannelName, member: Member): string {
  return JSON.stringify({ action: change, channel, connection_id: member.connectionId, user_id: member.userId });
}

/**
 * To the subscribers of a channel with history when the node could not deliver every
 * message before `position` (the history was lost, a new epoch began, or it was trimmed
 * past what the node missed): as a `recovered: false` ack, the client reloads its state.
 */
export function positionFrame(channel: ChannelName, position: StreamPosition): string {
  return JSON.stringify({ action: 'position', channel, epoch: position.epoch, offset: position.offset, recovered: false });
}

/**
 * The `history` action's answer. The stored messages are the frames subscribers received,
 * spliced in as they are: nothing is parsed or serialized again.
 */
export function historyReply(channel: ChannelName, page: HistoryPage, id: RequestId | null): string {
  const head = JSON.stringify(ack({ action: 'history', channel, epoch: page.epoch, offset: page.offset }, id)).slice(0, -1);
  return `${head},"messages":[${page.messages.map((message) => message.frame).join(',')}]}`;
}
