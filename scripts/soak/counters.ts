/**
 * The figures every connection holder keeps (ipc.ts's ClientCounters): made empty, added to
 * when something happens, and summed over processes.
 */
import { SAMPLES_KEPT, type ClientCounters, type UnexpectedClose } from './ipc.js';
import { emptyHistogram, mergeInto } from './latency.js';

export function emptyCounters(): ClientCounters {
  return {
    held: 0,
    opened: 0,
    churned: 0,
    connectFailures: 0,
    connectFailureReasons: [],
    delivered: 0,
    duplicates: 0,
    reordered: 0,
    pingsAnswered: 0,
    serverSilences: 0,
    errorFrames: {},
    unexpectedCloses: 0,
    unexpectedCloseSamples: [],
    unexpectedClosesByCode: {},
    latency: emptyHistogram(),
    openMs: emptyHistogram(),
    closeMs: emptyHistogram(),
    slow: [],
    opening: 0,
    oldestOpeningMs: 0,
    closing: 0,
    oldestClosingMs: 0,
  };
}

export function countUnexpectedClose(counters: ClientCounters, close: UnexpectedClose): void {
  counters.unexpectedCloses++;
  counters.unexpectedClosesByCode[close.code] = (counters.unexpectedClosesByCode[close.code] ?? 0) + 1;
  if (counters.unexpectedCloseSamples.length < SAMPLES_KEPT) counters.unexpectedCloseSamples.push(close);
}

export function countConnectFailure(counters: ClientCounters, reason: string): void {
  counters.connectFailures++;
  if (counters.connectFailureReasons.length < SAMPLES_KEPT && !counters.connectFailureReasons.includes(reason)) counters.connectFailureReasons.push(reason);
}

export function countSlow(counters: ClientCounters, description: string): void {
  if (counters.slow.length < SAMPLES_KEPT) counters.slow.push(description);
}

export function countErrorFrame(counters: ClientCounters, code: string): void {
  counters.errorFrames[code] = (counters.errorFrames[code] ?? 0) + 1;
}

function addCounts(total: Record<string, number>, part: Readonly<Record<string, number>>): void {
  for (const [key, count] of Object.entries(part)) total[key] = (total[key] ?? 0) + count;
}

/** The sum of several holders' figures (samples: the first ones of each, up to the limit; ages: the oldest). */
export function sumCounters(parts: readonly ClientCounters[]): ClientCounters {
  const total = emptyCounters();
  for (const part of parts) {
    total.held += part.held;
    total.opened += part.opened;
    total.churned += part.churned;
    total.connectFailures += part.connectFailures;
    total.delivered += part.delivered;
    total.duplicates += part.duplicates;
    total.reordered += part.reordered;
    total.pingsAnswered += part.pingsAnswered;
    total.serverSilences += part.serverSilences;
    total.unexpectedCloses += part.unexpectedCloses;
    addCounts(total.errorFrames, part.errorFrames);
    addCounts(total.unexpectedClosesByCode, part.unexpectedClosesByCode);
    mergeInto(total.latency, part.latency);
    mergeInto(total.openMs, part.openMs);
    mergeInto(total.closeMs, part.closeMs);
    total.slow.push(...part.slow.slice(0, SAMPLES_KEPT - total.slow.length));
    total.opening += part.opening;
    total.closing += part.closing;
    total.oldestOpeningMs = Math.max(total.oldestOpeningMs, part.oldestOpeningMs);
    total.oldestClosingMs = Math.max(total.oldestClosingMs, part.oldestClosingMs);
    for (const reason of part.connectFailureReasons) {
      if (total.connectFailureReasons.length < SAMPLES_KEPT && !total.connectFailureReasons.includes(reason)) total.connectFailureReasons.push(reason);
    }
    total.unexpectedCloseSamples.push(...part.unexpectedCloseSamples.slice(0, SAMPLES_KEPT - total.unexpectedCloseSamples.length));
  }
  return total;
}
