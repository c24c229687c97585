/**
 * Shared types of the cache: JSON values, entries, the {@link CacheStore} port, the clock and the metrics hooks.
 * @packageDocumentation
 */
import { z } from 'zod';

/** A JSON value: what a cache entry holds (the MySQL store keeps it as JSON text). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Schema of {@link JsonValue}, used where JSON comes back from storage or the wire (zod's own `z.json()`). */
export const jsonValueSchema: z.ZodType<JsonValue> = z.json();

/** Which tier answered a read: the in-process L1 or the shared L2 (MySQL). */
export type CacheTier = 'l1' | 'l2';

/**
 * Cache keys: 1 to 250 characters, no control characters. Keys name records (e.g. `patient:42`), never
 * carry PHI, and are never logged.
 */
export const cacheKeySchema = z
  .string()
  .min(1, 'cache key must not be empty')
  .max(250, 'cache key must be at most 250 characters')
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'cache key must not contain control characters');

/** One stored value with its version and timing (all times are epoch milliseconds of the injected clock). */
export interface CacheEntry {
  /** The cached JSON value. */
  value: JsonValue;
  /** Increases on every write of the key in the store that answered; informational (e.g. for ETags). */
  version: number;
  /** When the value was stored. */
  storedAt: number;
  /** Fresh until this instant; after it the value is stale. */
  expiresAt: number;
  /** The store keeps (and may serve as stale) the value until this instant, then drops it. */
  staleUntil: number;
  /** The tier that answered. */
  tier: CacheTier;
}

/** Schema of the timing of a write: when the value turns stale and when the store may drop it. */
export const setTimingSchema = z
  .object({
    /** Fresh until this instant (epoch ms). */
    expiresAt: z.number().int().nonnegative(),
    /** Kept, and servable as stale, until this instant (epoch ms); not before `expiresAt`. */
    staleUntil: z.number().int().nonnegative(),
  })
  .refine((t) => t.staleUntil >= t.expiresAt, {
    message: 'staleUntil must not be before expiresAt',
    path: ['staleUntil'],
  });

/** Timing of a write, see {@link setTimingSchema}. */
export type SetTiming = z.infer<typeof setTimingSchema>;

/**
 * The storage port of the cache. Implementations: {@link MemoryStore} (embedded, L1), {@link MySqlStore} (real, L2)
 * and {@link TieredStore} (L1 over L2). One contract suite runs against each.
 *
 * Reads never return an entry past its `staleUntil`. Stores throw {@link CacheUnavailableError} when their backend
 * is unreachable, and `ValidationError` (from `@cdss/core`) for a bad key or timing, changing nothing.
 */
export interface CacheStore {
  /** The tier this store answers as. */
  readonly tier: CacheTier;
  /**
   * Reads a key.
   * @param key - the cache key
   * @returns the entry, or `undefined` when absent or past its `staleUntil`
   */
  get(key: string): Promise<CacheEntry | undefined>;
  /**
   * Writes a key (insert or replace).
   * @param key - the cache key
   * @param value - a JSON value
   * @param timing - when the value turns stale and when it may be dropped
   * @returns the stored entry, with its new version
   */
  set(key: string, value: JsonValue, timing: SetTiming): Promise<CacheEntry>;
  /**
   * Removes a key.
   * @param key - the cache key
   * @returns true when an entry was removed
   */
  delete(key: string): Promise<boolean>;
  /**
   * Drops every entry past its `staleUntil`.
   * @returns how many entries were dropped
   */
  sweep(): Promise<number>;
  /** Releases the store's resources (timers, connections). */
  close(): Promise<void>;
}

/** A source of time. `@cdss/core`'s `Clock` fits; tests inject a fake one. */
export interface CacheClock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The real clock. */
export const systemCacheClock: CacheClock = { now: () => Date.now() };

/** Why an entry left a store. */
export type EvictionReason = 'lru' | 'expired' | 'invalidated' | 'write-failed';

/** A repair's progress: scheduled after a failed evict, then retried until it succeeds or is dropped. */
export type RepairOutcome = 'scheduled' | 'succeeded' | 'retry-failed' | 'dropped';

/**
 * Metrics hooks. The cache calls them synchronously and ignores what they throw; the server maps them to
 * Prometheus counters. No hook receives a key or a value.
 */
export interface CacheMetricsListener {
  /** A read was answered from a store while fresh. */
  hit?(tier: CacheTier): void;
  /** A read found nothing usable in the stores. */
  miss?(): void;
  /** The loader finished successfully. */
  load?(durationMs: number): void;
  /** The loader threw. */
  loadError?(): void;
  /** A stale value was served: while revalidating, or because the loader failed. */
  staleServe?(reason: 'revalidate' | 'error'): void;
  /** An entry left a store. */
  eviction?(reason: EvictionReason, tier: CacheTier): void;
  /** A repair (a retried evict after a failed cache update) moved on. */
  repair?(outcome: RepairOutcome): void;
  /** A store operation failed; the cache degraded around it. */
  storeError?(operation: 'get' | 'set' | 'delete' | 'sweep' | 'idempotency', tier: CacheTier): void;
  /** Publishing an invalidation on the bus failed (other instances keep their L1 until its TTL). */
  busError?(): void;
}

/**
 * Calls one hook of a listener, swallowing what it throws (metrics must never break a read or write).
 * @internal
 */
export function emit<K extends keyof CacheMetricsListener>(
  listener: CacheMetricsListener | undefined,
  hook: K,
  ...args: Parameters<NonNullable<CacheMetricsListener[K]>>
): void {
  const fn = listener?.[hook] as ((...a: unknown[]) => void) | undefined;
  if (!fn) return;
  try {
    fn.apply(listener, args);
  } catch {
    // a broken metrics hook must not change the outcome of a cache operation
  }
}
