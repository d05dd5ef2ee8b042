/**
 * Pusher's socket_id (`\d+\.\d+`) is the connection id (`<node id>-<counter in base 36>`,
 * ids.ts) written in digits: the node id's 6 bytes as one number, a dot, the counter. Every
 * node turns one into the other without asking anyone, so that the HTTP API can exclude a
 * socket that lives on another node.
 */
import type { ConnectionId } from '../types.js';

const NODE_BYTES = 6;

/** The socket_id of a connection id; null when it is not one this server made. */
export function socketIdOf(connectionId: ConnectionId): string | null {
  const dash = connectionId.lastIndexOf('-');
  const node = Buffer.from(connectionId.slice(0, dash), 'base64url');
  const counter = parseInt(connectionId.slice(dash + 1), 36);
  if (dash === -1 || node.length !== NODE_BYTES || !Number.isSafeInteger(counter)) return null;
  return `${node.readUIntBE(0, NODE_BYTES)}.${counter}`;
}

/** The connection id a socket_id names; null when it names none (a malformed one, or one from elsewhere). */
export function connectionIdOf(socketId: string): ConnectionId | null {
  const match = /^(\d{1,15})\.(\d{1,16})$/.exec(socketId);
  if (match === null) return null;
  const node = Number(match[1]);
  const counter = Number(match[2]);
  if (node >= 2 ** (8 * NODE_BYTES) || !Number.isSafeInteger(counter) || counter < 1) return null;
  const bytes = Buffer.alloc(NODE_BYTES);
  bytes.writeUIntBE(node, 0, NODE_BYTES);
  return `${bytes.toString('base64url')}-${counter.toString(36)}`;
}
