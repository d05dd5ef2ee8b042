/** Messages in and out per second on this node, sampled once a second from its counters. */
import { RateMeter, roundRate } from '../metrics/rate-meter.js';
import type { NodeStats } from '../metrics/stats.js';

export class NodeRates {
  private readonly messagesIn: RateMeter;
  private readonly messagesOut: RateMeter;
  private timer: NodeJS.Timeout | null = null;

  constructor(stats: NodeStats) {
    this.messagesIn = new RateMeter(() => stats.messagesPublished);
    this.messagesOut = new RateMeter(() => stats.deliveries);
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      this.messagesIn.sample();
      this.messagesOut.sample();
    }, 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Published on this node per second, to two decimals (what a dashboard shows). */
  messagesInPerSecond(): number {
    return roundRate(this.messagesIn.perSecond());
  }

  /** Delivered to this node's subscribers per second, to two decimals. */
  messagesOutPerSecond(): number {
    return roundRate(this.messagesOut.perSecond());
  }
}

