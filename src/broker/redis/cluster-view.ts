/**
 * The HTTP API's view of a Redis cluster: every live node's figures, the channels and
 * their members from Redis, and disconnects on every node. A view that needs Redis while
 * it is out of reach, or that Redis fails (a timeout, a closed connection, an error
 * reply), rejects with ClusterUnavailableError: the API answers 503.
 */
import { ClusterUnavailableError } from '../../errors.js';
import { nodeOfConnection } from '../../ids.js';
import type { ChannelName } from '../../types.js';
import type { ChannelCount, ClusterView, DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../../views/cluster-view.js';
import type { LocalNode } from '../broker.js';
import type { RedisConnections } from './connections.js';
import type { ControlChannel } from './control.js';
import { BATCH } from './membership.js';
import type { NodeLiveness } from './node-liveness.js';
import { decodeMember, parseNodeMemberEntry, type RedisKeys } from './redis-keys.js';
import type { SyncState } from './sync-state.js';

const CHANNELS_CACHE_MS = 1000;

export interface ViewSources {
  readonly connections: RedisConnections;
  readonly keys: RedisKeys;
  readonly nodeId: string;
  readonly liveness: NodeLiveness;
  readonly control: ControlChannel;
  readonly state: SyncState;
  /** This node, while it runs. */
  readonly local: () => LocalNode | null;
  /** A report older than this many ms means the node beats but cannot report: not ready. */
  readonly staleReportMs: number;
}

export class RedisClusterView implements ClusterView {
  /** The last answer of channels(), reused for a second: every open dashboard asks every 2 s. */
  private channelsCache: { at: number; value: Promise<ChannelCount[]> } | null = null;

  constructor(private readonly sources: ViewSources) {}

  async nodes(): Promise<NodeReport[]> {
    const own = this.localNode().report();
    if (!this.sources.state.synced) return [own];
    const others = (await this.needRedis(() => this.liveReports())).filter((report) => report.id !== this.sources.nodeId);
    return [own, ...others];
  }

  channels(): Promise<ChannelCount[]> {
    const now = Date.now();
    if (this.channelsCache !== null && now - this.channelsCache.at < CHANNELS_CACHE_MS) return this.channelsCache.value;
    const value = this.needRedis(() => this.scanChannels());
    this.channelsCache = { at: now, value };
    value.catch(() => {
      if (this.channelsCache?.value === value) this.channelsCache = null;
    });
    return value;
  }

  async members(channel: ChannelName): Promise<MemberInfo[]> {
    const { connections, keys } = this.sources;
    const members = await this.needRedis(() => connections.commands.hgetall(keys.members(channel)));
    return Object.entries(members).map(([connectionId, stored]) => {
      const { userId, info } = decodeMember(stored);
      return { connectionId, userId, node: nodeOfConnection(connectionId), ...(info !== null && { info }) };
    });
  }

  /**
   * Closes the matching connections here, and asks every other live node to close theirs;
   * each answers with its count. Waits for the answers of the nodes alive now, for a
   * while: a node that dies meanwhile has no connections left to close.
   */
  async disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    const { nodeId, control } = this.sources;
    const local = this.localNode().disconnect(target);
    if (!this.sources.state.synced) return { disconnected: local, unanswered: [] };
    // A connection id names its node: only that one is asked.
    const owner = 'connectionId' in target ? nodeOfConnection(target.connectionId) : null;
    if (owner === nodeId) return { disconnected: local, unanswered: [] };
    const live = await this.needRedis(() => this.liveReports());
    const others = live.map((report) => report.id).filter((node) => node !== nodeId && (owner === null || node === owner));
    if (others.length === 0) return { disconnected: local, unanswered: [] };
    const { disconnected, unanswered } = await this.needRedis(() => control.disconnect(target, others));
    return { disconnected: local + disconnected, unanswered };
  }

  private localNode(): LocalNode {
    const local = this.sources.local();
    if (local === null) throw new ClusterUnavailableError('the server is shutting down');
    return local;
  }

  private liveReports(): Promise<NodeReport[]> {
    return this.sources.liveness.liveReports(this.sources.staleReportMs);
  }

  /** Runs a query that needs Redis; what Redis fails becomes a ClusterUnavailableError (with the failure as its cause). */
  private async needRedis<T>(query: () => Promise<T>): Promise<T> {
    const { state, connections } = this.sources;
    if (!state.synced) throw new ClusterUnavailableError(`the cluster view needs Redis, which is unavailable (${connections.where}): ${state.problem}`);
    try {
      return await query();
    } catch (error) {
      if (error instanceof ClusterUnavailableError) throw error;
      throw new ClusterUnavailableError(`the cluster view needs Redis, which failed (${connections.where}): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  private async scanChannels(): Promise<ChannelCount[]> {
    const { commands } = this.sources.connections;
    const { keys } = this.sources;
    // Every node's own index of memberships names its channels: no KEYS, no SCAN of the keyspace.
    const names = new Set<ChannelName>();
    for (const { id: node } of await this.liveReports()) {
      let cursor = '0';
      do {
        const [next, entries] = await commands.sscan(keys.nodeMembers(node), cursor, 'COUNT', BATCH);
        cursor = next;
        for (const entry of entries) {
          const parsed = parseNodeMemberEntry(entry);
          if (parsed !== null) names.add(parsed.channel);
        }
      } while (cursor !== '0');
    }
    const channels = [...names];
    const counts = await Promise.all(channels.map((channel) => commands.hlen(keys.members(channel))));
    return channels.map((channel, index) => ({ channel, subscribers: counts[index] ?? 0 })).filter(({ subscribers }) => subscribers > 0);
  }
}
