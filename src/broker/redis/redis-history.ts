/**
 * A channel's history in Redis (history-scripts.ts has the keys and the scripts):
 * publishing a message that is kept, which gives it its offset, and reading what is kept.
 * Both need Redis: while it is out of reach they reject with ClusterUnavailableError, and
 * a publish whose script call failed in flight rejects too (whether it ran is unknown).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ClusterUnavailableError } from '../../errors.js';
import { type HistoryPage, type HistoryQuery, POSITION_TTL_MS, type StoredMessage } from '../../history/history.js';
import type { ChannelName } from '../../types.js';
import type { Publication, PublishResult } from '../broker.js';
import type { RedisConnections } from './connections.js';
import { keptPayloadHead } from './payload.js';
import type { RedisKeys } from './redis-keys.js';

/**
 * Epochs for the channels that have none yet. Each script call is given its own
 * candidate: a random part (9 bytes of base64url), drawn again once a candidate became an
 * epoch, and a counter, so that two calls in flight at once never bring the same one
 * (were a channel's position lost between them, the second would start the "new" epoch
 * under the old name).
 */
class EpochCandidates {
  private base = EpochCandidates.draw();
  private counter = 0;

  next(): string {
    return `${this.base}${(this.counter++).toString(36)}`;
  }

  used(): void {
    this.base = EpochCandidates.draw();
    this.counter = 0;
  }

  private static draw(): string {
    return randomBytes(9).toString('base64url');
  }
}

export interface HistorySources {
  readonly connections: RedisConnections;
  readonly keys: RedisKeys;
  readonly nodeId: string;
  readonly logger: Logger;
  /** Null when Redis can take commands in order after the outbox; otherwise why not. */
  readonly unavailable: () => string | null;
}

export class RedisHistory {
  private readonly candidates = new EpochCandidates();

  constructor(private readonly sources: HistorySources) {}

  /**
   * Publishes a message kept in the history (`publication.history` set): its offset, the
   * stored message and the PUBLISH to every node (this one included: it delivers from the
   * echo) in one script call. Resolves with the cluster-wide count and the position.
   */
  async publish(publication: Publication): Promise<PublishResult> {
    const { channel, recipients, exclude, frame, history } = publication;
    if (history === null) throw new Error('RedisHistory.publish() takes a publication to be kept');
    const { connections, keys, nodeId } = this.sources;
    this.ensureAvailable('publishing to a channel with history');
    const candidate = this.candidates.next();
    let reply;
    try {
      reply = await connections.commands.switchboardPublishKept(
        keys.position(channel),
        keys.history(channel),
        keys.members(channel),
        keys.users(channel),
        keys.messages(channel),
        keptPayloadHead(nodeId, { recipients, exclude }),
        frame,
        Math.max(1, Math.floor(history.size)),
        Math.max(1, Math.round(history.ttl * 1000)),
        POSITION_TTL_MS,
        candidate,
        publication.seen?.epoch ?? '',
        publication.seen?.offset ?? 0,
        recipients === null ? '0' : '1',
        ...(recipients ?? []),
      );
    } catch (error) {
      throw this.failed('publishing to a channel with history', error, ' (whether the message was published is unknown)');
    }
    const [count, offset, epoch, created] = reply;
    if (created === 1) this.newEpoch(channel, epoch, publication.seen != null && publication.seen.offset >= offset);
    return { count, position: { epoch, offset } };
  }

  /** Reads a channel's position and kept messages (HistoryQuery), oldest first; creates its epoch when it has none. */
  async read(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage> {
    const { connections, keys } = this.sources;
    this.ensureAvailable('reading the history');
    const limit = Math.max(0, Math.floor(query.limit));
    const { since, until } = query;
    // Stream ids are `<offset>-0`: messages after `since` start at since + 1.
    const first = since === null || since < 0 ? '-' : `${Math.floor(since) + 1}-0`;
    const last = until === null ? '+' : `${Math.max(0, Math.floor(until))}-0`;
    const seen = query.seen ?? null;
    const candidate = this.candidates.next();
    let reply;
    try {
      reply = await connections.commands.switchboardReadHistory(
        keys.position(channel),
        keys.history(channel),
        candidate,
        POSITION_TTL_MS,
        first,
        last,
        limit,
        since === null ? '1' : '0',
        seen?.epoch ?? '',
        seen?.offset ?? 0,
      );
    } catch (error) {
      throw this.failed('reading the history', error, '');
    }
    const [epoch, offset, created, ...entries] = reply;
    if (created === 1) this.newEpoch(channel, epoch, seen !== null && seen.offset > offset);
    const messages: StoredMessage[] = [];
    for (let index = 0; index + 1 < entries.length; index += 2) {
      messages.push({ offset: Number.parseInt(entries[index] as string, 10), frame: entries[index + 1] as string });
    }
    return { epoch, offset, messages };
  }

  private ensureAvailable(what: string): void {
    const reason = this.sources.unavailable();
    if (reason !== null) throw new ClusterUnavailableError(`${what} needs Redis, which is unavailable (${this.sources.connections.where}): ${reason}`);
  }

  private failed(what: string, error: unknown, note: string): ClusterUnavailableError {
    const message = error instanceof Error ? error.message : String(error);
    return new ClusterUnavailableError(`${what} needs Redis, which failed (${this.sources.connections.where}): ${message}${note}`, { cause: error });
  }

  private newEpoch(channel: ChannelName, epoch: string, lost = false): void {
    this.candidates.used();
    if (lost) this.sources.logger.warn({ channel, epoch }, `Redis lost messages of channel ${channel} (they were delivered, and it has no trace of them); its history starts a new epoch`);
    else this.sources.logger.debug({ channel, epoch }, 'new history epoch');
  }
}
