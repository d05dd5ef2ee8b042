/**
 * The hub: this node's open connections and its channel memberships, kept in step with
 * the broker, and local delivery. Every protocol turns its frames into calls here; the
 * hub knows no wire format but the frame a delivery already carries.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RawData } from 'ws';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Identity } from '../auth/tokens.js';
import type { Broker, Delivery, LocalNode, Member, PublishResult } from '../broker/broker.js';
import { fanOut } from './fanout.js';
import type { ChannelFeatures } from '../channels/features.js';
import { ChannelRegistry } from '../channels/registry.js';
import { Connection, type ConnectionContext, type ConnectionLimits, type ConnectionProtocol } from '../connection/connection.js';
import { connectionIds } from '../ids.js';
import type { NodeStats } from '../metrics/stats.js';
import { CloseCode } from '../codes.js';
import type { FlushScheduler } from '../transport/flush-scheduler.js';
import type { SwitchboardSocket } from '../transport/switchboard-socket.js';
import type { HistoryPage, HistoryQuery, StreamPosition } from '../history/history.js';
import type { ChannelMessage, ChannelName, ConnectionId } from '../types.js';
import type { ChannelCount, DisconnectTarget, MemberInfo, NodeReport } from '../views/cluster-view.js';
import { NodeRates } from './node-rates.js';
import { ChannelPositions } from './positions.js';
import { PresenceEvents, type PresenceEncoder } from './presence-events.js';
import { NOTHING_HELD, Recovery, type Joined, type Resume } from './recovery.js';

export type { Joined, Resume } from './recovery.js';

/** How the protocol serializes what the hub sends: once per message, whatever the number of subscribers. */
export interface HubFrames {
  /** A channel message, without its offset (the history adds it). */
  message(message: ChannelMessage): string;
  /** A presence event. */
  presence: PresenceEncoder;
  /** To the subscribers of a channel: messages up to `position` may not all have reached them. */
  position(channel: ChannelName, position: StreamPosition): string;
}

/** The close code `ws` sends when it closes a connection itself, by the error it reports. */
const WS_ERROR_CLOSE_CODES: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
};

export interface HubOptions {
  readonly nodeId: string;
  readonly broker: Broker;
  readonly logger: Logger;
  readonly stats: NodeStats;
  readonly limits: ConnectionLimits;
  /** Writes every connection's frames at the end of the event-loop turn. */
  readonly flushScheduler: FlushScheduler;
  readonly frames: HubFrames;
  /** Which channels have presence and history. */
  readonly features: ChannelFeatures;
  /** Most messages replayed to a resuming subscribe (WS_RECOVERY_MAX). */
  readonly recoveryMax: number;
  /** Null while the node serves normally; otherwise why not (for its report). */
  readonly notReadyReason: () => string | null;
}

/** What the protocol that owns a connection hears from the hub, and how its deliveries look. */
export type ConnectionEvents = ConnectionProtocol;

export class Hub implements LocalNode {
  readonly connections = new Map<ConnectionId, Connection>();
  private readonly registry = new ChannelRegistry<Connection>();
  private readonly nextConnectionId: () => ConnectionId;
  private readonly rates: NodeRates;
  private readonly broker: Broker;
  private readonly logger: Logger;
  private readonly stats: NodeStats;
  private readonly features: ChannelFeatures;
  private readonly positions: ChannelPositions;
  private readonly recovery: Recovery;
  private readonly presence: PresenceEvents;
  private emptied: (() => void) | null = null;
  private goneListener: ((channel: ChannelName, members: readonly Member[], everywhere: boolean) => void) | null = null;
  private membershipListener: ((change: 'join' | 'leave', channel: ChannelName, connection: Connection) => void) | null = null;
  /** What every connection here shares, its events (told to this hub) included. */
  private readonly connectionContext: ConnectionContext;

