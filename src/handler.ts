/**
 * WebSocketHandler: the library's entry point. It puts the parts together (the way in,
 * the hub, the native protocol, the broker) and is what an application talks to:
 * hooks and actions, publishing, the cluster views, and the lifecycle. The work itself
 * happens in the parts.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { historyOf, presenceOf } from './actions/channel-state.js';
import { publishFromApplication } from './actions/publish.js';
import type { ActionScope } from './actions/scope.js';
import { redactedHeaders, redactedUrl } from './auth/token-source.js';
import { TokenVerifier, type Identity } from './auth/tokens.js';
import type { BrokerWithView } from './broker/broker.js';
import { createBroker } from './broker/factory.js';
import { ChannelFeatures } from './channels/features.js';
import { ChannelPermissions } from './channels/rules.js';
import { layerFromOptions } from './config/fields.js';
import type { SwitchboardOptions } from './config/options.js';
import { alreadyResolved, resolveOptions } from './config/resolve.js';
import { Liveness } from './connection/liveness.js';
import { requestPath } from './connection/request-path.js';
import { UpgradeGate, type Route } from './connection/upgrade.js';
import { SwitchboardError } from './errors.js';
import { Hooks, type ActionContextOf, type ActionHandlerOf, type ActionOptions, type ConnectHook, type DisconnectHook, type MessageHook, type SubscribeHook } from './hooks.js';
import type { AttachOptions, HandlerOptions, Published, PublishMessageOptions } from './handler-options.js';
import { Hub, type ConnectionEvents } from './hub/hub.js';
import { newNodeId } from './ids.js';
import { defaultLibraryLogger } from './logger.js';
import { NodeStats } from './metrics/stats.js';
import { CloseCode, ErrorCode, HandshakeRefusal } from './codes.js';
import { parseRequest } from './protocol/inbound.js';
import { NativeProtocol } from './protocol/native-protocol.js';
import { channelMessageFrame, pingFrame, positionFrame, presenceFrame } from './protocol/outbound.js';
import { FlushScheduler } from './transport/flush-scheduler.js';
import { withDeadline } from './clock.js';
import { appKeyOf, PusherProtocol } from './pusher/pusher-protocol.js';
import { pusherApp } from './pusher/pusher-options.js';
import { serverToUserOf } from './pusher/pusher-user.js';
import type { SwitchboardSocket } from './transport/switchboard-socket.js';
import type { HistoryPage, HistoryRequest } from './history/history.js';
import type { ChannelName } from './types.js';
import { ClusterStatus, type ClusterStats } from './views/cluster-status.js';
import type { ChannelCount, DisconnectResult, DisconnectTarget, MemberInfo, Presence } from './views/cluster-view.js';

export type { HistoryPage, HistoryRequest, StoredMessage, StreamPosition } from './history/history.js';
export type { Presence } from './views/cluster-view.js';
export type { AttachOptions, HandlerOptions, Published, PublishMessageOptions } from './handler-options.js';
export type { ActionOptions, ConnectHook, DisconnectHook, MessageHook, MessageVerdict, OutgoingMessage, SubscribeHook, SubscribeVerdict } from './hooks.js';
/** What a custom action is called with. */
export type ActionContext = ActionContextOf<WebSocketHandler>;
/** A custom action; a result other than undefined is sent back as `{success, action, data}`. */
export type ActionHandler = ActionHandlerOf<WebSocketHandler>;

const MIN_SECRET_BYTES = 32;
const NO_ACTIONS = new Map<string, never>();

export class WebSocketHandler {
  readonly options: SwitchboardOptions;
  readonly logger: Logger;
  /** Unique per node (the broker's, when it has one); prefixes connection ids so that they are unique cluster-wide. */
  readonly nodeId: string;
  /** This node's counters, for /metrics. */
  readonly stats = new NodeStats();
  /** What the HTTP API shows of the cluster. */
  readonly cluster: ClusterStatus;
  private readonly broker: BrokerWithView;
  private readonly hub: Hub;
  private readonly features: ChannelFeatures;
  private readonly hooks = new Hooks<WebSocketHandler>(this);
  private readonly gate: UpgradeGate;
  private readonly protocol: NativeProtocol;
  /** The Pusher endpoint at /app/{key}, when PUSHER_APP_ID, _KEY and _SECRET are set. */
  private readonly pusher: PusherProtocol | null;
  /** What its connections tell the handler, one object per protocol (made on the first connection). */
  private nativeEvents: ConnectionEvents | null = null;
  private pusherEvents: ConnectionEvents | null = null;
  private readonly liveness: Liveness;
  private readonly flushScheduler: FlushScheduler;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private readonly detachers: Array<() => void> = [];
  /** Disconnect hooks still running; shutdown waits for them. */
  private readonly settling = new Set<Promise<void>>();

