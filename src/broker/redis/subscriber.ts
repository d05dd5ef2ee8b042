/**
 * Where a node's pub/sub subscriptions live. Against one Redis server (or the master a
 * Sentinel names) that is one connection with SUBSCRIBE; against a Redis Cluster it is
 * one connection per master with SSUBSCRIBE (sharded-subscriber.ts), so that a message
 * travels to one shard and not across the whole cluster. The broker sees the same seam
 * either way, and resubscribes itself after an outage (so that it knows when it is done).
 */
import type { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';

export type MessageListener = (pubChannel: string, payload: Buffer) => void;

/** What the connections tell the node's sync state. */
export interface ConnectionEvents {
  /** A connection became ready; the node is in reach of Redis once every one is (`allReady`). */
  ready(): void;
  /** A connection dropped (or the cluster's shape changed): subscriptions must be made again. */
  lost(): void;
  /** Why the latest attempt failed, for logs and /readyz. */
  error(error: Error): void;
}

export interface Subscriber {
  /** Ready to subscribe: every connection it needs is up. */
  ready(): boolean;
  subscribe(...pubChannels: string[]): Promise<unknown>;
  unsubscribe(...pubChannels: string[]): Promise<unknown>;
  /**
   * Starts opening its connections, which keep retrying in the background. A single
   * connection rejects at its first failure; a sharded one resolves at once and opens a
   * connection per master as the cluster's map becomes known.
   */
  connect(): Promise<unknown>;
  /** The standalone connections it holds now, for the silence watchdog. */
  connections(): readonly Redis[];
  quit(): Promise<void>;
}

/** One connection with classic SUBSCRIBE: one Redis server, or a Sentinel's master. */
export class PlainSubscriber implements Subscriber {
  constructor(private readonly redis: Redis, listener: MessageListener, events: ConnectionEvents) {
    redis.on('messageBuffer', (pubChannel: Buffer, payload: Buffer) => listener(pubChannel.toString(), payload));
    wireEvents(redis, events);
  }

  ready(): boolean {
    return this.redis.status === 'ready';
  }

  subscribe(...pubChannels: string[]): Promise<unknown> {
    return this.redis.subscribe(...pubChannels);
  }

  unsubscribe(...pubChannels: string[]): Promise<unknown> {
    return this.redis.unsubscribe(...pubChannels);
  }

  connect(): Promise<unknown> {
    return this.redis.connect();
  }

  connections(): readonly Redis[] {
    return [this.redis];
  }

  quit(): Promise<void> {
    return quitConnection(this.redis);
  }
}

/**
 * Hands a connection's ready, close and error events to the node's sync state. With
 * `lostOnlyAfterReady`, a close is an outage only when the emitter was ready before it: the
 * cluster client says 'close' whenever its pool of node connections is empty for a moment,
 * as it is while it swaps the startup nodes for the discovered ones.
 */
export function wireEvents(emitter: EventEmitter, events: ConnectionEvents, { lostOnlyAfterReady = false } = {}): void {
  let wasReady = false;
  emitter.on('ready', () => {
    wasReady = true;
    events.ready();
  });
  emitter.on('close', () => {
    if (wasReady || !lostOnlyAfterReady) events.lost();
    wasReady = false;
  });
  // ioredis reports every failed attempt; the state change is what gets logged.
  emitter.on('error', (error: Error) => events.error(error));
}

/** QUIT when the connection is up (so that Redis drops its subscriptions at once), else a plain disconnect. */
export async function quitConnection(redis: { status: string; quit(): Promise<unknown>; disconnect(): void }): Promise<void> {
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
