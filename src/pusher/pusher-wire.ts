/**
 * The Pusher wire: a delivery's native frame, read once per node, becomes a Pusher event. A
 * native message `{event, data}` (what a Pusher client or the Pusher HTTP API publishes)
 * becomes that event; any other native message becomes the event `message` with the message
 * as its data. Presence and position frames of the native protocol are nothing here.
 */
import type { Delivery } from '../broker/broker.js';
import { isPusherOnly, type Wire } from '../connection/wire.js';
import { PreparedFrame } from '../transport/prepared-frame.js';
import { pusherError, PusherClose, pusherEvent } from './pusher-frames.js';

interface NativeMessage {
  action?: unknown;
  channel?: unknown;
  message?: unknown;
  user_id?: unknown;
}

/** A message that carries a Pusher event: `{event: string, data}`. */
export function isPusherEvent(message: unknown): message is { event: string; data: unknown } {
  return typeof message === 'object' && message !== null && typeof (message as { event?: unknown }).event === 'string' && 'data' in message;
}

/** The Pusher frame for a native frame; null for what is not a channel message. */
export function pusherFrameOf(nativeFrame: string | Buffer): string | null {
  let frame: NativeMessage;
  try {
    frame = JSON.parse(typeof nativeFrame === 'string' ? nativeFrame : nativeFrame.toString('utf8')) as NativeMessage;
  } catch {
    return null;
  }
  if (frame.action !== 'message' || typeof frame.channel !== 'string') return null;
  const { channel, message } = frame;
  // A native client must not speak for the server: Pusher's own events arrive as `message`.
  if (!isPusherEvent(message) || message.event.startsWith('pusher:') || message.event.startsWith('pusher_internal:')) return pusherEvent('message', JSON.stringify(message), channel);
  const data = typeof message.data === 'string' ? message.data : JSON.stringify(message.data);
  // Pusher adds the sender's user id to client events on presence channels.
  const userId = frame.user_id;
  if (message.event.startsWith('client-') && channel.startsWith('presence-') && (typeof userId === 'string' || typeof userId === 'number')) {
    return JSON.stringify({ event: message.event, channel, data, user_id: String(userId) });
  }
  return pusherEvent(message.event, data, channel);
}

export const PUSHER_WIRE: Wire = {
  slot: 1,
  render(delivery: Delivery): PreparedFrame | null {
    if (isPusherOnly(delivery.frame)) return new PreparedFrame(delivery.frame);
    const frame = pusherFrameOf(delivery.frame);
    return frame === null ? null : new PreparedFrame(frame);
  },
  // Pusher clients ping on their own (activity_timeout); the server's WebSocket pings still go.
  heartbeat: false,
  timeout: { frame: pusherError(PusherClose.NO_PONG, 'Pong reply not received: closing'), code: PusherClose.NO_PONG },
  // 41xx: pusher-js comes back after a backoff (a 40xx close would stop it for good).
  slowConsumer: PusherClose.OVER_CAPACITY,
};
