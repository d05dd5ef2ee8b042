import type { Delivery } from '../broker/broker.js';
import type { Connection } from '../connection/connection.js';
import type { PreparedFrame } from '../transport/prepared-frame.js';
import { WIRE_SLOTS } from '../connection/wire.js';

/**
 * Delivers one channel message to this node's subscribers: its frame (serialized once,
 * by the node it was published on) is rendered and framed once per wire format, then the
 * same bytes are written to every socket of that format. With `recipients`, only
 * connections authenticated as one of the listed user ids receive it; `exclude` receives nothing. A connection whose subscription is
 * replaying history keeps it back until the replay is done. Returns the number of
 * connections it was addressed to.
 */
export function fanOut(subscribers: ReadonlySet<Connection> | undefined, delivery: Delivery): number {
  if (subscribers === undefined || subscribers.size === 0) return 0;
  const recipients = delivery.recipients === null ? null : new Set(delivery.recipients);
  const { exclude } = delivery;
  // Each wire's frame, rendered the first time one of its connections is met.
  const frames = new Array<PreparedFrame | null | undefined>(WIRE_SLOTS);
  let addressed = 0;
  for (const connection of subscribers) {
    if (recipients !== null) {
      const key = connection.userKey;
      if (key === null || !recipients.has(key)) continue;
    }
    if (exclude !== null && connection.id === exclude) continue;
    const { wire } = connection;
    let frame = frames[wire.slot];
    if (frame === undefined) frame = frames[wire.slot] = wire.render(delivery);
    if (frame === null) continue;
    addressed++;
    if (connection.holding !== null && connection.holdFrame(delivery.channel, delivery.position, frame)) continue;
    connection.sendPrepared(frame);
  }
  return addressed;
}
