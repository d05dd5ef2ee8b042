/**
 * The embedded broker of a single process: publishing is local delivery, the node is the
 * whole cluster, and the history is kept in memory (a restart starts a new epoch).
 */
import { ClusterUnavailableError } from '../errors.js';
import type { HistoryPage, HistoryQuery } from '../history/history.js';
import { MemoryHistory } from '../history/memory-history.js';
import type { ChannelName, ConnectionId } from '../types.js';
import type { ChannelCount, DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../views/cluster-view.js';
import type { BrokerWithView, LocalNode, Member, Publication, PublishResult } from './broker.js';

export class MemoryBroker implements BrokerWithView {
  readonly kind = 'memory';
  /** Delivery is synchronous: nothing is ever in flight. */
  readonly keepsOrderInFlight: boolean = true;
  private local: LocalNode | null = null;
  private readonly store = new MemoryHistory();

  start(local: LocalNode): Promise<void> {
    this.local = local;
    return Promise.resolve();
  }

  publish(publication: Publication): Promise<PublishResult> {
    return this.fromNode('publish', (node) => {
      const { channel, recipients, exclude, frame, history } = publication;
      if (history === null) return { count: node.deliver({ channel, recipients, exclude, frame, position: null }), position: null };
      const stored = this.store.append(channel, frame, history);
      const position = { epoch: stored.epoch, offset: stored.offset };
      return { count: node.deliver({ channel, recipients, exclude, frame: stored.frame, position }), position };
    });
  }

  history(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage> {
    return this.fromNode('history', () => this.store.read(channel, query));
  }

  // One process holds every subscriber: the hub's own registry is the whole membership.
  join(_channel: ChannelName, _member: Member): Promise<void> {
    return Promise.resolve();
  }

  leave(_channel: ChannelName, _connectionId: ConnectionId): Promise<void> {
    return Promise.resolve();
  }

  notReadyReason(): string | null {
    return null;
  }

  nodes(): Promise<NodeReport[]> {
    return this.fromNode('nodes', (node) => [node.report()]);
  }

  channels(): Promise<ChannelCount[]> {
    return this.fromNode('channels', (node) => node.channels());
  }

  members(channel: ChannelName): Promise<MemberInfo[]> {
    return this.fromNode('members', (node) => node.members(channel));
  }

  disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    return this.fromNode('disconnect', (node) => ({ disconnected: node.disconnect(target), unanswered: [] }));
  }

  close(): Promise<void> {
    this.local = null;
    this.store.close();
    return Promise.resolve();
  }

  /** What `read` makes of the node; before start() and after close() a ClusterUnavailableError (the API's 503). */
  private fromNode<T>(method: string, read: (node: LocalNode) => T): Promise<T> {
    if (this.local === null) return Promise.reject(new ClusterUnavailableError(`the server is not running (MemoryBroker.${method}() before start() or after close())`));
    try {
      return Promise.resolve(read(this.local));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
