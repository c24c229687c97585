/**
 * Cache-aside reads with single-flight, TTL with jitter, stale-while-revalidate and bounded stale-if-error; cache
 * updates and invalidations that reach every instance through the invalidation bus.
 * @packageDocumentation
 */
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import type { InvalidationBus, InvalidationEvent } from './bus.js';
import { parseOrThrow } from './errors.js';
import { MemoryStore } from './memory-store.js';
import { RepairQueue } from './repair-queue.js';
import { TieredStore } from './tiered-store.js';
import {
  emit,
  systemCacheClock,
  type CacheClock,
  type CacheEntry,
  type CacheMetricsListener,
  type CacheStore,
  type CacheTier,
  type JsonValue,
} from './types.js';
import { checkKey } from './validate.js';

/** Schema of the freshness policy: {@link CacheOptions} defaults, overridable per call. */
export const freshnessPolicySchema = z.object({
  /** How long a loaded value is fresh. */
  ttlMs: z.number().int().positive(),
  /** TTLs are shortened by up to this fraction at random, so keys filled together do not expire together. */
  jitter: z.number().min(0).max(0.9),
  /** After expiry, serve the stale value this long while one background load refreshes it. */
  staleWhileRevalidateMs: z.number().int().nonnegative(),
  /** After expiry, serve the stale value (flagged `stale`) this long when the loader fails. */
  staleIfErrorMs: z.number().int().nonnegative(),
});

/** The freshness policy, see {@link freshnessPolicySchema}. */
export type FreshnessPolicy = z.infer<typeof freshnessPolicySchema>;

const defaultPolicy: FreshnessPolicy = { ttlMs: 60_000, jitter: 0.1, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 };

/** A logger for what the cache cannot report to its caller (background failures). `@cdss/core`'s `Logger` fits. */
export interface CacheLogger {
  /** Logs a warning; the cache never passes keys or values. */
  warn(obj: object | string, msg?: string): void;
}

/** Options of {@link Cache}. */
export interface CacheOptions extends Partial<FreshnessPolicy> {
  /** Where entries live: a {@link TieredStore} (L1 over MySQL) in servers, a {@link MemoryStore} alone in tests. */
  store: CacheStore;
  /** Cross-instance invalidation; without it only this instance's L1 is updated. */
  bus?: InvalidationBus;
  /** Time source. */
  clock?: CacheClock;
  /** Random source in [0, 1) for TTL jitter. */
  random?: () => number;
  /** Metrics hooks. */
  metrics?: CacheMetricsListener;
  /** Receives background failures (refresh loads, repairs); never keys or values. */
  logger?: CacheLogger;
  /** Repair retry tuning (see {@link RepairQueue}). */
  repair?: {
    /** How often due repairs are retried (ms). */
    intervalMs?: number;
    /** First retry delay (ms), doubling per failure. */
    baseDelayMs?: number;
    /** Longest retry delay (ms). */
    maxDelayMs?: number;
    /** Most pending repairs. */
    maxPending?: number;
  };
}

/** Per-call options of {@link Cache.getOrLoad}. */
export interface GetOrLoadOptions<V> extends Partial<FreshnessPolicy> {
  /**
   * Checks values read from L2 (a trust boundary: another process wrote them) and gives them type `V`.
   * Without it the stored JSON is trusted to be a `V`. A mismatch is treated as a miss.
   */
  schema?: z.ZodType<V>;
}

/** Where a {@link CacheResult} came from. */
export type CacheSource = CacheTier | 'loader';

/** What {@link Cache.getOrLoad} returns. */
export interface CacheResult<V> {
  /** The value. */
  value: V;
  /** True when the value is past its TTL (served while revalidating, or because the loader failed). */
  stale: boolean;
  /** Which tier answered, or `loader` when it was loaded now. */
  source: CacheSource;
  /** Age of the value in milliseconds (0 when just loaded). */
  ageMs: number;
  /** When `stale` because the loader failed: the loader's error. */
  error?: unknown;
}

interface Flight {
  promise: Promise<CacheResult<unknown>>;
  /** Set when the key is written or invalidated during the flight: its load must not fill the store. */
  dirty: boolean;
}

