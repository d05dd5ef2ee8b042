import type { Delivery } from '../broker/broker.js';
import type { Connection } from '../connection/connection.js';
import { PreparedFrame } from '../transport/prepared-frame.js';

/**
 * Delivers one channel message to this node's subscribers: its frame (serialized once,
 * by the node it was published on) is framed once, then the same bytes are written to
 * every socket. With `recipients`, only connections authenticated as one of the listed
 * user ids receive it. Returns the number of connections it was addressed to.
 */
export function fanOut(subscribers: ReadonlySet<Connection> | undefined, delivery: Delivery): number {
  if (subscribers === undefined || subscribers.size === 0) return 0;
  const recipients = delivery.recipients === null ? null : new Set(delivery.recipients);
  let frame: PreparedFrame | null = null;
  let addressed = 0;
  for (const connection of subscribers) {
    if (recipients !== null) {
      const key = connection.userKey;
      if (key === null || !recipients.has(key)) continue;
    }
    frame ??= new PreparedFrame(delivery.frame);
    connection.sendPrepared(frame);
    addressed++;
  }
  return addressed;
}
