/** The shapes the client takes and gives: options, events, and the server's replies. */
import type { SwitchboardError } from './errors.js';

export type State = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A token, or a function that gives one (asked at every connect and before the token expires). */
export type TokenSource = string | null | (() => string | null | undefined | Promise<string | null | undefined>);

/**
 * An event handler property, checked bivariantly (as methods are) so that the WebSockets'
 * own handler types, which name their event classes, fit.
 */
type Handler<E> = { handler(event: E): void }['handler'] | null;

/** What the client needs of a WebSocket: the browser's, Node ≥ 22's global one, `ws`, Deno's, Bun's. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** Sent as the subprotocols `bearer, <token>`; none: an anonymous connection. */
  token?: TokenSource;
  /** The WebSocket constructor; by default the global one (pass `ws`'s on Node 20). */
  WebSocket?: WebSocketConstructor;
  /** Backoff between reconnects, in ms; `false`: never reconnect on its own. */
  reconnect?: { minDelay?: number; maxDelay?: number } | false;
  /** How long a request waits for its reply, in ms (also the wait for the server's welcome). */
  requestTimeout?: number;
  /** false: wait for `connect()`. */
  autoConnect?: boolean;
}

export type UserId = string | number | null;

/** The server's first frame on a connection. */
export interface Welcome {
  connection_id: string;
  heartbeat_interval: number;
  authenticated: boolean;
  user_id: UserId;
  role: string | null;
}

/** A message delivered on a channel; `offset` on a channel with history. */
export interface Message<T = unknown> {
  channel: string;
  message: T;
  /** The publishing connection, null when the backend published it. */
  sender: string | null;
  user_id: UserId;
  /** Unix seconds. */
  time: number;
  offset?: number;
}

export interface PresenceEvent {
  channel: string;
  connection_id: string;
  user_id: UserId;
}

/** After every (re)subscribe: `recovered` is true when every message missed since the last one seen is replayed (it follows at once). */
export interface Subscribed {
  recovered: boolean;
  epoch?: string;
  offset?: number;
}

export interface PublishResult {
  recipients_count: number;
  offset?: number;
}

export interface PresenceResult {
  members: { connection_id: string; user_id: UserId }[];
  users: number;
  connections: number;
}

export interface HistoryResult<T = unknown> {
  epoch: string;
  offset: number;
  messages: Message<T>[];
}

export interface ClientEvents {
  state: State;
  error: SwitchboardError;
  connected: Welcome;
  /** The connection was lost or closed; `code` and `reason` of its close (1006 when it just went away). */
  disconnected: { code: number; reason: string };
}

export interface SubscriptionEvents {
  message: Message;
  join: PresenceEvent;
  leave: PresenceEvent;
  subscribed: Subscribed;
  error: SwitchboardError;
}

/** A frame from the server, as parsed: only the fields the client reads are named. */
export interface Frame {
  action?: string;
  type?: string;
  success?: boolean;
  id?: number;
  channel?: string;
  code?: string;
  error?: string;
  retry_after?: number;
  reason?: string;
  recovered?: boolean;
  epoch?: string;
  offset?: number;
  data?: unknown;
  [field: string]: unknown;
}
