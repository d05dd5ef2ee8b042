/**
 * The counts of a chaos run, per fault phase and channel kind, from the ledger:
 *
 * - sent: publishes the server acknowledged; refused: an error reply (never sent, not lost);
 *   unacked: no reply (the connection went first): unknown, neither expected nor lost.
 * - expected: (subscriber, message) pairs the subscriber must get. On a channel with history:
 *   every acknowledged message after the position its subscription started from (the client
 *   recovers across reconnects), unless it was later told to reload (`recovered: false`):
 *   those are `skipped`, never lost. Without history: the messages it was subscribed on a
 *   live connection for, from before the publish to after its acknowledgement.
 * - lost: expected and never received; duplicated: received more than once; reordered:
 *   received after a later message of the same publisher.
 */
import { messageKey, type Anchor, type Following, type Kind, type Ledger, type PublishRecord } from './ledger.js';

export interface Row {
  readonly phase: string;
  readonly kind: Kind;
  sent: number;
  refused: number;
  unacked: number;
  expected: number;
  delivered: number;
  lost: number;
  skipped: number;
  /** Notices to reload a subscriber got (history: the store lost messages; live: after every reconnect, by design). */
  resets: number;
  duplicated: number;
  reordered: number;
  /** Kept messages that came twice or out of order on one connection (hidden from the app by the client). */
  wireDuplicates: number;
  /** Kept messages that skipped offsets on one connection with no notice. */
  wireGaps: number;
  /** Why publishes were refused or unanswered: error code → count. */
  codes: Record<string, number>;
}

export interface LostExample {
  readonly subscriber: string;
  readonly channel: string;
  readonly message: string;
  readonly phase: string;
  readonly offset: number | null;
}

/** A message a subscriber got more than once, or out of order: the offsets it came with, and the one its publish was given. */
export interface DeliveryExample {
  readonly subscriber: string;
  readonly channel: string;
  readonly message: string;
  readonly phase: string;
  readonly what: 'duplicated' | 'reordered';
  readonly offsets: readonly number[];
  readonly publishedOffset: number | null;
}

export interface Analysis {
  readonly rows: Row[];
  /** A few lost messages, for whoever has to reproduce them. */
  readonly lostExamples: LostExample[];
  /** A few duplicated or reordered ones. */
  readonly deliveryExamples: DeliveryExample[];
}

function emptyRow(phase: string, kind: Kind): Row {
  return { phase, kind, sent: 0, refused: 0, unacked: 0, expected: 0, delivered: 0, lost: 0, skipped: 0, resets: 0, duplicated: 0, reordered: 0, wireDuplicates: 0, wireGaps: 0, codes: {} };
}

export function analyse(ledger: Ledger, phases: readonly string[]): Analysis {
  const rows = new Map<string, Row>();
  const row = (phase: string, kind: Kind): Row => {
    const key = `${phase}|${kind}`;
    let found = rows.get(key);
    if (found === undefined) rows.set(key, (found = emptyRow(phase, kind)));
    return found;
  };
  for (const phase of phases) for (const kind of ['history', 'live'] as const) row(phase, kind);
  const lostExamples: LostExample[] = [];
  const deliveryExamples: DeliveryExample[] = [];

  for (const byKey of ledger.publishes.values()) {
    for (const record of byKey.values()) {
      const counts = row(record.phase, record.kind);
      if (record.outcome === 'acked') counts.sent++;
      else if (record.outcome === 'refused') counts.refused++;
      else counts.unacked++;
      if (record.code !== null) counts.codes[record.code] = (counts.codes[record.code] ?? 0) + 1;
    }
  }

  for (const [subscriber, channels] of ledger.subscribers) {
    for (const [channel, following] of channels) {
      const published = ledger.publishes.get(channel) ?? new Map<string, PublishRecord>();
      for (const record of published.values()) {
        const key = messageKey(record.publisher, record.seq);
        const times = following.received.get(key) ?? 0;
        const counts = row(record.phase, record.kind);
        if (times > 1) counts.duplicated += times - 1;
        if (following.reordered.has(key)) counts.reordered++;
        if ((times > 1 || following.reordered.has(key)) && deliveryExamples.length < 20) {
          const what = times > 1 ? 'duplicated' : 'reordered';
          deliveryExamples.push({ subscriber, channel, message: key, phase: record.phase, what, offsets: following.offsets.get(key) ?? [], publishedOffset: record.offset });
        }
        if (record.outcome !== 'acked') continue;
        const verdict = following.kind === 'history' ? historyVerdict(following, record, times) : liveVerdict(following, record, times);
        if (verdict === 'skipped') counts.skipped++;
        if (verdict !== 'delivered' && verdict !== 'lost') continue;
        counts.expected++;
        if (verdict === 'delivered') counts.delivered++;
        else {
          counts.lost++;
          if (lostExamples.length < 20) lostExamples.push({ subscriber, channel, message: key, phase: record.phase, offset: record.offset });
        }
      }
    }
  }

  for (const reset of ledger.resets) row(reset.phase, reset.kind).resets++;
  for (const anomaly of ledger.wire) {
    const kind: Kind = 'history';
    if (anomaly.what === 'duplicate') row(anomaly.phase, kind).wireDuplicates++;
    else row(anomaly.phase, kind).wireGaps++;
  }
  return { rows: [...rows.values()], lostExamples, deliveryExamples };
}

type Verdict = 'delivered' | 'lost' | 'skipped' | 'not expected';

function historyVerdict(following: Following, record: PublishRecord, times: number): Verdict {
  const first = following.anchors[0];
  if (first === undefined) return 'not expected';
  // Told to reload after it was sent: a message it did not get is skipped, not lost.
  const resets = following.anchors.filter((anchor) => !anchor.first);
  if (times === 0 && resets.some((anchor) => anchor.at >= record.sentAt)) return 'skipped';
  const from: Anchor = following.anchors.filter((anchor) => anchor.at <= record.sentAt).at(-1) ?? first;
  const after = from.offset === null ? record.sentAt > from.at : record.offset !== null && record.offset > from.offset;
  if (!after) return 'not expected';
  return times > 0 ? 'delivered' : 'lost';
}

function liveVerdict(following: Following, record: PublishRecord, times: number): Verdict {
  const settledAt = record.settledAt ?? Infinity;
  const covered = following.intervals.some((interval) => interval.from <= record.sentAt && (interval.to === null || settledAt <= interval.to));
  if (!covered) return 'not expected';
  return times > 0 ? 'delivered' : 'lost';
}

/** The rows of every phase added up, per kind. */
export function totals(rows: readonly Row[], phase = 'all'): Row[] {
  return (['history', 'live'] as const).map((kind) => {
    const total = emptyRow(phase, kind);
    for (const row of rows) {
      if (row.kind !== kind) continue;
      for (const field of ['sent', 'refused', 'unacked', 'expected', 'delivered', 'lost', 'skipped', 'resets', 'duplicated', 'reordered', 'wireDuplicates', 'wireGaps'] as const) total[field] += row[field];
      for (const [code, count] of Object.entries(row.codes)) total.codes[code] = (total.codes[code] ?? 0) + count;
    }
    return total;
  });
}
