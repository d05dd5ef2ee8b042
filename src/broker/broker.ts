/**
 * The one seam for fan-out between nodes. The connection layer publishes through a
 * Broker, tells it which of its connections are in which channel, and receives the
 * messages for its local subscribers through LocalDelivery. It never knows which broker
 * runs: the in-memory one of a single process, the relay between the workers of one
 * machine, or Redis across machines (SPEC §6).
 */
import type { ChannelName, ConnectionId } from '../types.js';

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

/** What a node's figures look like to the cluster (GET /api/stats). */
export interface NodeReport {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly connections: number;
  readonly channels: number;
  /** Messages published on the node per second, over the last few seconds. */
  readonly messagesInPerSecond: number;
  /** Deliveries to the node's subscribers per second, over the last few seconds. */
  readonly messagesOutPerSecond: number;
  /** Seconds since the node started. */
  readonly uptime: number;
  readonly ready: boolean;
}

/** Whom POST /api/disconnect closes. */
export type DisconnectTarget = { readonly userId: string } | { readonly connectionId: string };

export interface DisconnectResult {
  readonly disconnected: number;
  /** Nodes that did not answer in time: their matching connections may still be open. */
  readonly unanswered: readonly string[];
}

/** A channel member as the cluster sees it (GET /api/channels/NAME). */
export interface MemberInfo {
  readonly connectionId: ConnectionId;
  readonly userId: string | null;
  readonly node: string;
}

/** What the node offers its broker: delivery to its own subscribers, and its own figures. */
export interface LocalDelivery {
  /** Delivers to this node's subscribers; returns how many connections it was addressed to. */
  deliver(delivery: Delivery): number;
  /** This node's current figures. */
  report(): NodeReport;
  /** Closes this node's connections that match (1000); returns how many. */
  disconnect(target: DisconnectTarget): number;
}

/** A connection as the cluster sees it. */
export interface Member {
  readonly connectionId: ConnectionId;
  /** The user id the connection is authenticated as (as a string), or null when anonymous. */
  readonly userId: string | null;
}

export interface Broker {
  /**
   * The node's id in the cluster, when the broker has one of its own (8 base64url
   * characters); the handler then prefixes its connection ids with it.
   */
  readonly nodeId?: string;
  /** Connects the broker to the node it serves. Called once, before anything else. */
  start(local: LocalDelivery): Promise<void>;
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
  // Cluster-wide views for the HTTP API. A broker without them (one process) leaves the
  // handler to answer from its own state.
  /** Every live node's latest figures, this one's included. */
  nodes?(): Promise<NodeReport[]>;
  /** Channels with subscribers anywhere, with their cluster-wide counts. */
  channels?(): Promise<Array<{ channel: ChannelName; subscribers: number }>>;
  /** The members of one channel on every node. */
  members?(channel: ChannelName): Promise<MemberInfo[]>;
  /** Closes the matching connections on every node; resolves with how many, and the nodes that did not answer. */
  disconnect?(target: DisconnectTarget): Promise<DisconnectResult>;
  /** Leaves the cluster and releases every resource. */
  close(): Promise<void>;
}
