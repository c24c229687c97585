/**
 * The server's {@link ReadThroughCache} port over `@cdss/cache`: `getOrLoad` for reads (single-flight, stale-if-error)
 * and the write coordinator for OpenEMR-first writes with idempotency keys.
 */
import type { Cache, CacheStore, JsonValue, WriteCoordinator } from '@cdss/cache';
import type { z } from 'zod';
import type { ReadThroughCache } from '../domain/ports.js';

/**
 * The port over a cache and its write coordinator.
 * @param cache - the cache (L1, or L1 over MySQL L2)
 * @param writes - the write coordinator sharing that cache
 * @param store - the store, pinged by readiness
 */
export function cachePort(cache: Cache, writes: WriteCoordinator, store: CacheStore): ReadThroughCache {
  return {
    async read<T>(key: string, load: () => Promise<T>) {
      const result = await cache.getOrLoad(key, load);
      return { value: result.value, stale: result.stale };
    },
    async write<T>(
      upstreamWrite: () => Promise<T>,
      options: { key: (result: T) => string; schema: z.ZodType<T>; idempotencyKey?: string },
    ) {
      const upstream = (): Promise<T> => upstreamWrite();
      const outcome = options.idempotencyKey
        ? await writes.write<T>({ upstream, idempotencyKey: options.idempotencyKey, resultSchema: options.schema })
        : await writes.write<T>({ upstream });
      // The key is known only from the result (a create): fill it now. A failure here only costs a later miss.
      await cache
        .set(options.key(outcome.result), outcome.result as JsonValue)
        .catch(() => cache.invalidate(options.key(outcome.result)).catch(() => undefined));
      return { value: outcome.result, replayed: outcome.replayed };
    },
    async ping() {
      await store.get('readiness:probe');
    },
  };
}
