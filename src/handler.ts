/**
 * WebSocketHandler: the connection layer. It accepts upgrades, speaks the wire protocol
 * of SPEC §2, enforces the limits of SPEC §3 and publishes through a Broker.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { BEARER_SUBPROTOCOL, redactedHeaders, redactedUrl, tokenFromRequest } from './auth/token-source.js';
import { TokenError, TokenVerifier, type Identity } from './auth/tokens.js';
import type { Broker, Delivery, DisconnectResult, DisconnectTarget, MemberInfo, NodeReport } from './broker/broker.js';
import { MemoryBroker } from './broker/memory.js';
import { RedisBroker } from './broker/redis.js';
import { fanOut } from './channels/fanout.js';
import { channelNameProblem, isValidChannelName } from './channels/names.js';
import { ChannelRegistry } from './channels/registry.js';
import { ChannelPermissions } from './channels/rules.js';
import { loadConfig } from './config/load.js';
import type { SwitchboardConfig, SwitchboardOptions } from './config/options.js';
import { Connection, type ConnectionInfo } from './connection/connection.js';
import { Liveness } from './connection/liveness.js';
import { SwitchboardError } from './errors.js';
import { Admission } from './http/admission.js';
import { refuseUpgrade } from './http/refuse.js';
import { requestPath } from './http/request-path.js';
import { defaultLibraryLogger } from './logger.js';
import { RateMeter } from './metrics/rate-meter.js';
import { NodeStats } from './metrics/stats.js';
import { CloseCode, ErrorCode, ErrorText, HandshakeRefusal } from './protocol/codes.js';
import { decodeJson, invalidJson, parseRequest, type ClientRequest, type ProtocolViolation, type RequestId } from './protocol/inbound.js';
import { ack, channelMessageFrame, errorFrame, unixSeconds, type WelcomeFrame } from './protocol/outbound.js';
import type { ChannelMessage, ChannelName, ConnectionId } from './types.js';

/** A subscribe hook refuses with `false` or a reason string; anything else allows. */
export type SubscribeVerdict = boolean | string | void;
/** A message hook refuses with `false` or a reason, or replaces the message with `{ message }`. */
export type MessageVerdict = boolean | string | void | { message: unknown };

export interface OutgoingMessage {
  readonly channel: ChannelName;
  readonly message: unknown;
  readonly recipients: readonly string[] | null;
}

export type ConnectHook = (connection: ConnectionInfo) => void | Promise<void>;
export type DisconnectHook = (connection: ConnectionInfo, close: { code: number; reason: string }) => void | Promise<void>;
export type SubscribeHook = (connection: ConnectionInfo, channel: ChannelName) => SubscribeVerdict | Promise<SubscribeVerdict>;
export type MessageHook = (connection: ConnectionInfo, message: OutgoingMessage) => MessageVerdict | Promise<MessageVerdict>;

export interface ActionContext {
  readonly connection: ConnectionInfo;
  /** The request's `id`, or null. */
  readonly id: RequestId | null;
  readonly handler: WebSocketHandler;
}
/** A custom action; a result other than undefined is sent back as `{success, action, data}`. */
export type ActionHandler = (context: ActionContext, data: unknown) => unknown;

export interface ActionOptions {
  /** Refuse the action with UNAUTHORIZED on connections without a valid token. @default false */
  requireAuth?: boolean;
}

export interface HandlerOptions extends SwitchboardConfig {
  /** The fan-out bus. @default a RedisBroker when `redis.enabled`, otherwise a MemoryBroker (single process) */
  broker?: Broker;
  /** Where to log. @default warnings and errors as JSON lines on stderr */
  logger?: Logger;
}

export interface AttachOptions {
  /** Path on which upgrades are accepted. @default the `path` option */
  path?: string;
}

const TOKEN_REQUIRED = 'a token is required';
const MIN_SECRET_BYTES = 32;

const BUILT_IN_ACTIONS = new Set(['subscribe', 'unsubscribe', 'message', 'ping', 'pong', 'auth', 'presence', 'history']);

/** The close code `ws` sends when it closes a connection itself, by the error it reports. */
const WS_ERROR_CLOSE_CODES: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
};

