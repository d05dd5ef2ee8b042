/**
 * A wire format on the way out: what a connection's protocol makes of a delivery. Every
 * delivery carries the native frame, serialized once by the node it was published on;
 * each wire renders it once per node (not per socket), and the fan-out writes those same
 * bytes to every connection that speaks it.
 */
import type { Delivery } from '../broker/broker.js';
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
}

/** How many wires there are: a delivery's frames are cached in an array this long. */
export const WIRE_SLOTS = 2;

/** The native protocol's wire: the delivery's frame as it is. */
export function nativeWire(timeout: Wire['timeout']): Wire {
  return { slot: 0, render: (delivery) => new PreparedFrame(delivery.frame), heartbeat: true, timeout };
}
