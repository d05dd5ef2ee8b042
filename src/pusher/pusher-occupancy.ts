/**
 * The `channel_occupied` and `channel_vacated` webhooks (SPEC §10): a channel is occupied when
 * its first subscriber joins, on any node and of either protocol, and vacated when its last
 * one leaves (or goes with its node). The node where that happened tells it once, by asking
 * the cluster who is left. Two subscribers joining (or leaving) at the same moment on two
 * nodes may both see the other: then neither tells it (the price of not locking the cluster
 * for every subscribe).
 */
import type { ActionScope } from '../actions/scope.js';
import type { Member } from '../broker/broker.js';
import type { Connection } from '../connection/connection.js';
import type { ChannelName } from '../types.js';
import type { PusherWebhookEvent } from './webhooks.js';

export class ChannelOccupancy {
  constructor(
    private readonly scope: ActionScope,
    private readonly send: (event: PusherWebhookEvent) => void,
  ) {}

  async joined(channel: ChannelName, connection: Connection): Promise<void> {
    const members = await this.scope.members(channel);
    if (members.every((member) => member.connectionId === connection.id)) this.send({ name: 'channel_occupied', channel });
  }

  async left(channel: ChannelName, connection: Connection): Promise<void> {
    const members = await this.scope.members(channel);
    if (members.every((member) => member.connectionId === connection.id)) this.send({ name: 'channel_vacated', channel });
  }

  /** Members that went with their node: told by the node that cleaned them out (`everywhere`), once. */
  async gone(channel: ChannelName, gone: readonly Member[], everywhere: boolean): Promise<void> {
    if (!everywhere) return;
    const goneIds = new Set(gone.map((member) => member.connectionId));
    const members = await this.scope.members(channel);
    if (members.every((member) => goneIds.has(member.connectionId))) this.send({ name: 'channel_vacated', channel });
  }
}
