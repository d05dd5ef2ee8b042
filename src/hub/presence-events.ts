/**
 * Presence events (SPEC §2, §4): on a channel with presence, every other subscriber, on
 * every node, hears a `join` or `leave` for each connection that subscribes, unsubscribes,
 * disconnects, or disappears with its node. Published through the broker like messages,
 * never kept in the history; the frame carries the connection id and user id only.
 */
import type { Logger } from 'pino';
import type { Broker, Delivery, Member } from '../broker/broker.js';
import type { ChannelFeatures } from '../channels/features.js';
import type { ChannelName } from '../types.js';

export type PresenceChange = 'join' | 'leave';

/** Serializes a presence event in the protocol's wire format. */
export type PresenceEncoder = (change: PresenceChange, channel: ChannelName, member: Member) => string;

export class PresenceEvents {
  constructor(
    private readonly broker: Broker,
    private readonly features: ChannelFeatures,
    private readonly encode: PresenceEncoder,
    /** Delivers to this node's subscribers alone. */
    private readonly deliverHere: (delivery: Delivery) => number,
    private readonly logger: Logger,
  ) {}

  /** Tells every node's subscribers of `channel`, but `member` itself. */
  announce(change: PresenceChange, channel: ChannelName, member: Member): void {
    if (!this.features.presence(channel)) return;
    const frame = this.encode(change, channel, member);
    // Through a promise, so that a broker that throws instead of rejecting is logged too.
    Promise.resolve()
      .then(() => this.broker.publish({ channel, recipients: null, exclude: member.connectionId, frame, history: null }))
      .catch((error: unknown) => this.logger.warn({ err: error, channel }, `a presence ${change} event could not be sent to the other nodes`));
  }

  /** Members that left without their node: announced everywhere, or only here (the broker tells each node). */
  gone(channel: ChannelName, members: readonly Member[], everywhere: boolean): void {
    if (!this.features.presence(channel)) return;
    for (const member of members) {
      if (everywhere) this.announce('leave', channel, member);
      else this.deliverHere({ channel, recipients: null, exclude: member.connectionId, frame: this.encode('leave', channel, member), position: null });
    }
  }
}
