/**
 * Repairs: keys whose cache entry may be wrong because both the cache update and the evict failed after an upstream
 * write. A background task retries the evict until it succeeds.
 * @packageDocumentation
 */
import { z } from 'zod';
import { parseOrThrow } from './errors.js';
import { emit, systemCacheClock, type CacheClock, type CacheMetricsListener } from './types.js';

/** Schema of {@link RepairQueueOptions}' plain fields. */
export const repairQueueOptionsSchema = z.object({
  /** How often the background task looks for due repairs; 0 means only {@link RepairQueue.runOnce} runs them. */
  intervalMs: z.number().int().nonnegative().default(500),
  /** First retry delay; doubles per failure up to `maxDelayMs`. */
  baseDelayMs: z.number().int().nonnegative().default(250),
  /** Longest delay between retries of one repair. */
  maxDelayMs: z.number().int().positive().default(10_000),
  /**
   * Most pending repairs. Past it the oldest is dropped (reported as `dropped`): its entry then stays wrong until
   * its TTL, which is why TTLs stay bounded.
   */
  maxPending: z.number().int().positive().default(100_000),
});

/** Options of {@link RepairQueue}. */
export interface RepairQueueOptions extends Partial<z.input<typeof repairQueueOptionsSchema>> {
  /** Performs one repair of a key (for the cache: evict it from every tier and publish an invalidation). */
  repair: (key: string) => Promise<void>;
  /** Time source for retry scheduling. */
  clock?: CacheClock;
  /** Metrics hooks (`repair`). */
  metrics?: CacheMetricsListener;
}

/** What one round of {@link RepairQueue.runOnce} did. */
export interface RepairRound {
  /** Repairs that succeeded. */
  succeeded: number;
  /** Repairs that failed again (retried later). */
  failed: number;
}

interface Pending {
  attempts: number;
  /** Bumped when the key is scheduled again while pending, so a repair already under way does not settle it. */
  generation: number;
  dueAt: number;
}

/**
 * Pending repairs, kept in process memory (the store they repair is the thing that is failing) and retried with
 * exponential backoff by a background timer. While a key is pending, {@link Cache} reads bypass the stores for it.
 */
export class RepairQueue {
  private readonly pending = new Map<string, Pending>();
  private readonly options: z.output<typeof repairQueueOptionsSchema>;
  private readonly repair: (key: string) => Promise<void>;
  private readonly clock: CacheClock;
  private readonly metrics: CacheMetricsListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RepairRound> | undefined;

  /**
   * @param options - the repair action, backoff, bounds
   * @throws `ValidationError` for bad options
   */
  constructor(options: RepairQueueOptions) {
    const { repair, clock, metrics, ...plain } = options;
    this.options = parseOrThrow(repairQueueOptionsSchema, plain, 'Invalid RepairQueue options');
    this.repair = repair;
    this.clock = clock ?? systemCacheClock;
    this.metrics = metrics;
  }

  /** Number of pending repairs. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * True when `key` has a pending repair (its stored entry must not be trusted).
   * @param key - the cache key
   */
  has(key: string): boolean {
    return this.pending.has(key);
  }

  /**
   * Records a repair for `key` (once per key) and makes sure the background task runs.
   * @param key - the cache key whose entry may be wrong
   */
  schedule(key: string): void {
    const existing = this.pending.get(key);
    if (existing) {
      existing.generation++;
    } else {
      if (this.pending.size >= this.options.maxPending) {
        const oldest = this.pending.keys().next();
        if (!oldest.done) {
          this.pending.delete(oldest.value);
          emit(this.metrics, 'repair', 'dropped');
        }
      }
      this.pending.set(key, { attempts: 0, generation: 0, dueAt: this.clock.now() + this.options.baseDelayMs });
      emit(this.metrics, 'repair', 'scheduled');
    }
    this.ensureTimer();
  }

  /**
   * Retries every due repair once (what the background task runs).
   * @returns how many succeeded and failed in this round
   */
  runOnce(): Promise<RepairRound> {
    // One round at a time: a slow store must not pile up overlapping rounds.
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the background task; pending repairs stay (and {@link RepairQueue.runOnce} still works). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async round(): Promise<RepairRound> {
    const now = this.clock.now();
    let succeeded = 0;
    let failed = 0;
    for (const [key, item] of [...this.pending]) {
      if (item.dueAt > now) continue;
      const generation = item.generation;
      try {
        await this.repair(key);
        // Scheduled again during the await: that newer failure may postdate this evict, so repair again.
        if (item.generation === generation) this.pending.delete(key);
        else item.dueAt = this.clock.now();
        succeeded++;
        emit(this.metrics, 'repair', 'succeeded');
      } catch {
        item.attempts++;
        item.dueAt =
          this.clock.now() + Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** item.attempts);
        failed++;
        emit(this.metrics, 'repair', 'retry-failed');
      }
    }
    if (this.pending.size === 0) this.stop();
    return { succeeded, failed };
  }

  private ensureTimer(): void {
    if (this.timer || this.options.intervalMs === 0) return;
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs);
    this.timer.unref();
  }
}
