/**
 * Which of this node's connections are in which channel, kept here and mirrored in Redis
 * (the channel's members and users hashes, and the node's own index of its memberships,
 * see redis-keys.ts), and the node's one Redis subscription per channel with local
 * subscribers: taken when the first joins, dropped when the last leaves.
 *
 * Changes go to Redis at once on whichever connection is up, even while a resync runs:
 * commands on one connection run in order, and the resync issues each of its own only for
 * what is still true at that moment. What fails is redone by the next resync, from the
 * state kept here.
 */
import type { Logger } from 'pino';
import type { ChannelName, ConnectionId } from '../../types.js';
import type { Member } from '../broker.js';
import type { RedisConnections } from './connections.js';
import { encodeMember, nodeMemberEntry, parseNodeMemberEntry, type RedisKeys } from './redis-keys.js';

/** Commands pipelined at a time in bulk work (resync, shutdown, scans). */
export const BATCH = 500;

interface LocalChannel {
  /** connection id → its user id as the members hash holds it (encodeUserId) */
  readonly members: Map<ConnectionId, string>;
  /** The SUBSCRIBE for this channel, once sent. */
  subscribed: Promise<unknown>;
}

export interface ReconcileSummary {
  channels: number;
  members: number;
  /** Membership updates Redis refused (a timeout, an error reply): worth another resync. */
  failures: number;
}

