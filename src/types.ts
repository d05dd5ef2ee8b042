/** Public type aliases shared by every subsystem. */

/** Opaque connection id, unique across the cluster and never reused. */
export type ConnectionId = string;
/** A channel name that passed the grammar of SPEC §4. */
export type ChannelName = string;
/** A request's `id`, copied into its reply so that the client can match them. */
export type RequestId = string | number;
/**
 * A user id taken from a token, of the token's own JSON type: frames and the HTTP API show
 * it as the token has it. `recipients` (and every other match) compare it as a string.
 */
export type UserId = string | number;

/** A message on its way from a publisher to the subscribers of one channel. */
export interface ChannelMessage {
  readonly channel: ChannelName;
  /** Any JSON value but null. */
  readonly message: unknown;
  /** Publishing connection, or null when the application published it. */
  readonly sender: ConnectionId | null;
  readonly userId: UserId | null;
  /** Unix time in seconds. */
  readonly time: number;
  /** When set, only connections authenticated as one of these user ids receive it. */
  readonly recipients: readonly string[] | null;
}
