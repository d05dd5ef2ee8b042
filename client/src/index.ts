export { Client } from './client.js';
export { Subscription } from './subscription.js';
export { SwitchboardError } from './errors.js';
export type {
  ClientEvents,
  ClientOptions,
  HistoryResult,
  Message,
  PresenceEvent,
  PresenceResult,
  PublishResult,
  State,
  Subscribed,
  SubscriptionEvents,
  TokenSource,
  UserId,
  WebSocketConstructor,
  WebSocketLike,
  Welcome,
} from './types.js';
