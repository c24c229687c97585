/**
 * The embedded store: an in-process LRU bounded by entry count and bytes, with TTL on an injectable clock.
 * @packageDocumentation
 */
import { z } from 'zod';
import { parseOrThrow } from './errors.js';
import {
  emit,
  systemCacheClock,
  type CacheClock,
  type CacheEntry,
  type CacheMetricsListener,
  type CacheStore,
  type CacheTier,
  type JsonValue,
  type SetTiming,
} from './types.js';
import { checkKey, checkTiming, deepFreeze, toJsonText } from './validate.js';

/** Schema of {@link MemoryStoreOptions}' plain fields. */
export const memoryStoreOptionsSchema = z.object({
  /** Most entries kept; the least recently used go first. */
  maxEntries: z.number().int().positive().default(10_000),
  /** Most bytes kept (UTF-8 size of key plus JSON text); the least recently used go first. */
  maxBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** Period of the background sweep of entries past `staleUntil`; 0 turns it off (reads still drop them). */
  sweepIntervalMs: z.number().int().nonnegative().default(0),
  /** The tier this store reports in entries and metrics. */
  tier: z.enum(['l1', 'l2']).default('l1'),
});

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions extends Partial<z.input<typeof memoryStoreOptionsSchema>> {
  /** Time source; defaults to the system clock. */
  clock?: CacheClock;
  /** Metrics hooks (evictions). */
  metrics?: CacheMetricsListener;
}

interface Slot {
  entry: CacheEntry;
  bytes: number;
}

/**
 * An in-process {@link CacheStore}: LRU by entries and bytes, TTL from the entry timing.
 *
 * Values are copied on write and deeply frozen, so reads hand them out without copying; mutate a copy.
 *
 * @example
 * ```ts
 * const l1 = new MemoryStore({ maxEntries: 5_000, maxBytes: 32 * 1024 * 1024 });
 * ```
 */
export class MemoryStore implements CacheStore {
  /** The tier this store answers as. */
  readonly tier: CacheTier;
  private readonly slots = new Map<string, Slot>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  /** The store's time source. */
  readonly clock: CacheClock;
  private readonly metrics: CacheMetricsListener | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private bytes = 0;
  private nextVersion = 1;

  /**
   * @param options - bounds, clock, metrics
   * @throws `ValidationError` for bad bounds
   */
  constructor(options: MemoryStoreOptions = {}) {
    const { clock, metrics, ...plain } = options;
    const parsed = parseOrThrow(memoryStoreOptionsSchema, plain, 'Invalid MemoryStore options');
    this.maxEntries = parsed.maxEntries;
    this.maxBytes = parsed.maxBytes;
    this.tier = parsed.tier;
    this.clock = clock ?? systemCacheClock;
    this.metrics = metrics;
    if (parsed.sweepIntervalMs > 0) {
      this.timer = setInterval(() => void this.sweep(), parsed.sweepIntervalMs);
      this.timer.unref();
    }
  }

  /** Number of entries held (including stale ones not yet swept). */
  get size(): number {
    return this.slots.size;
  }

  /** Bytes held, as counted against `maxBytes`. */
  get byteSize(): number {
    return this.bytes;
  }

  /**
   * Reads a key synchronously (the async {@link MemoryStore.get} wraps it), marking it recently used.
   * @param key - the cache key
   * @returns the entry, or `undefined` when absent or past its `staleUntil`
   * @throws `ValidationError` for a bad key
   */
  getSync(key: string): CacheEntry | undefined {
    checkKey(key);
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    if (slot.entry.staleUntil <= this.clock.now()) {
      this.remove(key, slot, 'expired');
      return undefined;
    }
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.entry;
  }

  /** {@inheritDoc CacheStore.get} */
  get(key: string): Promise<CacheEntry | undefined> {
    try {
      return Promise.resolve(this.getSync(key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@inheritDoc CacheStore.set} */
  set(key: string, value: JsonValue, timing: SetTiming): Promise<CacheEntry> {
    try {
      checkKey(key);
      const checkedTiming = checkTiming(timing);
      const text = toJsonText(value);
      const entry: CacheEntry = {
        value: deepFreeze(JSON.parse(text) as JsonValue),
        version: this.nextVersion++,
        storedAt: this.clock.now(),
        expiresAt: checkedTiming.expiresAt,
        staleUntil: checkedTiming.staleUntil,
        tier: this.tier,
      };
      this.put(key, entry, Buffer.byteLength(key) + Buffer.byteLength(text));
      return Promise.resolve(entry);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Puts an entry read from another tier (its version and timing kept) into this store. Used by {@link TieredStore}
   * to fill L1 from L2.
   * @param key - the cache key
   * @param entry - the entry, whose value is JSON already checked by the other tier
   * @param byteSize - its size if known (else measured)
   * @returns the entry as stored here
   */
  adopt(key: string, entry: CacheEntry, byteSize?: number): CacheEntry {
    checkKey(key);
    const own: CacheEntry = { ...entry, value: deepFreeze(entry.value), tier: this.tier };
    this.put(key, own, byteSize ?? Buffer.byteLength(key) + Buffer.byteLength(JSON.stringify(entry.value)));
    return own;
  }

  /** {@inheritDoc CacheStore.delete} */
  delete(key: string): Promise<boolean> {
    try {
      return Promise.resolve(this.deleteSync(key, 'invalidated'));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Removes a key synchronously.
   * @param key - the cache key
   * @param reason - reported to the metrics hook
   * @returns true when an entry was removed
   */
  deleteSync(key: string, reason: 'invalidated' | 'write-failed' = 'invalidated'): boolean {
    checkKey(key);
    const slot = this.slots.get(key);
    if (!slot) return false;
    this.remove(key, slot, reason);
    return true;
  }

  /** Drops every entry (e.g. after the invalidation bus reconnects and may have missed messages). */
  clear(): void {
    for (const [key, slot] of [...this.slots]) this.remove(key, slot, 'invalidated');
  }

  /** {@inheritDoc CacheStore.sweep} */
  sweep(): Promise<number> {
    const now = this.clock.now();
    let dropped = 0;
    for (const [key, slot] of [...this.slots]) {
      if (slot.entry.staleUntil <= now) {
        this.remove(key, slot, 'expired');
        dropped++;
      }
    }
    return Promise.resolve(dropped);
  }

  /** {@inheritDoc CacheStore.close} */
  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.slots.clear();
    this.bytes = 0;
    return Promise.resolve();
  }

  private put(key: string, entry: CacheEntry, bytes: number): void {
    const old = this.slots.get(key);
    if (old) {
      this.slots.delete(key);
      this.bytes -= old.bytes;
    }
    if (bytes > this.maxBytes) {
      // Larger than the whole budget: not cached (the old value, now replaced, is gone as well).
      if (old) emit(this.metrics, 'eviction', 'lru', this.tier);
      return;
    }
    this.slots.set(key, { entry, bytes });
    this.bytes += bytes;
    while (this.slots.size > this.maxEntries || this.bytes > this.maxBytes) {
      const oldest = this.slots.entries().next().value;
      if (!oldest) break;
      this.remove(oldest[0], oldest[1], 'lru');
    }
  }

  private remove(key: string, slot: Slot, reason: 'lru' | 'expired' | 'invalidated' | 'write-failed'): void {
    this.slots.delete(key);
    this.bytes -= slot.bytes;
    emit(this.metrics, 'eviction', reason, this.tier);
  }
}
