/**
 * RedisBroker: several Switchboard nodes that share nothing but Redis act as one server
 * (SPEC §6). This file wires the parts together:
 *
 * - fanout.ts and payload.ts: messages between nodes, exactly once and in order, and the
 *   bounded outbox that holds them while Redis is unreachable;
 * - redis-history.ts and history-scripts.ts: channels' history, with offsets assigned in
 *   Redis in the same script call as the publish;
 * - membership.ts: which connection is in which channel, in Redis, and one subscription
 *   per channel with local subscribers;
 * - node-liveness.ts: liveness keys, so that a dead node's entries are removed by the others
 *   (and its members announced gone);
 * - sync-state.ts: outages and the resync after them (re-register, reconcile the
 *   membership, resubscribe, send the outbox, in that order, then ready again, and the
 *   node told to read what it missed of the history);
 * - connections.ts, client-options.ts, subscriber.ts, sharded-subscriber.ts: the
 *   connections to one server, a Sentinel's master or a Cluster (sharded pub/sub there),
 *   which never queue commands while disconnected, and the watchdog for a Redis that
 *   stops answering;
 * - peer-sync.ts: held messages wait for the other nodes to listen again;
 * - cluster-view.ts and control.ts: what the HTTP API asks of the cluster.
 */
import type { Logger } from 'pino';
import { DEFAULTS, type RedisOptions } from '../../config/options.js';
import { isNodeId, NODE_ID_LENGTH, newNodeId } from '../../ids.js';
import type { HistoryPage, HistoryQuery } from '../../history/history.js';
import type { ChannelName, ConnectionId } from '../../types.js';
import type { ChannelCount, DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from '../../views/cluster-view.js';
import type { BrokerWithView, LocalNode, Member, Publication, PublishResult } from '../broker.js';
import { DeliveryPacer } from '../delivery-pacer.js';
import { RedisClusterView } from './cluster-view.js';
import { defaultRetryDelay, RedisConnections } from './connections.js';
import { ControlChannel } from './control.js';
import { Fanout } from './fanout.js';
import { Membership } from './membership.js';
import { NodeLiveness } from './node-liveness.js';
import { PeerSync } from './peer-sync.js';
import { RedisHistory } from './redis-history.js';
import { RedisKeys } from './redis-keys.js';
import { SyncState, type SyncSummary } from './sync-state.js';

/** The timings and sizes of a RedisBroker: production defaults, shorter in tests. */
export interface RedisBrokerTuning {
  /** Lifetime of the node's liveness key; a node silent this long is cleaned out. @default 10000 */
  nodeTtlMs?: number;
  /** How often the liveness key is refreshed and the other nodes checked. @default 3000 */
  checkIntervalMs?: number;
  /** Milliseconds before reconnect attempt `attempt` (1, 2, …). @default exponential from 100 ms to 5 s, with jitter */
  retryDelay?: (attempt: number) => number;
  /** Messages kept for other nodes while Redis is unreachable. @default 10000 */
  outboxMessages?: number;
  /** Bytes kept for other nodes while Redis is unreachable. @default 16 MiB */
  outboxBytes?: number;
  /** How long one Redis command may take before it counts as failed. @default 5000 */
  commandTimeoutMs?: number;
  /** How long a PING may go unanswered before its connection is dropped and reconnected. @default 10000 */
  silenceTimeoutMs?: number;
  /** After an outage, how long held messages wait for the other nodes to be listening again. @default nodeTtlMs */
  peerWaitMs?: number;
}

export interface RedisBrokerOptions extends RedisBrokerTuning {
  /** This node's id in Redis (see ids.ts); a handler given this broker uses it for its connection ids. @default random */
  nodeId?: string;
  logger: Logger;
}

export class RedisBroker implements BrokerWithView {
  readonly kind = 'redis';
  // Not keepsOrderInFlight: a publish Redis refuses is held and sent after the resync, so one
  // issued after it and accepted would arrive first. A connection's publishes go one at a time.
  readonly nodeId: string;
  private readonly logger: Logger;
  private readonly nodeTtlMs: number;
  private readonly checkIntervalMs: number;
  private readonly connections: RedisConnections;
  private readonly state: SyncState;
  private readonly membership: Membership;
  private readonly fanout: Fanout;
  /** Other nodes' messages, handed to this node a bounded time per turn. */
  private readonly pacer: DeliveryPacer;
  private readonly historyStore: RedisHistory;
  private readonly liveness: NodeLiveness;
  private readonly control: ControlChannel;
  private readonly peers: PeerSync;
  private readonly view: RedisClusterView;
  private local: LocalNode | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** `redisOptions`: what is not given takes the defaults (127.0.0.1:6379, database 0, prefix 'websocket:'). */
  constructor(redisOptions: Partial<RedisOptions>, brokerOptions: RedisBrokerOptions) {
    const options: RedisOptions = { ...DEFAULTS.redis, ...redisOptions };
    const nodeId = brokerOptions.nodeId ?? newNodeId();
    if (!isNodeId(nodeId)) throw new Error(`RedisBroker: nodeId must be ${NODE_ID_LENGTH} base64url characters`);
    const keys = new RedisKeys(options.prefix);
    this.nodeId = nodeId;
    this.logger = brokerOptions.logger;
    this.nodeTtlMs = brokerOptions.nodeTtlMs ?? 10_000;
    this.checkIntervalMs = brokerOptions.checkIntervalMs ?? 3000;
    this.connections = new RedisConnections(options, {
      nodeId,
      retryDelay: brokerOptions.retryDelay ?? defaultRetryDelay,
      commandTimeoutMs: brokerOptions.commandTimeoutMs ?? 5000,
      silenceTimeoutMs: brokerOptions.silenceTimeoutMs ?? 10_000,
      closed: () => this.state.isClosed,
    });
    this.fanout = new Fanout(
      this.connections,
      keys,
      nodeId,
      this.logger,
      { messages: brokerOptions.outboxMessages ?? 10_000, bytes: brokerOptions.outboxBytes ?? 16 * 1024 * 1024 },
      (problem) => this.state.outage(problem),
    );
    this.peers = new PeerSync(this.connections, keys, nodeId, this.logger, brokerOptions.peerWaitMs ?? this.nodeTtlMs);
    this.historyStore = new RedisHistory({
      connections: this.connections,
      keys,
      nodeId,
      logger: this.logger,
      unavailable: () => {
        if (this.fanout.sending) return null;
        return this.state.isClosed ? 'the broker is closed' : this.state.problem;
      },
    });
    this.liveness = new NodeLiveness(
      this.connections.commands,
      keys,
      nodeId,
      this.nodeTtlMs,
      this.logger,
      () => this.local?.report() ?? null,
      (channel, members) => this.local?.membersGone(channel, members, true),
    );
    this.control = new ControlChannel(this.connections, keys, nodeId, this.logger, this.peers);
    this.state = new SyncState(this.connections, nodeId, this.logger, {
      resync: (current) => this.resync(current),
      lost: () => {
        this.fanout.hold();
        this.peers.lost();
      },
      ready: () => {
        // The beat during the resync reported the node not ready yet; without another one now,
        // the other nodes would show it not ready until the next check interval.
        this.heartbeat(false);
        // Subscribed again: messages kept in the history may have passed meanwhile.
        this.reconnected();
      },
    });
    this.membership = new Membership(this.connections, keys, nodeId, this.logger, () => this.state.resyncSoon());
    this.view = new RedisClusterView({
      connections: this.connections,
      keys,
      nodeId,
      liveness: this.liveness,
      control: this.control,
      state: this.state,
      local: () => this.local,
      staleReportMs: this.checkIntervalMs * 3,
    });
    this.pacer = new DeliveryPacer((delivery) => this.local?.deliver(delivery), this.logger);
    this.connections.onMessage((pubChannel, payload) => this.onMessage(pubChannel, payload));
  }

  async start(local: LocalNode): Promise<void> {
    this.local = local;
    this.timer = setInterval(() => this.tick(), this.checkIntervalMs);
    this.timer.unref();
    // Both connections keep retrying in the background; start() waits for the first
    // outcome only, so that a node whose Redis is down still serves its own clients.
    await this.state.start();
  }

  notReadyReason(): string | null {
    return this.state.notReadyReason();
  }

  /**
   * A message kept in the history is published by one script call, which gives it its
   * offset, and delivered here from Redis' echo, as on every node; it is refused
   * (ClusterUnavailableError) while Redis is out of reach. Any other message reaches this
   * node's subscribers at once and the other nodes through Redis (held while it is out of
   * reach).
   */
  async publish(publication: Publication): Promise<PublishResult> {
    if (this.local === null) throw new Error('RedisBroker.publish() called before start()');
    if (publication.history !== null) return this.historyStore.publish(publication);
    const { channel, recipients, exclude, frame } = publication;
    const localCount = this.local.deliver({ channel, recipients, exclude, frame, position: null });
    return { count: await this.fanout.publish(publication, localCount), position: null };
  }

  history(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage> {
    return this.historyStore.read(channel, query);
  }

  join(channel: ChannelName, member: Member): Promise<void> {
    return this.membership.join(channel, member);
  }

  leave(channel: ChannelName, connectionId: ConnectionId): Promise<void> {
    return this.membership.leave(channel, connectionId);
  }

  nodes(): Promise<NodeReport[]> {
    return this.view.nodes();
  }

  channels(): Promise<ChannelCount[]> {
    return this.view.channels();
  }

  members(channel: ChannelName): Promise<MemberInfo[]> {
    return this.view.members(channel);
  }

  disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    return this.view.disconnect(target);
  }

  private onMessage(pubChannel: string, payload: Buffer): void {
    if (this.local === null) return;
    const channel = this.membership.channelOf(pubChannel);
    if (channel !== undefined) this.fanout.receive(channel, payload, this.pacer);
    // After the messages received before it (the pacer delays them, it never reorders).
    else
      this.pacer.then(() => {
        if (this.local !== null) this.control.receive(pubChannel, payload, this.local);
      });
  }

  private async resync(current: () => boolean): Promise<SyncSummary> {
    // First the requests to every node and the answers to this one's: a node that beats
    // is expected to answer a disconnect.
    await this.connections.subscriber.subscribe(...this.control.pubChannels);
    await this.liveness.beat();
    const { channels, members, failures } = await this.membership.reconcile();
    if (!current()) return { channels: 0, members: 0, sent: 0, dropped: 0, failures };
    await this.peers.announce();
    // Held messages go out once the other nodes listen again (peer-sync.ts).
    if (this.fanout.held > 0) await this.peers.waitFor(await this.liveness.peers());
    if (!current()) return { channels: 0, members: 0, sent: 0, dropped: 0, failures };
    // The outbox goes out in order; from here on publishes follow it on the same connection.
    const { sent, dropped } = await this.fanout.flush();
    return { channels, members, sent, dropped, failures };
  }

  /** Once the messages received before the resync ended have been delivered: the catch-up reads from after them. */
  private reconnected(): void {
    this.pacer.then(() => {
      if (this.local === null || this.state.isClosing) return;
      try {
        this.local.reconnected();
      } catch (error) {
        this.logger.error({ err: error }, 'the node failed to catch up after a resync');
      }
    });
  }

  /**
   * Every check interval: the watchdog PINGs, the heartbeat (whenever the command
   * connection is up, synced or not), and the check of the other nodes.
   */
  private tick(): void {
    if (this.state.isClosing) return;
    this.connections.watch((problem) => this.state.silent(problem));
    this.heartbeat(true);
  }

  /** Refreshes the liveness key and this node's report; registers again when its entries were removed. */
  private heartbeat(checkOthers: boolean): void {
    if (this.state.isClosing || this.connections.commands.status !== 'ready') return;
    this.liveness
      .beat()
      .then(async (intact) => {
        if (!intact) {
          if (this.state.synced) this.logger.warn(`this node's entries in Redis were removed while it ran (it was silent for longer than ${this.nodeTtlMs / 1000}s); registering again`);
          this.state.sync();
        }
        if (checkOthers && this.state.synced && !this.state.isClosing) await this.liveness.checkOthers();
      })
      .catch((error: unknown) => this.logger.debug({ err: error }, 'heartbeat failed'));
  }

  async close(): Promise<void> {
    if (this.state.isClosing) return;
    this.state.beginClose();
    if (this.timer !== null) clearInterval(this.timer);
    if (this.state.synced) {
      try {
        await this.membership.leaveAll();
        await this.liveness.leave();
      } catch (error) {
        // The other nodes clean out what is left once the liveness key expires.
        this.logger.warn({ err: error }, 'leaving the cluster cleanly failed; other nodes will clean up');
      }
    }
    this.state.endClose();
    this.fanout.hold();
    this.control.close();
    this.membership.clear();
    this.pacer.flush();
    this.local = null;
    await this.connections.quit();
  }
}
