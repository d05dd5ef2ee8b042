/**
 * Whether a node is in sync with Redis, and getting back in sync after an outage: when
 * both connections are ready the node re-registers, reconciles its membership,
 * resubscribes and sends its outbox (the broker's resync), and only then reports ready.
 * A connection that drops makes the running resync count for nothing; one that Redis
 * partly refused is retried with backoff. Each change of state is logged once.
 */
import type { Logger } from 'pino';
import type { RedisConnections } from './connections.js';

export interface SyncSummary {
  channels: number;
  members: number;
  sent: number;
  dropped: number;
  /** Membership updates Redis refused: another resync follows soon. */
  failures: number;
}

export interface SyncSteps {
  /** Gets the node back in sync; `current()` turns false once a reconnect superseded this run. */
  resync(current: () => boolean): Promise<SyncSummary>;
  /** A connection dropped: publishes are held again. */
  lost(): void;
  /** A resync succeeded and the node is ready (again). */
  ready(): void;
}

const FIRST_RESYNC_DELAY_MS = 500;
const MAX_RESYNC_DELAY_MS = 5000;

export class SyncState {
  /** True once the node is registered, subscribed and its outbox sent, until a connection drops: ready. */
  synced = false;
  private generation = 0;
  /** Whether the last state logged was "down"; errors are logged once per change. */
  private reportedDown = false;
  private lastProblem = 'connecting to Redis';
  private downSince = 0;
  private connectedOnce = false;
  /** A resync keeps failing: logged once until one succeeds. */
  private resyncFailing = false;
  private resyncTimer: NodeJS.Timeout | null = null;
  private resyncDelay = FIRST_RESYNC_DELAY_MS;
  private onFirstOutcome: (() => void) | null = null;
  /** close() has begun: no new resync. */
  private closing = false;
  /** close() is done: nothing is logged any more. */
  private closed = false;
  /** A resync runs; another request for one waits for it (instead of restarting it). */
  private resyncRunning = false;
  private resyncAgain = false;

  constructor(
    private readonly connections: RedisConnections,
    private readonly nodeId: string,
    private readonly logger: Logger,
    private readonly steps: SyncSteps,
  ) {
    connections.listen({
      ready: () => {
        this.lastProblem = 'connection lost';
        this.sync();
      },
      lost: () => this.connectionLost(),
      error: (error) => {
        this.lastProblem = error.message;
      },
    });
  }

  /** Connects both connections in the background (they keep retrying); resolves at the first outcome, in sync or not. */
  start(): Promise<void> {
    const firstOutcome = new Promise<void>((resolve) => {
      this.onFirstOutcome = resolve;
    });
    this.connections.connect().catch(() => this.settleFirstOutcome());
    return firstOutcome;
  }

  notReadyReason(): string | null {
    if (this.closed) return 'shutting down';
    return this.synced ? null : `redis unavailable (${this.connections.where}): ${this.lastProblem}`;
  }

  /** Why Redis is out of reach, for a cluster view that needs it. */
  get problem(): string {
    return this.lastProblem;
  }

  /** The watchdog found a connection silent; it drops it, and the outage is reported with this problem. */
  silent(problem: string): void {
    this.lastProblem = problem;
  }

