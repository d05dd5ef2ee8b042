/**
 * Where this node is in the history of each channel it has subscribers on (SPEC §4, §6):
 * the epoch and the last offset it delivered. Messages with a position are delivered in
 * offset order, each once. When one skips an offset (a message this node never heard of,
 * say while it was resubscribing after an outage), or after the broker reconnects, the
 * node reads what it missed from the history and delivers it, in order, before the live
 * messages held meanwhile. When the history cannot give it all back (a new epoch: the
 * store lost it; or trimmed past it), the node says so to its subscribers.
 */
import type { Logger } from 'pino';
import type { Delivery } from '../broker/broker.js';
import type { HistoryPage, HistoryQuery, StreamPosition } from '../history/history.js';
import type { ChannelName } from '../types.js';

/** Messages read from the history per round trip while catching up. */
const PAGE = 500;
/** Live messages held per channel while catching up; past this, they are dropped and read from the history instead. */
const MAX_HELD = 10_000;
/** After a failed read, the next try (doubling up to the most), so that held messages never wait for a next message that may not come. */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 10_000;

export interface PositionsDeps {
  /** Reads the channel's history (the broker). */
  read(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage>;
  /** Delivers to this node's subscribers. */
  fanOut(delivery: Delivery): number;
  /** This node's subscribers of `channel` may have missed messages up to `position`. */
  lost(channel: ChannelName, position: StreamPosition): void;
  readonly logger: Logger;
}

class Tracked {
  /** Null until the position is known (read once the node's subscription is in place). */
  epoch: string | null = null;
  offset = 0;
  /** The catch-up that runs (live messages are held meanwhile), or null. */
  running: Promise<void> | null = null;
  /** Another catch-up was asked for while one ran. */
  again = false;
  held: Delivery[] = [];
  /** The first read failed while the channel had subscribers: what was published meanwhile may never reach them. */
  unknownSinceJoin = false;
  retryMs = FIRST_RETRY_MS;
  retry: NodeJS.Timeout | null = null;
}

export class ChannelPositions {
  private readonly channels = new Map<ChannelName, Tracked>();

  constructor(private readonly deps: PositionsDeps) {}

  /**
   * Starts following `channel` (its first local subscriber joined); held until its
   * position is known. Call before the broker subscription is in place.
   */
  open(channel: ChannelName): void {
    if (!this.channels.has(channel)) this.channels.set(channel, new Tracked());
  }

  /** Resolves once the node's position in `channel` is known (or could not be read: the store is out of reach). */
  ready(channel: ChannelName): Promise<void> {
    const tracked = this.channels.get(channel);
    if (tracked === undefined || (tracked.epoch !== null && tracked.running === null)) return Promise.resolve();
    return tracked.running ?? this.catchUp(channel, tracked);
  }

  /** The last subscriber left: nothing is followed any more. */
  close(channel: ChannelName): void {
    const tracked = this.channels.get(channel);
    if (tracked?.retry != null) clearTimeout(tracked.retry);
    this.channels.delete(channel);
  }

  /** The epoch and last offset delivered here; null while unknown. */
  position(channel: ChannelName): StreamPosition | null {
    const tracked = this.channels.get(channel);
    return tracked?.epoch == null ? null : { epoch: tracked.epoch, offset: tracked.offset };
  }

  /** A live message with a position: delivered in order, held, or dropped as already delivered. */
  deliver(delivery: Delivery & { position: StreamPosition }): number {
    const tracked = this.channels.get(delivery.channel);
    if (tracked === undefined) return this.deps.fanOut(delivery);
    if (tracked.running !== null || tracked.epoch === null) {
      this.hold(tracked, delivery);
      // Unknown because the first read failed: try again now.
      if (tracked.running === null) void this.catchUp(delivery.channel, tracked);
      return 0;
    }
    const { epoch, offset } = delivery.position;
    if (epoch === tracked.epoch) {
      if (offset <= tracked.offset) return 0;
      if (offset === tracked.offset + 1) {
        tracked.offset = offset;
        return this.deps.fanOut(delivery);
      }
    }
    // A gap, or a new epoch: read what was missed, then go on with what is held.
    this.hold(tracked, delivery);
    void this.catchUp(delivery.channel, tracked);
    return 0;
  }

  /** The broker is back after an outage: every channel reads what it may have missed. */
  reconnected(): void {
    for (const [channel, tracked] of this.channels) void this.catchUp(channel, tracked);
  }

  /** Catches up until this node has delivered `offset` of `epoch` (or knows it never will). */
  async reach(channel: ChannelName, target: StreamPosition): Promise<void> {
    const tracked = this.channels.get(channel);
    if (tracked === undefined || tracked.epoch !== target.epoch || tracked.offset >= target.offset) return;
    await this.catchUp(channel, tracked);
  }

  private hold(tracked: Tracked, delivery: Delivery): void {
    // Past the bound the history has them: a catch-up reads up to the newest anyway.
    if (tracked.held.length >= MAX_HELD) tracked.held = [];
    tracked.held.push(delivery);
  }

