/**
 * Messages a node could not hand to Redis, kept in order until Redis is back. Bounded by
 * count and bytes: past either bound the oldest are dropped (and counted), since during a
 * long outage the newest messages are the ones still worth delivering.
 */
export class Outbox<T> {
  private entries: Array<{ item: T; bytes: number } | undefined> = [];
  /** Index of the oldest entry: dropping from the front is O(1), not a shift of the array. */
  private head = 0;
  private bytes = 0;
  private droppedSinceTaken = 0;

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  push(item: T, bytes: number): void {
    this.entries.push({ item, bytes });
    this.bytes += bytes;
    while (this.size > 0 && (this.size > this.maxItems || this.bytes > this.maxBytes)) {
      const oldest = this.entries[this.head] as { bytes: number };
      this.entries[this.head++] = undefined;
      this.bytes -= oldest.bytes;
      this.droppedSinceTaken++;
    }
    // Compact once the dropped front is as large as what is left.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Empties the outbox: what it held, oldest first, and how many were dropped meanwhile. */
  takeAll(): { items: T[]; dropped: number } {
    const items = this.entries.slice(this.head).map((entry) => (entry as { item: T }).item);
    const dropped = this.droppedSinceTaken;
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
    this.droppedSinceTaken = 0;
    return { items, dropped };
  }
}
