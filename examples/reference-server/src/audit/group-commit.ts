/**
 * Group commit: items added while a flush is in progress are flushed together by the next one, so N concurrent
 * writers cost one write (and one fsync, or one INSERT) instead of N. Each `add` resolves only once the batch that
 * holds its item is durable, and rejects with that batch's error, so a caller never goes on believing an item was
 * stored when it was not.
 */

interface Waiting<T> {
  item: T;
  resolve(): void;
  reject(error: unknown): void;
}

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions {
  /** Most items in one flush; more wait for the next. Default 500. */
  maxBatch?: number;
}

/** Batches concurrent writes: one flush in flight at a time, taking everything that queued meanwhile. */
export class GroupCommit<T> {
  private queue: Waiting<T>[] = [];
  private running: Promise<void> | undefined;
  private readonly maxBatch: number;

  /**
   * @param flush - writes one batch durably (resolves when it is), in the order the items were added
   * @param options - batch size cap
   */
  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  /**
   * Queues an item for the next batch.
   * @returns resolves when its batch is durable; rejects with the batch's error
   */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      // setImmediate, not a microtask: the other requests whose I/O completed in this turn of the event loop add
      // their items before the first flush starts, at no cost in latency when alone.
      this.running ??= new Promise((started) => setImmediate(started)).then(() => this.drain());
    });
  }

  /** Items waiting for a flush (not counting the batch in flight). */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when every item added so far has been flushed (or failed). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
        this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
        try {
          await this.flush(batch.map((w) => w.item));
          for (const w of batch) w.resolve();
        } catch (error) {
          for (const w of batch) w.reject(error);
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
