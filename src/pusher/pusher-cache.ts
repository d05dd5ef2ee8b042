/**
 * Pusher cache channels (SPEC §10): right after subscribing, the client gets the channel's
 * last event, or `pusher:cache_miss`. The last event is kept by the history store (a history
 * of one, ChannelFeatures), so it is the same on every node; the one sent is the event at the
 * position the join captured, and the live events held since then follow it, so nothing
 * comes twice and nothing is skipped.
 */
import type { ActionScope } from '../actions/scope.js';
import type { StreamPosition } from '../history/history.js';
import type { ChannelName } from '../types.js';
import { pusherFrameOf } from './pusher-wire.js';

/** The frame of the channel's last event at `position`, or the cache miss when there is none. */
export async function lastEventFrame(scope: ActionScope, channel: ChannelName, position: StreamPosition | null): Promise<string> {
  const miss = JSON.stringify({ event: 'pusher:cache_miss', channel });
  if (position === null || position.offset < 1) return miss;
  const page = await scope.hub.history(channel, { since: position.offset - 1, until: position.offset, limit: 1, seen: null });
  const last = page.messages[0];
  if (page.epoch !== position.epoch || last === undefined || last.offset !== position.offset) return miss;
  return pusherFrameOf(last.frame) ?? miss;
}
