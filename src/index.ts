export { WebSocketHandler } from './handler.js';
export type {
  ActionContext,
  ActionHandler,
  ActionOptions,
  AttachOptions,
  ConnectHook,
  DisconnectHook,
  HandlerOptions,
  MessageHook,
  MessageVerdict,
  OutgoingMessage,
  SubscribeHook,
  SubscribeVerdict,
} from './handler.js';
export { createServer, SwitchboardServer } from './http/server.js';
export type { ListenAddress } from './http/server.js';
export type { Broker, Delivery, DisconnectResult, DisconnectTarget, LocalDelivery, Member, MemberInfo, NodeReport } from './broker/broker.js';
export { MemoryBroker } from './broker/memory.js';
export { RedisBroker } from './broker/redis.js';
export type { RedisBrokerOptions } from './broker/redis.js';
export { ClusterBroker, ClusterRelay } from './broker/cluster.js';
export type { ConnectionInfo } from './connection/connection.js';
export { DEFAULTS, resolveOptions } from './config/options.js';
export type { SwitchboardConfig, SwitchboardOptions, SslOptions, AuthOptions, RedisOptions, LogLevelName } from './config/options.js';
export { loadConfig } from './config/load.js';
export type { LoadConfigInput } from './config/load.js';
export { CloseCode, ErrorCode, HandshakeRefusal } from './protocol/codes.js';
export { ConfigError, SwitchboardError } from './errors.js';
export type { ChannelMessage, ChannelName, ConnectionId, UserId } from './types.js';
export type { RequestId } from './protocol/inbound.js';
export { createLogger } from './logger.js';
