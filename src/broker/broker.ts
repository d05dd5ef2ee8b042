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
import type { HistoryPage, HistoryQuery, HistorySettings, StreamPosition } from '../history/history.js';
import type { ChannelName, ConnectionId, UserId } from '../types.js';
import type { ClusterView, LocalView } from '../views/cluster-view.js';

/** Who receives a frame on a channel. */
interface Addressed {
  readonly channel: ChannelName;
  /** When set, only connections authenticated as one of these user ids receive it. */
  readonly recipients: readonly string[] | null;
  /** A connection that does not receive it: a presence event skips the member it is about. */
  readonly exclude: ConnectionId | null;
}

/**
 * A message ready for delivery: the outbound frame is serialized once, by the node the
 * message was published on, and the same bytes reach every subscriber on every node.
 */
export interface Delivery extends Addressed {
  /** The frame as JSON text (or its UTF-8 bytes); on a channel with history, with its offset in it. */
  readonly frame: string | Buffer;
  /** Its place in the channel's history; null for a message that is not kept (no history, ephemeral, presence events). */
  readonly position: StreamPosition | null;
}

/** A message on its way to the broker. */
export interface Publication extends Addressed {
  /** The frame as JSON text, without an offset: the store adds it (history.ts withOffset). */
  readonly frame: string;
  /** Kept in the channel's history when set: the store gives it an offset (and the frame carries it). */
  readonly history: HistorySettings | null;
  /**
   * Where the publishing node is in the channel's history, when it follows it. A store
   * found behind it in the same epoch lost messages (Redis restored from an older
   * snapshot) and starts a new epoch rather than give their offsets again.
   */
  readonly seen?: StreamPosition | null;
}

export interface PublishResult {
  /** Connections it was addressed to, cluster-wide. */
  readonly count: number;
  /** Where the history keeps it; null when it is not kept. */
  readonly position: StreamPosition | null;
}

/** A connection as the cluster sees it. */
export interface Member {
  readonly connectionId: ConnectionId;
  /**
   * The user id the connection is authenticated as, of the token's type (42 and "42" are
   * shown apart), or null when anonymous. Recipients match it as `String(userId)`.
   */
  readonly userId: UserId | null;
  /**
   * What the member tells the others about itself, as JSON text (a Pusher presence member's
   * `user_info`); null or absent for none. Kept with the membership on every broker.
   */
  readonly info?: string | null;
}

/** What the node offers its broker: delivery to its own subscribers, and its own part of every view. */
export interface LocalNode extends LocalView {
  /**
   * Delivers to this node's subscribers; returns how many connections it was addressed to.
   * Deliveries with a position come in offset order per channel, as the store assigned
   * them, but may skip offsets (the node reads what it missed from the history).
   */
  deliver(delivery: Delivery): number;
  /**
   * The broker is back in touch with the cluster after an outage: messages kept in the
   * history may have passed this node meanwhile.
   */
  reconnected(): void;
  /**
   * Members that left `channel` without their node (it died, or a worker exited). With
   * `everywhere`, this node tells every node; otherwise only its own subscribers (the
   * broker tells each node).
   */
  membersGone(channel: ChannelName, members: readonly Member[], everywhere: boolean): void;
}

export interface Broker {
  /**
   * The node's id in the cluster, when the broker has one of its own (see ids.ts); the
   * handler then uses it for its connection ids.
   */
  readonly nodeId?: string;
  /**
   * Publishes issued one after another reach every node in the order issued even while
   * the earlier ones are unanswered, so that a connection's publishes may be pipelined
   * (connection/request-queue.ts) rather than wait a round trip each. Absent: one at a time.
   */
  readonly keepsOrderInFlight?: boolean;
  /** Connects the broker to the node it serves. Called once, before anything else. */
  start(local: LocalNode): Promise<void>;
  /**
   * Publishes to every subscriber of the channel on every node, this one included.
   * Resolves with the number of connections it was addressed to, cluster-wide, and the
   * message's position when it is kept in the history. A message to be kept is never
   * given an offset that another node could give too: when the store is out of reach it
   * rejects (ClusterUnavailableError), and it is delivered nowhere.
   */
  publish(publication: Publication): Promise<PublishResult>;
  /**
   * Reads a channel's history (creating its epoch when it has none yet). Rejects with
   * ClusterUnavailableError when the store is out of reach.
   */
  history(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage>;
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
