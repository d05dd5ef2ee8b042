/**
 * The `auth` action (SPEC §5): authenticates an anonymous connection, or renews the
 * token of an authenticated one before it expires — for the same user only.
 */
import { TokenError, type Identity } from '../auth/tokens.js';
import type { Connection } from '../connection/connection.js';
import { SwitchboardError } from '../errors.js';
import { ErrorCode } from '../codes.js';
import type { ChannelName } from '../types.js';
import { leaveForbiddenChannels } from './channel-membership.js';
import type { ActionScope } from './scope.js';

export interface Authenticated {
  readonly identity: Identity;
  /** Channels left because the new token's roles may not read them. */
  readonly leftChannels: ChannelName[];
}

/** Verifies a token; a bad or expired one throws a SwitchboardError with its code. */
export async function verifyToken(scope: ActionScope, token: string): Promise<Identity> {
  try {
    return await scope.verifier.verify(token);
  } catch (error) {
    if (error instanceof TokenError) throw new SwitchboardError(error.code, error.message);
    throw error;
  }
}

/**
 * Gives the connection a verified identity. Synchronous, so that the protocol can send
 * its ack and notices in the same turn, before any delivery or close can come between.
 */
export function applyIdentity(scope: ActionScope, connection: Connection, identity: Identity): Authenticated {
  if (connection.authenticated && connection.userKey !== String(identity.userId)) {
    throw new SwitchboardError(ErrorCode.FORBIDDEN, 'a connection cannot change its user; reconnect to sign in as another user');
  }
  const wasAnonymous = !connection.authenticated;
  const previous = { connectionId: connection.id, userId: connection.userId };
  connection.authenticate(identity);
  const leftChannels = leaveForbiddenChannels(scope, connection);
  // Signed in: `recipients` on other nodes must now count this connection as its user.
  if (wasAnonymous) scope.hub.rejoin(connection, previous);
  return { identity, leftChannels };
}