/**
 * The cache: cache-aside reads over a {@link CacheStore}, and the cache half of upstream-first writes
 * (see {@link WriteCoordinator}).
 *
 * When the store fails (MariaDB down), reads fall through to the loader and keep answering; fills and
 * invalidations that fail are counted (`storeError`) and, for invalidations, handed to the {@link RepairQueue}.
 *
 * @example
 * ```ts
 * const cache = new Cache({ store: new TieredStore({ l1: new MemoryStore(), l2 }), bus, ttlMs: 60_000,
 *   staleWhileRevalidateMs: 10_000, staleIfErrorMs: 300_000 });
 * const { value, stale, source } = await cache.getOrLoad(`patient:${id}`, () => openemr.patients.get(id));
 * ```
 */
export class Cache {
  /** The store entries live in. */
  readonly store: CacheStore;
  /** Keys whose stored entry may be wrong, being evicted in the background. */
  readonly repairs: RepairQueue;
  private readonly bus: InvalidationBus | undefined;
  private readonly policy: FreshnessPolicy;
  private readonly clock: CacheClock;
  private readonly random: () => number;
  private readonly metrics: CacheMetricsListener | undefined;
  private readonly logger: CacheLogger | undefined;
  private readonly flights = new Map<string, Flight>();
  private readonly refreshing = new Map<string, Flight>();
  private readonly unsubscribe: (() => void) | undefined;
  /** This instance's in-process tier: L1 of a tiered store, or the store itself when it is a memory store. */
  private readonly local: MemoryStore | undefined;

  /**
   * @param options - store, bus, freshness policy, clock, metrics
   * @throws `ValidationError` for a bad policy
   */
  constructor(options: CacheOptions) {
    const { store, bus, clock, random, metrics, logger, repair, ...policy } = options;
    this.policy = parseOrThrow(freshnessPolicySchema, { ...defaultPolicy, ...policy }, 'Invalid cache policy');
    this.store = store;
    this.bus = bus;
    this.clock = clock ?? systemCacheClock;
    this.random = random ?? Math.random;
    this.metrics = metrics;
    this.logger = logger;
    this.local = store instanceof TieredStore ? store.l1 : store instanceof MemoryStore ? store : undefined;
    this.repairs = new RepairQueue({
      ...repair,
      clock: this.clock,
      metrics,
      repair: async (key) => {
        await this.store.delete(key);
        await this.publish([key]);
      },
    });
    this.unsubscribe = bus?.subscribe((event) => this.onInvalidation(event));
  }