  /**
   * Options are defaults < `options`: the handler reads no environment. For defaults <
   * `.env` < environment < code, pass `loadConfig({ options })`. A bad value throws a
   * ConfigError naming the variable.
   */
  constructor(options: HandlerOptions = {}) {
    const { broker, logger, brokerTuning, ...config } = options;
    // Resolved by whoever started the process (the CLI, createServer, loadConfig) and not again.
    this.options = alreadyResolved(config) ?? resolveOptions(layerFromOptions(config));
    this.logger = logger ?? defaultLibraryLogger();
    this.nodeId = broker?.nodeId ?? newNodeId();
    this.broker = broker ?? createBroker(this.options, { logger: this.logger, nodeId: this.nodeId, inWorker: false, ...(brokerTuning !== undefined && { tuning: brokerTuning }) });
    const verifier = new TokenVerifier(this.options.auth);
    const secret = this.options.auth.secret;
    if (secret !== null && Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
      // RFC 7518 §3.2: an HMAC key shorter than the hash output can be brute-forced offline.
      this.logger.warn(`TOKEN_SECRET is shorter than ${MIN_SECRET_BYTES} bytes; anyone holding one token could guess it and forge others (try: openssl rand -base64 32)`);
    }
    this.flushScheduler = new FlushScheduler(this.logger);
    const rules = this.options.channels?.rules ?? null;
    this.features = new ChannelFeatures(rules, this.options, this.options.pusher.appId !== null);
    this.hub = new Hub({
      nodeId: this.nodeId,
      broker: this.broker,
      logger: this.logger,
      stats: this.stats,
      limits: { maxMessagesPerMinute: this.options.maxMessagesPerMinute, maxBufferedBytes: this.options.maxBufferedBytes },
      notReadyReason: () => this.notReadyReason(),
      flushScheduler: this.flushScheduler,
      frames: { message: channelMessageFrame, presence: presenceFrame, position: positionFrame },
      features: this.features,
      recoveryMax: this.options.recoveryMax,
    });
    const pusher = pusherApp(this.options);
    const scope: ActionScope = {
      hub: this.hub,
      hooks: this.hooks,
      permissions: new ChannelPermissions(rules, pusher !== null),
      features: this.features,
      members: (channel) => this.broker.members(channel),
      verifier,
      maxChannelsPerConnection: this.options.maxChannelsPerConnection,
    };
    this.protocol = new NativeProtocol(scope, this.options, this.stats, this.logger);
    this.pusher = pusher === null ? null : new PusherProtocol(scope, pusher, this.options.maxMessagesPerMinute, this.stats, this.logger);
    this.gate = new UpgradeGate(this.options, verifier, this.stats, this.logger, (...accepted) => this.accept(...accepted));
    this.liveness = new Liveness(this.hub.connections, this.options, pingFrame);
    this.cluster = new ClusterStatus(this.broker, this.hub);
  }

  // ---- application API ------------------------------------------------------------

  onConnect(hook: ConnectHook): this {
    this.hooks.onConnect(hook);
    return this;
  }

  onDisconnect(hook: DisconnectHook): this {
    this.hooks.onDisconnect(hook);
    return this;
  }

  onSubscribe(hook: SubscribeHook): this {
    this.hooks.onSubscribe(hook);
    return this;
  }

  onMessage(hook: MessageHook): this {
    this.hooks.onMessage(hook);
    return this;
  }

  /** Registers a custom action that clients call as `{"action": name, "data": ...}`. */
  onAction(name: string, handler: ActionHandler, options: ActionOptions = {}): this {
    this.hooks.onAction(name, handler, options);
    return this;
  }

