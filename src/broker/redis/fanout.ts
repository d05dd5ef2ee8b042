/**
 * Messages between nodes through Redis pub/sub. A message is published with one script
 * call that also counts its recipients cluster-wide; calls are pipelined. The publishing
 * node has delivered to its own subscribers already and ignores its own message when
 * Redis echoes it, so every subscriber gets it exactly once, in publish order.
 *
 * While Redis is unreachable, messages wait in a bounded outbox (oldest dropped first);
 * the resync sends them, in order, before anything published after it.
 */
import type { Logger } from 'pino';
import { NODE_ID_LENGTH } from '../../ids.js';
import type { ChannelName } from '../../types.js';
import type { Delivery, LocalNode } from '../broker.js';
import type { RedisConnections } from './connections.js';
import { Outbox } from './outbox.js';
import type { RedisKeys } from './redis-keys.js';

/** A message held for Redis: only what send() needs (the payload holds the frame). */
interface OutboxEntry {
  readonly channel: ChannelName;
  readonly recipients: readonly string[] | null;
  readonly payload: Buffer;
}

const NEWLINE = 0x0a;

export class Fanout {
  /**
   * Publishes go straight to Redis: the outbox has been handed to the connection since it
   * came back (so anything published now is sent after the held messages).
   */
  private sending = false;
  private readonly outbox: Outbox<OutboxEntry>;
  /** Messages dropped from the outbox over this outage (it may take several resyncs). */
  private droppedDuringOutage = 0;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly logger: Logger,
    limits: { messages: number; bytes: number },
  ) {
    this.outbox = new Outbox(limits.messages, limits.bytes);
  }

  /** Sends a message to the other nodes (or holds it); resolves with the cluster-wide count, or `localCount` when Redis cannot count. */
  async publish(delivery: Delivery, localCount: number): Promise<number> {
    // Addressed to nobody: there is nothing to send, and nobody to count.
    if (delivery.recipients !== null && delivery.recipients.length === 0) return 0;
    const payload = this.encode(delivery);
    const entry: OutboxEntry = { channel: delivery.channel, recipients: delivery.recipients, payload };
    if (!this.sending) {
      this.outbox.push(entry, payload.length);
      return localCount;
    }
    try {
      return await this.send(entry);
    } catch (error) {
      // The message reached this node's subscribers; whether Redis ran the PUBLISH is
      // unknown, so it is not sent again. The state change is logged by the broker.
      this.logger.debug({ err: error, channel: delivery.channel }, 'publishing through Redis failed');
      return localCount;
    }
  }

  /**
   * The last step of a resync: hands the held messages to the connection, in order, and
   * from then on publishes follow them. Resolves once Redis answered them all.
   */
  async flush(): Promise<{ sent: number; dropped: number }> {
    const { items: held, dropped } = this.outbox.takeAll();
    const sent = held.map((entry) => this.send(entry));
    this.sending = true;
    await Promise.allSettled(sent);
    this.droppedDuringOutage += dropped;
    const summary = { sent: held.length, dropped: this.droppedDuringOutage };
    this.droppedDuringOutage = 0;
    return summary;
  }

  /** A connection dropped: publishes are held until the next flush. */
  hold(): void {
    this.sending = false;
  }

  /** A message from another node on `channel`: delivered to this node's subscribers. */
  receive(channel: ChannelName, payload: Buffer, local: LocalNode): void {
    // Our own messages were delivered here when they were published.
    if (payload.toString('latin1', 0, NODE_ID_LENGTH) === this.nodeId) return;
    const newline = payload.indexOf(NEWLINE, NODE_ID_LENGTH);
    if (newline === -1) {
      this.logger.warn({ channel }, 'ignoring a malformed message from Redis');
      return;
    }
    let recipients: string[] | null = null;
    if (newline > NODE_ID_LENGTH) {
      try {
        recipients = JSON.parse(payload.toString('utf8', NODE_ID_LENGTH, newline)) as string[];
      } catch {
        this.logger.warn({ channel }, 'ignoring a malformed message from Redis');
        return;
      }
    }
    try {
      local.deliver({ channel, recipients, frame: payload.subarray(newline + 1) });
    } catch (error) {
      this.logger.error({ err: error, channel }, 'delivering a message from Redis failed');
    }
  }

  private send({ channel, recipients, payload }: OutboxEntry): Promise<number> {
    return this.connections.commands.switchboardPublish(this.keys.members(channel), this.keys.users(channel), this.keys.messages(channel), payload, ...(recipients ?? []));
  }

  /** `<node id><recipients as JSON, or nothing>\n<frame>`: a receiving node never parses the frame. */
  private encode(delivery: Delivery): Buffer {
    const head = `${this.nodeId}${delivery.recipients === null ? '' : JSON.stringify(delivery.recipients)}\n`;
    const { frame } = delivery;
    // One buffer, the frame written into it once.
    const headLength = Buffer.byteLength(head);
    const payload = Buffer.allocUnsafe(headLength + (typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length));
    payload.write(head, 0, 'utf8');
    if (typeof frame === 'string') payload.write(frame, headLength, 'utf8');
    else frame.copy(payload, headLength);
    return payload;
  }
}
