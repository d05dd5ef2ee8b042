/**
 * What applications see of a connection in hooks and custom actions. Part of the public
 * API, so kept apart from Connection: a consumer's declarations then reach none of the
 * transport (and so none of `ws`'s types, which the package does not ship).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ChannelName, ConnectionId, UserId } from '../types.js';

/** What applications see of a connection in hooks and custom actions. */
export interface ConnectionInfo {
  readonly id: ConnectionId;
  /** Remote address of the client socket. */
  readonly ip: string;
  readonly userId: UserId | null;
  readonly role: string | null;
  /** Role names from the token's `role` and `roles` claims. */
  readonly roles: readonly string[];
  readonly authenticated: boolean;
  /** When the connection's token expires (ms since the epoch), or null without a token. */
  readonly tokenExpiresAt: number | null;
  readonly channels: ReadonlySet<ChannelName>;
  /** The handshake request's URL and headers. */
  readonly request: { readonly url: string; readonly headers: IncomingHttpHeaders };
  /** Free-form state for the application. */
  readonly data: Record<string, unknown>;
  /** Sends one JSON frame to this client. */
  send(frame: object): void;
  /** Closes the connection (default 1000). */
  close(code?: number, reason?: string): void;
}
