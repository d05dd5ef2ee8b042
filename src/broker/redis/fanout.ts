/**
 * Messages between nodes through Redis pub/sub (payload.ts has their format). A message
 * is published with one script call that also counts its recipients cluster-wide; calls
 * are pipelined.
 *
 * A message that is not kept in the history has been delivered to the publishing node's
 * own subscribers already: that node ignores it when Redis echoes it, so every subscriber
 * gets it exactly once, in publish order. While Redis is unreachable, such messages wait
 * in a bounded outbox (oldest dropped first); the resync sends them, in order, before
 * anything published after it.
 *
 * A message kept in the history gets its offset from the script that publishes it
 * (redis-history.ts), and every node, the publishing one included, delivers it from the
 * echo, so that each delivers a channel's kept messages in offset order. It is never held:
 * an offset given while Redis is out of reach could be given again by another node.
 */
import type { Logger } from 'pino';
import type { ChannelName } from '../../types.js';
import type { Publication } from '../broker.js';
import type { DeliveryPacer } from '../delivery-pacer.js';
import type { RedisConnections } from './connections.js';
import { Outbox } from './outbox.js';
import { encodePayload, parsePayload } from './payload.js';
import type { RedisKeys } from './redis-keys.js';
import { isRefusal } from './refusals.js';

/** A message held for Redis: only what send() needs (the payload holds the frame). */
interface OutboxEntry {
  readonly channel: ChannelName;
  readonly recipients: readonly string[] | null;
  readonly payload: Buffer;
}

export class Fanout {
  /**
   * Publishes go straight to Redis: the outbox has been handed to the connection since it
   * came back (so anything published now is sent after the held messages).
   */
  private sendingNow = false;
  private readonly outbox: Outbox<OutboxEntry>;
  /** Messages dropped from the outbox over this outage (it may take several resyncs). */
  private droppedDuringOutage = 0;
  /** Held messages sent over this outage by resyncs that Redis still refused some of. */
  private sentDuringOutage = 0;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly logger: Logger,
    limits: { messages: number; bytes: number },
    /** Redis refused a message in a way that says it is out of reach: the node holds and resyncs. */
    private readonly outage: (problem: string) => void,
  ) {
    this.outbox = new Outbox(limits.messages, limits.bytes);
  }

  /**
   * Publishes go straight to Redis, after whatever the outbox held: the resync got as far
   * as sending it (both connections up, memberships registered, channels resubscribed).
   */
  get sending(): boolean {
    return this.sendingNow;
  }

  /**
   * Sends a message that is not kept to the other nodes (or holds it); resolves with the
   * cluster-wide count, or `localCount` when Redis cannot count.
   */
  async publish(publication: Publication, localCount: number): Promise<number> {
    const { channel, recipients, exclude, frame } = publication;
    // Addressed to nobody: there is nothing to send, and nobody to count.
    if (recipients !== null && recipients.length === 0) return 0;
    const payload = encodePayload(this.nodeId, { recipients, exclude }, frame);
    const entry: OutboxEntry = { channel, recipients, payload };
    if (!this.sendingNow) {
      this.outbox.push(entry, payload.length);
      return localCount;
    }
    try {
      return await this.send(entry);
    } catch (error) {
      if (isRefusal(error)) {
        // Redis never ran it: held like any message of an outage, and sent after the resync.
        this.outbox.push(entry, payload.length);
        this.outage((error as Error).message);
        return localCount;
      }
      // The message reached this node's subscribers; whether Redis ran the PUBLISH is
      // unknown (a timeout, a connection that closed after sending), so it is not sent
      // again. The state change is logged by the broker.
      this.logger.debug({ err: error, channel }, 'publishing through Redis failed');
      return localCount;
    }
  }

  /** Messages held for the other nodes now. */
  get held(): number {
    return this.outbox.size;
  }

  /**
   * The last step of a resync: hands the held messages to the connection, in order, and
   * from then on publishes follow them. Resolves once Redis answered them all. Those it
   * refused are held again and the outage goes on: the flush then rejects, so that the
   * resync does not count and the node is not reported ready (nor "back") while it still
   * holds messages; the next resync's flush reports every message sent over the outage.
   */
  async flush(): Promise<{ sent: number; dropped: number }> {
    const { items: held, dropped } = this.outbox.takeAll();
    let refused = 0;
    let refusal = '';
    const sent = held.map((entry) =>
      this.send(entry).catch((error: unknown) => {
        if (!isRefusal(error)) throw error;
        // Redis never ran it (a shard still says CLUSTERDOWN, say, while the others are
        // back): held again for the next resync rather than lost, and what is published
        // from now on is held behind it. Refusals come back in the order sent, before those
        // of anything published after them.
        refused++;
        refusal = (error as Error).message;
        this.sendingNow = false;
        this.outbox.push(entry, entry.payload.length);
        this.outage(refusal);
      }),
    );
    this.sendingNow = true;
    await Promise.allSettled(sent);
    this.droppedDuringOutage += dropped;
    this.sentDuringOutage += held.length - refused;
    if (refused > 0) throw new Error(`Redis refused ${refused} of ${held.length} held messages (${refusal}); they are held for the next try`);
    const summary = { sent: this.sentDuringOutage, dropped: this.droppedDuringOutage };
    this.droppedDuringOutage = 0;
    this.sentDuringOutage = 0;
    return summary;
  }

  /** A connection dropped: publishes are held until the next flush. */
  hold(): void {
    this.sendingNow = false;
  }

  /**
   * A message on `channel` from Redis: handed to this node's subscribers (through `pacer`,
   * which bounds the time a turn spends on them), unless this node published it and
   * delivered it already (one that is not kept).
   */
  receive(channel: ChannelName, payload: Buffer, pacer: DeliveryPacer): void {
    const message = parsePayload(payload);
    if (message === null) {
      this.logger.warn({ channel }, 'ignoring a malformed message from Redis');
      return;
    }
    const { nodeId, recipients, exclude, position, frame } = message;
    if (nodeId === this.nodeId && position === null) return;
    pacer.receive({ channel, recipients, exclude, frame, position });
  }

  private send({ channel, recipients, payload }: OutboxEntry): Promise<number> {
    return this.connections.commands.switchboardPublish(this.keys.members(channel), this.keys.users(channel), this.keys.messages(channel), payload, ...(recipients ?? []));
  }
}
