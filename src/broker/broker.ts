/**
 * The one seam for fan-out between nodes. The connection layer publishes through a
 * Broker and receives messages for its local subscribers through LocalDelivery; it
 * never knows which broker runs (in-memory today; the cluster relay and Redis plug in
 * here).
 */
import type { ChannelMessage, ChannelName } from '../types.js';

/** What a node does with a message that reached it: fan it out to its own subscribers. */
export interface LocalDelivery {
  /** Delivers to this node's subscribers; returns how many connections it was addressed to. */
  deliver(message: ChannelMessage): number;
}

export interface Broker {
  /** Connects the broker to the node it serves. Called once, before anything else. */
  start(local: LocalDelivery): Promise<void>;
  /**
   * Publishes to every subscriber of the channel on every node. Resolves with the
   * number of connections the message was addressed to, cluster-wide.
   */
  publish(message: ChannelMessage): Promise<number>;
  /**
   * This node has (or may have) local subscribers on `channel`. Idempotent; resolves
   * once messages published anywhere on the channel will reach this node.
   */
  addChannel(channel: ChannelName): Promise<void>;
  /** This node's last local subscriber of `channel` left. */
  removeChannel(channel: ChannelName): Promise<void>;
  /** Leaves the cluster and releases every resource. */
  close(): Promise<void>;
}
