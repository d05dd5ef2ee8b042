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
    // The node's position, and how many live frames the connection held before it was taken.
    let at = taken(connection, channel, positions);
    if (at.position === null || resume === null) return held(connection, channel, at, resume === null ? null : false, []);
    if (resume.epoch !== at.position.epoch) return held(connection, channel, at, false, []);
    if (resume.since > at.position.offset) {
      // The client heard more than this node has delivered (it came from another node): catch up first.
      await positions.reach(channel, { epoch: resume.epoch, offset: resume.since });
      at = taken(connection, channel, positions);
      if (at.position === null) return held(connection, channel, at, false, []);
      if (at.position.epoch !== resume.epoch || resume.since > at.position.offset) return held(connection, channel, at, false, []);
    }
    const position = at.position;
    const missed = position.offset - resume.since;
    if (missed === 0) return held(connection, channel, at, true, []);
    if (missed > this.deps.recoveryMax) return held(connection, channel, at, false, []);
    let page: HistoryPage;
    try {
      page = await this.deps.read(channel, { since: resume.since, until: position.offset, limit: missed, seen: null });
    } catch {
      return held(connection, channel, at, false, []);
    }
    const complete = page.epoch === position.epoch && page.messages.length === missed && page.messages[0]?.offset === resume.since + 1;
    return held(connection, channel, at, complete, complete ? page.messages : []);
  }
}

interface Taken {
  readonly position: StreamPosition | null;
  /** Frames the connection held on the channel when the position was taken. */
  readonly heldBefore: number;
}

function taken(connection: Connection, channel: ChannelName, positions: ChannelPositions): Taken {
  return { position: positions.position(channel), heldBefore: connection.heldCount(channel) };
}

/**
 * The subscription's answer; release() sends `replay`, then the held frames that follow
 * the position. A frame with a position (a kept message, or a notice that history was
 * lost) held before the position was taken is behind it: the ack says where the client is.
 */
function held(connection: Connection, channel: ChannelName, at: Taken, recovered: boolean | null, replay: readonly StoredMessage[]): Joined {
  const { position, heldBefore } = at;
  return {
    position,
    recovered,
    release(): void {
      const live = connection.release(channel);
      for (const message of replay) connection.sendPrepared(new PreparedFrame(message.frame));
      for (const [index, { position: of, frame }] of live.entries()) {
        if (position !== null && of !== null && (index < heldBefore || (of.epoch === position.epoch && of.offset <= position.offset))) continue;
        connection.sendPrepared(frame);
      }
    },
  };
}
