/**
 * The requests of one connection that wait behind a slow one. Requests run one at a time,
 * in arrival order, and their replies leave in that order (GEMVC clients send no ids): an
 * async hook on `subscribe` finishes before the `message` sent right after it is handled.
 *
 * One exception keeps a busy publisher from being held to one message per round trip to
 * the broker (an IPC message to the primary and back, with workers): a pipelined request
 * (a publish) whose effects are done, the message handed to the broker, returns an
 * InFlight, and the next pipelined request starts while its reply is still to come. The
 * replies still leave in arrival order, and any other request waits until every reply in
 * flight has left. At most MAX_IN_FLIGHT replies wait at once.
 *
 * Made when a request first goes async and dropped once the connection is idle again
 * (QueueOwner.queueIdle): most connections, most of the time, have nothing waiting.
 */

/** A request whose effects are done and whose reply is to come: `reply` settles with the function that sends it. */
export class InFlight {
  constructor(readonly reply: Promise<() => void>) {}
}

export type Task = () => void | InFlight | Promise<void | InFlight>;

/** What the queue needs of its connection (the Connection itself: no closures per queue). */
export interface QueueOwner {
  /** Too many requests wait: stop reading the socket, so that TCP pushes back on the client. */
  pauseReading(): void;
  resumeReading(): void;
  /** A task rejected (or its reply did): logged; the connection goes on. */
  taskFailed(error: unknown): void;
  /** Nothing runs, waits or is in flight any more in `queue`: the owner may drop it. */
  queueIdle(queue: RequestQueue): void;
}

/**
 * Requests waiting behind a slow (async) one. Past this many the socket stops being read,
 * so TCP pushes back on the client instead of memory growing here.
 */
export const PAUSE_AT_PENDING = 32;
/** Replies of pipelined requests waiting at once at most; the next one waits for the first to leave. */
export const MAX_IN_FLIGHT = 128;

interface Waiting {
  readonly task: Task;
  readonly pipelined: boolean;
}

/** A reply in flight: its send function once it has settled. */
interface Reply {
  send: (() => void) | null;
}

const NOTHING = (): void => undefined;

export class RequestQueue {
  /** An async request is running. */
  private busy = false;
  /** The socket is not being read (too many requests waiting). */
  private paused = false;
  private pending: Waiting[] = [];
  private readonly inFlight: Reply[] = [];
  /** Who waits for the connection to be idle (idle()). */
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly owner: QueueOwner) {}

  /** Runs `task` now if nothing holds it back, or after what does. */
  enqueue(task: Task, pipelined: boolean): void {
    if (this.pending.length === 0 && this.canStart(pipelined)) {
      this.run(task);
      return;
    }
    this.pending.push({ task, pipelined });
    if (!this.paused && this.pending.length >= PAUSE_AT_PENDING) {
      this.paused = true;
      this.owner.pauseReading();
    }
  }

  /** Follows what a task returned: its promise (the queue is busy until it settles), or its reply in flight. */
  track(result: InFlight | Promise<void | InFlight>): void {
    if (result instanceof InFlight) {
      this.awaitReply(result);
      return;
    }
    this.busy = true;
    result.then(
      (value) => {
        this.busy = false;
        if (value instanceof InFlight) this.awaitReply(value);
        this.next();
      },
      (error: unknown) => {
        this.busy = false;
        this.owner.taskFailed(error);
        this.next();
      },
    );
  }

  /** Drops the requests that have not started (the connection is closing); replies in flight still settle. */
  clear(): void {
    this.pending = [];
  }

  /** Resolves once no request runs, waits or has its reply in flight. */
  idle(): Promise<void> {
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private canStart(pipelined: boolean): boolean {
    if (this.busy) return false;
    return this.inFlight.length === 0 || (pipelined && this.inFlight.length < MAX_IN_FLIGHT);
  }

  private run(task: Task): void {
    const result = task();
    if (result !== undefined) this.track(result);
  }

  private awaitReply(inFlight: InFlight): void {
    const reply: Reply = { send: null };
    this.inFlight.push(reply);
    inFlight.reply.then(
      (send) => {
        reply.send = send;
        this.sendReplies();
      },
      (error: unknown) => {
        reply.send = NOTHING;
        this.owner.taskFailed(error);
        this.sendReplies();
      },
    );
  }

  /** Sends the settled replies at the head, in order; a reply still to come holds back the ones after it. */
  private sendReplies(): void {
    for (let head = this.inFlight[0]; head !== undefined && head.send !== null; head = this.inFlight[0]) {
      this.inFlight.shift();
      head.send();
    }
    this.next();
  }

  /** Runs waiting tasks while they may start (each one that goes async or in flight may hold back the rest). */
  private next(): void {
    while (this.pending.length > 0 && this.canStart((this.pending[0] as Waiting).pipelined)) {
      this.run((this.pending.shift() as Waiting).task);
    }
    if (this.paused && this.pending.length < PAUSE_AT_PENDING / 2) {
      this.paused = false;
      this.owner.resumeReading();
    }
    if (!this.busy && this.pending.length === 0 && this.inFlight.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.owner.queueIdle(this);
    }
  }
}
