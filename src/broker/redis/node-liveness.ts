/**
 * Node liveness in Redis (SPEC §6): each node refreshes a key with a TTL and lists itself
 * in the nodes hash; every node checks the others, and one of the survivors removes the
 * memberships of a node whose key expired, from that node's own index (never KEYS).
 *
 * A node that was only slow or cut off (an event-loop stall, a half-dead connection) may
 * be cleaned out while it still runs. Its next heartbeat tells it so (the key had expired,
 * or the cleaner flagged it), and it registers everything again.
 *
 * The members a cleaner removed are reported to it (`gone`), per channel, so that its
 * node tells every node to send leave events for them: only the cleaner that removed a
 * member reports it, so each is reported once, cluster-wide.
 */
import type { Logger } from 'pino';
import type { ChannelName } from '../../types.js';
import type { NodeReport } from '../../views/cluster-view.js';
import type { Member } from '../broker.js';
import { decodeMember, parseNodeMemberEntry, type RedisKeys, type ScriptedRedis } from './redis-keys.js';

/** Members of a dead node that this node removed from `channel`. */
export type MembersGone = (channel: ChannelName, members: readonly Member[]) => void;

const SCAN_BATCH = 500;

export class NodeLiveness {
  private readonly cleaning = new Set<string>();
  /** The other nodes alive at the last check: those a resync after an outage waits for. */
  private seen: ReadonlySet<string> = new Set();

  constructor(
    private readonly commands: ScriptedRedis,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    /** This node's figures, published with every beat for GET /api/stats on any node. */
    private readonly report: () => NodeReport | null,
    private readonly gone: MembersGone,
  ) {}

  /**
   * Refreshes this node's liveness key and its entry in the nodes hash. Resolves false when
   * this node's entries may have been removed meanwhile and must be registered again.
   */
  async beat(): Promise<boolean> {
    const [intact] = await Promise.all([
      this.commands.switchboardHeartbeat(this.keys.nodeAlive(this.nodeId), this.keys.nodeResync(this.nodeId), String(Date.now()), this.ttlMs),
      // Again on every beat: the figures change, and a cleaner that thought this node dead may have removed it.
      this.commands.hset(this.keys.nodes, this.nodeId, JSON.stringify({ ...(this.report() ?? { id: this.nodeId }), updated: Date.now() })),
    ]);
    return intact === 1;
  }

