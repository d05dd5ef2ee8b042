import type { Connection } from '../connection/connection.js';
import { channelMessageFrame } from '../protocol/outbound.js';
import { PreparedFrame } from '../transport/prepared-frame.js';
import type { ChannelMessage } from '../types.js';

/**
 * Delivers one channel message to this node's subscribers: serialized and framed once,
 * then the same bytes written to every socket. With `recipients`, only connections
 * authenticated as one of the listed user ids receive it. Returns the number of
 * connections it was addressed to.
 */
export function fanOut(subscribers: ReadonlySet<Connection> | undefined, message: ChannelMessage): number {
  if (subscribers === undefined || subscribers.size === 0) return 0;
  const recipients = message.recipients === null ? null : new Set(message.recipients);
  let frame: PreparedFrame | null = null;
  let addressed = 0;
  for (const connection of subscribers) {
    if (recipients !== null) {
      const key = connection.userKey;
      if (key === null || !recipients.has(key)) continue;
    }
    frame ??= new PreparedFrame(channelMessageFrame(message));
    connection.sendPrepared(frame);
    addressed++;
  }
  return addressed;
}
