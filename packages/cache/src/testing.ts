/**
 * Test helpers of `@cdss/cache`: a metrics listener that counts, and a controllable fake upstream.
 * @packageDocumentation
 */
import { CacheUnavailableError } from './errors.js';
import type {
  CacheEntry,
  CacheMetricsListener,
  CacheStore,
  CacheTier,
  EvictionReason,
  JsonValue,
  RepairOutcome,
  SetTiming,
} from './types.js';

/** Counters kept by {@link createCountingMetrics}. */
export interface MetricCounts {
  hits: Record<CacheTier, number>;
  misses: number;
  loads: number;
  loadErrors: number;
  staleServes: Record<'revalidate' | 'error', number>;
  evictions: Record<EvictionReason, number>;
  repairs: Record<RepairOutcome, number>;
  storeErrors: number;
  busErrors: number;
}

/**
 * A {@link CacheMetricsListener} that counts every hook, for assertions.
 * @returns the listener and its live counts
 */
export function createCountingMetrics(): { listener: CacheMetricsListener; counts: MetricCounts } {
  const counts: MetricCounts = {
    hits: { l1: 0, l2: 0 },
    misses: 0,
    loads: 0,
    loadErrors: 0,
    staleServes: { revalidate: 0, error: 0 },
    evictions: { lru: 0, expired: 0, invalidated: 0, 'write-failed': 0 },
    repairs: { scheduled: 0, succeeded: 0, 'retry-failed': 0, dropped: 0 },
    storeErrors: 0,
    busErrors: 0,
  };
  const listener: CacheMetricsListener = {
    hit: (tier) => void counts.hits[tier]++,
    miss: () => void counts.misses++,
    load: () => void counts.loads++,
    loadError: () => void counts.loadErrors++,
    staleServe: (reason) => void counts.staleServes[reason]++,
    eviction: (reason) => void counts.evictions[reason]++,
    repair: (outcome) => void counts.repairs[outcome]++,
    storeError: () => void counts.storeErrors++,
    busError: () => void counts.busErrors++,
  };
  return { listener, counts };
}

/**
 * An in-process stand-in for an upstream system of record (such as OpenEMR): a map of records, a count of the
 * writes it received, and a switch that makes it fail.
 */
export class FakeUpstream<T> {
  /** The records, by id. */
  readonly records = new Map<string, T>();
  /** Writes received (including failed ones). */
  writes = 0;
  /** Reads received. */
  reads = 0;
  /** When set, every call fails with this error. */
  failWith: Error | undefined;
  /** Optional delay (ms) of every call, to widen race windows. */
  delayMs = 0;

  /**
   * Writes a record.
   * @param id - record id
   * @param value - the record
   * @returns the record as stored
   */
  async write(id: string, value: T): Promise<T> {
    this.writes++;
    await this.pause();
    if (this.failWith) throw this.failWith;
    this.records.set(id, value);
    return value;
  }

  /**
   * Reads a record.
   * @param id - record id
   * @returns the record
   * @throws Error when failing or absent
   */
  async read(id: string): Promise<T> {
    this.reads++;
    await this.pause();
    if (this.failWith) throw this.failWith;
    const found = this.records.get(id);
    if (found === undefined) throw new Error(`record ${id} not found`);
    return found;
  }

  private async pause(): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    else await Promise.resolve();
  }
}

/**
 * A {@link CacheStore} wrapper whose operations can be made to fail like an unreachable MariaDB
 * (`CacheUnavailableError`), per operation, for unit tests of degradation paths. Fault tests use a real stopped
 * server instead.
 */
export class SwitchableStore implements CacheStore {
  /** Answers as L2. */
  readonly tier = 'l2' as const;
  /** Operations that currently fail. */
  readonly failing = new Set<'get' | 'set' | 'delete' | 'sweep'>();
  /** Calls received, failed ones included. */
  calls = 0;

  /** @param inner - the store that answers while not failing */
  constructor(readonly inner: CacheStore) {}

  /** Makes every operation fail (`true`) or succeed (`false`). */
  set down(value: boolean) {
    for (const op of ['get', 'set', 'delete', 'sweep'] as const) {
      if (value) this.failing.add(op);
      else this.failing.delete(op);
    }
  }

  /** True while any operation fails. */
  get down(): boolean {
    return this.failing.size > 0;
  }

  /** {@inheritDoc CacheStore.get} */
  async get(key: string): Promise<CacheEntry | undefined> {
    this.guard('get');
    const entry = await this.inner.get(key);
    return entry && { ...entry, tier: 'l2' };
  }

  /** {@inheritDoc CacheStore.set} */
  async set(key: string, value: JsonValue, timing: SetTiming): Promise<CacheEntry> {
    this.guard('set');
    return { ...(await this.inner.set(key, value, timing)), tier: 'l2' };
  }

  /** {@inheritDoc CacheStore.delete} */
  delete(key: string): Promise<boolean> {
    this.guard('delete');
    return this.inner.delete(key);
  }

  /** {@inheritDoc CacheStore.sweep} */
  sweep(): Promise<number> {
    this.guard('sweep');
    return this.inner.sweep();
  }

  /** {@inheritDoc CacheStore.close} */
  close(): Promise<void> {
    return this.inner.close();
  }

  private guard(op: 'get' | 'set' | 'delete' | 'sweep'): void {
    this.calls++;
    if (this.failing.has(op)) throw new CacheUnavailableError('test', `${op} failed (switched off)`);
  }
}

/**
 * Polls `probe` every `intervalMs` until it returns true or `deadlineMs` has passed. Tests use it to state a
 * requirement ("within one second") without asserting on timings.
 * @param probe - the condition
 * @param deadlineMs - how long to keep trying
 * @param intervalMs - pause between tries
 * @returns whether the condition held before the deadline
 */
export async function eventually(
  probe: () => Promise<boolean> | boolean,
  deadlineMs: number,
  intervalMs = 10,
): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= end) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
