/**
 * What happened during a chaos run, as the clients saw it: every publish (when it was sent,
 * how it ended, its offset), every subscriber's subscriptions (when each was up, where it
 * started, every time it was told to reload) and every message it got. analysis.ts turns
 * this into lost, duplicated and reordered counts. One clock: performance.now() of this
 * process, which runs every client.
 */
import { performance } from 'node:perf_hooks';

/** A channel with history (subscribers recover on reconnect) or without (live only). */
export type Kind = 'history' | 'live';

export const now = (): number => performance.now();

export interface PublishRecord {
  readonly publisher: string;
  readonly channel: string;
  readonly kind: Kind;
  readonly seq: number;
  /** The fault phase during which it was sent. */
  readonly phase: string;
  readonly sentAt: number;
  settledAt: number | null;
  /** acked: the server said message_sent; refused: an error reply; unacked: no reply (the connection went, or a timeout). */
  outcome: 'pending' | 'acked' | 'refused' | 'unacked';
  offset: number | null;
  code: string | null;
}

/** Where a history subscription started following the channel: its first subscribe, or a notice to reload. */
export interface Anchor {
  readonly at: number;
  /** The position the ack or notice gave; null when it gave none (the store was out of reach). */
  readonly offset: number | null;
  readonly first: boolean;
}

/** One subscriber's view of one channel. */
export interface Following {
  readonly kind: Kind;
  readonly anchors: Anchor[];
  /** Times it was subscribed on a live connection: from the ack to the connection's loss. */
  readonly intervals: { from: number; to: number | null }[];
  /** How many times it got each message, by `${publisher}#${seq}`. */
  readonly received: Map<string, number>;
  /** Messages that came after a later one of the same publisher, by key. */
  readonly reordered: Set<string>;
  readonly lastSeq: Map<string, number>;
  /** The offsets each kept message came with (history only), by key. */
  readonly offsets: Map<string, number[]>;
}

/** On one connection, a kept message whose offset was not the next one (duplicate: not above the last; gap: beyond the next). */
export interface WireAnomaly {
  readonly subscriber: string;
  readonly channel: string;
  readonly phase: string;
  readonly what: 'duplicate' | 'gap';
  readonly detail: string;
}

export const messageKey = (publisher: string, seq: number): string => `${publisher}#${seq}`;

export class Ledger {
  /** The phase new publishes are counted in. */
  phase = 'steady';
  readonly publishes = new Map<string, Map<string, PublishRecord>>();
  readonly subscribers = new Map<string, Map<string, Following>>();
  readonly wire: WireAnomaly[] = [];
  /** Every notice to reload (`recovered: false` after the first subscribe, or `position`). */
  readonly resets: { subscriber: string; channel: string; kind: Kind; phase: string; offset: number | null }[] = [];
  /** Faults and recoveries as they happened, for the report. */
  readonly events: { at: number; phase: string; what: string }[] = [];
  private lastDelivery = now();

  note(what: string): void {
    this.events.push({ at: now(), phase: this.phase, what });
  }

  publishStarted(publisher: string, channel: string, kind: Kind, seq: number): PublishRecord {
    const record: PublishRecord = { publisher, channel, kind, seq, phase: this.phase, sentAt: now(), settledAt: null, outcome: 'pending', offset: null, code: null };
    let byKey = this.publishes.get(channel);
    if (byKey === undefined) this.publishes.set(channel, (byKey = new Map<string, PublishRecord>()));
    byKey.set(messageKey(publisher, seq), record);
    return record;
  }

  publishSettled(record: PublishRecord, outcome: 'acked' | 'refused' | 'unacked', offset: number | null, code: string | null): void {
    record.settledAt = now();
    record.outcome = outcome;
    record.offset = offset;
    record.code = code;
  }

  private following(subscriber: string, channel: string, kind: Kind): Following {
    let channels = this.subscribers.get(subscriber);
    if (channels === undefined) this.subscribers.set(subscriber, (channels = new Map<string, Following>()));
    let following = channels.get(channel);
    if (following === undefined) {
      following = { kind, anchors: [], intervals: [], received: new Map(), reordered: new Set(), lastSeq: new Map(), offsets: new Map() };
      channels.set(channel, following);
    }
    return following;
  }

  /** A subscribe ack (or a `position` notice): `recovered` false after the first one is a notice to reload. */
  subscribed(subscriber: string, channel: string, kind: Kind, recovered: boolean, offset: number | undefined): void {
    const following = this.following(subscriber, channel, kind);
    const at = now();
    const first = following.anchors.length === 0;
    if (first || !recovered) following.anchors.push({ at, offset: offset ?? null, first });
    if (!first && !recovered) this.resets.push({ subscriber, channel, kind, phase: this.phase, offset: offset ?? null });
    const open = following.intervals.at(-1);
    if (open === undefined || open.to !== null) following.intervals.push({ from: at, to: null });
  }

  /** The subscriber's connection is gone: none of its subscriptions is up until subscribed again. */
  down(subscriber: string): void {
    const at = now();
    for (const following of this.subscribers.get(subscriber)?.values() ?? []) {
      const open = following.intervals.at(-1);
      if (open !== undefined && open.to === null) open.to = at;
    }
  }

  received(subscriber: string, channel: string, kind: Kind, publisher: string, seq: number, offset: number | undefined): void {
    this.lastDelivery = now();
    const following = this.following(subscriber, channel, kind);
    const key = messageKey(publisher, seq);
    following.received.set(key, (following.received.get(key) ?? 0) + 1);
    if (offset !== undefined) following.offsets.set(key, [...(following.offsets.get(key) ?? []), offset]);
    const last = following.lastSeq.get(publisher) ?? -1;
    if (seq < last) following.reordered.add(key);
    else following.lastSeq.set(publisher, seq);
  }

  wireAnomaly(subscriber: string, channel: string, what: 'duplicate' | 'gap', detail: string): void {
    this.wire.push({ subscriber, channel, phase: this.phase, what, detail });
  }

  /** Milliseconds since the last message reached any subscriber. */
  quietFor(): number {
    return now() - this.lastDelivery;
  }

  /** Publishes still waiting for their reply. */
  pending(): number {
    let count = 0;
    for (const byKey of this.publishes.values()) for (const record of byKey.values()) if (record.outcome === 'pending') count++;
    return count;
  }
}
