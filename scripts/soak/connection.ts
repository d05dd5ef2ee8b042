/**
 * One soak connection, behaving as a real client does (the client SDK's way): it
 * authenticates with a JWT in the handshake, subscribes after the welcome, answers every
 * JSON ping with a JSON pong (ws answers WebSocket pings by itself), and notices a server
 * that stays silent for twice the heartbeat interval. It counts every message on every
 * channel it is in (tracker.ts) and tells a close it asked for from one it did not.
 */
import WebSocket from 'ws';
import { countConnectFailure, countErrorFrame, countSlow, countUnexpectedClose } from './counters.js';
import { SLOW_MS, type ClientCounters } from './ipc.js';
import { observe } from './latency.js';
import { monotonicMs, StreamTracker, type StreamRecord } from './tracker.js';

const CHANNEL_PREFIX = 'soak.room.';
/**
 * How long a close the soak asked for may take before the socket is cut: one close, and
 * one among every connection closing at once at the end (ws's own close timeout).
 */
const CLOSE_HANDSHAKE_MS = 10_000;
const MASS_CLOSE_HANDSHAKE_MS = 30_000;

export function channelName(channel: number): string {
  return `${CHANNEL_PREFIX}${channel}`;
}

/** A server frame, as far as the soak reads it. */
export interface Frame {
  readonly action?: string;
  readonly type?: string;
  readonly success?: boolean;
  readonly code?: string;
  readonly error?: string;
  readonly channel?: string;
  readonly id?: string | number;
  readonly message?: { readonly s?: number; readonly t?: number };
}

export interface ConnectionHooks {
  readonly counters: ClientCounters;
  /** Frames not handled here: a publisher's `message_sent` acks and error replies. */
  readonly onReply?: (frame: Frame) => void;
  /** What ends the run at once (out of file descriptors), as one line. */
  readonly onFatal: (message: string) => void;
}

/** Socket errors that say the machine, not the server, ran out of something. */
const FATAL_ERRORS: Readonly<Record<string, string>> = {
  EMFILE: 'too many open files (EMFILE): raise the limit with `ulimit -n 65536` (npm run soak does), or run fewer --connections',
  ENFILE: 'the system ran out of file descriptors (ENFILE): run fewer --connections',
  EADDRNOTAVAIL: 'no local port left to connect from (EADDRNOTAVAIL): run fewer --connections or less --churn',
};

export class SoakConnection {
  private readonly socket: WebSocket;
  private readonly trackers = new Map<number, StreamTracker>();
  private state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting';
  private pendingAcks: number;
  private closeRequestedAt = 0;
  private lastError = '';
  private readonly createdAt = monotonicMs();
  private upgradedAt = 0;
  private welcomedAt = 0;
  private lastFrameAt = this.createdAt;
  private timedClose = true;
  private silent = false;
  private resolveReady!: () => void;
  private rejectReady!: (error: Error) => void;
  private resolveClosed!: (records: StreamRecord[]) => void;
  /** Settles once every channel's subscribe was acknowledged, or the connection failed first. */
  readonly ready = new Promise<void>((resolve, reject) => {
    this.resolveReady = resolve;
    this.rejectReady = reject;
  });
  /** What the connection received on each channel, once it has closed (for whatever reason). */
  readonly closed = new Promise<StreamRecord[]>((resolve) => (this.resolveClosed = resolve));

