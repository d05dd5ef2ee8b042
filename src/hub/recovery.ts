/**
 * A subscribe on a channel with history (SPEC §4): the connection's live messages on the
 * channel are held from the moment it joins; once the node's position is known, what the
 * client missed since its `since` is read from the history; the protocol sends its ack,
 * then release() sends the replay and the held live messages that follow it, so that
 * the client gets every message once, in order, even while messages are being published.
 */
import type { Connection } from '../connection/connection.js';
import type { HistoryPage, HistoryQuery, StoredMessage, StreamPosition } from '../history/history.js';
import { PreparedFrame } from '../transport/prepared-frame.js';
import type { ChannelName } from '../types.js';
import type { ChannelPositions } from './positions.js';

/** Where a client resumes: the last offset it received, in its epoch. */
export interface Resume {
  readonly since: number;
  readonly epoch: string | null;
}

/** A subscription in place; what its ack says, and the replay to send after it. */
export interface Joined {
  /** The node's position in the channel's history (null without history, or while the store is out of reach). */
  readonly position: StreamPosition | null;
  /** With a resume point: whether every missed message is replayed. Null without one. */
  readonly recovered: boolean | null;
  /** Sends the replay, then the live messages held meanwhile. Call right after the ack, in the same turn. */
  release(): void;
}

export const NOTHING_HELD: Joined = Object.freeze({ position: null, recovered: null, release: () => undefined });

export interface RecoveryDeps {
  readonly positions: ChannelPositions;
  read(channel: ChannelName, query: HistoryQuery): Promise<HistoryPage>;
  /** Most messages replayed (WS_RECOVERY_MAX). */
  readonly recoveryMax: number;
}

export class Recovery {
  constructor(private readonly deps: RecoveryDeps) {}

  /** The connection joined `channel` and holds its live messages: works out what to replay. */
  async recover(connection: Connection, channel: ChannelName, resume: Resume | null): Promise<Joined> {
    const { positions } = this.deps;
    await positions.ready(channel);
    let position = positions.position(channel);
    if (position === null || resume === null) return held(connection, channel, position, resume === null ? null : false, []);
    if (resume.epoch !== position.epoch) return held(connection, channel, position, false, []);
    if (resume.since > position.offset) {
      // The client heard more than this node has delivered (it came from another node): catch up first.
      await positions.reach(channel, { epoch: resume.epoch, offset: resume.since });
      position = positions.position(channel);
      if (position === null) return held(connection, channel, null, false, []);
      if (position.epoch !== resume.epoch || resume.since > position.offset) return held(connection, channel, position, false, []);
    }
    const missed = position.offset - resume.since;
    if (missed === 0) return held(connection, channel, position, true, []);
    if (missed > this.deps.recoveryMax) return held(connection, channel, position, false, []);
    let page: HistoryPage;
    try {
      page = await this.deps.read(channel, { since: resume.since, until: position.offset, limit: missed, seen: null });
    } catch {
      return held(connection, channel, position, false, []);
    }
    const complete = page.epoch === position.epoch && page.messages.length === missed && page.messages[0]?.offset === resume.since + 1;
    return held(connection, channel, position, complete, complete ? page.messages : []);
  }
}

/** The subscription's answer; release() sends `replay`, then the held messages after `position`. */
function held(connection: Connection, channel: ChannelName, position: StreamPosition | null, recovered: boolean | null, replay: readonly StoredMessage[]): Joined {
  return {
    position,
    recovered,
    release(): void {
      const live = connection.release(channel);
      for (const message of replay) connection.sendPrepared(new PreparedFrame(message.frame));
      for (const { position: at, frame } of live) {
        // Delivered here before the position was taken: the client is past it (the ack says so).
        if (position !== null && at !== null && at.epoch === position.epoch && at.offset <= position.offset) continue;
        connection.sendPrepared(frame);
      }
    },
  };
}