  /**
   * Runs a resync: when a connection becomes ready (once both are), when this node finds
   * its entries were removed, and after a membership change Redis refused. A newer run
   * supersedes an older one.
   */
  sync(): void {
    if (!this.connections.allReady() || this.closing) return;
    if (this.resyncRunning) {
      // Once the running one is done: restarting it would redo (and re-send) its work.
      this.resyncAgain = true;
      return;
    }
    // A reconnect (connectionLost) moves the generation on: this run's results then count for nothing.
    const generation = this.generation;
    const current = (): boolean => generation === this.generation;
    this.resyncRunning = true;
    this.resyncAgain = false;
    this.steps.resync(current).then(
      (summary) => {
        if (!current() || this.closing) return;
        this.resyncRunning = false;
        if (summary.failures > 0) {
          if (!this.resyncFailing) this.logger.warn(`Redis (${this.connections.where}) refused ${summary.failures} membership updates; retrying`);
          this.resyncFailing = true;
          this.resyncSoon();
        } else {
          this.resyncFailing = false;
          this.resyncDelay = FIRST_RESYNC_DELAY_MS;
        }
        this.synced = true;
        this.reportUp(summary);
        this.steps.ready();
        this.settleFirstOutcome();
        if (this.resyncAgain) this.sync();
      },
      (error: unknown) => {
        if (!current() || this.closing) return;
        this.resyncRunning = false;
        this.lastProblem = error instanceof Error ? error.message : String(error);
        this.settleFirstOutcome();
        // A connection that dropped mid-way brings another 'ready' and another attempt.
        if (!this.connections.allReady()) return;
        if (!this.resyncFailing) {
          this.resyncFailing = true;
          this.logger.warn({ err: error }, `getting back in sync with Redis (${this.connections.where}) failed; retrying`);
        }
        this.resyncSoon();
      },
    );
  }

  /**
   * Redis refused a command for a reason that says it is not in reach (the cluster is
   * down, the master became a replica, the connection is not writable) while the
   * connections look up: the node holds its messages as in any outage, and tries to
   * resync until Redis takes commands again.
   */
  outage(problem: string): void {
    if (this.closing) return;
    this.lastProblem = problem;
    if (this.synced) this.connectionLost();
    this.resyncSoon();
  }

  /** Another resync in a while (with backoff), unless one is already due. */
  resyncSoon(): void {
    if (this.resyncTimer !== null || this.closing) return;
    this.resyncDelay = Math.min(this.resyncDelay * 2, MAX_RESYNC_DELAY_MS);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      this.sync();
    }, this.resyncDelay);
    this.resyncTimer.unref();
  }

  /** close() begins: no resync from now on. */
  beginClose(): void {
    this.closing = true;
    if (this.resyncTimer !== null) clearTimeout(this.resyncTimer);
  }

  /** close() has left the cluster: not ready, and whoever waits for start() goes on. */
  endClose(): void {
    this.closed = true;
    this.synced = false;
    this.settleFirstOutcome();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  private reportUp(summary: SyncSummary): void {
    if (this.reportedDown) {
      this.reportedDown = false;
      const { channels, members, sent, dropped } = summary;
      this.logger.info(
        { channels, members, sent, droppedMessages: dropped, downSeconds: Math.round((Date.now() - this.downSince) / 100) / 10 },
        `Redis is back (${this.connections.where}): resubscribed ${channels} channels, re-registered ${members} memberships, sent ${sent} held messages${dropped > 0 ? `; ${dropped} older ones were dropped (outbox full)` : ''}`,
      );
    } else if (!this.connectedOnce) {
      this.logger.info(`connected to Redis (${this.connections.where}) as node ${this.nodeId}`);
    }
    this.connectedOnce = true;
  }

  private settleFirstOutcome(): void {
    const settle = this.onFirstOutcome;
    this.onFirstOutcome = null;
    if (settle === null) return;
    if (!this.synced) this.reportDown();
    settle();
  }

  private connectionLost(): void {
    // Any resync running belongs to the connection that is gone; the next 'ready' starts one.
    this.generation++;
    this.resyncRunning = false;
    // start() waits for the first outcome; a connection lost before the first sync is one.
    if (!this.connectedOnce) this.settleFirstOutcome();
    const wasSynced = this.synced;
    this.synced = false;
    this.steps.lost();
    if (this.closed) return;
    if (wasSynced) this.reportDown();
  }

  private reportDown(): void {
    if (this.reportedDown || this.closed) return;
    this.reportedDown = true;
    this.downSince = Date.now();
    this.logger.error(`Redis unavailable (${this.connections.where}): ${this.lastProblem}; local delivery continues, reconnecting`);
  }
}
