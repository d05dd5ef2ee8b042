import type { Delivery } from '../broker/broker.js';
import type { Connection } from '../connection/connection.js';
import { PreparedFrame } from '../transport/prepared-frame.js';

/**
 * Delivers one channel message to this node's subscribers: its frame (serialized once,
 * by the node it was published on) is framed once, then the same bytes are written to
 * every socket. With `recipients`, only connections authenticated as one of the listed
 * user ids receive it; `exclude` receives nothing. A connection whose subscription is
 * replaying history keeps it back until the replay is done. Returns the number of
 * connections it was addressed to.
 */
export function fanOut(subscribers: ReadonlySet<Connection> | undefined, delivery: Delivery): number {
  if (subscribers === undefined || subscribers.size === 0) return 0;
  const recipients = delivery.recipients === null ? null : new Set(delivery.recipients);
  const { exclude } = delivery;
  let frame: PreparedFrame | null = null;
  let addressed = 0;
  for (const connection of subscribers) {
    if (recipients !== null) {
      const key = connection.userKey;
      if (key === null || !recipients.has(key)) continue;
    }
    if (exclude !== null && connection.id === exclude) continue;
    frame ??= new PreparedFrame(delivery.frame);
    addressed++;
    if (connection.holding !== null && connection.holdFrame(delivery.channel, delivery.position, frame)) continue;
    connection.sendPrepared(frame);
  }
  return addressed;
}