export class WebSocketHandler {
  readonly options: SwitchboardOptions;
  readonly logger: Logger;
  private readonly broker: Broker;
  private readonly wss: WebSocketServer;
  private readonly registry = new ChannelRegistry<Connection>();
  private readonly connections = new Map<ConnectionId, Connection>();
  private readonly admission: Admission;
  private readonly liveness: Liveness;
  private readonly verifier: TokenVerifier;
  private readonly permissions: ChannelPermissions;
  /** This node's counters, for /metrics. */
  readonly stats = new NodeStats();
  private readonly rateIn = new RateMeter(() => this.stats.messagesPublished);
  private readonly rateOut = new RateMeter(() => this.stats.deliveries);
  private rateTimer: NodeJS.Timeout | null = null;
  /** Unique per node (the broker's, when it has one); prefixes connection ids so that they are unique cluster-wide. */
  readonly nodeId: string;
  private connectionCounter = 0;

  private readonly connectHooks: ConnectHook[] = [];
  private readonly disconnectHooks: DisconnectHook[] = [];
  private readonly subscribeHooks: SubscribeHook[] = [];
  private readonly messageHooks: MessageHook[] = [];
  private readonly actions = new Map<string, { handler: ActionHandler; options: ActionOptions }>();

  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly detachers: Array<() => void> = [];
  /** Disconnect hooks still running; shutdown waits for them. */
  private readonly settling = new Set<Promise<void>>();
  private onLastConnectionClosed: (() => void) | null = null;

