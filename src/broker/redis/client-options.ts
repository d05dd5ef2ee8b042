/**
 * ioredis options for the three ways to reach Redis (SPEC §6): one server (host and port,
 * or a URL), the master a set of Sentinels names, or a Redis Cluster. Every connection is
 * set up the same way: it never queues commands while disconnected and never sends a
 * command twice, since everything that must survive an outage is held, bounded, by the
 * broker itself, and a PUBLISH that may have run must not run again.
 */
import type { ClusterOptions, RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisAddress, RedisOptions } from '../../config/options.js';
import { parseRedisUrl } from '../../config/values.js';

export interface ConnectionSettings {
  nodeId: string;
  retryDelay: (attempt: number) => number;
  commandTimeoutMs: number;
  silenceTimeoutMs: number;
  /** True once the broker is closed: no reconnect attempt after that. */
  closed: () => boolean;
}

export type Topology =
  | { kind: 'server'; options: IoRedisOptions; where: string }
  | { kind: 'sentinel'; options: IoRedisOptions; where: string }
  | { kind: 'cluster'; nodes: RedisAddress[]; options: ClusterOptions; node: IoRedisOptions; where: string };

export function defaultRetryDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 10), 5000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export function addressList(addresses: readonly RedisAddress[]): string {
  return addresses.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');
}

/** How this node reaches Redis, and what the logs call it (never with the password). */
export function topologyOf(options: RedisOptions, settings: ConnectionSettings): Topology {
  // A URL wins over host, port, password and database, and alone brings an ACL user and TLS.
  const fromUrl = options.url === null ? null : parseRedisUrl(options.url);
  const password = fromUrl === null ? options.password : fromUrl.password;
  const retryStrategy = (attempt: number): number | null => (settings.closed() ? null : settings.retryDelay(attempt));
  const connection: IoRedisOptions = {
    ...(password !== null && { password }),
    ...(fromUrl?.username != null && { username: fromUrl.username }),
    ...(fromUrl?.tls === true && { tls: {} }),
    lazyConnect: true,
    // Never queue inside ioredis while disconnected: the outbox is bounded, its queue is not.
    enableOfflineQueue: false,
    // Commands in flight when a connection drops fail at once rather than being resent.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The broker resubscribes itself, after re-registering, so that it knows when it is done.
    autoResubscribe: false,
    commandTimeout: settings.commandTimeoutMs,
    keepAlive: 10_000,
    retryStrategy,
  };
  if (options.clusterNodes !== null) {
    return {
      kind: 'cluster',
      nodes: options.clusterNodes,
      node: connection,
      where: `cluster ${addressList(options.clusterNodes)}`,
      options: {
        redisOptions: connection,
        lazyConnect: true,
        enableOfflineQueue: false,
        enableReadyCheck: true,
        scaleReads: 'master',
        enableAutoPipelining: true,
        // A command refused because the cluster is down, or whose connection closed, fails
        // at once: the broker holds or refuses it, and never runs a PUBLISH twice.
        retryDelayOnClusterDown: 0,
        retryDelayOnFailover: 0,
        clusterRetryStrategy: (attempt) => (settings.closed() ? null : settings.retryDelay(attempt)),
        slotsRefreshTimeout: Math.min(settings.commandTimeoutMs, 2000),
      },
    };
  }
  if (options.sentinels !== null) {
    const name = options.sentinelName as string;
    return {
      kind: 'sentinel',
      where: `master '${name}' of sentinels ${addressList(options.sentinels)}`,
      options: {
        ...connection,
        db: options.database,
        sentinels: options.sentinels,
        name,
        sentinelRetryStrategy: retryStrategy,
        // Watches the sentinels for +switch-master, so that a master demoted while still
        // reachable (a partition) is left at once, not at the first refused write.
        failoverDetector: true,
      },
    };
  }
  const host = fromUrl?.host ?? options.host;
  const port = fromUrl?.port ?? options.port;
  const database = fromUrl?.database ?? options.database;
  return { kind: 'server', where: `${host}:${port}/${database}`, options: { ...connection, host, port, db: database } };
}
