/**
 * Which broker a node runs, for the handler and the CLI alike: Redis when it is enabled
 * (across machines, and between the workers of one), the primary's relay in a node:cluster
 * worker without Redis, and the in-memory broker of a single process otherwise.
 */
import type { Logger } from 'pino';
import type { SwitchboardOptions } from '../config/options.js';
import type { BrokerWithView } from './broker.js';
import { ClusterBroker } from './cluster/cluster-broker.js';
import { MemoryBroker } from './memory.js';
import { RedisBroker, type RedisBrokerTuning } from './redis/redis-broker.js';

export type { RedisBrokerTuning } from './redis/redis-broker.js';

export interface BrokerContext {
  logger: Logger;
  /** The node's id (ids.ts): Redis and the relay know the node by it. */
  nodeId: string;
  /** True in a node:cluster worker (WS_WORKER_NUM > 1). */
  inWorker: boolean;
  /** Shorter Redis timings, for tests. */
  tuning?: RedisBrokerTuning;
}

export function createBroker(options: SwitchboardOptions, context: BrokerContext): BrokerWithView {
  if (options.redis.enabled) return new RedisBroker(options.redis, { ...context.tuning, nodeId: context.nodeId, logger: context.logger });
  if (context.inWorker) return new ClusterBroker({ nodeId: context.nodeId, logger: context.logger });
  return new MemoryBroker();
}
