/**
 * Hands the messages a broker receives from other nodes (or, for a worker, from its
 * primary) to this node a bounded time per event-loop turn. A single read from Redis or
 * from the IPC channel can bring hundreds of messages, and each is queued for every local
 * subscriber of its channel (about 1 µs a subscriber): a burst of 200 messages to a channel
 * of 1,000 subscribers held the loop for 200 ms in one turn, with pings, timers and other
 * clients' requests waiting behind it.
 *
 * Messages are delivered at once while this turn's deliveries have taken less than
 * BUDGET_MS; past that, they wait, in arrival order, and the next turns deliver them, each
 * for at most BUDGET_MS. Waiting here is no different for the node from a message that
 * came later over the network: every message still arrives once, and in the order it came
 * (a channel's kept messages in offset order). The queue is bounded: once MAX_WAITING wait,
 * an arrival first delivers everything ahead of it, so that nothing is dropped and the
 * reading socket, not this process's memory, holds any further backlog.
 */
import type { Logger } from 'pino';
import type { Delivery } from './broker.js';

/** The time deliveries may take in one turn before the rest wait for the next. */
export const BUDGET_MS = 5;
/** Deliveries that may wait at once (each holds only its frame, already in memory). */
export const MAX_WAITING = 50_000;

/** Something that must happen after the deliveries received before it (an answer that follows them). */
type Task = () => void;

export class DeliveryPacer {
  private waiting: (Delivery | Task)[] = [];
  /** Index of the next waiting delivery (the queue is emptied in place, not shifted). */
  private head = 0;
  /** When this turn's budget ends; 0 when no delivery has been made since the last turn. */
  private budgetEnds = 0;
  private turn: NodeJS.Immediate | null = null;
  /** One callback for every turn, not a closure per turn. */
  private readonly onTurn = (): void => this.nextTurn();

  /**
   * @param deliver hands one delivery to this node (LocalNode.deliver).
   * @param now the clock (performance.now); a test's can jump.
   */
  constructor(
    private readonly deliver: (delivery: Delivery) => void,
    private readonly logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Deliveries (and tasks behind them) waiting for a later turn. */
  get backlog(): number {
    return this.waiting.length - this.head;
  }

  /** A message from another node: delivered now, or after the ones already waiting. */
  receive(delivery: Delivery): void {
    if (this.backlog === 0) {
      const now = this.now();
      if (this.budgetEnds === 0) {
        this.budgetEnds = now + BUDGET_MS;
        this.scheduleTurn();
      }
      if (now < this.budgetEnds) {
        this.run(delivery);
        return;
      }
    } else if (this.backlog >= MAX_WAITING) {
      this.drain(Infinity);
    }
    this.waiting.push(delivery);
    this.scheduleTurn();
  }

  /**
   * Runs `task` once every delivery received before it has been made: now when none waits.
   * (A publisher's answer that must not overtake the delivery of its own message here.)
   */
  then(task: Task): void {
    if (this.backlog === 0) this.run(task);
    else this.waiting.push(task);
  }

  /** Delivers everything still waiting, now (the broker is closing). */
  flush(): void {
    this.drain(Infinity);
    if (this.turn !== null) clearImmediate(this.turn);
    this.turn = null;
    this.budgetEnds = 0;
  }

  private scheduleTurn(): void {
    this.turn ??= setImmediate(this.onTurn);
  }

  private nextTurn(): void {
    this.turn = null;
    this.budgetEnds = 0;
    if (this.backlog === 0) return;
    this.budgetEnds = this.now() + BUDGET_MS;
    this.drain(this.budgetEnds);
    // Either way a turn follows: to go on with the backlog, or to start a fresh budget.
    this.scheduleTurn();
  }

  /** Delivers waiting messages, in order, until none is left or `deadline` has passed. */
  private drain(deadline: number): void {
    while (this.head < this.waiting.length) {
      const item = this.waiting[this.head] as Delivery | Task;
      this.waiting[this.head++] = undefined as unknown as Task;
      this.run(item);
      if (deadline !== Infinity && this.now() >= deadline) break;
    }
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
  }

  private run(item: Delivery | Task): void {
    try {
      if (typeof item === 'function') item();
      else this.deliver(item);
    } catch (error) {
      // One failed delivery must not keep the others from theirs.
      this.logger.error({ err: error, channel: typeof item === 'function' ? undefined : item.channel }, 'delivering a message from another node failed');
    }
  }
}