export class Membership {
  private readonly localChannels = new Map<ChannelName, LocalChannel>();
  /** Redis pub/sub channel → our channel, for the channels this node is subscribed to. */
  private readonly byPubChannel = new Map<string, ChannelName>();

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly logger: Logger,
    /** Redis refused a change while both connections are up: the broker resyncs soon. */
    private readonly refused: () => void,
  ) {}

  /** The channel whose messages come on `pubChannel`, when this node is subscribed to it. */
  channelOf(pubChannel: string): ChannelName | undefined {
    return this.byPubChannel.get(pubChannel);
  }

  async join(channel: ChannelName, member: Member): Promise<void> {
    const { subscriber } = this.connections;
    let entry = this.localChannels.get(channel);
    if (entry === undefined) {
      entry = { members: new Map(), subscribed: Promise.resolve() };
      this.localChannels.set(channel, entry);
      this.byPubChannel.set(this.keys.messages(channel), channel);
      if (subscriber.ready()) entry.subscribed = subscriber.subscribe(this.keys.messages(channel));
    }
    const storedUserId = encodeMember(member.userId, member.info);
    entry.members.set(member.connectionId, storedUserId);
    const work: Array<Promise<unknown>> = [entry.subscribed];
    if (this.connections.commandsReady) work.push(this.register(channel, member.connectionId, storedUserId));
    try {
      await Promise.all(work);
    } catch (error) {
      this.failed(error, channel);
    }
  }

  async leave(channel: ChannelName, connectionId: ConnectionId): Promise<void> {
    const { subscriber } = this.connections;
    const entry = this.localChannels.get(channel);
    if (entry === undefined || !entry.members.delete(connectionId)) return;
    const work: Array<Promise<unknown>> = [];
    if (entry.members.size === 0) {
      this.localChannels.delete(channel);
      this.byPubChannel.delete(this.keys.messages(channel));
      if (subscriber.ready()) work.push(subscriber.unsubscribe(this.keys.messages(channel)));
    }
    if (this.connections.commandsReady) work.push(this.unregister(channel, connectionId));
    try {
      await Promise.all(work);
    } catch (error) {
      this.failed(error, channel);
    }
  }

  /**
   * After a reconnect, or when Redis lost this node's entries: removes the memberships that
   * ended meanwhile, registers the current ones again and resubscribes every channel.
   */
  async reconcile(): Promise<ReconcileSummary> {
    const { commands, subscriber } = this.connections;
    // Each stale entry is checked again when its command is issued: one that joined again meanwhile is not stale.
    const stale: Array<{ channel: ChannelName; connectionId: ConnectionId }> = [];
    let cursor = '0';
    do {
      const [next, entries] = await commands.sscan(this.keys.nodeMembers(this.nodeId), cursor, 'COUNT', BATCH);
      cursor = next;
      for (const text of entries) {
        const entry = parseNodeMemberEntry(text);
        if (entry === null) await commands.srem(this.keys.nodeMembers(this.nodeId), text);
        else if (!this.isMember(entry.channel, entry.connectionId)) stale.push(entry);
      }
    } while (cursor !== '0');
    let failures = await inBatches(stale, ({ channel, connectionId }) => (this.isMember(channel, connectionId) ? Promise.resolve() : this.unregister(channel, connectionId)));
    // The current ones, whether Redis kept them or lost them; one that left meanwhile was
    // (or will be) unregistered by leave(), after this.
    const members = this.all();
    failures += await inBatches(members, ([channel, connectionId]) => {
      const storedUserId = this.localChannels.get(channel)?.members.get(connectionId);
      return storedUserId === undefined ? Promise.resolve() : this.register(channel, connectionId, storedUserId);
    });
    const pubChannels = [...this.byPubChannel.keys()];
    for (let index = 0; index < pubChannels.length; index += BATCH) {
      const batch = pubChannels.slice(index, index + BATCH).filter((pubChannel) => this.byPubChannel.has(pubChannel));
      if (batch.length === 0) continue;
      const subscribed = subscriber.subscribe(...batch);
      // A join meanwhile waits for this subscription before it is acknowledged.
      for (const pubChannel of batch) {
        const entry = this.localChannels.get(this.byPubChannel.get(pubChannel) as ChannelName);
        if (entry !== undefined) entry.subscribed = subscribed;
      }
      await subscribed;
    }
    return { channels: pubChannels.length, members: members.length, failures };
  }

  /** Takes every membership of this node out of Redis (a clean shutdown); resolves with how many Redis refused. */
  leaveAll(): Promise<number> {
    return inBatches(this.all(), ([channel, connectionId]) => this.unregister(channel, connectionId));
  }

  clear(): void {
    this.localChannels.clear();
    this.byPubChannel.clear();
  }

  private all(): Array<[ChannelName, ConnectionId]> {
    const members: Array<[ChannelName, ConnectionId]> = [];
    for (const [channel, entry] of this.localChannels) for (const connectionId of entry.members.keys()) members.push([channel, connectionId]);
    return members;
  }

  private isMember(channel: ChannelName, connectionId: ConnectionId): boolean {
    return this.localChannels.get(channel)?.members.has(connectionId) === true;
  }

  /**
   * Local delivery works regardless. A connection that dropped brings a resync of its
   * own; one that is still up but refused (a timeout, an error reply) gets one soon.
   */
  private failed(error: unknown, channel: ChannelName): void {
    this.logger.debug({ err: error, channel }, 'a membership change failed in Redis');
    if (this.connections.allReady()) this.refused();
  }

  private register(channel: ChannelName, connectionId: ConnectionId, storedUserId: string): Promise<unknown> {
    const { commands } = this.connections;
    return Promise.all([
      commands.switchboardJoin(this.keys.members(channel), this.keys.users(channel), connectionId, storedUserId),
      commands.sadd(this.keys.nodeMembers(this.nodeId), nodeMemberEntry(channel, connectionId)),
    ]);
  }

  private unregister(channel: ChannelName, connectionId: ConnectionId): Promise<unknown> {
    const { commands } = this.connections;
    return Promise.all([
      commands.switchboardLeave(this.keys.members(channel), this.keys.users(channel), connectionId),
      commands.srem(this.keys.nodeMembers(this.nodeId), nodeMemberEntry(channel, connectionId)),
    ]);
  }
}

/**
 * Runs `task` over `items`, BATCH at a time (pipelined within a batch); one failure does
 * not stop the rest. Resolves with the number of failures.
 */
export async function inBatches<T>(items: readonly T[], task: (item: T) => Promise<unknown>): Promise<number> {
  let failures = 0;
  for (let index = 0; index < items.length; index += BATCH) {
    const results = await Promise.allSettled(items.slice(index, index + BATCH).map(task));
    failures += results.filter((result) => result.status === 'rejected').length;
  }
  return failures;
}
