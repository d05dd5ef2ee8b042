/**
 * Subscriptions on a Redis Cluster with sharded pub/sub (Redis 7): one connection per
 * master, each channel subscribed (SSUBSCRIBE) on the master that owns its slot, so that
 * SPUBLISH sends a message to that one shard and not across the whole cluster bus.
 *
 * The map of slots to masters comes from the cluster client's own (refreshed by ioredis on
 * redirections, and here whenever a shard connection is down). When it changes (a master
 * failed over, slots moved), the subscriptions may belong elsewhere: that counts as a lost
 * connection, and the node's resync subscribes everything again on the new masters once
 * every shard connection is ready.
 */
import type { Cluster, Redis } from 'ioredis';
import { SLOTS, keySlot } from './key-slot.js';
import { quitConnection, type ConnectionEvents, type MessageListener, type Subscriber } from './subscriber.js';

export type ShardConnectionFactory = (host: string, port: number) => Redis;

export class ShardedSubscriber implements Subscriber {
  /** master "host:port" → this node's subscriber connection to it */
  private readonly shards = new Map<string, Redis>();
  /** slot → master "host:port", as of the last refresh; empty until the cluster is ready. */
  private owners: readonly string[] = [];
  private closed = false;
  private refreshing = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly connect_: ShardConnectionFactory,
    private readonly listener: MessageListener,
    private readonly events: ConnectionEvents,
  ) {
    cluster.on('ready', () => this.adoptTopology());
    cluster.on('refresh', () => this.adoptTopology());
  }

  ready(): boolean {
    if (this.owners.length !== SLOTS || this.shards.size === 0) return false;
    for (const shard of this.shards.values()) if (shard.status !== 'ready') return false;
    return true;
  }

  async subscribe(...pubChannels: string[]): Promise<unknown> {
    try {
      return await Promise.all(this.bySlot(pubChannels).map(({ shard, channels }) => shard.ssubscribe(...channels)));
    } catch (error) {
      // MOVED: a slot changed hands (a failover) and the cluster client has not noticed yet;
      // without a refresh every resync would be sent to the same wrong master. The refresh
      // brings the new map, and with it a resync on the new masters.
      if (error instanceof Error && /^(MOVED|ASK) /.test(error.message)) this.refresh();
      throw error;
    }
  }

  async unsubscribe(...pubChannels: string[]): Promise<unknown> {
    // A shard that is down has no subscriptions left to drop.
    return await Promise.all(
      this.bySlot(pubChannels)
        .filter(({ shard }) => shard.status === 'ready')
        .map(({ shard, channels }) => shard.sunsubscribe(...channels)),
    );
  }

  /** The shard connections open as the cluster's map becomes known (on its 'ready'). */
  connect(): Promise<unknown> {
    return Promise.resolve();
  }

  connections(): readonly Redis[] {
    return [...this.shards.values()];
  }

  /**
   * Called every check interval: while a shard connection is down, asks the cluster for
   * its map again, so that a replica promoted in place of a dead master is found.
   */
  maintain(): void {
    if (!this.ready()) this.refresh();
  }

  private refresh(): void {
    if (this.closed || this.cluster.status !== 'ready' || this.refreshing) return;
    this.refreshing = true;
    this.cluster.refreshSlotsCache(() => {
      this.refreshing = false;
    });
  }

  async quit(): Promise<void> {
    this.closed = true;
    const shards = [...this.shards.values()];
    this.shards.clear();
    await Promise.all(shards.map(quitConnection));
  }

  /**
   * Groups channels by slot (one SSUBSCRIBE takes channels of one slot only), each with the
   * connection of the master that owns it.
   */
  private bySlot(pubChannels: readonly string[]): Array<{ shard: Redis; channels: string[] }> {
    const groups = new Map<number, { shard: Redis; channels: string[] }>();
    for (const pubChannel of pubChannels) {
      const slot = keySlot(pubChannel);
      const group = groups.get(slot);
      if (group !== undefined) {
        group.channels.push(pubChannel);
        continue;
      }
      const owner = this.owners[slot];
      const shard = owner === undefined ? undefined : this.shards.get(owner);
      // Not in reach now: the resync that follows the shard's return subscribes it.
      if (shard === undefined) throw new Error(`no connection to the master of ${pubChannel}'s slot yet`);
      groups.set(slot, { shard, channels: [pubChannel] });
    }
    return [...groups.values()];
  }

  /** Takes the cluster's current map of slots to masters; opens and drops shard connections to match. */
  private adoptTopology(): void {
    if (this.closed) return;
    const slots = this.cluster.slots;
    const owners: string[] = new Array<string>(SLOTS);
    for (let slot = 0; slot < SLOTS; slot++) {
      const owner = slots[slot]?.[0];
      // Part of the cluster is not served: keep the old map until it is whole again.
      if (owner === undefined) return;
      owners[slot] = owner;
    }
    if (sameOwners(owners, this.owners)) return;
    const hadMap = this.owners.length === SLOTS;
    this.owners = owners;
    const masters = new Set(owners);
    for (const [master, shard] of this.shards) {
      if (masters.has(master)) continue;
      this.shards.delete(master);
      shard.removeAllListeners('close');
      void quitConnection(shard);
    }
    for (const master of masters) if (!this.shards.has(master)) this.open(master);
    // Subscriptions on a master that no longer owns their slot are gone in effect: the
    // node resyncs (lost, then ready once every shard connection is up).
    if (hadMap) this.events.lost();
    if (this.ready()) this.events.ready();
  }

  private open(master: string): void {
    const colon = master.lastIndexOf(':');
    const shard = this.connect_(master.slice(0, colon), Number(master.slice(colon + 1)));
    this.shards.set(master, shard);
    shard.on('smessageBuffer', (pubChannel: Buffer, payload: Buffer) => this.listener(pubChannel.toString(), payload));
    shard.on('ready', () => {
      if (this.ready()) this.events.ready();
    });
    shard.on('close', () => {
      if (this.shards.get(master) !== shard) return;
      this.events.lost();
      this.maintain();
    });
    shard.on('error', (error: Error) => this.events.error(error));
    shard.connect().catch(() => undefined);
  }
}

function sameOwners(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}