  constructor(private readonly options: HubOptions) {
    this.broker = options.broker;
    this.logger = options.logger;
    this.stats = options.stats;
    this.features = options.features;
    this.nextConnectionId = connectionIds(options.nodeId);
    this.rates = new NodeRates(options.stats);
    const read = (channel: ChannelName, query: HistoryQuery): Promise<HistoryPage> => this.broker.history(channel, query);
    this.positions = new ChannelPositions({
      read,
      fanOut: (delivery) => this.fanOutHere(delivery),
      lost: (channel, position) => {
        // With its position, so that a subscription replaying meanwhile knows whether it is behind its ack.
        this.fanOutHere({ channel, recipients: null, exclude: null, frame: this.options.frames.position(channel, position), position });
      },
      logger: this.logger,
    });
    this.recovery = new Recovery({ positions: this.positions, read, recoveryMax: options.recoveryMax });
    this.presence = new PresenceEvents(this.broker, this.features, options.frames.presence, (delivery) => this.fanOutHere(delivery), this.logger);
    this.connectionContext = {
      limits: options.limits,
      logger: this.logger,
      stats: this.stats,
      flushScheduler: options.flushScheduler,
      events: {
        slowConsumer: (connection) => this.onSlowConsumer(connection),
        closing: (connection) => this.leaveAll(connection),
        frame: (connection, data, isBinary) => this.onFrame(connection, data, isBinary),
        error: (connection, error) => this.onSocketError(connection, error),
        closed: (connection, code, reason) => this.onClosed(connection, code, reason),
      },
    };
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get channelCount(): number {
    return this.registry.channelCount;
  }

  start(): void {
    this.rates.start();
  }

  /** After the last connection closed: the rates stop, and whatever is still queued is written. */
  stop(): void {
    this.rates.stop();
    this.options.flushScheduler.stop();
  }

  // ---- connections ------------------------------------------------------------------

  /** Takes an accepted WebSocket on: a Connection with its identity, wired to `protocol`. */
  open(socket: SwitchboardSocket, request: { readonly url: string; readonly headers: IncomingHttpHeaders }, ip: string, identity: Identity | null, protocol: ConnectionEvents): Connection {
    const connection = new Connection(this.nextConnectionId(), socket, ip, request, this.connectionContext, protocol);
    if (identity !== null) connection.authenticate(identity);
    this.connections.set(connection.id, connection);
    // Its socket's events reach onFrame, onSocketError and onClosed through the connection.
    socket.listen(connection);
    return connection;
  }

  private onFrame(connection: Connection, data: RawData, isBinary: boolean): void {
    try {
      connection.protocol.frame(connection, data, isBinary);
    } catch (error) {
      // A bug, not the client's doing: this connection goes (1011), the process stays.
      this.logger.error({ err: error, connection: connection.id }, 'frame handling failed');
      connection.close(CloseCode.INTERNAL_ERROR);
    }
  }

  private onSocketError(connection: Connection, error: Error & { code?: string }): void {
    // ws closes the connection itself after a protocol error (1009 for an oversized frame).
    this.logger.debug({ err: error, connection: connection.id }, 'socket error');
    connection.markClosing(WS_ERROR_CLOSE_CODES[error.code ?? ''] ?? CloseCode.PROTOCOL_ERROR);
  }

  private onClosed(connection: Connection, code: number, reason: Buffer): void {
    if (!this.connections.delete(connection.id)) return;
    connection.markClosing(code);
    const close = { code: connection.closeCode ?? code, reason: reason.toString() };
    this.stats.closed(close.code);
    this.logger.debug({ connection: connection.id, code: close.code }, 'disconnected');
    if (this.connections.size === 0) this.emptied?.();
    connection.protocol.closed(connection, close);
  }

  /** Resolves once no connection is open here. */
  whenEmpty(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.emptied = resolve;
    });
  }

  private onSlowConsumer(connection: Connection): void {
    if (connection.closeCode !== null) return;
    this.logger.warn(
      { connection: connection.id, bufferedBytes: connection.socket.bufferedAmount },
      'closing a slow consumer: its outbound backlog passed maxBufferedBytes',
    );
    connection.dropUnsentFrames();
    connection.close(connection.wire.slowConsumer);
  }

  // ---- membership -------------------------------------------------------------------

  /**
   * Puts the connection in `channel`, here and cluster-wide, and announces it on a channel
   * with presence. Resolves once messages published anywhere on the channel reach it;
   * rejects (and takes it out again) when the broker refuses. On a channel with history,
   * its live messages are held until the protocol has acknowledged and calls release():
   * the replay from `resume`, when it asked for one, comes first.
   */
  async join(connection: Connection, channel: ChannelName, resume: Resume | null = null): Promise<Joined> {
    const history = this.features.history(channel) !== null;
    // Without history there is nothing to resume from: asked to, the ack says so.
    const none = resume === null ? NOTHING_HELD : { ...NOTHING_HELD, recovered: false };
    if (connection.channels.has(channel)) return history ? this.alreadyJoined(channel, resume) : none;
    this.registry.subscribe(connection, channel);
    if (history) {
      this.positions.open(channel);
      connection.hold(channel);
    }
    const member = this.member(connection, channel);
    try {
      await this.broker.join(channel, member);
    } catch (error) {
      this.drop(connection, channel, false);
      throw error;
    }
    if (!connection.channels.has(channel)) return none;
    this.presence.announce('join', channel, member);
    this.membershipListener?.('join', channel, connection);
    return history ? this.recovery.recover(connection, channel, resume) : none;
  }

  /** Subscribing twice delivers nothing twice: the position is the node's, and there is nothing to replay. */
  private alreadyJoined(channel: ChannelName, resume: Resume | null): Joined {
    const position = this.positions.position(channel);
    const recovered = resume === null ? null : position !== null && resume.epoch === position.epoch && resume.since === position.offset;
    return { position, recovered, release: () => undefined };
  }

  /** Takes the connection out of `channel`, here and cluster-wide, and announces it on a channel with presence. */
  leave(connection: Connection, channel: ChannelName): void {
    this.drop(connection, channel, true);
  }

  private drop(connection: Connection, channel: ChannelName, announce: boolean): void {
    if (!connection.channels.has(channel)) return;
    connection.release(channel);
    if (this.registry.unsubscribe(connection, channel)) this.positions.close(channel);
    // Through a promise, so that a broker that throws instead of rejecting is logged too.
    Promise.resolve()
      .then(() => this.broker.leave(channel, connection.id))
      .catch((error: unknown) => this.logger.error({ err: error, channel }, 'broker leave failed'));
    if (!announce) return;
    this.presence.announce('leave', channel, this.member(connection));
    this.membershipListener?.('leave', channel, connection);
  }

  /**
   * Takes a connection out of every channel. Runs as soon as the connection starts
   * closing, so that a peer given time to answer the close frame (or a dead one) is no
   * longer delivered to nor counted meanwhile.
   */
  leaveAll(connection: Connection): void {
    for (const channel of connection.channelList()) this.leave(connection, channel);
  }

  /** Tells the broker the connection's new user id in each of its channels (it signed in); presence hears it leave and join again. */
  rejoin(connection: Connection, previous: Member): void {
    const member = this.member(connection);
    for (const channel of connection.channels) {
      Promise.resolve()
        .then(() => this.broker.join(channel, member))
        .catch((error: unknown) => this.logger.error({ err: error, channel }, 'broker join failed'));
      this.presence.announce('leave', channel, previous);
      this.presence.announce('join', channel, member);
    }
  }

  private member(connection: Connection, channel?: ChannelName): Member {
    const info = channel === undefined ? undefined : connection.memberInfo?.get(channel);
    return info === undefined ? { connectionId: connection.id, userId: connection.userId } : { connectionId: connection.id, userId: connection.userId, info };
  }

  // ---- messages ---------------------------------------------------------------------

  /** A connection's publishes may be pipelined: the broker keeps the order of those in flight (Broker.keepsOrderInFlight). */
  get pipelinesPublishes(): boolean {
    return this.broker.keepsOrderInFlight === true;
  }

  /**
   * Publishes to every subscriber of the channel on every node, serialized once for all
   * of them; on a channel with history the store gives it an offset, unless it is
   * `ephemeral` or addressed to `recipients` (the history is for every subscriber to read
   * back). `exclude` receives nothing (a Pusher client event is never echoed). Resolves with
   * the number of connections it was addressed to, and its position.
   * Counted as published once the broker took it.
   */
  async publish(message: ChannelMessage, ephemeral = false, exclude: ConnectionId | null = null): Promise<PublishResult> {
    const recipients = message.recipients === null ? null : [...new Set(message.recipients)];
    const history = ephemeral || recipients !== null ? null : this.features.history(message.channel);
    const seen = history === null ? null : this.positions.position(message.channel);
    const result = await this.broker.publish({ channel: message.channel, recipients, exclude, frame: this.options.frames.message(message), history, seen });
    this.stats.messagesPublished++;
    return result;
  }

  /**
   * Sends a frame already serialized (a protocol's own event, such as a Pusher presence
   * event) to every subscriber of the channel on every node but `exclude`; never kept in the
   * history. Each wire decides whether it is anything for its connections. `everywhere:
   * false` delivers to this node's subscribers only (when every node is told on its own).
   */
  async announce(channel: ChannelName, frame: string, exclude: ConnectionId | null, everywhere = true): Promise<void> {
    if (everywhere) await this.broker.publish({ channel, recipients: null, exclude, frame, history: null });
    else this.fanOutHere({ channel, recipients: null, exclude, frame, position: null });
  }

  /** Reads a channel's history (the broker's store). */
  history(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage> {
    return this.broker.history(channel, query);
  }

  /** LocalNode: the broker hands every message for this node's subscribers here. */
  deliver(delivery: Delivery): number {
    if (delivery.position !== null) return this.positions.deliver(delivery as Delivery & { position: StreamPosition });
    return this.fanOutHere(delivery);
  }

  /** LocalNode: after an outage, every channel with history reads what it missed. */
  reconnected(): void {
    this.positions.reconnected();
  }

  /** LocalNode: members that left with their node. */
  membersGone(channel: ChannelName, members: readonly Member[], everywhere: boolean): void {
    this.presence.gone(channel, members, everywhere);
    this.goneListener?.(channel, members, everywhere);
  }

  /** Hears every subscribe and unsubscribe here, once done (a second protocol's channel webhooks). */
  onMembership(listener: (change: 'join' | 'leave', channel: ChannelName, connection: Connection) => void): void {
    this.membershipListener = listener;
  }

  /** Hears of the members that left with their node (a second protocol's presence), as membersGone() does. */
  onMembersGone(listener: (channel: ChannelName, members: readonly Member[], everywhere: boolean) => void): void {
    this.goneListener = listener;
  }

  private fanOutHere(delivery: Delivery): number {
    const addressed = fanOut(this.registry.subscribers(delivery.channel), delivery);
    this.stats.deliveries += addressed;
    return addressed;
  }

  // ---- this node's part of the cluster views ------------------------------------------

  report(): NodeReport {
    return {
      id: this.nodeId,
      host: hostname(),
      pid: process.pid,
      connections: this.connections.size,
      channels: this.registry.channelCount,
      messagesInPerSecond: this.rates.messagesInPerSecond(),
      messagesOutPerSecond: this.rates.messagesOutPerSecond(),
      uptime: Math.round((Date.now() - this.stats.startedAt) / 1000),
      ready: this.options.notReadyReason() === null,
    };
  }

  channels(): ChannelCount[] {
    return [...this.registry.channelNames()].map((channel) => ({ channel, subscribers: this.registry.subscribers(channel)?.size ?? 0 }));
  }

  members(channel: ChannelName): MemberInfo[] {
    return [...(this.registry.subscribers(channel) ?? [])].map((connection) => {
      const info = connection.memberInfo?.get(channel);
      return info === undefined ? { connectionId: connection.id, userId: connection.userId, node: this.nodeId } : { connectionId: connection.id, userId: connection.userId, node: this.nodeId, info };
    });
  }

  /** Closes this node's connections that match `target` with 1000 "disconnected by server". */
  disconnect(target: DisconnectTarget): number {
    if ('connectionId' in target) {
      const connection = this.connections.get(target.connectionId);
      if (connection === undefined || connection.closeCode !== null) return 0;
      connection.close(CloseCode.NORMAL);
      return 1;
    }
    let closed = 0;
    for (const connection of this.connections.values()) {
      if (connection.userKey !== target.userId || connection.closeCode !== null) continue;
      connection.close(CloseCode.NORMAL);
      closed++;
    }
    return closed;
  }
}