  constructor(
    readonly user: string,
    url: string,
    token: string,
    readonly channels: readonly number[],
    private readonly hooks: ConnectionHooks,
  ) {
    this.pendingAcks = channels.length;
    // A failure before the subscribe acks is counted in onClose; nobody need await `ready`.
    this.ready.catch(() => undefined);
    this.socket = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, perMessageDeflate: false });
    this.socket.on('open', () => (this.upgradedAt = monotonicMs()));
    this.socket.on('message', (data: Buffer) => this.receive(data));
    this.socket.on('ping', () => this.heard());
    this.socket.on('error', (error: Error & { code?: string }) => {
      this.lastError = error.message;
      const fatal = error.code === undefined ? undefined : FATAL_ERRORS[error.code];
      if (fatal !== undefined) hooks.onFatal(fatal);
    });
    this.socket.on('close', (code: number, reason: Buffer) => this.onClose(code, reason.toString()));
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Whether it is being opened or closed now, and since when (monotonic ms); null when neither. */
  get transition(): { readonly kind: 'opening' | 'closing'; readonly since: number } | null {
    if (this.state === 'connecting') return { kind: 'opening', since: this.createdAt };
    if (this.state === 'closing') return { kind: 'closing', since: this.closeRequestedAt };
    return null;
  }

  send(text: string): void {
    this.socket.send(text);
  }

  /** Counts a silence when the server said nothing for `limitMs` (once per silence). */
  checkSilence(now: number, limitMs: number): void {
    if (this.state !== 'open' || this.silent || now - this.lastFrameAt <= limitMs) return;
    this.silent = true;
    this.hooks.counters.serverSilences++;
  }

  /**
   * Closes normally (1000); resolves with the records once the close handshake is done.
   * `timed`: its duration counts in `closeMs`; false for the mass close at the end, which
   * measures the server's burst rather than a close, and is given longer.
   */
  close(timed = true): Promise<StreamRecord[]> {
    if (this.state === 'open' || this.state === 'connecting') {
      this.timedClose = timed;
      if (this.state === 'open') this.hooks.counters.held--;
      else this.rejectReady(new Error('closed by the soak before it was subscribed'));
      this.state = 'closing';
      this.closeRequestedAt = monotonicMs();
      this.socket.close(1000, 'soak');
      const allowedMs = timed ? CLOSE_HANDSHAKE_MS : MASS_CLOSE_HANDSHAKE_MS;
      const timer = setTimeout(() => {
        if (this.state !== 'closing') return;
        countUnexpectedClose(this.hooks.counters, { code: 0, reason: `close handshake not finished after ${allowedMs} ms`, at: monotonicMs(), user: this.user });
        this.socket.terminate();
      }, allowedMs);
      void this.closed.then(() => clearTimeout(timer));
    }
    return this.closed;
  }

  private heard(): void {
    this.lastFrameAt = monotonicMs();
    this.silent = false;
  }

  private receive(data: Buffer): void {
    this.heard();
    const { counters } = this.hooks;
    let frame: Frame;
    try {
      frame = JSON.parse(data.toString()) as Frame;
    } catch {
      countErrorFrame(counters, 'SOAK_NOT_JSON');
      return;
    }
    switch (frame.action) {
      case 'message':
        this.deliver(frame);
        return;
      case 'ping':
        this.socket.send('{"action":"pong"}');
        counters.pingsAnswered++;
        return;
      case 'welcome':
        this.welcomedAt = monotonicMs();
        for (const channel of this.channels) {
          // The tracker exists from the subscribe on: a message may come before the ack.
          this.trackers.set(channel, new StreamTracker(channel));
          this.socket.send(JSON.stringify({ action: 'subscribe', data: { channel: channelName(channel) }, id: `sub-${channel}` }));
        }
        return;
      case 'subscribe':
        if (frame.success === true) this.subscribed(frame);
        return;
    }
    if (frame.type === 'error') {
      countErrorFrame(counters, frame.code ?? 'unknown');
      if (this.state === 'connecting') {
        this.lastError = `${frame.code ?? 'error'} on ${frame.action ?? 'a request'}: ${frame.error ?? ''}`;
        this.socket.terminate();
        return;
      }
    }
    this.hooks.onReply?.(frame);
  }

  private subscribed(frame: Frame): void {
    const channel = Number(frame.channel?.slice(CHANNEL_PREFIX.length));
    const tracker = this.trackers.get(channel);
    if (tracker === undefined || tracker.subscribedAt !== Infinity) return;
    tracker.subscribedAt = monotonicMs();
    if (--this.pendingAcks > 0 || this.state !== 'connecting') return;
    this.state = 'open';
    const took = tracker.subscribedAt - this.createdAt;
    observe(this.hooks.counters.openMs, took);
    if (took > SLOW_MS) {
      const stages = `upgrade ${this.upgradedAt - this.createdAt}, welcome ${this.welcomedAt - this.upgradedAt}, subscribe ${tracker.subscribedAt - this.welcomedAt}`;
      countSlow(this.hooks.counters, `${this.user}: open took ${Math.round(took)} ms (${stages.replace(/\d+\.\d+/g, (ms) => String(Math.round(Number(ms))))} ms)`);
    }
    this.hooks.counters.held++;
    this.hooks.counters.opened++;
    this.resolveReady();
  }

  private deliver(frame: Frame): void {
    const tracker = this.trackers.get(Number(frame.channel?.slice(CHANNEL_PREFIX.length)));
    const { s: seq, t: sentAt } = frame.message ?? {};
    const { counters } = this.hooks;
    if (tracker === undefined || typeof seq !== 'number') {
      countErrorFrame(counters, 'SOAK_UNEXPECTED_MESSAGE');
      return;
    }
    counters.delivered++;
    if (typeof sentAt === 'number') observe(counters.latency, monotonicMs() - sentAt);
    const outcome = tracker.receive(seq);
    if (outcome === 'duplicate') counters.duplicates++;
    else if (outcome === 'reordered') counters.reordered++;
  }

  private onClose(code: number, reason: string): void {
    const now = monotonicMs();
    const { counters } = this.hooks;
    const state = this.state;
    this.state = 'closed';
    if (state === 'connecting') {
      countConnectFailure(counters, this.lastError || `closed with ${code} ${reason}`.trim());
      this.rejectReady(new Error(this.lastError || `closed with ${code}`));
    } else if (state === 'open') {
      counters.held--;
      countUnexpectedClose(counters, { code, reason, at: now, user: this.user });
    }
    if (state === 'closing' && this.timedClose) {
      const took = now - this.closeRequestedAt;
      observe(counters.closeMs, took);
      if (took > SLOW_MS) countSlow(counters, `${this.user}: close took ${Math.round(took)} ms (code ${code} ${reason})`.trim());
    }
    const closedAt = state === 'closing' ? this.closeRequestedAt : now;
    this.resolveClosed([...this.trackers.values()].filter((tracker) => tracker.subscribedAt !== Infinity).map((tracker) => tracker.record(closedAt)));
  }
}
