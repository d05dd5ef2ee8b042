/**
 * Which messages each connection had to receive, and which of those it did not: the loss
 * count. A connection had to receive a message when it was subscribed for the whole of the
 * server's handling of the publish, which the soak can bound from outside:
 *
 * - the subscribe ack arrived before the publisher sent the message (the server had the
 *   subscription before it saw the publish), and
 * - the publisher had the message's ack before the soak asked the connection to close (the
 *   server delivered it to the connection, then acknowledged it, before it read the close;
 *   the close handshake then carries every earlier frame to the client).
 *
 * Messages published while a connection was subscribing or closing may or may not reach it,
 * and either is right; a churned connection therefore counts only for the messages published
 * while it was surely subscribed. Publishes that were never acknowledged count for nobody
 * (they are reported on their own). All times are on the shared monotonic clock.
 */
import type { PublishLog } from './publishers.js';
import type { StreamRecord } from './tracker.js';

/** A hole in what one connection received, for the report. */
export interface LossSample {
  readonly channel: number;
  /** The acknowledged sequence numbers it missed, as inclusive ranges (the first few). */
  readonly missing: ReadonlyArray<readonly [number, number]>;
  readonly count: number;
}

export interface Accounting {
  /** Deliveries that had to happen, by the rule above. */
  readonly expected: number;
  /** Deliveries that happened (each received message once; duplicates apart). */
  readonly delivered: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly reordered: number;
  /** Connections that lost at least one message. */
  readonly connectionsWithLoss: number;
  readonly lossSamples: readonly LossSample[];
}

const LOSS_SAMPLES = 20;

/** One channel's acknowledged messages in sequence order, ready for the window search. */
interface AckedIndex {
  readonly seqs: number[];
  readonly sentAt: number[];
  /** The latest ack time up to each position: monotonic even if acks came out of order. */
  readonly ackedBy: number[];
}

function indexOf(log: PublishLog): AckedIndex {
  const index: AckedIndex = { seqs: [], sentAt: [], ackedBy: [] };
  let latest = -Infinity;
  log.ackedAt.forEach((ackedAt, position) => {
    if (Number.isNaN(ackedAt)) return;
    latest = Math.max(latest, ackedAt);
    index.seqs.push(position + 1);
    index.sentAt.push(log.sentAt[position] ?? Infinity);
    index.ackedBy.push(latest);
  });
  return index;
}

/** The first position of an ascending array whose value passes `test` (monotonic in the value); its length if none. */
function firstWhere(values: readonly number[], test: (value: number) => boolean): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (test(values[middle] ?? Infinity)) high = middle;
    else low = middle + 1;
  }
  return low;
}

const firstAbove = (values: readonly number[], bound: number): number => firstWhere(values, (value) => value > bound);
const firstAtLeast = (values: readonly number[], bound: number): number => firstWhere(values, (value) => value >= bound);

/** How many of the acknowledged seqs in positions [from, to) lie within [low, high]. */
function countWithin(seqs: readonly number[], from: number, to: number, low: number, high: number): number {
  if (low > high) return 0;
  const start = Math.max(from, firstAtLeast(seqs, low));
  const end = Math.min(to, firstAbove(seqs, high));
  return Math.max(0, end - start);
}

/** The missing acknowledged seqs of positions [from, to) as ranges, the first few. */
function missingRanges(seqs: readonly number[], from: number, to: number, record: StreamRecord): Array<readonly [number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let position = from; position < to && ranges.length <= 5; position++) {
    const seq = seqs[position] ?? 0;
    const received = record.received > 0 && seq >= record.first && seq <= record.last && !record.gaps.some(([low, high]) => seq >= low && seq <= high);
    if (received) continue;
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === seq - 1) last[1] = seq;
    else ranges.push([seq, seq]);
  }
  return ranges.slice(0, 5);
}

export function account(records: readonly StreamRecord[], logs: readonly PublishLog[]): Accounting {
  const indexes = logs.map(indexOf);
  let expected = 0;
  let delivered = 0;
  let lost = 0;
  let duplicates = 0;
  let reordered = 0;
  let connectionsWithLoss = 0;
  const lossSamples: LossSample[] = [];
  for (const record of records) {
    delivered += record.received;
    duplicates += record.duplicates;
    reordered += record.reordered;
    const index = indexes[record.channel];
    if (index === undefined) continue;
    // Positions [from, to) of the acknowledged messages this connection had to receive.
    const from = firstAbove(index.sentAt, record.subscribedAt);
    const to = firstAtLeast(index.ackedBy, record.closedAt);
    if (to <= from) continue;
    const due = to - from;
    let got = 0;
    if (record.received > 0) {
      got = countWithin(index.seqs, from, to, record.first, record.last);
      for (const [low, high] of record.gaps) got -= countWithin(index.seqs, from, to, low, high);
    }
    expected += due;
    if (got === due) continue;
    lost += due - got;
    connectionsWithLoss++;
    if (lossSamples.length < LOSS_SAMPLES) lossSamples.push({ channel: record.channel, missing: missingRanges(index.seqs, from, to, record), count: due - got });
  }
  return { expected, delivered, lost, duplicates, reordered, connectionsWithLoss, lossSamples };
}