  /**
   * Reads `key` from the cache, or loads it with `loader` and stores it.
   *
   * - Concurrent calls for one key share one store read and at most one loader call (single-flight).
   * - A fresh entry is returned as is; within `staleWhileRevalidateMs` after expiry the stale entry is returned
   *   (`stale: true`) and one background load refreshes it.
   * - On a miss the loader runs; if it fails and a stale entry is within `staleIfErrorMs` of its expiry, that entry
   *   is returned with `stale: true` and the loader's `error`; otherwise the loader's error is thrown.
   * - When the store is unreachable the loader answers (the failure is counted as `storeError`).
   *
   * @param key - the cache key (1–250 characters)
   * @param loader - fetches the value from the source of truth; must return JSON-serialisable data
   * @param options - per-call policy and an optional schema for values read from L2
   * @returns the value with its staleness and source
   * @throws `ValidationError` for a bad key or policy; whatever `loader` throws when nothing can stand in for it
   */
  getOrLoad<V>(key: string, loader: () => Promise<V>, options: GetOrLoadOptions<V> = {}): Promise<CacheResult<V>> {
    let policy: FreshnessPolicy;
    const { schema, ...overrides } = options;
    try {
      checkKey(key);
      policy = hasKeys(overrides)
        ? parseOrThrow(freshnessPolicySchema, { ...this.policy, ...overrides }, 'Invalid cache policy')
        : this.policy;
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const existing = this.flights.get(key);
    if (existing) return existing.promise as Promise<CacheResult<V>>;
    const flight: Flight = { promise: undefined as unknown as Promise<CacheResult<unknown>>, dirty: false };
    // Registered first: lookup() removes the flight itself when it settles (no extra .finally promise on the hot
    // path), and that must never run before the registration.
    this.flights.set(key, flight);
    const promise = this.lookup(key, loader, policy, schema, flight);
    flight.promise = promise;
    return promise;
  }

  /**
   * Stores `value` under `key` in every tier and tells other instances to drop their L1 copy (also when the store
   * fails, since their copies may then be stale too).
   * @param key - the cache key
   * @param value - a JSON value
   * @param options - TTL override
   * @returns the stored entry
   * @throws `ValidationError` for a bad key or value; `CacheUnavailableError` when the store fails
   */
  async set(key: string, value: JsonValue, options: { ttlMs?: number } = {}): Promise<CacheEntry> {
    checkKey(key);
    this.markDirty(key);
    const policy =
      options.ttlMs === undefined
        ? this.policy
        : parseOrThrow(freshnessPolicySchema, { ...this.policy, ttlMs: options.ttlMs }, 'Invalid cache policy');
    try {
      return await this.store.set(key, value, this.timing(policy));
    } finally {
      // Even when the store failed: other instances' L1 copies are now at least as wrong as ours was.
      await this.publish([key]);
    }
  }

  /**
   * Removes `key` from every tier and tells other instances to drop their L1 copy.
   * @param key - the cache key
   * @returns true when a tier held it
   * @throws `ValidationError` for a bad key; `CacheUnavailableError` when the store fails
   */
  async invalidate(key: string): Promise<boolean> {
    checkKey(key);
    this.markDirty(key);
    try {
      return await this.store.delete(key);
    } finally {
      await this.publish([key]);
    }
  }

  /**
   * Drops `key` from this instance's L1 only (no store round trip, no message).
   * @param key - the cache key
   */
  evictLocal(key: string): void {
    checkKey(key);
    this.markDirty(key);
    this.local?.deleteSync(key);
  }

  /**
   * Records that `key`'s stored entry may be wrong: reads bypass the stores for it until a background evict
   * succeeds. Used by the {@link WriteCoordinator} when both the update and the evict failed.
   * @param key - the cache key
   */
  scheduleRepair(key: string): void {
    checkKey(key);
    this.evictLocal(key);
    this.repairs.schedule(key);
  }

  /** Stops background work, unsubscribes from the bus and closes the store. The bus is closed by its owner. */
  async close(): Promise<void> {
    this.repairs.stop();
    this.unsubscribe?.();
    await this.store.close();
  }

  private async lookup<V>(
    key: string,
    loader: () => Promise<V>,
    policy: FreshnessPolicy,
    schema: z.ZodType<V> | undefined,
    flight: Flight,
  ): Promise<CacheResult<V>> {
    try {
      const bypass = this.repairs.has(key);
      let entry: CacheEntry | undefined;
      if (!bypass) {
        try {
          entry = await this.store.get(key);
        } catch (error) {
          if (ValidationError.isInstance(error))
            entry = undefined; // unreadable row: treat as a miss
          else emit(this.metrics, 'storeError', 'get', this.sharedTier());
        }
      }
      let value: V | undefined;
      if (entry) {
        const checked = this.check(entry, schema);
        if (checked.ok) value = checked.value;
        else entry = undefined;
      }
      const now = this.clock.now();
      if (entry && value !== undefined) {
        const ageMs = Math.max(0, now - entry.storedAt);
        if (now < entry.expiresAt) {
          emit(this.metrics, 'hit', entry.tier);
          return { value, stale: false, source: entry.tier, ageMs };
        }
        if (now < entry.expiresAt + policy.staleWhileRevalidateMs) {
          emit(this.metrics, 'staleServe', 'revalidate');
          this.refresh(key, loader, policy);
          return { value, stale: true, source: entry.tier, ageMs };
        }
      }
      emit(this.metrics, 'miss');
      try {
        const loaded = await this.load(key, loader, policy, flight, bypass);
        return { value: loaded, stale: false, source: 'loader', ageMs: 0 };
      } catch (error) {
        if (entry && value !== undefined && now < entry.expiresAt + policy.staleIfErrorMs) {
          emit(this.metrics, 'staleServe', 'error');
          return { value, stale: true, source: entry.tier, ageMs: Math.max(0, now - entry.storedAt), error };
        }
        throw error;
      }
    } finally {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    }
  }

  private async load<V>(
    key: string,
    loader: () => Promise<V>,
    policy: FreshnessPolicy,
    flight: Flight,
    bypass: boolean,
  ): Promise<V> {
    const started = this.clock.now();
    let loaded: V;
    try {
      loaded = await loader();
    } catch (error) {
      emit(this.metrics, 'loadError');
      throw error;
    }
    emit(this.metrics, 'load', Math.max(0, this.clock.now() - started));
    // A write or invalidation during the load may carry a newer value than ours; don't overwrite it.
    if (!flight.dirty && !bypass && !this.repairs.has(key)) {
      try {
        await this.store.set(key, loaded as JsonValue, this.timing(policy));
      } catch (error) {
        // The caller still gets the loaded value; only caching it failed (store down, or not JSON / too large).
        emit(this.metrics, 'storeError', 'set', this.sharedTier());
        if (ValidationError.isInstance(error))
          this.logger?.warn({ err: errorSummary(error) }, 'cache: loaded value not cacheable');
      }
    }
    return loaded;
  }

  private refresh<V>(key: string, loader: () => Promise<V>, policy: FreshnessPolicy): void {
    if (this.refreshing.has(key)) return;
    const flight: Flight = { promise: Promise.resolve() as unknown as Promise<CacheResult<unknown>>, dirty: false };
    flight.promise = this.load(key, loader, policy, flight, this.repairs.has(key))
      .then((value): CacheResult<unknown> => ({ value, stale: false, source: 'loader', ageMs: 0 }))
      .catch((error: unknown) => {
        this.logger?.warn({ err: errorSummary(error) }, 'cache: background refresh failed; stale value kept');
        return { value: undefined, stale: true, source: 'loader', ageMs: 0, error } satisfies CacheResult<unknown>;
      })
      .finally(() => {
        if (this.refreshing.get(key) === flight) this.refreshing.delete(key);
      });
    this.refreshing.set(key, flight);
  }

  private check<V>(entry: CacheEntry, schema: z.ZodType<V> | undefined): { ok: true; value: V } | { ok: false } {
    if (!schema || entry.tier === 'l1') return { ok: true, value: entry.value as V };
    const parsed = schema.safeParse(entry.value);
    return parsed.success ? { ok: true, value: parsed.data } : { ok: false };
  }

  private timing(policy: FreshnessPolicy): { expiresAt: number; staleUntil: number } {
    const now = this.clock.now();
    const ttl = Math.max(1, Math.round(policy.ttlMs * (1 - policy.jitter * this.random())));
    const expiresAt = now + ttl;
    return { expiresAt, staleUntil: expiresAt + Math.max(policy.staleWhileRevalidateMs, policy.staleIfErrorMs) };
  }

  /** The tier whose failure a store error means: L2 behind a tiered store, else the store's own tier. */
  private sharedTier(): CacheTier {
    return this.store instanceof TieredStore ? 'l2' : this.store.tier;
  }

  private markDirty(key: string): void {
    const flight = this.flights.get(key);
    if (flight) flight.dirty = true;
    const refresh = this.refreshing.get(key);
    if (refresh) refresh.dirty = true;
  }

  private async publish(keys: string[]): Promise<void> {
    if (!this.bus) return;
    try {
      await this.bus.publish(keys);
    } catch (error) {
      // The write itself succeeded; other instances' L1 copies now live until l1MaxTtlMs at most.
      emit(this.metrics, 'busError');
      this.logger?.warn({ err: errorSummary(error) }, 'cache: invalidation not published');
    }
  }

  private onInvalidation(event: InvalidationEvent): void {
    if (event.kind === 'all') {
      for (const flight of this.flights.values()) flight.dirty = true;
      for (const flight of this.refreshing.values()) flight.dirty = true;
      this.local?.clear();
      return;
    }
    for (const key of event.keys) {
      this.markDirty(key);
      this.local?.deleteSync(key);
    }
  }
}

function hasKeys(value: object): boolean {
  for (const k in value) if ((value as Record<string, unknown>)[k] !== undefined) return true;
  return false;
}

/** What may be logged about an error: its name, code and message, never its payload. */
function errorSummary(error: unknown): { name: string; code?: string; message: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, ...(typeof code === 'string' ? { code } : {}), message: error.message };
  }
  return { name: typeof error, message: 'non-error thrown' };
}