  /**
   * The latest figures of every node whose liveness key is alive. A node whose last
   * report is older than `staleMs` is shown not ready: it beats, but cannot report.
   */
  async liveReports(staleMs: number): Promise<NodeReport[]> {
    const entries = Object.entries(await this.commands.hgetall(this.keys.nodes));
    const alive = await Promise.all(entries.map(([node]) => this.commands.exists(this.keys.nodeAlive(node))));
    const reports: NodeReport[] = [];
    const number = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
    for (const [index, [node, text]] of entries.entries()) {
      if (alive[index] === 0) continue;
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(text) as Record<string, unknown>;
      } catch {
        this.logger.debug({ node }, 'ignoring a node entry that is not JSON');
        continue;
      }
      const fresh = Date.now() - number(raw.updated) <= staleMs;
      reports.push({
        id: node,
        host: typeof raw.host === 'string' ? raw.host : '',
        pid: number(raw.pid),
        connections: number(raw.connections),
        channels: number(raw.channels),
        messagesInPerSecond: number(raw.messagesInPerSecond),
        messagesOutPerSecond: number(raw.messagesOutPerSecond),
        uptime: number(raw.uptime),
        ready: raw.ready === true && fresh,
      });
    }
    return reports;
  }

  /** Finds the nodes whose liveness key expired, and cleans them out (in the background). */
  async checkOthers(): Promise<void> {
    const others = (await this.commands.hkeys(this.keys.nodes)).filter((node) => node !== this.nodeId);
    const alive = await Promise.all(others.map((node) => this.commands.exists(this.keys.nodeAlive(node))));
    this.seen = new Set(others.filter((_, index) => alive[index] !== 0));
    for (const [index, node] of others.entries()) {
      if (alive[index] !== 0 || this.cleaning.has(node)) continue;
      this.cleaning.add(node);
      this.cleanOut(node)
        .catch((error: unknown) => this.logger.warn({ err: error, node }, 'cleaning out a dead node failed; retrying later'))
        .finally(() => this.cleaning.delete(node));
    }
  }

  /**
   * The other nodes to expect back after an outage: those alive at the last check before
   * it, and those whose liveness key Redis holds now (Redis may have lost the keys, or kept
   * stale ones).
   */
  async peers(): Promise<string[]> {
    const listed = (await this.commands.hkeys(this.keys.nodes)).filter((node) => node !== this.nodeId);
    const alive = await Promise.all(listed.map((node) => this.commands.exists(this.keys.nodeAlive(node))));
    return [...new Set([...this.seen, ...listed.filter((_, index) => alive[index] !== 0)])];
  }

  /** Removes every membership of a node that stopped refreshing its liveness key. */
  private async cleanOut(node: string): Promise<void> {
    // One surviving node does it; the lock expires should that one die meanwhile.
    const locked = await this.commands.set(this.keys.nodeCleanup(node), this.nodeId, 'PX', 60_000, 'NX');
    if (locked !== 'OK') return;
    let removed = 0;
    let cursor = '0';
    do {
      // A node that was only cut off and is back registers itself again; stop here.
      if ((await this.commands.exists(this.keys.nodeAlive(node))) === 1) break;
      const [next, entries] = await this.commands.sscan(this.keys.nodeMembers(node), cursor, 'COUNT', SCAN_BATCH);
      cursor = next;
      const parsed = entries.map(parseNodeMemberEntry).filter((entry) => entry !== null);
      const results = await Promise.allSettled(parsed.map(({ channel, connectionId }) => this.commands.switchboardLeave(this.keys.members(channel), this.keys.users(channel), connectionId)));
      // What this cleaner removed is reported, even should a later batch fail.
      const byChannel = new Map<ChannelName, Member[]>();
      for (const [index, result] of results.entries()) {
        if (result.status !== 'fulfilled' || result.value === null) continue;
        const { channel, connectionId } = parsed[index] as { channel: ChannelName; connectionId: string };
        const members = byChannel.get(channel) ?? [];
        if (members.length === 0) byChannel.set(channel, members);
        members.push({ connectionId, userId: decodeMember(result.value).userId });
      }
      for (const [channel, members] of byChannel) this.reportGone(channel, members);
      removed += parsed.length;
      const failure = results.find((result) => result.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
    } while (cursor !== '0');
    const forgotten = await this.commands.switchboardForgetNode(this.keys.nodeAlive(node), this.keys.nodeMembers(node), this.keys.nodeResync(node), this.ttlMs * 3);
    // Should the node come back just now, its next beat lists it again.
    if (forgotten === 1) await this.commands.hdel(this.keys.nodes, node);
    await this.commands.del(this.keys.nodeCleanup(node));
    if (forgotten === 1) this.logger.info({ node, memberships: removed }, `node ${node} stopped answering; removed its ${removed} memberships`);
    else this.logger.info({ node, memberships: removed }, `node ${node} came back while being cleaned out; it registers again`);
  }

  private reportGone(channel: ChannelName, members: readonly Member[]): void {
    try {
      this.gone(channel, members);
    } catch (error) {
      this.logger.error({ err: error, channel }, 'announcing the members of a dead node failed');
    }
  }

  /** Takes this node out of the cluster's view (a clean shutdown). */
  async leave(): Promise<void> {
    await Promise.all([
      this.commands.del(this.keys.nodeMembers(this.nodeId), this.keys.nodeAlive(this.nodeId), this.keys.nodeResync(this.nodeId)),
      this.commands.hdel(this.keys.nodes, this.nodeId),
    ]);
  }
}