  /**
   * Publishes from the application to every subscriber of `channel` (on every node), with
   * `"sender": null`. Validated as a client's message is (SPEC §2): a bad channel, a null
   * message or bad `recipients` throw a SwitchboardError. Resolves with the number of
   * connections it was addressed to; publishMessage() tells its offset too.
   */
  async publish(channel: ChannelName, message: unknown, options: PublishMessageOptions = {}): Promise<number> {
    return (await this.publishMessage(channel, message, options)).recipientsCount;
  }

  /**
   * publish(), resolving with the message's position in the history as well (on a channel
   * with history). With Redis out of reach, a message to be kept is refused
   * (ClusterUnavailableError) rather than given an offset another node could give too.
   */
  async publishMessage(channel: ChannelName, message: unknown, options: PublishMessageOptions = {}): Promise<Published> {
    if (typeof channel !== 'string') throw new SwitchboardError(ErrorCode.INVALID_CHANNEL, 'channel must be a string');
    const data = { channel, message, ...(options.recipients !== undefined && { recipients: options.recipients }), ...(options.ephemeral !== undefined && { ephemeral: options.ephemeral }) };
    // Pusher's #server-to-user-{id} is named outside the native grammar, so that only its signed-in user can follow it.
    const userChannel = serverToUserOf(channel) !== null && message !== null && message !== undefined;
    const parsed = userChannel ? { ok: true as const, request: { action: 'message' as const, channel, message, recipients: null, ephemeral: true } } : parseRequest({ action: 'message', data }, NO_ACTIONS);
    if (!parsed.ok) throw new SwitchboardError(parsed.violation.code, parsed.violation.error.replaceAll("'data.", "'"));
    if (parsed.request.action !== 'message') throw new SwitchboardError(ErrorCode.INVALID_MESSAGE, 'not a message');
    const { count, position } = await publishFromApplication({ hub: this.hub }, parsed.request, { ephemeral: parsed.request.ephemeral }, options.exclude ?? null);
    return { recipientsCount: count, position };
  }

  /** The members of a channel with presence, on every node; NOT_ENABLED (a SwitchboardError) on one without. */
  presence(channel: ChannelName): Promise<Presence> {
    return presenceOf({ features: this.features, members: (name) => this.broker.members(name) }, channel);
  }

  /** A channel's history: the newest `limit` (at most 1000) messages, or those after `since`; NOT_ENABLED on a channel without. */
  history(channel: ChannelName, request: Partial<HistoryRequest> = {}): Promise<HistoryPage> {
    return historyOf({ features: this.features, hub: this.hub }, channel, { since: request.since ?? null, limit: request.limit ?? null });
  }

  /** Connections open on this node. */
  get connectionCount(): number {
    return this.hub.connectionCount;
  }

  /** Channels with subscribers on this node. */
  get channelCount(): number {
    return this.hub.channelCount;
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

  /** Socket writes by path since start: `fast` (one writev straight to the TCP socket) or `fallback` (ws's send()). For /metrics. */
  get socketWrites(): { fast: number; fallback: number } {
    return { fast: this.flushScheduler.fastWrites, fallback: this.flushScheduler.fallbackWrites };
  }

  /** Whether this node scales out through Redis. */
  get usesRedis(): boolean {
    return this.broker.kind === 'redis';
  }

  // ---- cluster-wide views (the HTTP API's; `cluster` holds them) ------------------------

  /** Every node's figures (this one's alone without a cluster), and the totals. */
  clusterStats(): Promise<ClusterStats> {
    return this.cluster.stats();
  }

  /** Channels with subscribers on any node, most subscribed first. */
  clusterChannels(): Promise<ChannelCount[]> {
    return this.cluster.channels();
  }

  /** The members of a channel on every node. */
  channelMembers(channel: ChannelName): Promise<MemberInfo[]> {
    return this.cluster.members(channel);
  }

  /** Closes the matching connections on every node with 1000; resolves with how many (and the nodes that did not answer). */
  disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    return this.cluster.disconnect(target);
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Starts the broker and the timers. Idempotent; `attach` and `createServer` call it. */
  start(): Promise<void> {
    this.started ??= this.broker.start(this.hub).then(() => {
      if (this.closing !== null) return;
      this.liveness.start();
      this.hub.start();
    });
    return this.started;
  }

  /**
   * Accepts WebSocket upgrades on `server` (an application's own node:http or https
   * server: Express's `app.listen()`, Fastify's `fastify.server`) at `path`, and starts
   * the handler. Upgrades on other paths are left to other listeners, or answered 404
   * when nobody else listens. Plain HTTP requests stay the application's: mount
   * createRequestListener(handler) for /healthz, /readyz, /metrics, /api and /dashboard.
   *
   * Returns `detach()`: it removes the upgrade listener, so new handshakes on `path` are no
   * longer accepted; connections already open stay open and the handler keeps running
   * (close() closes them, and detaches every server itself).
   */
  attach(server: HttpServer | HttpsServer, options: AttachOptions = {}): () => void {
    const path = options.path ?? this.options.path;
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const requested = requestPath(request.url);
      if (requested === path) this.handleUpgrade(request, socket, head);
      else if (this.pusher !== null && appKeyOf(requested) !== null) this.gate.handle(request, socket, head, 'pusher');
      else if (server.listenerCount('upgrade') === 1) this.gate.refuse(socket, HandshakeRefusal.NOT_FOUND, `no WebSocket endpoint at ${requested}`);
    };
    server.on('upgrade', listener);
    this.start().catch((error: unknown) => this.logger.error({ err: error }, 'handler failed to start'));
    const detach = (): void => {
      server.off('upgrade', listener);
    };
    this.detachers.push(detach);
    return detach;
  }

