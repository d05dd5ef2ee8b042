/**
 * /metrics with WS_WORKER_NUM > 1: the workers share one port, so a scrape reaches one of
 * them at random. That worker asks the primary, which gathers every worker's figures
 * and sums them (prom-client's AggregatorRegistry.aggregate); Prometheus sees one
 * process with steady counters instead of a different worker's on every scrape.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { parseMetricsMessage, type MetricsMessage } from '../broker/cluster/messages.js';
import type { SwitchboardServer } from '../http/server.js';
import { PendingRequests } from '../rpc/pending-requests.js';

/** How long a worker waits for the primary's answer. */
const GATHER_WAIT_MS = 2000;
/** How long the primary waits for the workers' parts: short of the worker's wait, so that a partial sum still arrives in time. */
const PARTS_WAIT_MS = GATHER_WAIT_MS - 500;

/** In a worker: /metrics answers for all workers, and this worker gives its part when asked. */
export function serveWorkerMetrics(server: SwitchboardServer): void {
  const requests = new PendingRequests<string | null, never>('a metrics request to the primary', GATHER_WAIT_MS);
  const send = (message: MetricsMessage): boolean => {
    if (typeof process.send !== 'function' || !process.connected) return false;
    process.send(message, undefined, undefined, () => undefined);
    return true;
  };
  process.on('message', (raw: unknown) => {
    const message = parseMetricsMessage(raw);
    if (message?.sb === 'metrics-answer') {
      requests.answer(message.id, message.text);
    } else if (message?.sb === 'metrics-ask') {
      server
        .metricsJson()
        .then((part) => send({ sb: 'metrics-part', ask: message.ask, part }))
        .catch(() => undefined);
    }
  });
  // Without the primary's answer (null), /metrics answers with this worker's own figures.
  server.gatherMetrics(() => requests.request((id) => send({ sb: 'metrics-request', id })).catch(() => null));
}

/** In the primary: answers the workers' metrics requests. */
export interface MetricsGatherer {
  /** Handles one message from `worker`; returns false when it is not a metrics message. */
  handle(worker: Worker, message: unknown): boolean;
  /** A worker exited: its part will not come. */
  workerGone(workerId: number): void;
  /** Answers the open requests with what has come. */
  close(): void;
}

export function metricsGatherer(liveWorkers: () => Worker[]): MetricsGatherer {
  const asks = new PendingRequests<object[], number>('a metrics question to the workers', PARTS_WAIT_MS);
  return {
    handle(worker, raw) {
      const message = parseMetricsMessage(raw);
      if (message === null) return false;
      if (message.sb === 'metrics-part') {
        asks.answer(message.ask, message.part, worker.id);
        return true;
      }
      if (message.sb !== 'metrics-request') return true;
      const workers = new Map(liveWorkers().map((each) => [each.id, each]));
      void asks
        .gather(workers.keys(), (ask, id) => {
          const each = workers.get(id);
          if (each === undefined || !each.isConnected()) return false;
          each.send({ sb: 'metrics-ask', ask } satisfies MetricsMessage);
          return true;
        })
        .then(async ({ answers }) => {
          let text: string | null = null;
          try {
            text = await AggregatorRegistry.aggregate(answers.map(({ answer }) => answer)).metrics();
          } catch {
            // text stays null: the worker answers 503.
          }
          if (worker.isConnected()) worker.send({ sb: 'metrics-answer', id: message.id, text } satisfies MetricsMessage);
        });
      return true;
    },
    workerGone(workerId) {
      asks.peerGone(workerId);
    },
    close() {
      asks.close();
    },
  };
}
