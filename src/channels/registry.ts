import type { ChannelName } from '../types.js';

/** Anything that can subscribe: it keeps the set of its own channels. */
export interface Subscriber {
  readonly channels: Set<ChannelName>;
}

/**
 * This node's channel memberships, both ways: channel → subscribers for fan-out,
 * subscriber → channels for cleanup and limits. Subscribing twice is a no-op, so a
 * connection can never receive a message twice.
 */
export class ChannelRegistry<S extends Subscriber> {
  private readonly channels = new Map<ChannelName, Set<S>>();

  /** Returns true when this is the channel's first subscriber on this node. */
  subscribe(subscriber: S, channel: ChannelName): boolean {
    subscriber.channels.add(channel);
    const subscribers = this.channels.get(channel);
    if (subscribers === undefined) {
      this.channels.set(channel, new Set([subscriber]));
      return true;
    }
    subscribers.add(subscriber);
    return false;
  }

  /** Returns true when the channel has no subscriber left on this node. */
  unsubscribe(subscriber: S, channel: ChannelName): boolean {
    subscriber.channels.delete(channel);
    const subscribers = this.channels.get(channel);
    if (subscribers === undefined || !subscribers.delete(subscriber) || subscribers.size > 0) return false;
    this.channels.delete(channel);
    return true;
  }

  /** The channels with at least one subscriber on this node. */
  channelNames(): IterableIterator<ChannelName> {
    return this.channels.keys();
  }

  subscribers(channel: ChannelName): ReadonlySet<S> | undefined {
    return this.channels.get(channel);
  }

  /** Channels with at least one subscriber on this node. */
  get channelCount(): number {
    return this.channels.size;
  }
}
