/**
 * RedisBroker: several Switchboard nodes that share nothing but Redis act as one server
 * (SPEC §6).
 *
 * - Fan-out: one Redis subscription per channel per node that has local subscribers,
 *   taken when the first local subscriber joins and dropped when the last leaves.
 *   A message is published with one script call that also counts its recipients
 *   cluster-wide; calls are pipelined. The publishing node delivers to its own
 *   subscribers at once and ignores its own message when Redis echoes it, so every
 *   subscriber gets it exactly once, in publish order.
 * - Membership: which connection (with its user id) is in which channel, in Redis (see
 *   redis-keys.ts), with node liveness keys so that a dead node's entries are removed by
 *   the others (node-liveness.ts).
 * - Outage: local delivery goes on. Messages published meanwhile wait in a bounded
 *   outbox (oldest dropped first). ioredis reconnects with backoff; then the node
 *   re-registers, reconciles its membership, resubscribes its channels and sends the
 *   outbox, in that order, before it reports ready again. Commands are never queued
 *   inside ioredis while disconnected, so nothing grows without bound.
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { DEFAULTS, parseRedisUrl, type RedisOptions } from '../config/options.js';
import type { ChannelName, ConnectionId } from '../types.js';
import type { Broker, Delivery, DisconnectResult, DisconnectTarget, LocalDelivery, Member, MemberInfo, NodeReport } from './broker.js';
import { NodeLiveness } from './node-liveness.js';
import { Outbox } from './outbox.js';
import { nodeMemberEntry, parseNodeMemberEntry, RedisKeys, withScripts, type ScriptedRedis } from './redis-keys.js';

export interface RedisBrokerOptions {
  /** This node's id in Redis, 8 base64url characters; a handler given this broker uses it for its connection ids. @default random */
  nodeId?: string;
  logger: Logger;
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
}

interface LocalChannel {
  /** connection id → user id ('' when anonymous) */
  readonly members: Map<ConnectionId, string>;
  /** The SUBSCRIBE for this channel, once sent. */
  subscribed: Promise<unknown>;
}

/** A message held for Redis: only what send() needs (the payload holds the frame). */
interface OutboxEntry {
  readonly channel: ChannelName;
  readonly recipients: readonly string[] | null;
  readonly payload: Buffer;
}

/** Node ids are 6 random bytes in base64url: always 8 characters. */
const NODE_ID_LENGTH = 8;
const NEWLINE = 0x0a;
const BATCH = 500;
/** How long POST /api/disconnect waits for the other nodes' answers. */
const DISCONNECT_WAIT_MS = 2000;
const CHANNELS_CACHE_MS = 1000;

/** A cluster-wide view was asked for while Redis is unreachable (the API answers 503). */
export class ClusterUnavailableError extends Error {
  override name = 'ClusterUnavailableError';
}

function defaultRetryDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 10), 5000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export class RedisBroker implements Broker {
  private readonly keys: RedisKeys;
  readonly nodeId: string;
  private readonly logger: Logger;
  private readonly nodeTtlMs: number;
  private readonly checkIntervalMs: number;
  private readonly commands: ScriptedRedis;
  private readonly subscriber: Redis;
  private readonly where: string;

  private local: LocalDelivery | null = null;
  private readonly localChannels = new Map<ChannelName, LocalChannel>();
  /** Redis pub/sub channel → our channel, for the channels this node is subscribed to. */
  private readonly byPubChannel = new Map<string, ChannelName>();

  /** True once the node is registered, subscribed and its outbox sent, until a connection drops: ready. */
  private synced = false;
  /**
   * Publishes go straight to Redis: the outbox has been handed to the connection since it
   * came back (so anything published now is sent after the held messages).
   */
  private sending = false;
  private syncGeneration = 0;
  /** Whether the last state logged was "down"; errors are logged once per change. */
  private reportedDown = false;
  private lastProblem = 'connecting to Redis';
  private downSince = 0;
  private readonly outbox: Outbox<OutboxEntry>;
  /** Messages dropped from the outbox over this outage (it may take several resyncs). */
  private droppedDuringOutage = 0;
  private readonly liveness: NodeLiveness;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private connectedOnce = false;
  /** A resync keeps failing: logged once until one succeeds. */
  private resyncFailing = false;
  private resyncTimer: NodeJS.Timeout | null = null;
  private resyncDelay = 500;
  private onFirstOutcome: (() => void) | null = null;
  /** close() has begun: no new resync, tick or cleanup. */
  private closing = false;
  /** A resync runs; another request for one waits for it (instead of restarting it). */
  private resyncRunning = false;
  private resyncAgain = false;
  private readonly silenceTimeoutMs: number;
  /** When each connection's outstanding watchdog PING was sent, or null. */
  private readonly pingSentAt = new Map<Redis, { at: number } | null>();

  /** `options`: what is not given takes the defaults (127.0.0.1:6379, database 0, prefix 'websocket:'). */
  constructor(redisOptions: Partial<RedisOptions>, brokerOptions: RedisBrokerOptions) {
    const options: RedisOptions = { ...DEFAULTS.redis, ...redisOptions };
    const nodeId = brokerOptions.nodeId ?? randomBytes(6).toString('base64url');
    if (!/^[A-Za-z0-9_-]{8}$/.test(nodeId)) throw new Error(`RedisBroker: nodeId must be ${NODE_ID_LENGTH} base64url characters`);
    this.keys = new RedisKeys(options.prefix);
    this.nodeId = nodeId;
    this.logger = brokerOptions.logger;
    this.nodeTtlMs = brokerOptions.nodeTtlMs ?? 10_000;
    this.checkIntervalMs = brokerOptions.checkIntervalMs ?? 3000;
    this.silenceTimeoutMs = brokerOptions.silenceTimeoutMs ?? 10_000;
    this.outbox = new Outbox(brokerOptions.outboxMessages ?? 10_000, brokerOptions.outboxBytes ?? 16 * 1024 * 1024);
    const retryDelay = brokerOptions.retryDelay ?? defaultRetryDelay;
    // A URL wins over host, port, password and database, and alone brings an ACL user and TLS.
    const fromUrl = options.url === null ? null : parseRedisUrl(options.url);
    const host = fromUrl?.host ?? options.host;
    const port = fromUrl?.port ?? options.port;
    const database = fromUrl?.database ?? options.database;
    const password = fromUrl === null ? options.password : fromUrl.password;
    this.where = `${host}:${port}/${database}`;
    const connection: IoRedisOptions = {
      host,
      port,
      db: database,
      ...(password !== null && { password }),
      ...(fromUrl?.username != null && { username: fromUrl.username }),
      ...(fromUrl?.tls === true && { tls: {} }),
      lazyConnect: true,
      // Never queue inside ioredis while disconnected: the outbox below is bounded, its queue is not.
      enableOfflineQueue: false,
      // Commands in flight when a connection drops fail at once rather than being resent:
      // a PUBLISH that may have run must not run twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // This broker resubscribes itself, after re-registering, so that it knows when it is done.
      autoResubscribe: false,
      commandTimeout: brokerOptions.commandTimeoutMs ?? 5000,
      keepAlive: 10_000,
      retryStrategy: (attempt) => (this.closed ? null : retryDelay(attempt)),
    };
    this.commands = withScripts(new Redis({ ...connection, connectionName: `switchboard:${this.nodeId}`, enableAutoPipelining: true }));
    this.liveness = new NodeLiveness(this.commands, this.keys, this.nodeId, this.nodeTtlMs, this.logger, () => this.local?.report() ?? null);
    this.subscriber = new Redis({ ...connection, connectionName: `switchboard:${this.nodeId}:sub` });
    for (const redis of [this.commands, this.subscriber]) {
      redis.on('ready', () => {
        this.lastProblem = 'connection lost';
        this.sync();
      });
      redis.on('close', () => {
        this.pingSentAt.set(redis, null);
        this.connectionLost();
      });
      // ioredis reports every failed attempt; the state change is what gets logged.
      redis.on('error', (error: Error) => {
        this.lastProblem = error.message;
      });
    }
    this.subscriber.on('messageBuffer', (pubChannel: Buffer, payload: Buffer) => this.onMessage(pubChannel, payload));
  }

  async start(local: LocalDelivery): Promise<void> {
    this.local = local;
    this.timer = setInterval(() => this.tick(), this.checkIntervalMs);
    this.timer.unref();
    const firstSync = new Promise<void>((resolve) => {
      this.onFirstOutcome = resolve;
    });
    // Both connect in the background and keep retrying; start() waits for the first
    // outcome only, so that a node whose Redis is down still serves its own clients.
    for (const redis of [this.commands, this.subscriber]) redis.connect().catch(() => this.settleFirstOutcome());
    await firstSync;
  }

  private settleFirstOutcome(): void {
    const settle = this.onFirstOutcome;
    this.onFirstOutcome = null;
    if (settle === null) return;
    if (!this.synced) this.reportDown();
    settle();
  }

  notReadyReason(): string | null {
    if (this.closed) return 'shutting down';
    return this.synced ? null : `redis unavailable (${this.where}): ${this.lastProblem}`;
  }

  // ---- publishing -------------------------------------------------------------------

  async publish(delivery: Delivery): Promise<number> {
    if (this.local === null) throw new Error('RedisBroker.publish() called before start()');
    const localCount = this.local.deliver(delivery);
    // Addressed to nobody: there is nothing to send, and nobody to count.
    if (delivery.recipients !== null && delivery.recipients.length === 0) return 0;
    const payload = this.encode(delivery);
    const entry: OutboxEntry = { channel: delivery.channel, recipients: delivery.recipients, payload };
    if (!this.sending) {
      this.outbox.push(entry, payload.length);
      return localCount;
    }
    try {
      return await this.send(entry);
    } catch (error) {
      // The message reached this node's subscribers; whether Redis ran the PUBLISH is
      // unknown, so it is not sent again. The state change is logged by connectionLost().
      this.logger.debug({ err: error, channel: delivery.channel }, 'publishing through Redis failed');
      return localCount;
    }
  }

  private send({ channel, recipients, payload }: OutboxEntry): Promise<number> {
    return this.commands.switchboardPublish(this.keys.members(channel), this.keys.users(channel), this.keys.messages(channel), payload, ...(recipients ?? []));
  }

  /** `<node id><recipients as JSON, or nothing>\n<frame>`: a receiving node never parses the frame. */
  private encode(delivery: Delivery): Buffer {
    const head = `${this.nodeId}${delivery.recipients === null ? '' : JSON.stringify(delivery.recipients)}\n`;
    const { frame } = delivery;
    // One buffer, the frame written into it once.
    const headLength = Buffer.byteLength(head);
    const payload = Buffer.allocUnsafe(headLength + (typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length));
    payload.write(head, 0, 'utf8');
    if (typeof frame === 'string') payload.write(frame, headLength, 'utf8');
    else frame.copy(payload, headLength);
    return payload;
  }

  private onMessage(pubChannel: Buffer, payload: Buffer): void {
    if (this.local === null) return;
    const name = pubChannel.toString();
    const channel = this.byPubChannel.get(name);
    if (channel === undefined) {
      if (name === this.keys.control) this.onControl(payload);
      else if (name === this.keys.replies(this.nodeId)) this.onReply(payload);
      return;
    }
    // Our own messages were delivered here when they were published.
    if (payload.toString('latin1', 0, NODE_ID_LENGTH) === this.nodeId) return;
    const newline = payload.indexOf(NEWLINE, NODE_ID_LENGTH);
    if (newline === -1) {
      this.logger.warn({ channel }, 'ignoring a malformed message from Redis');
      return;
    }
    let recipients: string[] | null = null;
    if (newline > NODE_ID_LENGTH) {
      try {
        recipients = JSON.parse(payload.toString('utf8', NODE_ID_LENGTH, newline)) as string[];
      } catch {
        this.logger.warn({ channel }, 'ignoring a malformed message from Redis');
        return;
      }
    }
    try {
      this.local.deliver({ channel, recipients, frame: payload.subarray(newline + 1) });
    } catch (error) {
      this.logger.error({ err: error, channel }, 'delivering a message from Redis failed');
    }
  }

  // ---- membership -------------------------------------------------------------------

  // Membership changes go to Redis at once on whichever connection is up, even while a
  // resync runs: commands on one connection run in order, and the resync issues each of
  // its own only for what is still true at that moment. What fails here is redone by the
  // resync that follows the reconnect, from this.localChannels.

  async join(channel: ChannelName, member: Member): Promise<void> {
    let entry = this.localChannels.get(channel);
    if (entry === undefined) {
      entry = { members: new Map(), subscribed: Promise.resolve() };
      this.localChannels.set(channel, entry);
      this.byPubChannel.set(this.keys.messages(channel), channel);
      if (this.subscriber.status === 'ready') entry.subscribed = this.subscriber.subscribe(this.keys.messages(channel));
    }
    const userId = member.userId ?? '';
    entry.members.set(member.connectionId, userId);
    const work: Array<Promise<unknown>> = [entry.subscribed];
    if (this.commands.status === 'ready') work.push(this.register(channel, member.connectionId, userId));
    try {
      await Promise.all(work);
    } catch (error) {
      this.membershipFailed(error, channel);
    }
  }

  async leave(channel: ChannelName, connectionId: ConnectionId): Promise<void> {
    const entry = this.localChannels.get(channel);
    if (entry === undefined || !entry.members.delete(connectionId)) return;
    const work: Array<Promise<unknown>> = [];
    if (entry.members.size === 0) {
      this.localChannels.delete(channel);
      this.byPubChannel.delete(this.keys.messages(channel));
      if (this.subscriber.status === 'ready') work.push(this.subscriber.unsubscribe(this.keys.messages(channel)));
    }
    if (this.commands.status === 'ready') work.push(this.unregister(channel, connectionId));
    try {
      await Promise.all(work);
    } catch (error) {
      this.membershipFailed(error, channel);
    }
  }

  /**
   * Local delivery works regardless. A connection that dropped brings a resync of its
   * own; one that is still up but refused (a timeout, an error reply) gets one soon.
   */
  private membershipFailed(error: unknown, channel: ChannelName): void {
    this.logger.debug({ err: error, channel }, 'a membership change failed in Redis');
    if (this.bothReady()) this.resyncSoon();
  }

  private register(channel: ChannelName, connectionId: ConnectionId, userId: string): Promise<unknown> {
    return Promise.all([
      this.commands.switchboardJoin(this.keys.members(channel), this.keys.users(channel), connectionId, userId),
      this.commands.sadd(this.keys.nodeMembers(this.nodeId), nodeMemberEntry(channel, connectionId)),
    ]);
  }

  private unregister(channel: ChannelName, connectionId: ConnectionId, nodeId = this.nodeId): Promise<unknown> {
    return Promise.all([
      this.commands.switchboardLeave(this.keys.members(channel), this.keys.users(channel), connectionId),
      this.commands.srem(this.keys.nodeMembers(nodeId), nodeMemberEntry(channel, connectionId)),
    ]);
  }

  // ---- cluster-wide views (the HTTP API) --------------------------------------------

  private requireCluster(): void {
    if (!this.synced) throw new ClusterUnavailableError(`the cluster view needs Redis, which is unavailable (${this.where})`);
  }

  private localNode(): LocalDelivery {
    if (this.local === null) throw new ClusterUnavailableError('the server is shutting down');
    return this.local;
  }

  /** A report older than this many ms means the node beats but cannot report: not ready. */
  private get staleReportMs(): number {
    return this.checkIntervalMs * 3;
  }

  async nodes(): Promise<NodeReport[]> {
    const own = this.localNode().report();
    if (!this.synced) return [own];
    const others = (await this.liveness.liveReports(this.staleReportMs)).filter((report) => report.id !== this.nodeId);
    return [own, ...others];
  }

  /** The last answer of channels(), reused for a second: every open dashboard asks every 2 s. */
  private channelsCache: { at: number; value: Promise<Array<{ channel: ChannelName; subscribers: number }>> } | null = null;

  channels(): Promise<Array<{ channel: ChannelName; subscribers: number }>> {
    this.requireCluster();
    const now = Date.now();
    if (this.channelsCache !== null && now - this.channelsCache.at < CHANNELS_CACHE_MS) return this.channelsCache.value;
    const value = this.scanChannels();
    this.channelsCache = { at: now, value };
    value.catch(() => {
      if (this.channelsCache?.value === value) this.channelsCache = null;
    });
    return value;
  }

  private async scanChannels(): Promise<Array<{ channel: ChannelName; subscribers: number }>> {
    // Every node's own index of memberships names its channels: no KEYS, no SCAN of the keyspace.
    const names = new Set<ChannelName>();
    for (const { id: node } of await this.liveness.liveReports(this.staleReportMs)) {
      let cursor = '0';
      do {
        const [next, entries] = await this.commands.sscan(this.keys.nodeMembers(node), cursor, 'COUNT', BATCH);
        cursor = next;
        for (const entry of entries) {
          const parsed = parseNodeMemberEntry(entry);
          if (parsed !== null) names.add(parsed.channel);
        }
      } while (cursor !== '0');
    }
    const channels = [...names];
    const counts = await Promise.all(channels.map((channel) => this.commands.hlen(this.keys.members(channel))));
    return channels.map((channel, index) => ({ channel, subscribers: counts[index] ?? 0 })).filter(({ subscribers }) => subscribers > 0);
  }

  async members(channel: ChannelName): Promise<MemberInfo[]> {
    this.requireCluster();
    const members = await this.commands.hgetall(this.keys.members(channel));
    return Object.entries(members).map(([connectionId, userId]) => ({
      connectionId,
      userId: userId === '' ? null : userId,
      node: connectionId.slice(0, connectionId.lastIndexOf('-')),
    }));
  }

  /**
   * Closes the matching connections here, and asks every other live node to close theirs;
   * each answers with its count. Waits for the answers of the nodes alive now, at most
   * DISCONNECT_WAIT_MS: a node that dies meanwhile has no connections left to close.
   */
  async disconnect(target: DisconnectTarget): Promise<DisconnectResult> {
    const local = this.localNode().disconnect(target);
    if (!this.synced) return { disconnected: local, unanswered: [] };
    const live = await this.liveness.liveReports(this.staleReportMs);
    // A connection id names its node: only that one is asked.
    const owner = 'connectionId' in target ? target.connectionId.slice(0, target.connectionId.lastIndexOf('-')) : null;
    if (owner === this.nodeId) return { disconnected: local, unanswered: [] };
    const others = live.map((report) => report.id).filter((node) => node !== this.nodeId && (owner === null || node === owner));
    if (others.length === 0) return { disconnected: local, unanswered: [] };
    const id = randomBytes(8).toString('base64url');
    const answers = new Promise<DisconnectResult>((resolve) => {
      const waiting = { remaining: new Set(others), total: 0, resolve, timer: setTimeout(() => this.finishRequest(id), DISCONNECT_WAIT_MS) };
      this.requests.set(id, waiting);
    });
    try {
      await this.commands.publish(this.keys.control, JSON.stringify({ type: 'disconnect', id, from: this.nodeId, target }));
    } catch (error) {
      this.finishRequest(id);
      throw error;
    }
    const { disconnected, unanswered } = await answers;
    return { disconnected: local + disconnected, unanswered };
  }

  /** Pending requests of this node to the others, by id. */
  private readonly requests = new Map<string, { remaining: Set<string>; total: number; resolve: (result: DisconnectResult) => void; timer: NodeJS.Timeout }>();

  private finishRequest(id: string): void {
    const request = this.requests.get(id);
    if (request === undefined) return;
    this.requests.delete(id);
    clearTimeout(request.timer);
    request.resolve({ disconnected: request.total, unanswered: [...request.remaining] });
  }

  private onControl(payload: Buffer): void {
    let request: { type?: unknown; id?: unknown; from?: unknown; target?: unknown };
    try {
      request = JSON.parse(payload.toString('utf8')) as typeof request;
    } catch {
      return;
    }
    if (request.type !== 'disconnect' || typeof request.id !== 'string' || typeof request.from !== 'string' || request.from === this.nodeId) return;
    const target = request.target as Partial<{ userId: unknown; connectionId: unknown }> | null;
    let closed = 0;
    if (typeof target?.userId === 'string') closed = (this.local as LocalDelivery).disconnect({ userId: target.userId });
    else if (typeof target?.connectionId === 'string') closed = (this.local as LocalDelivery).disconnect({ connectionId: target.connectionId });
    else return;
    this.commands
      .publish(this.keys.replies(request.from), JSON.stringify({ id: request.id, node: this.nodeId, count: closed }))
      .catch((error: unknown) => this.logger.debug({ err: error }, 'answering a disconnect request failed'));
  }

  private onReply(payload: Buffer): void {
    let reply: { id?: unknown; node?: unknown; count?: unknown };
    try {
      reply = JSON.parse(payload.toString('utf8')) as typeof reply;
    } catch {
      return;
    }
    if (typeof reply.id !== 'string' || typeof reply.node !== 'string' || typeof reply.count !== 'number') return;
    const request = this.requests.get(reply.id);
    if (request === undefined || !request.remaining.delete(reply.node)) return;
    request.total += reply.count;
    if (request.remaining.size === 0) this.finishRequest(reply.id);
  }

  // ---- connection state -------------------------------------------------------------

  private bothReady(): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready';
  }

  /**
   * Registers this node, reconciles its membership with Redis, resubscribes and sends the
   * outbox; runs when a connection becomes ready (once both are), when this node finds
   * its entries were removed, and after a membership change Redis refused. A newer run
   * supersedes an older one.
   */
  private sync(): void {
    if (!this.bothReady() || this.closing) return;
    if (this.resyncRunning) {
      // Once the running one is done: restarting it would redo (and re-send) its work.
      this.resyncAgain = true;
      return;
    }
    // A reconnect (connectionLost) moves the generation on: this run's results then count for nothing.
    const generation = this.syncGeneration;
    this.resyncRunning = true;
    this.resyncAgain = false;
    this.resync(generation).then(
      (summary) => {
        if (generation !== this.syncGeneration || this.closing) return;
        this.resyncRunning = false;
        if (summary.failures > 0) {
          // Some memberships were refused (a timeout, an error reply): try them again soon.
          if (!this.resyncFailing) this.logger.warn(`Redis (${this.where}) refused ${summary.failures} membership updates; retrying`);
          this.resyncFailing = true;
          this.resyncSoon();
        } else {
          this.resyncFailing = false;
          this.resyncDelay = 500;
        }
        this.synced = true;
        if (this.reportedDown) {
          this.reportedDown = false;
          this.logger.info(
            { channels: summary.channels, members: summary.members, sent: summary.sent, droppedMessages: summary.dropped, downSeconds: Math.round((Date.now() - this.downSince) / 100) / 10 },
            `Redis is back (${this.where}): resubscribed ${summary.channels} channels, re-registered ${summary.members} memberships, sent ${summary.sent} held messages${summary.dropped > 0 ? `; ${summary.dropped} older ones were dropped (outbox full)` : ''}`,
          );
        } else if (!this.connectedOnce) {
          this.logger.info(`connected to Redis (${this.where}) as node ${this.nodeId}`);
        }
        this.connectedOnce = true;
        this.settleFirstOutcome();
        if (this.resyncAgain) this.sync();
      },
      (error: unknown) => {
        if (generation !== this.syncGeneration || this.closing) return;
        this.resyncRunning = false;
        this.lastProblem = error instanceof Error ? error.message : String(error);
        this.settleFirstOutcome();
        // A connection that dropped mid-way brings another 'ready' and another attempt.
        if (!this.bothReady()) return;
        if (!this.resyncFailing) {
          this.resyncFailing = true;
          this.logger.warn({ err: error }, `registering with Redis (${this.where}) failed; retrying`);
        }
        this.resyncSoon();
      },
    );
  }

  /** Another resync in a while (with backoff), unless one is already due. */
  private resyncSoon(): void {
    if (this.resyncTimer !== null || this.closing) return;
    this.resyncDelay = Math.min(this.resyncDelay * 2, 30_000);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      this.sync();
    }, this.resyncDelay);
    this.resyncTimer.unref();
  }

  private async resync(generation: number): Promise<{ channels: number; members: number; sent: number; dropped: number; failures: number }> {
    // First the requests to every node and the answers to this one's: a node that beats
    // is expected to answer a disconnect.
    await this.subscriber.subscribe(this.keys.control, this.keys.replies(this.nodeId));
    await this.liveness.beat();
    // Memberships that ended while Redis was unreachable. Each is checked again when its
    // command is issued: one that joined again meanwhile is not stale.
    const isMember = (channel: ChannelName, connectionId: ConnectionId): boolean => this.localChannels.get(channel)?.members.has(connectionId) === true;
    const stale: Array<{ channel: ChannelName; connectionId: ConnectionId }> = [];
    let cursor = '0';
    do {
      const [next, entries] = await this.commands.sscan(this.keys.nodeMembers(this.nodeId), cursor, 'COUNT', BATCH);
      cursor = next;
      for (const text of entries) {
        const entry = parseNodeMemberEntry(text);
        if (entry === null) await this.commands.srem(this.keys.nodeMembers(this.nodeId), text);
        else if (!isMember(entry.channel, entry.connectionId)) stale.push(entry);
      }
    } while (cursor !== '0');
    let failures = await inBatches(stale, ({ channel, connectionId }) => (isMember(channel, connectionId) ? Promise.resolve() : this.unregister(channel, connectionId)));
    // The current ones, whether Redis kept them or lost them; one that left meanwhile was
    // (or will be) unregistered by leave(), after this.
    const members: Array<[ChannelName, ConnectionId]> = [];
    for (const [channel, entry] of this.localChannels) for (const connectionId of entry.members.keys()) members.push([channel, connectionId]);
    failures += await inBatches(members, ([channel, connectionId]) => {
      const userId = this.localChannels.get(channel)?.members.get(connectionId);
      return userId === undefined ? Promise.resolve() : this.register(channel, connectionId, userId);
    });
    const pubChannels = [...this.byPubChannel.keys()];
    for (let index = 0; index < pubChannels.length; index += BATCH) {
      const batch = pubChannels.slice(index, index + BATCH).filter((pubChannel) => this.byPubChannel.has(pubChannel));
      if (batch.length === 0) continue;
      const subscribed = this.subscriber.subscribe(...batch);
      // A join meanwhile waits for this subscription before it is acknowledged.
      for (const pubChannel of batch) {
        const entry = this.localChannels.get(this.byPubChannel.get(pubChannel) as ChannelName);
        if (entry !== undefined) entry.subscribed = subscribed;
      }
      await subscribed;
    }
    if (generation !== this.syncGeneration) return { channels: 0, members: 0, sent: 0, dropped: 0, failures };
    // The outbox goes out in order; from here on publishes follow it on the same connection.
    const { items: held, dropped } = this.outbox.takeAll();
    const sent = held.map((entry) => this.send(entry));
    this.sending = true;
    await Promise.allSettled(sent);
    this.droppedDuringOutage += dropped;
    const summary = { channels: pubChannels.length, members: members.length, sent: held.length, dropped: this.droppedDuringOutage, failures };
    this.droppedDuringOutage = 0;
    return summary;
  }

  private connectionLost(): void {
    // Any resync running belongs to the connection that is gone; the next 'ready' starts one.
    this.syncGeneration++;
    this.resyncRunning = false;
    // start() waits for the first outcome; a connection lost before the first sync is one.
    if (!this.connectedOnce) this.settleFirstOutcome();
    const wasSynced = this.synced;
    this.synced = false;
    this.sending = false;
    if (this.closed) return;
    if (wasSynced) this.reportDown();
  }

  private reportDown(): void {
    if (this.reportedDown || this.closed) return;
    this.reportedDown = true;
    this.downSince = Date.now();
    this.logger.error(`Redis unavailable (${this.where}): ${this.lastProblem}; local delivery continues, reconnecting`);
  }

  // ---- liveness ---------------------------------------------------------------------

  /**
   * Every check interval: the watchdog PINGs, the heartbeat (whenever the command
   * connection is up, synced or not), and the check of the other nodes.
   */
  private tick(): void {
    if (this.closing) return;
    for (const redis of [this.commands, this.subscriber]) this.watch(redis);
    if (this.commands.status !== 'ready') return;
    this.liveness
      .beat()
      .then(async (intact) => {
        if (!intact) {
          if (this.synced) this.logger.warn(`this node's entries in Redis were removed while it ran (it was silent for longer than ${this.nodeTtlMs / 1000}s); registering again`);
          this.sync();
        }
        if (this.synced && !this.closing) await this.liveness.checkOthers();
      })
      .catch((error: unknown) => this.logger.debug({ err: error }, 'heartbeat failed'));
  }

  /**
   * A Redis that stops answering without closing the connection (frozen, or a network
   * path that silently drops packets) would leave commands waiting and /readyz green. A
   * PING unanswered for silenceTimeoutMs drops the connection, and the outage is handled
   * as any other.
   */
  private watch(redis: Redis): void {
    if (redis.status !== 'ready') return;
    const outstanding = this.pingSentAt.get(redis) ?? null;
    if (outstanding !== null) {
      if (Date.now() - outstanding.at < this.silenceTimeoutMs) return;
      this.lastProblem = `no answer from Redis for ${this.silenceTimeoutMs / 1000}s`;
      this.pingSentAt.set(redis, null);
      redis.disconnect(true);
      return;
    }
    const ping = { at: Date.now() };
    this.pingSentAt.set(redis, ping);
    redis.ping().then(
      () => {
        if (this.pingSentAt.get(redis) === ping) this.pingSentAt.set(redis, null);
      },
      // A timeout leaves it outstanding (so the next tick drops the connection); a closed
      // connection has reset it already.
      () => undefined,
    );
  }

  // ---- shutdown ---------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.resyncTimer !== null) clearTimeout(this.resyncTimer);
    if (this.synced) {
      try {
        const members: Array<[ChannelName, ConnectionId]> = [];
        for (const [channel, entry] of this.localChannels) for (const connectionId of entry.members.keys()) members.push([channel, connectionId]);
        await inBatches(members, ([channel, connectionId]) => this.unregister(channel, connectionId));
        await this.liveness.leave();
      } catch (error) {
        // The other nodes clean out what is left once the liveness key expires.
        this.logger.warn({ err: error }, 'leaving the cluster cleanly failed; other nodes will clean up');
      }
    }
    this.closed = true;
    this.synced = false;
    this.sending = false;
    for (const id of [...this.requests.keys()]) this.finishRequest(id);
    this.localChannels.clear();
    this.byPubChannel.clear();
    this.local = null;
    this.settleFirstOutcome();
    await Promise.all([quit(this.commands), quit(this.subscriber)]);
  }
}

/**
 * Runs `task` over `items`, BATCH at a time (pipelined within a batch); one failure does
 * not stop the rest. Resolves with the number of failures.
 */
async function inBatches<T>(items: readonly T[], task: (item: T) => Promise<unknown>): Promise<number> {
  let failures = 0;
  for (let index = 0; index < items.length; index += BATCH) {
    const results = await Promise.allSettled(items.slice(index, index + BATCH).map(task));
    failures += results.filter((result) => result.status === 'rejected').length;
  }
  return failures;
}

async function quit(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // fall through
    }
  }
  redis.disconnect();
}
