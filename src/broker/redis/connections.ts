/**
 * A node's two connections to Redis: one for commands (scripts defined, auto-pipelined)
 * and one for its subscriptions. Neither queues commands while disconnected: everything
 * that must survive an outage is held, bounded, by the broker itself.
 */
import { Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisOptions } from '../../config/options.js';
import { parseRedisUrl } from '../../config/values.js';
import { withScripts, type ScriptedRedis } from './redis-keys.js';

export interface ConnectionSettings {
  nodeId: string;
  retryDelay: (attempt: number) => number;
  commandTimeoutMs: number;
  silenceTimeoutMs: number;
  /** True once the broker is closed: no reconnect attempt after that. */
  closed: () => boolean;
}

export function defaultRetryDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 10), 5000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export class RedisConnections {
  readonly commands: ScriptedRedis;
  readonly subscriber: Redis;
  /** host:port/database, for log lines and /readyz (never the password). */
  readonly where: string;
  private readonly silenceTimeoutMs: number;
  /** When each connection's outstanding watchdog PING was sent, or null. */
  private readonly pingSentAt = new Map<Redis, { at: number } | null>();

  constructor(options: RedisOptions, settings: ConnectionSettings) {
    this.silenceTimeoutMs = settings.silenceTimeoutMs;
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
      // Never queue inside ioredis while disconnected: the outbox is bounded, its queue is not.
      enableOfflineQueue: false,
      // Commands in flight when a connection drops fail at once rather than being resent:
      // a PUBLISH that may have run must not run twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // The broker resubscribes itself, after re-registering, so that it knows when it is done.
      autoResubscribe: false,
      commandTimeout: settings.commandTimeoutMs,
      keepAlive: 10_000,
      retryStrategy: (attempt) => (settings.closed() ? null : settings.retryDelay(attempt)),
    };
    this.commands = withScripts(new Redis({ ...connection, connectionName: `switchboard:${settings.nodeId}`, enableAutoPipelining: true }));
    this.subscriber = new Redis({ ...connection, connectionName: `switchboard:${settings.nodeId}:sub` });
    for (const redis of this.both) redis.on('close', () => this.pingSentAt.set(redis, null));
  }

  get both(): readonly Redis[] {
    return [this.commands, this.subscriber];
  }

  bothReady(): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready';
  }

  /**
   * A Redis that stops answering without closing the connection (frozen, or a network
   * path that silently drops packets) would leave commands waiting and /readyz green. A
   * PING unanswered for silenceTimeoutMs drops the connection, and the outage is handled
   * as any other. Called every check interval; `silent` hears of it before the drop.
   */
  watch(silent: (problem: string) => void): void {
    for (const redis of this.both) {
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
    await Promise.all(this.both.map(quit));
  }
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
