/**
 * A `ws` WebSocket for the client that also watches, per connection, the offsets of the
 * kept messages it receives: after a subscribe ack they must go on from the client's own
 * `since` (recovered) or the ack's position, one by one. The client drops what it has seen,
 * so a duplicate on the wire never reaches the app; this is where it still shows, and where
 * a gap shows as the cause of a loss.
 */
import WebSocket from 'ws';
import type { WebSocketConstructor } from '../../client/src/index.js';

export interface WireWatcher {
  anomaly(channel: string, what: 'duplicate' | 'gap', detail: string): void;
}

interface Frame {
  action?: string;
  channel?: string;
  success?: boolean;
  recovered?: boolean;
  offset?: number;
  data?: { channel?: string; since?: number };
}

/** A WebSocket constructor whose every connection reports to `watcher`. */
export function watchedWebSocket(watcher: WireWatcher): WebSocketConstructor {
  return class WatchedWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      /** The last offset the connection is at, per channel (null: unknown until a position). */
      const last = new Map<string, number | null>();
      /** The `since` of the subscribe in flight, per channel. */
      const since = new Map<string, number | null>();
      const send = this.send.bind(this) as (data: string) => void;
      this.send = ((data: string) => {
        const frame = parse(data);
        if (frame?.action === 'subscribe' && typeof frame.data?.channel === 'string') since.set(frame.data.channel, frame.data.since ?? null);
        send(data);
      }) as typeof this.send;
      this.addEventListener('message', (event) => {
        // Text frames come as strings; the server sends no others.
        if (typeof event.data !== 'string') return;
        const frame = parse(event.data);
        const channel = frame?.channel;
        if (frame === null || channel === undefined) return;
        if (frame.action === 'subscribe' && frame.success === true) {
          last.set(channel, frame.recovered === true ? (since.get(channel) ?? null) : (frame.offset ?? null));
        } else if (frame.action === 'position') {
          last.set(channel, frame.offset ?? null);
        } else if (frame.action === 'message' && typeof frame.offset === 'number') {
          const previous = last.get(channel) ?? null;
          if (previous !== null && frame.offset <= previous) watcher.anomaly(channel, 'duplicate', `offset ${frame.offset} after ${previous}`);
          else if (previous !== null && frame.offset > previous + 1) watcher.anomaly(channel, 'gap', `offset ${frame.offset} after ${previous}`);
          if (previous === null || frame.offset > previous) last.set(channel, frame.offset);
        }
      });
    }
  };
}

function parse(text: string): Frame | null {
  try {
    const frame = JSON.parse(text) as unknown;
    return typeof frame === 'object' && frame !== null ? frame : null;
  } catch {
    return null;
  }
}
