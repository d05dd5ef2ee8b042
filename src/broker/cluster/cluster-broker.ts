/**
 * The worker side of WS_WORKER_NUM > 1 without Redis (SPEC §6): local delivery at once,
 * everything else through the primary's relay (cluster-relay.ts). A client on any worker
 * reaches subscribers on every worker, `recipients_count` counts all of them, and the
 * HTTP API's views answer for every worker, as with Redis.
 *
 * The primary holds the history. A message to be kept is not delivered here at once: the
 * primary gives it its offset and sends it back to every worker with subscribers, this one
 * included, so that every worker delivers a channel's offsets in the order they were given.
 * Without an answer from the primary such a publish rejects: it never makes up a position.
 *
 * This broker never calls LocalNode.reconnected(): the primary lives as long as its workers
 * (a worker whose primary is gone exits), so there is no outage to catch up after, and IPC
 * loses no message on the way.
 */
import type { Logger } from 'pino';
import { ClusterUnavailableError, RequestTimeoutError } from '../../errors.js';
import { newNodeId } from '../../ids.js';
import { defaultLibraryLogger } from '../../logger.js';
import { PendingRequests } from '../../rpc/pending-requests.js';
import type { ChannelName, ConnectionId } from '../../types.js';
import type { ChannelCount, DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../../views/cluster-view.js';
import type { HistoryPage, HistoryQuery, StreamPosition } from '../../history/history.js';
import type { BrokerWithView, LocalNode, Member, Publication, PublishResult } from '../broker.js';
import { DeliveryPacer } from '../delivery-pacer.js';
import { IpcBatcher, unbatched, type Batch } from './ipc-batch.js';
import { describeMessage, isSwitchboardMessage, parsePrimaryMessage, type PrimaryMessage, type Query, type WorkerMessage } from './messages.js';

/** How long a worker waits for the primary's answer; longer than the relay's own wait for the workers (PARTS_WAIT_MS). */
const REQUEST_TIMEOUT_MS = 5000;

/** The channel to the primary: `process` in a worker. */
export interface PrimaryChannel {
  send?: ((message: WorkerMessage | Batch<WorkerMessage>, sendHandle: undefined, options: undefined, callback: (error: Error | null) => void) => boolean) | undefined;
  connected?: boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

export interface ClusterBrokerOptions {
  /** This worker's node id; a handler given this broker uses it for its connection ids. @default random */
  nodeId?: string;
  logger?: Logger;
  /** @default process */
  primary?: PrimaryChannel;
  /** How long a request to the primary may go unanswered. @default 5000 */
  requestTimeoutMs?: number;
}

export class ClusterBroker implements BrokerWithView {
  readonly kind = 'workers';
  /** Everything goes through one IPC channel to the primary, in order, and the primary relays and appends in arrival order. */
  readonly keepsOrderInFlight = true;
  readonly nodeId: string;
  private readonly logger: Logger;
  private readonly primary: PrimaryChannel;
  private local: LocalNode | null = null;
  /** The messages the primary relays from other workers, handed to this node a bounded time per turn. */
  private readonly pacer: DeliveryPacer;
  /** Requests to the primary: counts (publish, join) and query answers. */
  private readonly requests: PendingRequests<unknown, never>;
  private readonly listener = (message: unknown): void => this.onMessage(message);
  /** What this worker tells the primary in one turn goes as one IPC message. */
  private readonly outbound = new IpcBatcher<WorkerMessage>((message) => this.sendNow(message));
  private lateCountWarnedAt = 0;
  private lateCounts = 0;

  constructor(options: ClusterBrokerOptions = {}) {
    this.nodeId = options.nodeId ?? newNodeId();
    this.logger = options.logger ?? defaultLibraryLogger();
    this.primary = options.primary ?? process;
    this.requests = new PendingRequests('a request to the primary process', options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
    this.pacer = new DeliveryPacer((delivery) => this.local?.deliver(delivery), this.logger);
  }

  start(local: LocalNode): Promise<void> {
    if (typeof this.primary.send !== 'function') return Promise.reject(new Error('ClusterBroker runs only in a worker process (no IPC channel to a primary)'));
    this.local = local;
    this.primary.on('message', this.listener);
    this.post({ sb: 'hello', nodeId: this.nodeId });
    return Promise.resolve();
  }

  async publish(publication: Publication): Promise<PublishResult> {
    const node = this.node('publish');
    const { channel, recipients, exclude, frame, history } = publication;
    if (history !== null) {
      // Rejects when the primary is gone or does not answer in time: no count or position is made up.
      const stored = await this.ask((id) => ({ sb: 'append', id, channel, recipients, exclude, frame, history }));
      if (!(stored instanceof Stored)) throw new ClusterUnavailableError('the primary process answered a publish to a channel with history with something else than its position');
      return { count: stored.count, position: stored.position };
    }
    const localCount = node.deliver({ channel, recipients, exclude, frame, position: null });
    try {
      const count = await this.ask((id) => ({ sb: 'publish', id, channel, recipients, exclude, frame: Buffer.from(frame) }));
      return { count: typeof count === 'number' ? count : localCount, position: null };
    } catch (error) {
      // The message reached this worker's subscribers; whether the relay passed it on is
      // unknown, and a count is no reason to fail the publish.
      if (error instanceof RequestTimeoutError) this.warnLateCount(error);
      return { count: localCount, position: null };
    }
  }

  /** Reads a channel's history from the primary's store. */
  async history(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage> {
    this.node('history');
    // Whole numbers, as the primary's guard takes them (and as RedisHistory reads them).
    const since = query.since === null ? null : Math.floor(query.since);
    const until = query.until === null ? null : Math.floor(query.until);
    const limit = Math.max(0, Math.floor(query.limit));
    const page = await this.ask((id) => ({ sb: 'history', id, channel, since, until, limit, seen: query.seen ?? null }));
    if (!(page instanceof Page)) throw new ClusterUnavailableError('the primary process answered a history read with something else than a page');
    return page.page;
  }

  async join(channel: ChannelName, member: Member): Promise<void> {
    // Answered once the primary knows, so that a message published on another worker
    // right after the subscribe ack reaches this one.
    await this.ask((id) => ({ sb: 'join', id, channel, connectionId: member.connectionId, userId: member.userId, info: member.info ?? null }));
  }

  leave(channel: ChannelName, connectionId: ConnectionId): Promise<void> {
    this.post({ sb: 'leave', channel, connectionId });
    return Promise.resolve();
  }

  // A worker whose primary is gone exits (node:cluster does that), so there is no other state.
  notReadyReason(): string | null {
    return null;
  }

  async nodes(): Promise<NodeReport[]> {
    return asArray<NodeReport>(await this.query({ query: 'nodes' }));
  }

  async channels(): Promise<ChannelCount[]> {
    return asArray<ChannelCount>(await this.query({ query: 'channels' }));
  }

  async members(channel: ChannelName): Promise<MemberInfo[]> {
    return asArray<MemberInfo>(await this.query({ query: 'members', channel }));
  }

  async disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    const local = this.node('disconnect').disconnect(target);
    // A worker that misses the relay's wait still closes its connections when the request reaches it.
    let others: Partial<DisconnectResult> | null;
    try {
      others = (await this.query({ query: 'disconnect', target })) as Partial<DisconnectResult> | null;
    } catch (error) {
      // This worker's connections are closed already: say so, and that the rest is unknown.
      if (error instanceof ClusterUnavailableError) return { disconnected: local, unanswered: ['primary'] };
      throw error;
    }
    return { disconnected: local + (others?.disconnected ?? 0), unanswered: others?.unanswered ?? [] };
  }

  close(): Promise<void> {
    this.outbound.flush();
    this.primary.off('message', this.listener);
    this.pacer.flush();
    this.local = null;
    this.requests.close();
    return Promise.resolve();
  }

  /** Once per 10 s at most: a backlogged primary would otherwise bring a warning per message. */
  private warnLateCount(error: RequestTimeoutError): void {
    const now = Date.now();
    this.lateCounts++;
    if (now - this.lateCountWarnedAt < 10_000) return;
    this.logger.warn({ err: error, publishes: this.lateCounts }, 'the primary did not count publishes in time; answered with the local count');
    this.lateCountWarnedAt = now;
    this.lateCounts = 0;
  }

  private node(method: string): LocalNode {
    if (this.local === null) throw new ClusterUnavailableError(`the server is not running (ClusterBroker.${method}() before start() or after close())`);
    return this.local;
  }

  private query(query: Query): Promise<unknown> {
    return this.ask((id) => ({ sb: 'query', id, ...query }));
  }

  /**
   * Sends a request; resolves with the primary's answer (a count, or a query's data).
   * Rejects with ClusterUnavailableError when the primary is gone, and with
   * RequestTimeoutError when it does not answer in time (a lost reply must not stall the
   * connection whose request waits for it).
   */
  private ask(build: (id: number) => WorkerMessage): Promise<unknown> {
    return this.requests.request((id) => this.post(build(id)));
  }

  /** Sends `message` at the end of this turn, with the others of the turn; false when the primary is gone. */
  private post(message: WorkerMessage): boolean {
    if (this.primary.connected === false || typeof this.primary.send !== 'function') return false;
    this.outbound.post(message);
    return true;
  }

  private sendNow(message: WorkerMessage | Batch<WorkerMessage>): void {
    if (this.primary.connected === false) return;
    try {
      // false means "queued behind a backlog", not lost. A failure is reported to the
      // callback (not as an 'error' event that would take the worker down); the worker
      // exits with its primary anyway, and its requests time out.
      this.primary.send?.(message, undefined, undefined, () => undefined);
    } catch (error) {
      this.logger.debug({ err: error }, 'sending to the primary failed');
    }
  }

  private onMessage(raw: unknown): void {
    for (const one of unbatched(raw)) {
      const message = parsePrimaryMessage(one);
      if (message === null) {
        // Another listener's (/metrics, node:cluster's own) or a malformed one.
        if (!isSwitchboardMessage(one)) this.logger.debug({ message: describeMessage(one) }, 'ignoring an unknown IPC message');
        continue;
      }
      this.handle(message);
    }
  }

  private handle(message: PrimaryMessage): void {
    switch (message.sb) {
      case 'reply':
        this.requests.answer(message.id, message.count);
        return;
      case 'stored':
        // The primary sent this worker the message's delivery first: the publisher's answer follows it.
        this.pacer.then(() => this.requests.answer(message.id, new Stored(message.count, message.position)));
        return;
      case 'page':
        this.requests.answer(message.id, new Page(message.page));
        return;
      case 'gone':
        // After the messages relayed before it: members leave after what they sent.
        this.pacer.then(() => this.local?.membersGone(message.channel, message.members, false));
        return;
      case 'answer':
        this.requests.answer(message.id, message.data);
        return;
      case 'ask': {
        if (this.local === null) return;
        const part = message.query === 'report' ? this.local.report() : this.local.disconnect(message.target);
        this.post({ sb: 'part', ask: message.ask, part });
        return;
      }
      case 'deliver': {
        const { channel, recipients, exclude, frame, position } = message;
        this.pacer.receive({ channel, recipients, exclude, frame, position });
        return;
      }
    }
  }
}

/** The primary's answer to an append; a class, so that an answer of another kind to the same request id is told apart. */
class Stored {
  constructor(
    readonly count: number,
    readonly position: StreamPosition,
  ) {}
}

/** The primary's answer to a history read. */
class Page {
  constructor(readonly page: HistoryPage) {}
}

function asArray<T>(data: unknown): T[] {
  if (!Array.isArray(data)) throw new ClusterUnavailableError('the primary process answered a cluster view with something else than a list');
  return data as T[];
}
