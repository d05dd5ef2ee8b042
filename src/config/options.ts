/**
 * Options: one interface, one DEFAULTS object, one merge, validation right here (SPEC §1).
 *
 * Every option can come from five layers, weakest first: DEFAULTS < `.env` file <
 * process environment < CLI flags < options passed in code. Each layer is flattened to
 * `{ 'ssl.cert': value }` form, merged, and each field's value is coerced and checked
 * by the same function whatever its source, so an error always names both the
 * environment variable and the option in code.
 */
import type { ChannelRule } from '../channels/rules.js';

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface SslOptions {
  /** Serve wss:// and https://. @default false */
  enabled: boolean;
  /** PEM certificate file path (WS_SSL_CERT). */
  cert: string | null;
  /** PEM private key file path (WS_SSL_KEY). */
  key: string | null;
}

export interface AuthOptions {
  /** HS256/384/512 key (TOKEN_SECRET, GEMVC's name). @default null */
  secret: string | null;
  /** PEM file of the public key for RS*, PS*, ES* and EdDSA tokens (JWT_PUBLIC_KEY). @default null */
  publicKey: string | null;
  /** Required `iss` claim, when set (JWT_ISSUER). @default null */
  issuer: string | null;
  /** Required `aud` claim, when set (JWT_AUDIENCE). @default null */
  audience: string | null;
}

export interface RedisOptions {
  /** Scale out through Redis (SPEC §6); off, the node is on its own (REDIS_ENABLED). @default false */
  enabled: boolean;
  /** (REDIS_HOST) @default '127.0.0.1' */
  host: string;
  /** (REDIS_PORT) @default 6379 */
  port: number;
  /** (REDIS_PASSWORD) @default null */
  password: string | null;
  /** Database number (REDIS_DATABASE). @default 0 */
  database: number;
  /** Prefix of every key and pub/sub channel, so that several clusters can share one Redis (REDIS_PREFIX). @default 'websocket:' */
  prefix: string;
  /** `redis://[:password@]host:port/db` or `rediss://` for TLS; overrides host, port, password and database (REDIS_URL). @default null */
  url: string | null;
  /**
   * Redis Sentinel: the sentinels to ask for the master named `sentinelName`, which then
   * replaces host and port (REDIS_SENTINELS, comma-separated host:port). @default null
   */
  sentinels: RedisAddress[] | null;
  /** The master's name in the sentinels' configuration (REDIS_SENTINEL_NAME). @default null */
  sentinelName: string | null;
  /**
   * Redis Cluster: some of its nodes (the rest are discovered); replaces host, port and
   * database (REDIS_CLUSTER_NODES, comma-separated host:port). @default null
   */
  clusterNodes: RedisAddress[] | null;
}

export interface RedisAddress {
  host: string;
  port: number;
}

/**
 * The Pusher-protocol endpoint (SPEC §10): on when appId, key and secret are all set
 * (setting only some of them is an error).
 */
export interface PusherOptions {
  /** App id, in the HTTP API's paths `/apps/{id}` (PUSHER_APP_ID). @default null */
  appId: string | null;
  /** App key, in the WebSocket path `/app/{key}`; printable ASCII, no spaces, `/`, `?`, `#` or `%` (PUSHER_APP_KEY). @default null */
  key: string | null;
  /** App secret: signs channel and user auth, API requests and webhooks; never printed (PUSHER_APP_SECRET). @default null */
  secret: string | null;
  /** Accept `client-*` events on private and presence channels (PUSHER_CLIENT_EVENTS). @default false */
  clientEvents: boolean;
  /** Seconds of silence after which a client pings; sent in `pusher:connection_established` (PUSHER_ACTIVITY_TIMEOUT). @default 30 */
  activityTimeout: number;
  /** http:// or https:// URL that receives webhooks; null sends none (PUSHER_WEBHOOK_URL). @default null */
  webhookUrl: string | null;
}

export interface HistoryOptions {
  /** Messages kept per channel; 0 = no history (WS_HISTORY_SIZE). @default 0 */
  size: number;
  /** Seconds a channel's messages are kept after its last one (WS_HISTORY_TTL). @default 3600 */
  ttl: number;
}

/** Channel rules and where they came from. */
export interface ChannelRulesSource {
  /** The channels file, or '(options in code)'. */
  source: string;
  rules: ChannelRule[];
}

