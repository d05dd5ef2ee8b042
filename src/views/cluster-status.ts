/**
 * The cluster as the HTTP API shows it: totals over every node's figures, channels most
 * subscribed first. Reads a ClusterView (the broker) and this node's own part.
 */
import { roundRate } from '../metrics/rate-meter.js';
import type { ChannelName } from '../types.js';
import type { ChannelCount, ClusterView, DisconnectResult, DisconnectTarget, LocalView, MemberInfo, NodeReport } from './cluster-view.js';

export interface ClusterStats {
  readonly nodes: NodeReport[];
  readonly connections: number;
  readonly channels: number;
  readonly messagesInPerSecond: number;
  readonly messagesOutPerSecond: number;
  /** Seconds since this node started. */
  readonly uptime: number;
}

export class ClusterStatus {
  constructor(
    private readonly view: ClusterView,
    private readonly local: LocalView,
  ) {}

  /** Every node's figures (this one's alone without a cluster), and the totals. */
  async stats(): Promise<ClusterStats> {
    const nodes = await this.view.nodes();
    // Without the cluster's view (Redis down) the channels are this node's own.
    const channels = await this.view.channels().catch(() => this.local.channels());
    const sum = (pick: (node: NodeReport) => number): number => roundRate(nodes.reduce((total, node) => total + pick(node), 0));
    return {
      nodes,
      connections: sum((node) => node.connections),
      channels: channels.length,
      messagesInPerSecond: sum((node) => node.messagesInPerSecond),
      messagesOutPerSecond: sum((node) => node.messagesOutPerSecond),
      uptime: this.local.report().uptime,
    };
  }

  /** Channels with subscribers on any node, most subscribed first. */
  async channels(): Promise<ChannelCount[]> {
    const channels = await this.view.channels();
    return [...channels].sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1));
  }

  /** The members of a channel on every node. */
  members(channel: ChannelName): Promise<MemberInfo[]> {
    return this.view.members(channel);
  }

  /** Closes the matching connections on every node with 1000; resolves with how many (and the nodes that did not answer). */
  disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    return this.view.disconnect(target);
  }
}

