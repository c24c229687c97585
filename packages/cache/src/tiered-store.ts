/**
 * The two-tier composition: an in-process L1 ({@link MemoryStore}) in front of a shared L2 (usually {@link MySqlStore}).
 * @packageDocumentation
 */
import { z } from 'zod';
import { parseOrThrow } from './errors.js';
import type { MemoryStore } from './memory-store.js';
import type { CacheEntry, CacheStore, JsonValue, SetTiming } from './types.js';

/** Schema of {@link TieredStoreOptions}' plain fields. */
export const tieredStoreOptionsSchema = z.object({
  /**
   * Longest an entry stays fresh in L1, whatever its L2 expiry. Bounds how long an instance can serve a value that
   * another instance changed when an invalidation message is lost.
   */
  l1MaxTtlMs: z.number().int().positive().default(30_000),
});

/** Options of {@link TieredStore}. */
export interface TieredStoreOptions extends Partial<z.input<typeof tieredStoreOptionsSchema>> {
  /** The in-process tier. */
  l1: MemoryStore;
  /** The shared tier. */
  l2: CacheStore;
}

/**
 * A {@link CacheStore} reading L1 first, then L2 (filling L1 from it), writing L2 first, then L1.
 *
 * A stale L1 entry is re-read from L2; when L2 is unreachable the stale L1 entry is returned (the cache serves it
 * as stale). A failed L2 write also drops the key from L1 and rethrows, so the tiers never disagree silently; the
 * {@link WriteCoordinator} then evicts or schedules a repair. Entries read from L2 report `tier: 'l2'`.
 */
export class TieredStore implements CacheStore {
  /** Reads answer as L1 or L2; the store as a whole is the L1 front. */
  readonly tier = 'l1' as const;
  /** The in-process tier. */
  readonly l1: MemoryStore;
  /** The shared tier. */
  readonly l2: CacheStore;
  private readonly l1MaxTtlMs: number;

  /**
   * @param options - the two tiers and the L1 freshness bound
   * @throws `ValidationError` for bad options
   */
  constructor(options: TieredStoreOptions) {
    const { l1, l2, ...plain } = options;
    this.l1MaxTtlMs = parseOrThrow(tieredStoreOptionsSchema, plain, 'Invalid TieredStore options').l1MaxTtlMs;
    this.l1 = l1;
    this.l2 = l2;
  }

  /** {@inheritDoc CacheStore.get} */
  async get(key: string): Promise<CacheEntry | undefined> {
    const near = this.l1.getSync(key);
    if (near && near.expiresAt > this.l1.clock.now()) return near;
    // L1 is empty or stale (L1 copies expire early, see l1MaxTtlMs): ask L2, which may hold a fresher value.
    let far: CacheEntry | undefined;
    try {
      far = await this.l2.get(key);
    } catch (error) {
      if (near) return near; // L2 down: the stale L1 copy is still worth serving as stale
      throw error;
    }
    if (far) this.l1.adopt(key, this.capped(far));
    else if (near) this.l1.deleteSync(key); // gone from L2 (invalidated or swept): gone here too
    return far;
  }

  /**
   * Reads L1 only, synchronously.
   * @param key - the cache key
   * @returns the L1 entry, if any
   */
  getLocal(key: string): CacheEntry | undefined {
    return this.l1.getSync(key);
  }

  /** {@inheritDoc CacheStore.set} */
  async set(key: string, value: JsonValue, timing: SetTiming): Promise<CacheEntry> {
    let stored: CacheEntry;
    try {
      stored = await this.l2.set(key, value, timing);
    } catch (error) {
      this.l1.deleteSync(key, 'write-failed');
      throw error;
    }
    this.l1.adopt(key, this.capped(stored));
    return stored;
  }

  /** {@inheritDoc CacheStore.delete} */
  async delete(key: string): Promise<boolean> {
    const near = this.l1.deleteSync(key);
    const far = await this.l2.delete(key);
    return near || far;
  }

  /**
   * Drops a key from L1 only (what an invalidation message from another instance does).
   * @param key - the cache key
   * @returns true when L1 held it
   */
  deleteLocal(key: string): boolean {
    return this.l1.deleteSync(key);
  }

  /** Drops all of L1 (after the bus reconnects and may have missed messages). */
  clearLocal(): void {
    this.l1.clear();
  }

  /** {@inheritDoc CacheStore.sweep} */
  async sweep(): Promise<number> {
    const near = await this.l1.sweep();
    return near + (await this.l2.sweep());
  }

  /** {@inheritDoc CacheStore.close} */
  async close(): Promise<void> {
    await this.l1.close();
    await this.l2.close();
  }

  private capped(entry: CacheEntry): CacheEntry {
    // L1's copy turns stale after l1MaxTtlMs (then the next read re-checks L2); it is kept until the entry's own
    // staleUntil so that it can still be served as stale while L2 is unreachable.
    const limit = this.l1.clock.now() + this.l1MaxTtlMs;
    return entry.expiresAt <= limit ? entry : { ...entry, expiresAt: limit };
  }
}
