/**
 * What the HTTP API asks of the cluster: every node's figures, the channels, one
 * channel's members, and closing connections wherever they are. Apart from the Broker
 * seam (fan-out and membership), so that a broker is not shaped by the API; every
 * broker Switchboard ships implements both, the in-memory one from its own node alone.
 */
import type { ChannelName, ConnectionId, UserId } from '../types.js';

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
  /** As the member's token carries it: a number stays a number (null when anonymous). */
  readonly userId: UserId | null;
  readonly node: string;
  /** The member's info as JSON text (Pusher presence `user_info`), when it gave one. */
  readonly info?: string | null;
}

/** A channel's members on every node, as the `presence` action answers them. */
export interface Presence {
  readonly members: ReadonlyArray<{ readonly connectionId: ConnectionId; readonly userId: UserId | null }>;
  /** Distinct user ids among the members (anonymous ones not counted). */
  readonly users: number;
  readonly connections: number;
}

/** A channel and its subscriber count (GET /api/channels). */
export interface ChannelCount {
  readonly channel: ChannelName;
  readonly subscribers: number;
}

/**
 * The cluster as the HTTP API sees it. A view that needs a cluster it cannot reach
 * rejects with ClusterUnavailableError (the API answers 503).
 */
export interface ClusterView {
  /** Every live node's latest figures, this one's included. */
  nodes(): Promise<NodeReport[]>;
  /** Channels with subscribers anywhere, with their cluster-wide counts (in no particular order). */
  channels(): Promise<ChannelCount[]>;
  /** The members of one channel on every node. */
  members(channel: ChannelName): Promise<MemberInfo[]>;
  /** Closes the matching connections on every node with 1000; resolves with how many, and the nodes that did not answer. */
  disconnect(target: DisconnectTarget): Promise<DisconnectResult>;
}

/** This node's own part of every view: what a broker asks its node. */
export interface LocalView {
  /** This node's current figures. */
  report(): NodeReport;
  /** This node's channels with their local subscriber counts. */
  channels(): ChannelCount[];
  /** This node's members of `channel`. */
  members(channel: ChannelName): MemberInfo[];
  /** Closes this node's connections that match (1000); returns how many. */
  disconnect(target: DisconnectTarget): number;
}