  /**
   * Options come from defaults < `.env` < environment < `options` (SPEC §1); a bad
   * value throws a ConfigError naming the variable.
   */
  constructor(options: HandlerOptions = {}) {
    const { broker, logger, ...config } = options;
    this.options = loadConfig({ options: config });
    this.logger = logger ?? defaultLibraryLogger();
    this.nodeId = broker?.nodeId ?? randomBytes(6).toString('base64url');
    this.broker = broker ?? (this.options.redis.enabled ? new RedisBroker(this.options.redis, { nodeId: this.nodeId, logger: this.logger }) : new MemoryBroker());
    this.admission = new Admission(this.options);
    this.liveness = new Liveness(this.connections, this.options);
    this.verifier = new TokenVerifier(this.options.auth);
    const secret = this.options.auth.secret;
    if (secret !== null && Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
      // RFC 7518 §3.2: an HMAC key shorter than the hash output can be brute-forced offline.
      this.logger.warn(`TOKEN_SECRET is shorter than ${MIN_SECRET_BYTES} bytes; anyone holding one token could guess it and forge others (try: openssl rand -base64 32)`);
    }
    this.permissions = new ChannelPermissions(this.options.channels?.rules ?? null);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      // A browser sends its token as the subprotocols `bearer, <jwt>`; the server selects `bearer`.
      handleProtocols: (protocols) => (protocols.has(BEARER_SUBPROTOCOL) ? BEARER_SUBPROTOCOL : false),
    });
  }

  // ---- application API ------------------------------------------------------------

  onConnect(hook: ConnectHook): this {
    this.connectHooks.push(hook);
    return this;
  }

  onDisconnect(hook: DisconnectHook): this {
    this.disconnectHooks.push(hook);
    return this;
  }

  onSubscribe(hook: SubscribeHook): this {
    this.subscribeHooks.push(hook);
    return this;
  }

  onMessage(hook: MessageHook): this {
    this.messageHooks.push(hook);
    return this;
  }

  /** Registers a custom action that clients call as `{"action": name, "data": ...}`. */
  onAction(name: string, handler: ActionHandler, options: ActionOptions = {}): this {
    if (typeof name !== 'string' || name === '') throw new Error('onAction: the action name must be a non-empty string');
    if (BUILT_IN_ACTIONS.has(name)) throw new Error(`onAction: '${name}' is a built-in action`);
    this.actions.set(name, { handler, options });
    return this;
  }

  /**
   * Publishes from the application to every subscriber of `channel` (on every node), with
   * `"sender": null`. Resolves with the number of connections it was addressed to.
   */
  async publish(channel: ChannelName, message: unknown, options: { recipients?: ReadonlyArray<string | number> } = {}): Promise<number> {
    if (!isValidChannelName(channel)) {
      throw new SwitchboardError(ErrorCode.INVALID_CHANNEL, typeof channel === 'string' ? (channelNameProblem(channel) as string) : 'channel must be a string');
    }
    if (message === null || message === undefined) throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, 'message must not be null');
    const recipients = options.recipients === undefined ? null : options.recipients.map(String);
    this.stats.messagesPublished++;
    return this.broker.publish(channelDelivery({ channel, message, sender: null, userId: null, time: unixSeconds(), recipients }));
  }

  /** Connections open on this node. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Channels with subscribers on this node. */
  get channelCount(): number {
    return this.registry.channelCount;
  }

  get isClosing(): boolean {
    return this.closing !== null;
  }

  /** Null when this node serves normally; otherwise why not (Redis unreachable, shutting down). For /readyz. */
  notReadyReason(): string | null {
    if (this.closing !== null) return 'shutting down';
    return this.broker.notReadyReason();
  }

  /** Whether the broker reaches the rest of the cluster (always, for a single process). */
  brokerReady(): boolean {
    return this.broker.notReadyReason() === null;
  }

  /** Whether this node scales out through Redis. */
  get usesRedis(): boolean {
    return this.broker instanceof RedisBroker;
  }

  // ---- cluster-wide views (the HTTP API) ------------------------------------------------

  /** This node's figures. */
  report(): NodeReport {
    return {
      id: this.nodeId,
      host: hostname(),
      pid: process.pid,
      connections: this.connections.size,
      channels: this.registry.channelCount,
      messagesInPerSecond: round(this.rateIn.perSecond()),
      messagesOutPerSecond: round(this.rateOut.perSecond()),
      uptime: Math.round((Date.now() - this.stats.startedAt) / 1000),
      ready: this.notReadyReason() === null,
    };
  }

  /** Every node's figures (this one's alone without a cluster), and the totals. */
  async clusterStats(): Promise<{ nodes: NodeReport[]; connections: number; channels: number; messagesInPerSecond: number; messagesOutPerSecond: number; uptime: number }> {
    const nodes = (await this.broker.nodes?.()) ?? [this.report()];
    // Without the cluster's view (Redis down) the channels are this node's own.
    const channels = await this.clusterChannels().catch(() => [...this.registry.channelNames()]);
    const sum = (pick: (node: NodeReport) => number): number => round(nodes.reduce((total, node) => total + pick(node), 0));
    return {
      nodes,
      connections: sum((node) => node.connections),
      channels: channels.length,
      messagesInPerSecond: sum((node) => node.messagesInPerSecond),
      messagesOutPerSecond: sum((node) => node.messagesOutPerSecond),
      uptime: this.report().uptime,
    };
  }

  /** Channels with subscribers on any node, most subscribed first. */
  async clusterChannels(): Promise<Array<{ channel: ChannelName; subscribers: number }>> {
    const channels = (await this.broker.channels?.()) ?? [...this.registry.channelNames()].map((channel) => ({ channel, subscribers: this.registry.subscribers(channel)?.size ?? 0 }));
    return channels.sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1));
  }

  /** The members of a channel on every node. */
  async channelMembers(channel: ChannelName): Promise<MemberInfo[]> {
    const members = await this.broker.members?.(channel);
    if (members !== undefined) return members;
    return [...(this.registry.subscribers(channel) ?? [])].map((connection) => ({ connectionId: connection.id, userId: connection.userKey, node: this.nodeId }));
  }

  /** Closes the matching connections on every node with 1000; resolves with how many (and the nodes that did not answer). */
  async disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    return (await this.broker.disconnect?.(target)) ?? { disconnected: this.disconnectHere(target), unanswered: [] };
  }

  /** Closes this node's connections that match `target` with 1000 "disconnected by server". */
  private disconnectHere(target: DisconnectTarget): number {
    let closed = 0;
    if ('connectionId' in target) {
      const connection = this.connections.get(target.connectionId);
      if (connection === undefined || connection.closeCode !== null) return 0;
      connection.close(CloseCode.NORMAL);
      return 1;
    }
    for (const connection of this.connections.values()) {
      if (connection.userKey !== target.userId || connection.closeCode !== null) continue;
      connection.close(CloseCode.NORMAL);
      closed++;
    }
    return closed;
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Starts the broker and the timers. Idempotent; `attach` and `createServer` call it. */
  start(): Promise<void> {
    this.started ??= this.broker
      .start({ deliver: (delivery) => this.deliver(delivery), report: () => this.report(), disconnect: (target) => this.disconnectHere(target) })
      .then(() => {
        if (this.closing !== null) return;
        this.liveness.start();
        this.rateTimer = setInterval(() => {
          this.rateIn.sample();
          this.rateOut.sample();
        }, 1000);
        this.rateTimer.unref();
      });
    return this.started;
  }

  /**
   * Accepts WebSocket upgrades on `server` at `path`. Upgrades on other paths are left to
   * other listeners, or answered 404 when nobody else listens. Returns a function that
   * detaches again.
   */
  attach(server: HttpServer | HttpsServer, options: AttachOptions = {}): () => void {
    const path = options.path ?? this.options.path;
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const requested = requestPath(request.url);
      if (requested !== path) {
        if (server.listenerCount('upgrade') === 1) {
          this.stats.handshakeRefused(HandshakeRefusal.NOT_FOUND.reason);
          refuseUpgrade(socket, HandshakeRefusal.NOT_FOUND.status, `no WebSocket endpoint at ${requested}`);
        }
        return;
      }
      this.handleUpgrade(request, socket, head);
    };
    server.on('upgrade', listener);
    this.start().catch((error: unknown) => this.logger.error({ err: error }, 'handler failed to start'));
    const detach = (): void => {
      server.off('upgrade', listener);
    };
    this.detachers.push(detach);
    return detach;
  }

  /**
   * Refuses new connections (503), closes every client with 1001, waits up to
   * `shutdownTimeout` for them to finish and for disconnect hooks to settle, then cuts
   * the rest and closes the broker.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // Upgrade listeners stay attached while draining, so handshakes arriving now get 503
    // rather than falling through to the application's own request handling.
    this.admission.refuseAll();
    const budgetMs = this.options.shutdownTimeout * 1000;
    const deadline = Date.now() + budgetMs;
    const allClosed = new Promise<void>((resolve) => {
      if (this.connections.size === 0) resolve();
      else this.onLastConnectionClosed = resolve;
    });
    for (const connection of this.connections.values()) connection.close(CloseCode.GOING_AWAY, undefined, budgetMs);
    await withDeadline(allClosed, deadline);
    for (const connection of this.connections.values()) connection.terminate();
    await allClosed;
    await withDeadline(Promise.allSettled([...this.settling]), deadline);
    for (const detach of this.detachers) detach();
    this.liveness.stop();
    if (this.rateTimer !== null) clearInterval(this.rateTimer);
    await this.started?.catch(() => undefined);
    await this.broker.close();
  }

  // ---- handshake --------------------------------------------------------------------

  /** Handles one upgrade request: refuses it with a plain HTTP answer, or accepts it. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const ip = request.socket.remoteAddress ?? 'unknown';
    const refusal = this.admission.admit(request, ip);
    if (refusal !== null) {
      this.refuse(socket, ip, refusal.kind, refusal.message);
      return;
    }
    let accepted = false;
    // The slot goes back when the socket closes before it became a WebSocket: a refusal
    // below, a client that left during token verification, or a handshake ws rejected.
    socket.once('close', () => {
      if (!accepted) this.admission.release(ip);
    });
    this.authenticateHandshake(request).then(
      (identity) => {
        if (socket.destroyed) return;
        if (this.closing !== null) {
          this.refuse(socket, ip, HandshakeRefusal.SHUTTING_DOWN, 'server is shutting down');
          return;
        }
        this.wss.handleUpgrade(request, socket, head, (ws) => {
          accepted = true;
          this.accept(ws, request, ip, identity);
        });
      },
      (error: unknown) => {
        if (!(error instanceof TokenError)) this.logger.error({ err: error }, 'token verification failed');
        else this.logger.debug({ ip, reason: error.message }, 'token refused');
        // The body says only what the client can act on; the detail stays in the log.
        const message =
          error instanceof TokenError ? (error.code === ErrorCode.TOKEN_EXPIRED ? 'token expired' : error.message === TOKEN_REQUIRED ? TOKEN_REQUIRED : 'invalid token') : 'authentication failed';
        this.refuse(socket, ip, HandshakeRefusal.UNAUTHORIZED, message);
      },
    );
  }

  /** The identity of the handshake's token; null for an anonymous connection when those are allowed. */
  private async authenticateHandshake(request: IncomingMessage): Promise<Identity | null> {
    const token = tokenFromRequest(request);
    if (token === null) {
      if (this.options.allowAnonymous) return null;
      throw new TokenError(ErrorCode.TOKEN_INVALID, TOKEN_REQUIRED);
    }
    return this.verifier.verify(token);
  }

  private refuse(socket: Duplex, ip: string, kind: HandshakeRefusal, message: string): void {
    this.stats.handshakeRefused(kind.reason);
    this.logger.debug({ ip, reason: kind.reason }, 'handshake refused');
    refuseUpgrade(socket, kind.status, message);
  }

  private accept(socket: WebSocket, request: IncomingMessage, ip: string, identity: Identity | null): void {
    const id = `${this.nodeId}-${(++this.connectionCounter).toString(36)}`;
    const connection = new Connection(
      id,
      socket,
      ip,
      { url: redactedUrl(request.url ?? '/'), headers: redactedHeaders(request.headers) },
      { maxMessagesPerMinute: this.options.maxMessagesPerMinute, maxBufferedBytes: this.options.maxBufferedBytes },
      this.logger,
      {
        slowConsumer: (slow) => this.onSlowConsumer(slow),
        closing: (closing) => this.leaveAllChannels(closing),
      },
      this.stats,
    );
    if (identity !== null) connection.authenticate(identity);
    this.connections.set(id, connection);

    socket.on('message', (data, isBinary) => {
      try {
        this.onFrame(connection, data, isBinary);
      } catch (error) {
        // A bug, not the client's doing: this connection goes (1011), the process stays.
        this.logger.error({ err: error, connection: id }, 'frame handling failed');
        connection.close(CloseCode.INTERNAL_ERROR);
      }
    });
    const alive = (): void => {
      connection.lastSeen = Date.now();
    };
    socket.on('pong', alive);
    socket.on('ping', alive);
    socket.on('error', (error: Error & { code?: string }) => {
      // ws closes the connection itself after a protocol error (1009 for an oversized frame).
      this.logger.debug({ err: error, connection: id }, 'socket error');
      connection.markClosing(WS_ERROR_CLOSE_CODES[error.code ?? ''] ?? CloseCode.PROTOCOL_ERROR);
    });
    socket.on('close', (code, reason) => this.onClose(connection, code, reason.toString()));

    if (this.closing !== null) {
      connection.close(CloseCode.GOING_AWAY);
      return;
    }
    const welcome: WelcomeFrame = {
      action: 'welcome',
      connection_id: id,
      heartbeat_interval: this.options.heartbeatInterval,
      authenticated: connection.authenticated,
      user_id: connection.userId,
      role: connection.role,
    };
    connection.send(welcome);
    this.logger.debug({ connection: id, ip }, 'connected');
    if (this.connectHooks.length > 0) {
      connection.enqueue(async () => {
        try {
          for (const hook of this.connectHooks) await hook(connection);
        } catch (error) {
          this.replyWithError(connection, error, null, null);
        }
      });
    }
  }

  private onClose(connection: Connection, code: number, reason: string): void {
    if (!this.connections.delete(connection.id)) return;
    connection.markClosing(code);
    this.admission.release(connection.ip);
    const close = { code: connection.closeCode ?? code, reason };
    this.stats.closed(close.code);
    this.logger.debug({ connection: connection.id, code: close.code }, 'disconnected');
    if (this.connections.size === 0) this.onLastConnectionClosed?.();
    if (this.disconnectHooks.length === 0) return;
    // After the request (or connect hook) in flight has finished, so the application
    // never sees a disconnect before the connect it belongs to.
    const settled = connection
      .idle()
      .then(async () => {
        for (const hook of this.disconnectHooks) await hook(connection, close);
      })
      .catch((error: unknown) => this.logger.error({ err: error, connection: connection.id }, 'disconnect hook failed'))
      .finally(() => this.settling.delete(settled));
    this.settling.add(settled);
  }

  /**
   * Takes a connection out of every channel. Runs as soon as the connection starts
   * closing, so that a peer given time to answer the close frame (or a dead one) is no
   * longer delivered to nor counted meanwhile.
   */
  private leaveAllChannels(connection: Connection): void {
    for (const channel of [...connection.channels]) this.leaveChannel(connection, channel);
  }

  /** Takes the connection out of `channel`, here and cluster-wide. */
  private leaveChannel(connection: Connection, channel: ChannelName): void {
    if (!connection.channels.has(channel)) return;
    this.registry.unsubscribe(connection, channel);
    // Through a promise, so that a broker that throws instead of rejecting is logged too.
    Promise.resolve()
      .then(() => this.broker.leave(channel, connection.id))
      .catch((error: unknown) => this.logger.error({ err: error, channel }, 'broker leave failed'));
  }

  /** Tells the broker the connection's (new) user id in each of its channels. */
  private rejoinChannels(connection: Connection): void {
    for (const channel of connection.channels) {
      Promise.resolve()
        .then(() => this.broker.join(channel, { connectionId: connection.id, userId: connection.userKey }))
        .catch((error: unknown) => this.logger.error({ err: error, channel }, 'broker join failed'));
    }
  }

  // ---- inbound frames ---------------------------------------------------------------

  private onFrame(connection: Connection, data: RawData, isBinary: boolean): void {
    const now = Date.now();
    connection.lastSeen = now;
    this.stats.framesReceived++;
    this.stats.bytesReceived += Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    if (!connection.isOpen) return;
    // The sweep closes expired connections within a second; no frame is served meanwhile.
    if (connection.tokenExpiresAt !== null && now >= connection.tokenExpiresAt) {
      connection.close(CloseCode.TOKEN_EXPIRED);
      return;
    }

    if (isBinary) {
      if (this.admit(connection, now, null, null)) {
        this.reply(connection, {
          code: ErrorCode.INVALID_MESSAGE,
          error: 'binary frames are not supported; send JSON text frames',
          action: null,
          id: null,
        });
      }
      return;
    }

    const frame = decodeJson((data as Buffer).toString('utf8'));
    if (frame === undefined) {
      if (this.admit(connection, now, null, null)) this.reply(connection, invalidJson());
      return;
    }

    const parsed = parseRequest(frame, this.actions);
    if (!parsed.ok) {
      if (this.admit(connection, now, parsed.violation.action, parsed.violation.id)) this.reply(connection, parsed.violation);
      return;
    }
    const request = parsed.request;
    if (request.action === 'pong') {
      // Answers to our pings do not count against the rate limit (SPEC §3); pongs nobody
      // asked for do, or they would be a way around it.
      if (connection.unansweredPings > 0) connection.unansweredPings--;
      else this.admit(connection, now, 'pong', request.id);
      return;
    }
    if (!this.admit(connection, now, request.action === 'custom' ? request.name : request.action, request.id)) return;
    connection.enqueue(() => this.dispatch(connection, request));
  }

  /** Applies the rate limit; replies RATE_LIMITED or closes 4029 and returns false when over it. */
  private admit(connection: Connection, now: number, action: string | null, id: RequestId | null): boolean {
    const waitMs = connection.rateLimiter.take(now);
    if (waitMs === 0) return true;
    this.stats.rateLimited++;
    if (connection.rateLimiter.refusedSinceLastAccepted > this.options.maxMessagesPerMinute) {
      this.logger.info({ connection: connection.id }, 'closing a connection that kept flooding');
      connection.close(CloseCode.FLOODING);
      return false;
    }
    const frame = errorFrame(ErrorCode.RATE_LIMITED, ErrorText.RATE_LIMITED, action, id, { retry_after: waitMs / 1000 });
    connection.enqueue(() => connection.send(frame));
    return false;
  }

  /**
   * Answers a refused frame. The answer waits behind the connection's pending requests, so
   * replies always come in the order the frames were sent (GEMVC clients send no ids).
   */
  private reply(connection: Connection, violation: ProtocolViolation): void {
    connection.enqueue(() => connection.send(errorFrame(violation.code, violation.error, violation.action, violation.id)));
  }

  private async dispatch(connection: Connection, request: Exclude<ClientRequest, { action: 'pong' }>): Promise<void> {
    const action = request.action === 'custom' ? request.name : request.action;
    try {
      switch (request.action) {
        case 'ping':
          // SPEC §2: the pong reply is not an ack and carries no `success` field.
          connection.send(request.id === null ? { action: 'pong', time: unixSeconds() } : { action: 'pong', time: unixSeconds(), id: request.id });
          return;
        case 'auth':
          return await this.authenticate(connection, request.token, request.id);
        case 'subscribe':
          return await this.subscribe(connection, request);
        case 'unsubscribe':
          return this.unsubscribe(connection, request.channel, request.id);
        case 'message':
          return await this.publishFrom(connection, request);
        case 'custom':
          return await this.runAction(connection, request.name, request.data, request.id);
      }
    } catch (error) {
      this.replyWithError(connection, error, action, request.id);
    }
  }

  private replyWithError(connection: Connection, error: unknown, action: string | null, id: RequestId | null): void {
    if (error instanceof SwitchboardError) {
      connection.send(errorFrame(error.code, error.message, action, id));
      return;
    }
    this.logger.error({ err: error, connection: connection.id, action }, 'request failed');
    connection.send(errorFrame(ErrorCode.INTERNAL_ERROR, ErrorText.INTERNAL_ERROR, action, id));
  }

  /**
   * The `auth` action (SPEC §5): authenticates an anonymous connection, or renews the
   * token of an authenticated one before it expires — for the same user only.
   */
  private async authenticate(connection: Connection, token: string, id: RequestId | null): Promise<void> {
    let identity: Identity;
    try {
      identity = await this.verifier.verify(token);
    } catch (error) {
      if (error instanceof TokenError) throw new SwitchboardError(error.code, error.message);
      throw error;
    }
    if (!connection.isOpen) return;
    if (connection.authenticated && connection.userKey !== String(identity.userId)) {
      throw new SwitchboardError(ErrorCode.FORBIDDEN, 'a connection cannot change its user; reconnect to sign in as another user');
    }
    const wasAnonymous = !connection.authenticated;
    connection.authenticate(identity);
    connection.send(ack({ action: 'auth', authenticated: true, user_id: identity.userId, role: identity.role }, id));
    this.dropForbiddenSubscriptions(connection);
    // Signed in: `recipients` on other nodes must now count this connection as its user.
    if (wasAnonymous) this.rejoinChannels(connection);
  }

  /**
   * A renewed token may carry fewer roles: channels the connection may no longer read are
   * left, and the client is told with `{"action":"unsubscribe","channel":C,"reason":"forbidden"}`.
   */
  private dropForbiddenSubscriptions(connection: Connection): void {
    for (const channel of [...connection.channels]) {
      if (this.permissions.can('subscribe', channel, connection)) continue;
      this.leaveChannel(connection, channel);
      connection.send({ action: 'unsubscribe', channel, reason: 'forbidden' });
    }
  }

  private async subscribe(connection: Connection, request: Extract<ClientRequest, { action: 'subscribe' }>): Promise<void> {
    const { channel, id } = request;
    const reply = (): void => {
      const body: Record<string, unknown> = { action: 'subscribe', channel };
      // No history is kept for any channel yet, so a resume point can never be honoured.
      if (request.since !== null) body.recovered = false;
      connection.send(ack(body, id));
    };
    if (!this.permissions.can('subscribe', channel, connection)) {
      throw new SwitchboardError(ErrorCode.FORBIDDEN, `not allowed to subscribe to ${channel}`);
    }
    if (connection.channels.has(channel)) {
      reply();
      return;
    }
    if (connection.channels.size >= this.options.maxChannelsPerConnection) {
      throw new SwitchboardError(
        ErrorCode.TOO_MANY_CHANNELS,
        `a connection may subscribe to at most ${this.options.maxChannelsPerConnection} channels`,
      );
    }
    for (const hook of this.subscribeHooks) refuseIf(await hook(connection, channel), `subscribing to ${channel} is not allowed`);
    if (!connection.isOpen) return;
    this.registry.subscribe(connection, channel);
    try {
      await this.broker.join(channel, { connectionId: connection.id, userId: connection.userKey });
    } catch (error) {
      this.leaveChannel(connection, channel);
      throw error;
    }
    if (!connection.isOpen) return;
    reply();
  }

  private unsubscribe(connection: Connection, channel: ChannelName, id: RequestId | null): void {
    this.leaveChannel(connection, channel);
    connection.send(ack({ action: 'unsubscribe', channel }, id));
  }

  private async publishFrom(connection: Connection, request: Extract<ClientRequest, { action: 'message' }>): Promise<void> {
    const { channel, recipients, id } = request;
    if (!this.permissions.can('publish', channel, connection)) throw new SwitchboardError(ErrorCode.FORBIDDEN, `not allowed to publish to ${channel}`);
    if (!connection.channels.has(channel)) throw new SwitchboardError(ErrorCode.NOT_SUBSCRIBED, ErrorText.NOT_SUBSCRIBED);
    let message = request.message;
    for (const hook of this.messageHooks) {
      const verdict = await hook(connection, { channel, message, recipients });
      refuseIf(verdict, `publishing to ${channel} is not allowed`);
      if (typeof verdict === 'object' && verdict !== null) {
        if (verdict.message === null || verdict.message === undefined) throw new Error('a message hook replaced the message with null');
        message = verdict.message;
      }
    }
    this.stats.messagesPublished++;
    const recipientsCount = await this.broker.publish(
      channelDelivery({ channel, message, sender: connection.id, userId: connection.userId, time: unixSeconds(), recipients }),
    );
    connection.send(ack({ action: 'message_sent', channel, recipients_count: recipientsCount }, id));
  }

  private async runAction(connection: Connection, name: string, data: unknown, id: RequestId | null): Promise<void> {
    // parseRequest only lets through names registered here.
    const action = this.actions.get(name) as { handler: ActionHandler; options: ActionOptions };
    if (action.options.requireAuth === true && !connection.authenticated) {
      throw new SwitchboardError(ErrorCode.UNAUTHORIZED, `action '${name}' needs an authenticated connection`);
    }
    const result: unknown = await action.handler({ connection, id, handler: this }, data);
    if (result !== undefined) connection.send(ack({ action: name, data: result }, id));
  }

  /** LocalDelivery: the broker hands every message for this node's subscribers here. */
  private deliver(delivery: Delivery): number {
    const addressed = fanOut(this.registry.subscribers(delivery.channel), delivery);
    this.stats.deliveries += addressed;
    return addressed;
  }

  private onSlowConsumer(connection: Connection): void {
    if (connection.closeCode !== null) return;
    this.logger.warn(
      { connection: connection.id, bufferedBytes: connection.socket.bufferedAmount },
      'closing a slow consumer: its outbound backlog passed maxBufferedBytes',
    );
    connection.dropUnsentFrames();
    connection.close(CloseCode.SLOW_CONSUMER);
  }
}

/** Rates to two decimals: what a dashboard shows. */
function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Serializes a message once, for every subscriber on every node. */
function channelDelivery(message: ChannelMessage): Delivery {
  return { channel: message.channel, recipients: message.recipients === null ? null : [...new Set(message.recipients)], frame: channelMessageFrame(message) };
}

/** A hook's refusal: `false`, or a reason string (an empty one gets the default reason). */
function refuseIf(verdict: unknown, defaultReason: string): void {
  if (verdict === false) throw new SwitchboardError(ErrorCode.FORBIDDEN, defaultReason);
  if (typeof verdict === 'string') throw new SwitchboardError(ErrorCode.FORBIDDEN, verdict === '' ? defaultReason : verdict);
}

/** Waits for `promise`, but not past `deadline` (ms since the epoch). */
async function withDeadline(promise: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, Math.min(deadline - Date.now(), 2 ** 31 - 1)));
  });
  await Promise.race([promise, expired]);
  clearTimeout(timer);
}
