/**
 * Held messages wait for the other nodes to be listening again. After an outage every
 * node resubscribes on its own schedule; a node that sent what its outbox held the moment
 * it was back would lose it for each node still reconnecting (in the common case, a Redis
 * restart, all of them). So each node announces on the control channel when its
 * subscriptions are in place again, and a node with held messages first waits for the
 * announcements of the other live nodes, up to a bound (a node that never announces is
 * dead, or of an older version, and costs that wait once).
 *
 * An announcement sent before this node was listening is not lost: this node also asks,
 * and every node whose subscriptions are in place answers on this node's replies channel.
 * A node that did not lose its connection at all answers at once.
 *
 * Wire format (JSON on Pcontrol and Preply:{N}): {type:'resynced', node} announces or
 * answers; {type:'resync-check', from} asks.
 */
import type { Logger } from 'pino';
import type { RedisConnections } from './connections.js';
import type { RedisKeys } from './redis-keys.js';

export interface PeerWait {
  /** The nodes waited for. */
  awaited: number;
  /** Those that did not announce within the bound. */
  silent: string[];
}

export class PeerSync {
  /** This node's subscriptions are in place since its last reconnect: it answers checks. */
  private listening = false;
  private pending: { nodes: Set<string>; done: () => void } | null = null;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly logger: Logger,
    private readonly waitMs: number,
  ) {}

  /** The subscriptions are in place again: says so to every node. */
  async announce(): Promise<void> {
    this.listening = true;
    await this.connections.publish(this.keys.control, JSON.stringify({ type: 'resynced', node: this.nodeId }));
  }

  /**
   * Waits until each of `peers` has said its subscriptions are in place (or the bound
   * passes); asks them first, for announcements made before this node listened.
   */
  async waitFor(peers: readonly string[]): Promise<PeerWait> {
    const nodes = new Set(peers.filter((node) => node !== this.nodeId));
    if (nodes.size === 0) return { awaited: 0, silent: [] };
    this.pending?.done();
    const awaited = nodes.size;
    let timer: NodeJS.Timeout | undefined;
    const settled = new Promise<void>((resolve) => {
      this.pending = { nodes, done: resolve };
      timer = setTimeout(resolve, this.waitMs);
    });
    try {
      await this.connections.publish(this.keys.control, JSON.stringify({ type: 'resync-check', from: this.nodeId }));
      await settled;
    } finally {
      clearTimeout(timer);
      this.pending = null;
    }
    if (nodes.size > 0) this.logger.warn({ nodes: [...nodes] }, `${nodes.size} of ${awaited} nodes did not say they were listening again within ${this.waitMs / 1000}s; sending the held messages all the same`);
    return { awaited, silent: [...nodes] };
  }

  /** A connection dropped: this node's subscriptions must be made again before it answers. */
  lost(): void {
    this.listening = false;
    this.pending?.done();
  }

  /** Handles a control or reply message of this protocol; false for any other. */
  receive(message: Record<string, unknown>): boolean {
    if (message.type === 'resynced') {
      if (typeof message.node === 'string' && this.pending !== null) {
        this.pending.nodes.delete(message.node);
        if (this.pending.nodes.size === 0) this.pending.done();
      }
      return true;
    }
    if (message.type === 'resync-check') {
      if (typeof message.from === 'string' && message.from !== this.nodeId && this.listening) {
        this.connections
          .publish(this.keys.replies(message.from), JSON.stringify({ type: 'resynced', node: this.nodeId }))
          .catch((error: unknown) => this.logger.debug({ err: error }, 'answering a resync check failed'));
      }
      return true;
    }
    return false;
  }
}
