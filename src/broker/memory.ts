import type { ChannelMessage, ChannelName } from '../types.js';
import type { Broker, LocalDelivery } from './broker.js';

/** The embedded broker of a single node: publishing is local delivery. */
export class MemoryBroker implements Broker {
  private local: LocalDelivery | null = null;

  start(local: LocalDelivery): Promise<void> {
    this.local = local;
    return Promise.resolve();
  }

  publish(message: ChannelMessage): Promise<number> {
    if (this.local === null) return Promise.reject(new Error('MemoryBroker.publish() called before start()'));
    return Promise.resolve(this.local.deliver(message));
  }

  // One node holds every subscriber, so there is no subscription to set up elsewhere.
  addChannel(_channel: ChannelName): Promise<void> {
    return Promise.resolve();
  }

  removeChannel(_channel: ChannelName): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.local = null;
    return Promise.resolve();
  }
}
