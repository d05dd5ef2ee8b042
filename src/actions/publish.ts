/**
 * Publishing (SPEC §2): from a client, after the channel rules, the subscription check
 * and the application's message hooks; from the application, as is. Either way the
 * hub serializes the frame once for every subscriber on every node.
 */
import type { Connection } from '../connection/connection.js';
import { SwitchboardError } from '../errors.js';
import { ErrorCode, ErrorText } from '../codes.js';
import { unixSeconds } from '../clock.js';
import type { OutgoingMessage } from '../hooks.js';
import type { PublishResult } from '../broker/broker.js';
import type { ActionScope } from './scope.js';
import type { ConnectionId } from '../types.js';

/** How a message is published: `ephemeral` ones are delivered live only, never kept in the history. */
export interface PublishOptions {
  readonly ephemeral: boolean;
}

/**
 * Publishes a client's message. Resolves as soon as the message is in the broker's hands
 * (the rules and hooks passed, its place in the order taken) with its outcome still to
 * come: the number of connections it was addressed to, and its position in the history.
 * A pipelined publish waits only for the first before the next one starts.
 */
export async function publishFromClient(scope: ActionScope, connection: Connection, publication: OutgoingMessage, options: PublishOptions): Promise<{ readonly outcome: Promise<PublishResult> }> {
  const { channel, recipients } = publication;
  if (!scope.permissions.can('publish', channel, connection)) throw new SwitchboardError(ErrorCode.FORBIDDEN, `not allowed to publish to ${channel}`);
  if (!connection.channels.has(channel)) throw new SwitchboardError(ErrorCode.NOT_SUBSCRIBED, ErrorText.NOT_SUBSCRIBED);
  const message = await scope.hooks.checkMessage(connection, publication);
  return { outcome: scope.hub.publish({ channel, message, sender: connection.id, userId: connection.userId, time: unixSeconds(), recipients }, options.ephemeral) };
}

/** Publishes the application's message (already validated), with `"sender": null`; `exclude` receives nothing. */
export function publishFromApplication(scope: Pick<ActionScope, 'hub'>, publication: OutgoingMessage, options: PublishOptions, exclude: ConnectionId | null = null): Promise<PublishResult> {
  const { channel, message, recipients } = publication;
  return scope.hub.publish({ channel, message, sender: null, userId: null, time: unixSeconds(), recipients }, options.ephemeral, exclude);
}
