/**
 * Node and connection ids, built and parsed here only. A node id is 6 random bytes in
 * base64url (8 characters); a connection id is `<node id>-<counter in base 36>`, so that
 * it is unique cluster-wide, never reused, and names the node that holds it.
 */
import { randomBytes } from 'node:crypto';
import type { ConnectionId } from './types.js';

export const NODE_ID_LENGTH = 8;
const NODE_ID = /^[A-Za-z0-9_-]{8}$/;

export function newNodeId(): string {
  return randomBytes(6).toString('base64url');
}

export function isNodeId(text: string): boolean {
  return NODE_ID.test(text);
}

/** Returns a function that makes this node's next connection id. */
export function connectionIds(nodeId: string): () => ConnectionId {
  let counter = 0;
  return () => `${nodeId}-${(++counter).toString(36)}`;
}

/** The node a connection id belongs to ('' for a string that is not one). */
export function nodeOfConnection(connectionId: ConnectionId): string {
  const dash = connectionId.lastIndexOf('-');
  return dash === -1 ? '' : connectionId.slice(0, dash);
}
