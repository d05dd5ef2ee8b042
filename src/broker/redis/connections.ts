/**
 * A node's connections to Redis: one for commands (scripts defined, auto-pipelined) and
 * its subscriptions (subscriber.ts): against one server or a Sentinel's master a second
 * connection, against a Cluster one per master with sharded pub/sub. None queues commands
 * while disconnected; the silence watchdog drops a connection to a Redis that stopped
 * answering, so that the outage is handled as any other.
 */
import { Cluster, Redis } from 'ioredis';
import type { RedisOptions } from '../../config/options.js';
import { topologyOf, type ConnectionSettings } from './client-options.js';
import { withScripts, type ScriptedRedis } from './redis-keys.js';
import { ShardedSubscriber } from './sharded-subscriber.js';
import { PlainSubscriber, quitConnection, wireEvents, type ConnectionEvents, type MessageListener, type Subscriber } from './subscriber.js';

export { defaultRetryDelay, type ConnectionSettings } from './client-options.js';

export class RedisConnections {
  readonly commands: ScriptedRedis;
  readonly subscriber: Subscriber;
  /** Pub/sub is sharded (a Cluster): SPUBLISH and SSUBSCRIBE. */
  readonly sharded: boolean;
  /** Where Redis is, for log lines and /readyz (never the password). */
  readonly where: string;
  private readonly silenceTimeoutMs: number;
  /** When each connection's outstanding watchdog PING was sent, or null. */
  private readonly pingSentAt = new Map<Redis, { at: number } | null>();
  private events: ConnectionEvents = { ready: () => undefined, lost: () => undefined, error: () => undefined };
  private listener: MessageListener = () => undefined;

  constructor(options: RedisOptions, settings: ConnectionSettings) {
    this.silenceTimeoutMs = settings.silenceTimeoutMs;
    const topology = topologyOf(options, settings);
    this.where = topology.where;
    const events: ConnectionEvents = {
      ready: () => this.events.ready(),
      lost: () => this.events.lost(),
      error: (error) => this.events.error(error),
    };
    const listener: MessageListener = (pubChannel, payload) => this.listener(pubChannel, payload);
    if (topology.kind === 'cluster') {
      this.sharded = true;
      const cluster = new Cluster(topology.nodes, { ...topology.options, redisOptions: { ...topology.node, connectionName: `switchboard:${settings.nodeId}` } });
      this.commands = withScripts(cluster, true);
      this.subscriber = new ShardedSubscriber(cluster, (host, port) => this.watched(new Redis({ ...topology.node, host, port, connectionName: `switchboard:${settings.nodeId}:sub` })), listener, events);
      wireEvents(cluster, events, { lostOnlyAfterReady: true });
    } else {
      this.sharded = false;
      const commands = this.watched(new Redis({ ...topology.options, connectionName: `switchboard:${settings.nodeId}`, enableAutoPipelining: true }));
      const subscriber = this.watched(new Redis({ ...topology.options, connectionName: `switchboard:${settings.nodeId}:sub` }));
      for (const redis of [commands, subscriber]) keepAlive(redis, settings);
      this.commands = withScripts(commands, false);
      this.subscriber = new PlainSubscriber(subscriber, listener, events);
      wireEvents(this.commands as Redis, events);
    }
  }

  /** Where the connections' ready, lost and error events go (the node's sync state). */
  listen(events: ConnectionEvents): void {
    this.events = events;
  }

  /** Where messages on subscribed channels go. */
  onMessage(listener: MessageListener): void {
    this.listener = listener;
  }

  /** Starts connecting (both keep retrying in the background); rejects at the first failure. */
  connect(): Promise<unknown> {
    return Promise.all([this.commands.connect(), this.subscriber.connect()]);
  }

  allReady(): boolean {
    return this.commands.status === 'ready' && this.subscriber.ready();
  }

  /** Commands can be sent (on a Cluster: the cluster is up, whatever the state of one shard). */
  get commandsReady(): boolean {
    return this.commands.status === 'ready';
  }

  /** A plain PUBLISH, or SPUBLISH on a Cluster (to the shard of the channel's slot). */
  publish(pubChannel: string, payload: string | Buffer): Promise<number> {
    return (this.sharded ? this.commands.spublish(pubChannel, payload) : this.commands.publish(pubChannel, payload)) as Promise<number>;
  }

  /**
   * A Redis that stops answering without closing the connection (frozen, or a network
   * path that silently drops packets) would leave commands waiting and /readyz green. A
   * PING unanswered for silenceTimeoutMs drops the connection, and the outage is handled
   * as any other. Called every check interval; `silent` hears of it before the drop. (A
   * Cluster's own command connections are the cluster client's; its command timeout and
   * redirections cover them.)
   */
  watch(silent: (problem: string) => void): void {
    if (this.subscriber instanceof ShardedSubscriber) this.subscriber.maintain();
    const watched = this.commands instanceof Redis ? [this.commands, ...this.subscriber.connections()] : this.subscriber.connections();
    for (const redis of watched) {
      if (redis.status !== 'ready') continue;
      const outstanding = this.pingSentAt.get(redis) ?? null;
      if (outstanding !== null) {
        if (Date.now() - outstanding.at < this.silenceTimeoutMs) continue;
        silent(`no answer from Redis for ${this.silenceTimeoutMs / 1000}s`);
        this.pingSentAt.set(redis, null);
        redis.disconnect(true);
        continue;
      }
      const ping = { at: Date.now() };
      this.pingSentAt.set(redis, ping);
      redis.ping().then(
        () => {
          if (this.pingSentAt.get(redis) === ping) this.pingSentAt.set(redis, null);
        },
        // A timeout leaves it outstanding (so the next check drops the connection); a closed
        // connection has reset it already.
        () => undefined,
      );
    }
  }

  async quit(): Promise<void> {
    await Promise.all([quitConnection(this.commands), this.subscriber.quit()]);
  }

  private watched(redis: Redis): Redis {
    redis.on('close', () => this.pingSentAt.delete(redis));
    return redis;
  }
}

/**
 * A connection gives up ('end') only when the broker closes it, or when ioredis gives up on
 * its own: a Sentinel's failover detector that disconnects while a reconnect attempt waits
 * for a sentinel's answer ends that connection without asking the retry strategy (ioredis
 * #1683). Unless the broker is closed, it connects again after the usual delay.
 */
function keepAlive(redis: Redis, settings: ConnectionSettings): void {
  let attempt = 0;
  redis.on('ready', () => (attempt = 0));
  redis.on('end', () => {
    if (settings.closed()) return;
    const timer = setTimeout(() => {
      if (!settings.closed() && redis.status === 'end') redis.connect().catch(() => undefined);
    }, settings.retryDelay(++attempt));
    timer.unref();
  });
}