  /** Handles one upgrade request: refuses it with a plain HTTP answer, or accepts it. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.gate.handle(request, socket, head);
  }

  /** Why a handshake with this request's token would be refused with 401, or null when the token passes. */
  tokenRefusal(request: IncomingMessage): Promise<string | null> {
    return this.gate.tokenRefusal(request);
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
    this.gate.refuseAll();
    const budgetMs = this.options.shutdownTimeout * 1000;
    const deadline = Date.now() + budgetMs;
    const allClosed = this.hub.whenEmpty();
    for (const connection of this.hub.connections.values()) connection.close(CloseCode.GOING_AWAY, undefined, budgetMs);
    await withDeadline(allClosed, deadline);
    for (const connection of this.hub.connections.values()) connection.terminate();
    await allClosed;
    await withDeadline(Promise.allSettled([...this.settling]), deadline);
    for (const detach of this.detachers) detach();
    this.liveness.stop();
    this.hub.stop();
    await this.pusher?.close();
    await this.started?.catch(() => undefined);
    await this.broker.close();
  }

  /** A WebSocket passed the gate: it becomes a connection of the hub, spoken to in its route's protocol. */
  private accept(socket: SwitchboardSocket, request: IncomingMessage, ip: string, identity: Identity | null, route: Route): void {
    const protocol = route === 'pusher' && this.pusher !== null ? this.pusher : this.protocol;
    const events = protocol === this.pusher ? (this.pusherEvents ??= this.connectionProtocol(protocol)) : (this.nativeEvents ??= this.connectionProtocol(protocol));
    const connection = this.hub.open(socket, { url: redactedUrl(request.url ?? '/'), headers: redactedHeaders(request.headers) }, ip, identity, events);
    if (this.closing !== null) {
      connection.close(CloseCode.GOING_AWAY);
      return;
    }
    this.logger.debug({ connection: connection.id, ip }, 'connected');
    protocol.opened(connection);
  }

  /**
   * What the connections of one protocol tell the handler: one object for all of them (each
   * call names its connection), so that a connection carries no closures of its own.
   */
  private connectionProtocol(protocol: NativeProtocol | PusherProtocol): ConnectionEvents {
    return {
      wire: protocol.wire,
      frame: (open, data, isBinary) => protocol.frame(open, data, isBinary),
      closed: (closed, close) => {
        this.gate.release(closed.ip);
        this.pusher?.closed(closed);
        if (!this.hooks.hasDisconnectHooks) return;
        // After the request (or connect hook) in flight has finished, so the application
        // never sees a disconnect before the connect it belongs to.
        const settled = closed
          .idle()
          .then(() => this.hooks.disconnected(closed, close))
          .catch((error: unknown) => this.logger.error({ err: error, connection: closed.id }, 'disconnect hook failed'))
          .finally(() => this.settling.delete(settled));
        this.settling.add(settled);
      },
    };
  }
}