export interface SwitchboardOptions {
  /** Listen address (WS_HOST). @default '0.0.0.0' */
  host: string;
  /** Listen port; 0 picks a free one (WS_PORT). @default 9501 */
  port: number;
  /** Path on which WebSocket upgrades are accepted (WS_PATH). @default '/' */
  path: string;
  /** TLS (WS_SSL_ENABLED, WS_SSL_CERT, WS_SSL_KEY). */
  ssl: SslOptions;
  /** Worker processes sharing the port; 'auto' resolves to the CPU count; with the CLI only (WS_WORKER_NUM). @default 1 */
  workers: number;
  /** Detach from the terminal, write pidFile, log to logFile (WS_DAEMONIZE). @default false */
  daemonize: boolean;
  /** Where a daemonized server writes its pid (WS_PID_FILE). @default './switchboard.pid' */
  pidFile: string;
  /** Log file; null logs to stdout (a daemon then logs to ./switchboard.log) (WS_LOG_FILE). @default null */
  logFile: string | null;
  /** Log level name, or Swoole's numbers 0–6 in the environment (WS_LOG_LEVEL). @default 'info' */
  logLevel: LogLevelName;
  /** Seconds between server pings (WS_HEARTBEAT_INTERVAL). @default 30 */
  heartbeatInterval: number;
  /**
   * Seconds an HTTP request or WebSocket handshake may take to arrive in full before its socket
   * is closed (WS_HANDSHAKE_TIMEOUT). Switchboard's own listener only (createServer, the CLI):
   * attach() leaves the timeouts of an application's server to it. @default 10
   */
  handshakeTimeout: number;
  /** Seconds of silence from a client before it is closed with 4008 (WS_CONNECTION_TIMEOUT). @default 300 */
  connectionTimeout: number;
  /** Frames a connection may send per rolling minute; 0 = unlimited (WS_MAX_MESSAGES_PER_MINUTE). @default 60 */
  maxMessagesPerMinute: number;
  /** Largest inbound frame in bytes; larger ones close with 1009 (WS_MAX_PAYLOAD). @default 65536 */
  maxPayload: number;
  /** Channels one connection may be subscribed to (WS_MAX_CHANNELS_PER_CONNECTION). @default 100 */
  maxChannelsPerConnection: number;
  /** Connections per node; 0 = unlimited (WS_MAX_CONNECTIONS). @default 0 */
  maxConnections: number;
  /** Connections per client IP; 0 = unlimited (WS_MAX_CONNECTIONS_PER_IP). @default 0 */
  maxConnectionsPerIp: number;
  /** Outbound backlog in bytes after which a client is closed as a slow consumer (WS_MAX_BUFFERED_BYTES). @default 1048576 */
  maxBufferedBytes: number;
  /** Origins allowed to connect; null allows any (WS_ALLOWED_ORIGINS, comma-separated). @default null */
  allowedOrigins: string[] | null;
  /** Seconds to drain connections on SIGTERM/SIGINT (WS_SHUTDOWN_TIMEOUT). @default 10 */
  shutdownTimeout: number;
  /** Accept connections without a token (WS_ALLOW_ANONYMOUS). @default true */
  allowAnonymous: boolean;
  /** Channel permission rules; null allows everything (WS_CHANNELS_FILE, or `{ rules }` in code). @default null */
  channels: ChannelRulesSource | null;
  /** Presence on every channel when there is no channels file (a rule's `presence` otherwise) (WS_PRESENCE). @default false */
  presence: boolean;
  /** History on every channel when there is no channels file (a rule's `history` otherwise) (WS_HISTORY_SIZE, WS_HISTORY_TTL). */
  history: HistoryOptions;
  /** Most messages replayed to a client that subscribes with `since`; more missed and it is told to reload (WS_RECOVERY_MAX). @default 1000 */
  recoveryMax: number;
  /** Token verification (TOKEN_SECRET, JWT_PUBLIC_KEY, JWT_ISSUER, JWT_AUDIENCE). */
  auth: AuthOptions;
  /** Redis, for several nodes to act as one server (REDIS_*). */
  redis: RedisOptions;
  /** Bearer key of the HTTP API (/api/*); unset, the API answers 404 (WS_API_KEY). @default null */
  apiKey: string | null;
  /** The Pusher-protocol endpoint (PUSHER_*); off unless appId, key and secret are set. */
  pusher: PusherOptions;
}

/** What callers pass: any subset, nested `ssl` included. */
export type SwitchboardConfig = Partial<Omit<SwitchboardOptions, 'ssl' | 'auth' | 'channels' | 'redis' | 'history' | 'pusher'>> & {
  ssl?: Partial<SslOptions>;
  history?: Partial<HistoryOptions>;
  auth?: Partial<AuthOptions>;
  redis?: Partial<RedisOptions>;
  /** Pusher's app ids are numbers: `appId: 12345` is taken as '12345'. */
  pusher?: Partial<Omit<PusherOptions, 'appId'>> & { appId?: string | number | null };
  /** A channels file path, or the rules themselves. */
  channels?: string | { rules: ChannelRule[] } | ChannelRulesSource | null;
};

export const DEFAULTS: Readonly<SwitchboardOptions> = Object.freeze({
  host: '0.0.0.0',
  port: 9501,
  path: '/',
  ssl: Object.freeze({ enabled: false, cert: null, key: null }),
  workers: 1,
  daemonize: false,
  pidFile: './switchboard.pid',
  logFile: null,
  logLevel: 'info',
  heartbeatInterval: 30,
  handshakeTimeout: 10,
  connectionTimeout: 300,
  maxMessagesPerMinute: 60,
  maxPayload: 65536,
  maxChannelsPerConnection: 100,
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  maxBufferedBytes: 1048576,
  allowedOrigins: null,
  shutdownTimeout: 10,
  allowAnonymous: true,
  channels: null,
  presence: false,
  history: Object.freeze({ size: 0, ttl: 3600 }),
  recoveryMax: 1000,
  auth: Object.freeze({ secret: null, publicKey: null, issuer: null, audience: null }),
  redis: Object.freeze({ enabled: false, host: '127.0.0.1', port: 6379, password: null, database: 0, prefix: 'websocket:', url: null, sentinels: null, sentinelName: null, clusterNodes: null }),
  apiKey: null,
  pusher: Object.freeze({ appId: null, key: null, secret: null, clientEvents: false, activityTimeout: 30, webhookUrl: null }),
});
