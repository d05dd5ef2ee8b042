/**
 * A wire format on the way out: what a connection's protocol makes of a delivery. Every
 * delivery carries the native frame, serialized once by the node it was published on;
 * each wire renders it once per node (not per socket), and the fan-out writes those same
 * bytes to every connection that speaks it.
 */
import type { Delivery } from '../broker/broker.js';
import { CloseCode } from '../codes.js';
import { PreparedFrame } from '../transport/prepared-frame.js';

export interface Wire {
  /** This wire's place in a delivery's frames (0 native; one per protocol). */
  readonly slot: number;
  /** The frame for a delivery, or null when it is nothing for this wire's connections. Called once per delivery and node. */
  render(delivery: Delivery): PreparedFrame | null;
  /** Whether the heartbeat sends its JSON ping (the native protocol's) to these connections. */
  readonly heartbeat: boolean;
  /** Sent just before a connection is closed for silence, and the close code. */
  readonly timeout: { readonly frame: string; readonly code: number };
  /** The close code for a client that does not keep up with its messages. */
  readonly slowConsumer: number;
}

/** How many wires there are: a delivery's frames are cached in an array this long. */
export const WIRE_SLOTS = 2;

/**
 * A frame already in the Pusher protocol's format (a Pusher presence event), which goes
 * through the broker like any frame but is for Pusher connections only. Native frames
 * start with `{"action":` or `{"type":`, never with this.
 */
const PUSHER_ONLY = '{"event":';
const PUSHER_ONLY_BYTES = Buffer.from(PUSHER_ONLY);

export function isPusherOnly(frame: string | Buffer): boolean {
  return typeof frame === 'string' ? frame.startsWith(PUSHER_ONLY) : frame.length >= PUSHER_ONLY_BYTES.length && frame.compare(PUSHER_ONLY_BYTES, 0, PUSHER_ONLY_BYTES.length, 0, PUSHER_ONLY_BYTES.length) === 0;
}

/** The native protocol's wire: the delivery's frame as it is (Pusher-only frames are nothing here). */
export function nativeWire(timeout: Wire['timeout']): Wire {
  return { slot: 0, render: (delivery) => (isPusherOnly(delivery.frame) ? null : new PreparedFrame(delivery.frame)), heartbeat: true, timeout, slowConsumer: CloseCode.SLOW_CONSUMER };
}
