/** The embedded broker of a single process: publishing is local delivery, and the node is the whole cluster. */
import { ClusterUnavailableError } from '../errors.js';
import type { ChannelName, ConnectionId } from '../types.js';
import type { ChannelCount, DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../views/cluster-view.js';
import type { BrokerWithView, Delivery, LocalNode, Member } from './broker.js';

export class MemoryBroker implements BrokerWithView {
  readonly kind = 'memory';
  private local: LocalNode | null = null;

  start(local: LocalNode): Promise<void> {
    this.local = local;
    return Promise.resolve();
  }

  publish(delivery: Delivery): Promise<number> {
    return this.fromNode('publish', (node) => node.deliver(delivery));
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
