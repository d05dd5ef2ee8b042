/**
 * History kept in this process's memory: for a single process (MemoryBroker), and in the
 * primary for its workers when there is no Redis (ClusterRelay). Each channel keeps a
 * ring of its last `size` messages, dropped after `ttl` seconds without a new one; its
 * position outlives them (POSITION_TTL_MS). The epoch is new for every process, so a
 * restart tells clients that history was lost.
 */
import { randomBytes } from 'node:crypto';
import type { ChannelName } from '../types.js';
import { type HistoryPage, type HistoryQuery, type HistorySettings, POSITION_TTL_MS, type StoredMessage, type StreamPosition, withOffset } from './history.js';

/** How often channels silent past their bounds are swept out. */
const SWEEP_INTERVAL_MS = 60_000;

class ChannelStream {
  readonly epoch = randomBytes(6).toString('base64url');
  offset = 0;
  lastWrite: number;
  private ring: Array<StoredMessage | undefined> = [];
  /** Index of the oldest message in `ring`. */
  private head = 0;
  private count = 0;

  constructor(now: number) {
    this.lastWrite = now;
  }

  append(frame: string, size: number, now: number): StoredMessage {
    if (this.ring.length !== size) this.resize(size);
    const message: StoredMessage = { offset: ++this.offset, frame: withOffset(frame, this.offset) };
    this.ring[(this.head + this.count) % size] = message;
    if (this.count < size) this.count++;
    else this.head = (this.head + 1) % size;
    this.lastWrite = now;
    return message;
  }

  /** The kept messages with since < offset ≤ until, oldest first, at most `limit` (the newest `limit` when `since` is null). */
  read(since: number | null, until: number | null, limit: number): StoredMessage[] {
    if (limit <= 0 || this.count === 0) return [];
    const last = until ?? this.offset;
    const kept: StoredMessage[] = [];
    for (let index = 0; index < this.count; index++) {
      const message = this.ring[(this.head + index) % this.ring.length] as StoredMessage;
      if (message.offset > last) break;
      if (since === null || message.offset > since) kept.push(message);
    }
    return since === null ? kept.slice(-limit) : kept.slice(0, limit);
  }

  clear(): void {
    this.ring = [];
    this.head = 0;
    this.count = 0;
  }

  /** A channel whose size changed (another rule, another configuration): keeps the newest that fit. */
  private resize(size: number): void {
    const kept = this.read(null, null, size);
    this.ring = new Array<StoredMessage | undefined>(size);
    for (const [index, message] of kept.entries()) this.ring[index] = message;
    this.head = 0;
    this.count = kept.length;
  }
}

export interface MemoryHistoryOptions {
  /** @default Date.now */
  now?: () => number;
}

export class MemoryHistory {
  private readonly channels = new Map<ChannelName, { stream: ChannelStream; ttlMs: number }>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: MemoryHistoryOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Stores a message; returns its offset, its epoch, and its frame with the offset in it. */
  append(channel: ChannelName, frame: string, settings: HistorySettings): StoredMessage & StreamPosition {
    const now = this.now();
    const entry = this.current(channel, now);
    entry.ttlMs = settings.ttl * 1000;
    const stored = entry.stream.append(frame, settings.size, now);
    this.startSweeping();
    return { ...stored, epoch: entry.stream.epoch };
  }

  read(channel: ChannelName, query: HistoryQuery): HistoryPage {
    const now = this.now();
    const entry = this.current(channel, now);
    this.startSweeping();
    const { stream } = entry;
    return { epoch: stream.epoch, offset: stream.offset, messages: stream.read(query.since, query.until, query.limit) };
  }

  /** Stops the sweep; what is kept stays readable. */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The channel's stream, its messages dropped after `ttl` of silence and its position after POSITION_TTL_MS. */
  private current(channel: ChannelName, now: number): { stream: ChannelStream; ttlMs: number } {
    let entry = this.channels.get(channel);
    if (entry !== undefined) {
      const silentMs = now - entry.stream.lastWrite;
      if (silentMs > POSITION_TTL_MS) entry = undefined;
      else if (silentMs > entry.ttlMs) entry.stream.clear();
    }
    if (entry === undefined) {
      entry = { stream: new ChannelStream(now), ttlMs: POSITION_TTL_MS };
      this.channels.set(channel, entry);
    }
    return entry;
  }

  private startSweeping(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  private sweep(): void {
    const now = this.now();
    for (const [channel, entry] of this.channels) {
      const silentMs = now - entry.stream.lastWrite;
      if (silentMs > POSITION_TTL_MS) this.channels.delete(channel);
      else if (silentMs > entry.ttlMs) entry.stream.clear();
    }
  }
}
