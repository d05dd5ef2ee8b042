/**
 * What a WebSocketHandler is made with and what its calls take and give: the options of the
 * constructor, of publishing and of attaching to a server, and what a publish did.
 */
import type { Logger } from 'pino';
import type { BrokerWithView } from './broker/broker.js';
import type { RedisBrokerTuning } from './broker/factory.js';
import type { SwitchboardConfig } from './config/options.js';
import type { StreamPosition } from './history/history.js';

export interface HandlerOptions extends SwitchboardConfig {
  /**
   * The fan-out bus, with the cluster views of the HTTP API.
   * @default a RedisBroker when `redis.enabled`, otherwise a MemoryBroker (single process)
   */
  broker?: BrokerWithView;
  /** Where to log. @default warnings and errors as JSON lines on stderr */
  logger?: Logger;
  /** Timings and bounds of the RedisBroker made when `redis.enabled` (shorter liveness for tests, say). */
  brokerTuning?: RedisBrokerTuning;
}

/** What a publish did: the connections it was addressed to, and where the history keeps it. */
export interface Published {
  /** Connections it was addressed to, cluster-wide. */
  readonly recipientsCount: number;
  /** Its offset and epoch on a channel with history (null otherwise, and for ephemeral messages). */
  readonly position: StreamPosition | null;
}

export interface PublishMessageOptions {
  /** Only connections authenticated as one of these user ids receive it. */
  recipients?: ReadonlyArray<string | number>;
  /** Delivered live only: never kept in the history, no offset (typing indicators and the like). @default false */
  ephemeral?: boolean;
  /** A connection id that does not receive it (Pusher's `socket_id` exclusion). */
  exclude?: string;
}

export interface AttachOptions {
  /** Path on which upgrades are accepted. @default the `path` option */
  path?: string;
}