  /**
   * Reads the history from the node's position to the newest message and delivers it,
   * then what was held. One at a time per channel; a failed read (the store is out of
   * reach) leaves the rest to the next message or reconnect.
   */
  private catchUp(channel: ChannelName, tracked: Tracked): Promise<void> {
    if (tracked.running !== null) {
      tracked.again = true;
      return tracked.running;
    }
    tracked.running = this.run(channel, tracked);
    return tracked.running;
  }

  private async run(channel: ChannelName, tracked: Tracked): Promise<void> {
    try {
      do {
        tracked.again = false;
        await this.readToHead(channel, tracked);
        if (this.channels.get(channel) !== tracked) return;
      } while (!this.drainHeld(tracked) || tracked.again);
      tracked.retryMs = FIRST_RETRY_MS;
    } catch (error) {
      this.deps.logger.debug({ err: error, channel }, 'reading the history failed; catching up later');
      if (tracked.epoch === null) tracked.unknownSinceJoin = true;
      // Messages held meanwhile are delivered by the next try, a live message, or a reconnect.
      if ((tracked.held.length > 0 || tracked.epoch === null) && tracked.retry === null && this.channels.get(channel) === tracked) {
        tracked.retry = setTimeout(() => {
          tracked.retry = null;
          if (this.channels.get(channel) === tracked) void this.catchUp(channel, tracked);
        }, tracked.retryMs);
        tracked.retry.unref();
        tracked.retryMs = Math.min(tracked.retryMs * 2, MAX_RETRY_MS);
      }
    } finally {
      // Cleared here, in the same turn as the last delivery: a message arriving next is not held.
      tracked.running = null;
    }
  }

  private async readToHead(channel: ChannelName, tracked: Tracked): Promise<void> {
    for (;;) {
      const known = tracked.epoch;
      const query: HistoryQuery =
        known === null ? { since: null, until: null, limit: 0, seen: null } : { since: tracked.offset, until: null, limit: PAGE, seen: { epoch: known, offset: tracked.offset } };
      const page = await this.deps.read(channel, query);
      if (this.channels.get(channel) !== tracked) return;
      if (known === null || tracked.epoch === null) {
        // The first position: what was published before it is not this node's to deliver,
        // but what arrived live meanwhile is (when an earlier read failed, from the first).
        tracked.epoch = page.epoch;
        tracked.offset = page.offset;
        const first = tracked.held.find((held) => held.position?.epoch === page.epoch)?.position ?? undefined;
        if (first !== undefined && first.offset <= page.offset) tracked.offset = first.offset - 1;
        if (tracked.unknownSinceJoin) {
          // Subscribers joined while the store was out of reach: what was published before
          // the first message held for them may not have reached them, and nothing tells which.
          tracked.unknownSinceJoin = false;
          this.deps.lost(channel, { epoch: page.epoch, offset: tracked.offset });
        }
        if (tracked.offset === page.offset) return;
        continue;
      }
      if (page.epoch !== tracked.epoch) {
        // The history was lost (Redis flushed or restarted without persistence): the new
        // epoch is delivered from its start, and the subscribers are told.
        tracked.epoch = page.epoch;
        tracked.offset = 0;
        this.deps.lost(channel, { epoch: page.epoch, offset: 0 });
        continue;
      }
      for (const message of page.messages) {
        if (message.offset <= tracked.offset) continue;
        if (message.offset > tracked.offset + 1) this.deps.lost(channel, { epoch: page.epoch, offset: message.offset - 1 });
        tracked.offset = message.offset;
        this.deps.fanOut({ channel, recipients: null, exclude: null, frame: message.frame, position: { epoch: page.epoch, offset: message.offset } });
      }
      if (page.messages.length === PAGE) continue;
      if (tracked.offset < page.offset) {
        // Trimmed or expired before this node could read them.
        tracked.offset = page.offset;
        this.deps.lost(channel, { epoch: page.epoch, offset: page.offset });
      }
      return;
    }
  }

  /**
   * After a read up to the newest message: delivers the held messages that follow on.
   * False when one skips an offset (published after the read: another read is needed).
   * One of another epoch is dropped: the read found the current one, and a message of a
   * newer epoch is read back from the history by the catch-up its successor brings.
   */
  private drainHeld(tracked: Tracked): boolean {
    const held = tracked.held;
    let index = 0;
    let complete = true;
    for (; index < held.length; index++) {
      const delivery = held[index] as Delivery;
      const position = delivery.position as StreamPosition;
      if (position.epoch !== tracked.epoch || position.offset <= tracked.offset) continue;
      if (position.offset !== tracked.offset + 1) {
        complete = false;
        break;
      }
      tracked.offset = position.offset;
      this.deps.fanOut(delivery);
    }
    tracked.held = held.slice(index);
    return complete;
  }
}
