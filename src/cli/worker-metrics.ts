/**
 * /metrics with WS_WORKER_NUM > 1: the workers share one port, so a scrape reaches one of
 * them at random. That worker asks the primary, which gathers every worker's figures
 * and sums them (prom-client's AggregatorRegistry.aggregate); Prometheus sees one
 * process with steady counters instead of a different worker's on every scrape.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { SwitchboardServer } from '../http/server.js';

/** How long the primary waits for the workers' parts, and a worker for the primary's answer. */
const GATHER_WAIT_MS = 2000;

type MetricsMessage =
  | { sb: 'metrics-request'; id: number }
  | { sb: 'metrics-answer'; id: number; text: string | null }
  | { sb: 'metrics-ask'; ask: number }
  | { sb: 'metrics-part'; ask: number; part: object[] };

function isMetricsMessage(message: unknown): message is MetricsMessage {
  const tag = (message as { sb?: unknown } | null)?.sb;
  return typeof tag === 'string' && tag.startsWith('metrics-');
}

/** In a worker: /metrics answers for all workers, and this worker gives its part when asked. */
export function serveWorkerMetrics(server: SwitchboardServer): void {
  let nextId = 0;
  const waiting = new Map<number, (text: string | null) => void>();
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message)) return;
    if (message.sb === 'metrics-answer') {
      waiting.get(message.id)?.(message.text);
      waiting.delete(message.id);
    } else if (message.sb === 'metrics-ask') {
      server
        .metricsJson()
        .then((part) => process.send?.({ sb: 'metrics-part', ask: message.ask, part }, undefined, undefined, () => undefined))
        .catch(() => undefined);
    }
  });
  server.gatherMetrics(
    () =>
      new Promise<string | null>((resolve) => {
        const id = ++nextId;
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve(null);
        }, GATHER_WAIT_MS);
        waiting.set(id, (text) => {
          clearTimeout(timer);
          resolve(text);
        });
        process.send?.({ sb: 'metrics-request', id }, undefined, undefined, () => undefined);
      }),
  );
}

/** In the primary: answers the workers' metrics requests. Returns the message handler for one worker. */
export function metricsGatherer(liveWorkers: () => Worker[]): (worker: Worker, message: unknown) => boolean {
  let nextAsk = 0;
  const asks = new Map<number, { parts: object[][]; waiting: Set<number>; finish: () => void }>();
  return (worker, message) => {
    if (!isMetricsMessage(message)) return false;
    if (message.sb === 'metrics-part') {
      const ask = asks.get(message.ask);
      if (ask !== undefined && ask.waiting.delete(worker.id)) {
        ask.parts.push(message.part);
        if (ask.waiting.size === 0) ask.finish();
      }
      return true;
    }
    if (message.sb !== 'metrics-request') return true;
    const ask = ++nextAsk;
    const workers = liveWorkers();
    const entry = {
      parts: [] as object[][],
      waiting: new Set(workers.map((each) => each.id)),
      finish: () => {
        clearTimeout(timer);
        if (!asks.delete(ask)) return;
        const answer = (text: string | null): void => {
          if (worker.isConnected()) worker.send({ sb: 'metrics-answer', id: message.id, text });
        };
        AggregatorRegistry.aggregate(entry.parts)
          .metrics()
          .then(answer, () => answer(null));
      },
    };
    const timer = setTimeout(() => entry.finish(), GATHER_WAIT_MS - 500);
    asks.set(ask, entry);
    for (const each of workers) {
      if (each.isConnected()) each.send({ sb: 'metrics-ask', ask });
      else entry.waiting.delete(each.id);
    }
    if (entry.waiting.size === 0) entry.finish();
    return true;
  };
}

