/**
 * Group commit: items added while a flush is in progress are flushed together by the next one, so N concurrent
 * writers cost one write (and one fsync, or one INSERT) instead of N. Each `add` resolves only once the batch that
 * holds its item is durable, and rejects with that batch's error, so a caller never goes on believing an item was
 * stored when it was not.
 *
 * A store that can commit several batches at once (a database: InnoDB commits concurrent transactions together)
 * takes `maxInFlight` > 1: the next batch is flushed while earlier ones are still committing, instead of waiting for
 * them. A file keeps the default of one flush at a time: its next batch fills while the synchronised write runs, and
 * one write then makes it durable (a second one started meanwhile would only queue behind the first in the kernel).
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
  /**
   * Most flushes running at once, each started in the order of its items. Default 1: a batch is flushed only
   * after the previous one is durable.
   */
  maxInFlight?: number;
}

/** Batches concurrent writes: up to `maxInFlight` flushes at a time, each taking what queued before it started. */
export class GroupCommit<T> {
  private queue: Waiting<T>[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Resolved (and replaced) each time the queue is empty with no flush running. */
  private idle: { promise: Promise<void>; resolve(): void } | undefined;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  /**
   * @param flush - writes one batch durably (resolves when it is), in the order the items were added
   * @param options - batch size cap, flushes at once
   */
  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
  }

  /**
   * Queues an item for the next batch.
   * @returns resolves when its batch is durable; rejects with the batch's error
   */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.inFlight < this.maxInFlight && !this.scheduled) {
        // setImmediate, not a microtask: the other requests whose I/O completed in this turn of the event loop add
        // their items before the flush starts, at no cost in latency when alone.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Items waiting for a flush (not counting the batches in flight). */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when every item added so far has been flushed (or failed). */
  async settled(): Promise<void> {
    while (this.queue.length > 0 || this.inFlight > 0 || this.scheduled) {
      if (!this.idle) {
        let resolve!: () => void;
        const promise = new Promise<void>((ok) => (resolve = ok));
        this.idle = { promise, resolve };
      }
      await this.idle.promise;
    }
  }

  /** Starts flushes while there are items and room for them. */
  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
      this.inFlight++;
      void this.run(batch);
    }
    if (this.queue.length === 0 && this.inFlight === 0 && !this.scheduled && this.idle) {
      this.idle.resolve();
      this.idle = undefined;
    }
  }

  private async run(batch: Waiting<T>[]): Promise<void> {
    try {
      await this.flush(batch.map((w) => w.item));
      for (const w of batch) w.resolve();
    } catch (error) {
      for (const w of batch) w.reject(error);
    } finally {
      this.inFlight--;
      // What queued while this batch was committing goes next, at once (no setImmediate: it has waited already).
      this.pump();
    }
  }
}
