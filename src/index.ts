export { WebSocketHandler } from './handler.js';
export type {
  ActionContext,
  ActionHandler,
  ActionOptions,
  AttachOptions,
  ConnectHook,
  DisconnectHook,
  HandlerOptions,
  HistoryPage,
  HistoryRequest,
  MessageHook,
  MessageVerdict,
  OutgoingMessage,
  Presence,
  Published,
  PublishMessageOptions,
  StoredMessage,
  StreamPosition,
  SubscribeHook,
  SubscribeVerdict,
} from './handler.js';
export { createServer, SwitchboardServer } from './http/server.js';
export type { ListenAddress } from './http/server.js';
export { createRequestListener } from './http/endpoints.js';
export type { RequestListenerOptions, SwitchboardRequestListener } from './http/endpoints.js';
export type { Broker, BrokerWithView, Delivery, LocalNode, Member, Publication, PublishResult } from './broker/broker.js';
export type { HistoryQuery, HistorySettings } from './history/history.js';
export type { ChannelCount, ClusterView, DisconnectResult, DisconnectTarget, LocalView, MemberInfo, NodeReport } from './views/cluster-view.js';
export type { ClusterStats, ClusterStatus } from './views/cluster-status.js';
export { createBroker } from './broker/factory.js';
export type { BrokerContext, RedisBrokerTuning } from './broker/factory.js';
export { MemoryBroker } from './broker/memory.js';
export { RedisBroker } from './broker/redis/redis-broker.js';
export type { RedisBrokerOptions } from './broker/redis/redis-broker.js';
export { ClusterBroker } from './broker/cluster/cluster-broker.js';
export type { ClusterBrokerOptions } from './broker/cluster/cluster-broker.js';
export { ClusterRelay } from './broker/cluster/cluster-relay.js';
export type { ConnectionInfo } from './connection/connection-info.js';
export { DEFAULTS } from './config/options.js';
export { resolveOptions } from './config/resolve.js';
export type { SwitchboardConfig, SwitchboardOptions, SslOptions, AuthOptions, RedisOptions, RedisAddress, HistoryOptions, PusherOptions, LogLevelName } from './config/options.js';
export { loadConfig } from './config/load.js';
export type { LoadConfigInput } from './config/load.js';
export { CloseCode, ErrorCode, HandshakeRefusal } from './codes.js';
export { ClusterErrorCode, ClusterUnavailableError, ConfigError, RequestTimeoutError, SwitchboardError } from './errors.js';
export type { ChannelMessage, ChannelName, ConnectionId, RequestId, UserId } from './types.js';
export { createLogger } from './logger.js';
