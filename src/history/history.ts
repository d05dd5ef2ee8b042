/**
 * History (SPEC §4): the last messages of a channel, each with an offset that the store
 * assigns (one more per message, the same on every node), and an epoch that changes
 * whenever the history was lost. A stored message is the frame its subscribers received.
 */

/** A channel's history switch: keep the last `size` messages for at most `ttl` seconds of silence. */
export interface HistorySettings {
  readonly size: number;
  /** Seconds. */
  readonly ttl: number;
}

/** A place in a channel's stream: the epoch, and the offset of a message in it (0: before the first). */
export interface StreamPosition {
  readonly epoch: string;
  readonly offset: number;
}

/** A message as the history keeps it: its offset, and the frame its subscribers received (the offset in it). */
export interface StoredMessage {
  readonly offset: number;
  readonly frame: string;
}

export interface HistoryQuery {
  /** Messages after this offset (exclusive); null: the newest `limit`. */
  readonly since: number | null;
  /** No message after this offset; null: up to the newest. */
  readonly until: number | null;
  /** At most this many messages (0: the position alone). */
  readonly limit: number;
  /**
   * The position the reader has delivered up to, when it has one. A store found behind it
   * in the same epoch has lost messages (Redis restored from an older snapshot): it starts
   * a new epoch rather than give the same offsets to other messages.
   */
  readonly seen?: StreamPosition | null;
}

/** A read of the history as clients and the application ask for it. */
export interface HistoryRequest {
  /** Messages after this offset; null: the newest `limit`. */
  readonly since: number | null;
  /** @default MAX_HISTORY_LIMIT (also the most) */
  readonly limit: number | null;
}

/** What a read of the history answers: the current epoch, the last offset assigned in it, and the messages asked for, oldest first. */
export interface HistoryPage extends StreamPosition {
  readonly messages: readonly StoredMessage[];
}

/** The largest `limit` of one read (SPEC §4), and the default. */
export const MAX_HISTORY_LIMIT = 1000;

/**
 * How long a channel's position (epoch and last offset) is kept after its last message:
 * far longer than its messages, so that a client back after a quiet spell is told it
 * missed nothing instead of being sent to reload.
 */
export const POSITION_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * A frame (a JSON object's text) with `"offset":N` as its last field. Done once per
 * message, by the store, on the frame serialized once for every subscriber.
 */
export function withOffset(frame: string, offset: number): string {
  return `${frame.slice(0, -1)},"offset":${offset}}`;
}
