/** Builders for every frame the server sends (SPEC §2, "Server frames"). */
import { unixSeconds } from '../clock.js';
import type { ChannelMessage, ConnectionId, RequestId, UserId } from '../types.js';
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
