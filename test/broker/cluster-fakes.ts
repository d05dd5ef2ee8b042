/**
 * Fakes for the tests of the worker relay (cluster-broker.test.ts, cluster-history.test.ts):
 * a worker's IPC channel to its primary, a LocalNode that records what it is handed, and
 * workers wired to a ClusterRelay through in-memory channels that are asynchronous and
 * ordered, as IPC is.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Delivery, LocalNode, Member, Publication } from '../../src/broker/broker.js';
import { ClusterBroker, type PrimaryChannel } from '../../src/broker/cluster/cluster-broker.js';
import { ClusterRelay } from '../../src/broker/cluster/cluster-relay.js';
import { unbatched, type Batch } from '../../src/broker/cluster/ipc-batch.js';
import type { PrimaryMessage, WorkerMessage } from '../../src/broker/cluster/messages.js';
import type { MemoryHistory } from '../../src/history/memory-history.js';
import type { ChannelName } from '../../src/types.js';
import type { NodeReport } from '../../src/views/cluster-view.js';
import { memoryLogger } from '../helpers/memory-logger.js';

/** A fake `process` of a worker: records what is sent, and emits what the test makes the primary say. */
export class FakePrimary extends EventEmitter implements PrimaryChannel {
  connected = true;
  /** Every relay message sent, a batch's one by one. */
  readonly sent: WorkerMessage[] = [];
  /** IPC messages sent: a batch is one. */
  ipcMessages = 0;
  send = (message: WorkerMessage | Batch<WorkerMessage>, _handle: undefined, _options: undefined, callback: (error: Error | null) => void): boolean => {
    this.ipcMessages++;
    for (const one of unbatched(message)) this.sent.push(one as WorkerMessage);
    callback(null);
    return true;
  };
  override on(event: 'message', listener: (message: unknown) => void): this {
    return super.on(event, listener);
  }
  override off(event: 'message', listener: (message: unknown) => void): this {
    return super.off(event, listener);
  }
  say(message: unknown): void {
    this.emit('message', message);
  }
  /** The last message of this tag sent, once the turn it was posted in has ended (the worker sends a turn's messages together). */
  async last<T extends WorkerMessage['sb']>(tag: T): Promise<Extract<WorkerMessage, { sb: T }>> {
    await settle(1);
    const found = this.sent.filter((message) => message.sb === tag).at(-1);
    assert.ok(found !== undefined, `a ${tag} message was sent`);
    return found as Extract<WorkerMessage, { sb: T }>;
  }
}

export function report(id: string): NodeReport {
  return { id, host: 'h', pid: 1, connections: 0, channels: 0, messagesInPerSecond: 0, messagesOutPerSecond: 0, uptime: 0, ready: true };
}

export type RecordingNode = LocalNode & {
  deliveries: Delivery[];
  gone: Array<{ channel: ChannelName; members: readonly Member[]; everywhere: boolean }>;
  reconnects: number;
  closed: number;
};

/** A node that records its deliveries and departures; `addressed` is what deliver() answers. */
export function localNode(id: string, addressed = 1): RecordingNode {
  const node: RecordingNode = {
    deliveries: [],
    gone: [],
    reconnects: 0,
    closed: 0,
    deliver(delivery: Delivery) {
      node.deliveries.push(delivery);
      return addressed;
    },
    reconnected() {
      node.reconnects++;
    },
    membersGone(channel, members, everywhere) {
      node.gone.push({ channel, members, everywhere });
    },
    report: () => report(id),
    channels: () => [],
    members: () => [],
    disconnect() {
      node.closed++;
      return 1;
    },
  };
  return node;
}

/** A publication to everyone on `channel`, not kept unless `history` is given. */
export function publication(channel: ChannelName, frame: string, more: Partial<Publication> = {}): Publication {
  return { channel, recipients: null, exclude: null, frame, history: null, ...more };
}

export const kept = { size: 100, ttl: 3600 };

/** One worker (its broker and node) and its channel to the primary. */
export interface FakeWorker {
  readonly primary: FakePrimary;
  readonly broker: ClusterBroker;
  readonly local: RecordingNode;
}

/**
 * Workers 1..count, each with a ClusterBroker started on a recording node, wired to one
 * relay through asynchronous, ordered in-memory channels. `gone` workers neither send nor
 * receive. Close them with `close()`.
 */
export async function wiredWorkers(count: number, options: { history?: MemoryHistory; requestTimeoutMs?: number } = {}) {
  const workers = new Map<number, FakeWorker>();
  const gone = new Set<number>();
  /** What the relay sent each worker, in order. */
  const inbox = new Map<number, PrimaryMessage[]>();
  const relay = new ClusterRelay(
    (worker, message) => {
      if (gone.has(worker)) return false;
      inbox.set(worker, [...(inbox.get(worker) ?? []), message]);
      // Asynchronous, as IPC is; setImmediate callbacks run in order, so one worker's messages stay ordered.
      setImmediate(() => workers.get(worker)?.primary.say(message));
      return true;
    },
    () => [...workers.keys()].filter((worker) => !gone.has(worker)),
    options.history,
  );
  for (let worker = 1; worker <= count; worker++) {
    const primary = new FakePrimary();
    primary.send = (message, _handle, _options, callback) => {
      if (!gone.has(worker)) setImmediate(() => unbatched(message).forEach((one) => relay.handle(worker, one)));
      callback(null);
      return true;
    };
    const nodeId = `worker${worker}AA`;
    const broker = new ClusterBroker({ nodeId, primary, logger: memoryLogger().logger, ...(options.requestTimeoutMs !== undefined && { requestTimeoutMs: options.requestTimeoutMs }) });
    const local = localNode(nodeId, 1);
    await broker.start(local);
    workers.set(worker, { primary, broker, local });
  }
  const get = (worker: number): FakeWorker => {
    const found = workers.get(worker);
    assert.ok(found !== undefined, `worker ${worker} exists`);
    return found;
  };
  const close = async (): Promise<void> => {
    for (const { broker } of workers.values()) await broker.close();
    relay.close();
  };
  return { relay, workers, get, gone, inbox, close };
}

/** Lets every message in flight (setImmediate hops) arrive. */
export async function settle(hops = 10): Promise<void> {
  for (let hop = 0; hop < hops; hop++) await new Promise((resolve) => setImmediate(resolve));
}
