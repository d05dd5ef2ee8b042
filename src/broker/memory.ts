import type { ChannelName, ConnectionId } from '../types.js';
import type { Broker, Delivery, LocalDelivery, Member } from './broker.js';

/** The embedded broker of a single process: publishing is local delivery. */
export class MemoryBroker implements Broker {
  private local: LocalDelivery | null = null;

  start(local: LocalDelivery): Promise<void> {
    this.local = local;
    return Promise.resolve();
  }

  publish(delivery: Delivery): Promise<number> {
    if (this.local === null) return Promise.reject(new Error('MemoryBroker.publish() called before start()'));
    return Promise.resolve(this.local.deliver(delivery));
  }

  // One process holds every subscriber: the handler's own registry is the whole membership.
  join(_channel: ChannelName, _member: Member): Promise<void> {
    return Promise.resolve();
  }

  leave(_channel: ChannelName, _connectionId: ConnectionId): Promise<void> {
    return Promise.resolve();
  }

  notReadyReason(): string | null {
    return null;
  }

  close(): Promise<void> {
    this.local = null;
    return Promise.resolve();
  }
}
