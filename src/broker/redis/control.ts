/**
 * Requests from one node to the others through Redis pub/sub (POST /api/disconnect):
 * a request goes on the control channel every node listens to, and each node answers on
 * the asking node's replies channel (see redis-keys.ts). The resync announcements of
 * peer-sync.ts travel on the same two channels. The wire format is JSON, and
 * stays readable by nodes of other versions during a rolling upgrade.
 */
import type { Logger } from 'pino';
import { PendingRequests } from '../../rpc/pending-requests.js';
import type { DisconnectResult, DisconnectTarget } from '../../views/cluster-view.js';
import type { LocalNode } from '../broker.js';
import type { RedisConnections } from './connections.js';
import type { PeerSync } from './peer-sync.js';
import type { RedisKeys } from './redis-keys.js';

/** How long POST /api/disconnect waits for the other nodes' answers. */
const DISCONNECT_WAIT_MS = 2000;

export class ControlChannel {
  /** This node's requests to the others, waiting for each node's count. */
  private readonly requests = new PendingRequests<number, string>('a disconnect request to the other nodes', DISCONNECT_WAIT_MS);

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly logger: Logger,
    /** The resync announcements share the control channel (peer-sync.ts). */
    private readonly peers: PeerSync,
  ) {}

  /** The pub/sub channels this node must listen to: requests to every node, and answers to its own. */
  get pubChannels(): [string, string] {
    return [this.keys.control, this.keys.replies(this.nodeId)];
  }

  /** Handles a message on one of pubChannels; returns false for any other channel. */
  receive(pubChannel: string, payload: Buffer, local: LocalNode): boolean {
    if (pubChannel === this.keys.control) this.onRequest(payload, local);
    else if (pubChannel === this.keys.replies(this.nodeId)) this.onReply(payload);
    else return false;
    return true;
  }

  /**
   * Asks `nodes` to close their matching connections; resolves with their total, and the
   * nodes that did not answer within DISCONNECT_WAIT_MS. Rejects when the request cannot
   * be published.
   */
  async disconnect(target: DisconnectTarget, nodes: readonly string[]): Promise<DisconnectResult> {
    let requestId = 0;
    let published: Promise<unknown> = Promise.resolve();
    // One PUBLISH reaches every node: it is sent for the first, and counts as sent for the rest.
    const answers = this.requests.gather(nodes, (id) => {
      if (requestId === 0) {
        requestId = id;
        published = this.connections.publish(this.keys.control, JSON.stringify({ type: 'disconnect', id: String(id), from: this.nodeId, target }));
      }
      return true;
    });
    try {
      await published;
    } catch (error) {
      this.requests.cancel(requestId);
      throw error;
    }
    const { answers: counts, unanswered } = await answers;
    return { disconnected: counts.reduce((sum, { answer }) => sum + answer, 0), unanswered };
  }

  close(): void {
    this.requests.close();
  }

  private onRequest(payload: Buffer, local: LocalNode): void {
    const request = parseJson(payload);
    if (request !== null && this.peers.receive(request)) return;
    if (request?.type !== 'disconnect' || typeof request.id !== 'string' || typeof request.from !== 'string' || request.from === this.nodeId) return;
    const target = request.target as Partial<{ userId: unknown; connectionId: unknown }> | null;
    let closed: number;
    if (typeof target?.userId === 'string') closed = local.disconnect({ userId: target.userId });
    else if (typeof target?.connectionId === 'string') closed = local.disconnect({ connectionId: target.connectionId });
    else return;
    this.connections
      .publish(this.keys.replies(request.from), JSON.stringify({ id: request.id, node: this.nodeId, count: closed }))
      .catch((error: unknown) => this.logger.debug({ err: error }, 'answering a disconnect request failed'));
  }

  private onReply(payload: Buffer): void {
    const reply = parseJson(payload);
    if (reply !== null && this.peers.receive(reply)) return;
    if (typeof reply?.id !== 'string' || !/^\d{1,15}$/.test(reply.id) || typeof reply.node !== 'string' || typeof reply.count !== 'number') return;
    this.requests.answer(Number(reply.id), reply.count, reply.node);
  }
}

function parseJson(payload: Buffer): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
