/**
 * The one seam for fan-out between nodes: publishing, and which of this node's
 * connections are in which channel. The hub publishes through a Broker, tells it about
 * memberships, and receives the messages for its local subscribers through LocalNode.
 * It never knows which broker runs: the in-memory one of a single process, the relay
 * between the workers of one machine, or Redis across machines (SPEC §6).
 *
 * What the HTTP API asks of the cluster is a separate interface (views/cluster-view.ts);
 * every broker Switchboard ships implements both (`BrokerWithView`).
 */
import type { ChannelName, ConnectionId, UserId } from '../types.js';
import type { ClusterView, LocalView } from '../views/cluster-view.js';

/**
 * A message ready for delivery: the outbound frame is serialized once, by the node the
 * message was published on, and the same bytes reach every subscriber on every node.
 */
export interface Delivery {
  readonly channel: ChannelName;
  /** When set, only connections authenticated as one of these user ids receive it. */
  readonly recipients: readonly string[] | null;
  /** The `{"action":"message",...}` frame as JSON text (or its UTF-8 bytes). */
  readonly frame: string | Buffer;
}

/** A connection as the cluster sees it. */
export interface Member {
  readonly connectionId: ConnectionId;
  /**
   * The user id the connection is authenticated as, of the token's type (42 and "42" are
   * shown apart), or null when anonymous. Recipients match it as `String(userId)`.
   */
  readonly userId: UserId | null;
}

/** What the node offers its broker: delivery to its own subscribers, and its own part of every view. */
export interface LocalNode extends LocalView {
  /** Delivers to this node's subscribers; returns how many connections it was addressed to. */
  deliver(delivery: Delivery): number;
}

export interface Broker {
  /**
   * The node's id in the cluster, when the broker has one of its own (see ids.ts); the
   * handler then uses it for its connection ids.
   */
  readonly nodeId?: string;
  /** Connects the broker to the node it serves. Called once, before anything else. */
  start(local: LocalNode): Promise<void>;
  /**
   * Publishes to every subscriber of the channel on every node, this one included.
   * Resolves with the number of connections it was addressed to, cluster-wide.
   */
  publish(delivery: Delivery): Promise<number>;
  /**
   * `member`, a connection of this node, subscribed to `channel` (or changed its user id).
   * Idempotent. Resolves once messages published anywhere on the channel reach this
   * node and the member counts cluster-wide.
   */
  join(channel: ChannelName, member: Member): Promise<void>;
  /** The connection left `channel`. */
  leave(channel: ChannelName, connectionId: ConnectionId): Promise<void>;
  /** Null while the broker can reach every node; otherwise why it cannot (for /readyz). */
  notReadyReason(): string | null;
  /** What carries messages between nodes; with 'redis', /metrics reports `switchboard_redis_up`. */
  readonly kind: 'memory' | 'workers' | 'redis';
  /** Leaves the cluster and releases every resource. */
  close(): Promise<void>;
}

/** A broker that also answers the HTTP API's questions about the cluster: what a handler takes. */
export type BrokerWithView = Broker & ClusterView;
