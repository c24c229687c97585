/**
 * The server's {@link ReadThroughCache} port over `@cdss/cache`: `getOrLoad` for reads (single-flight, stale-if-error)
 * and the write coordinator for OpenEMR-first writes with idempotency keys.
 */
import type { Cache, CacheStore, JsonValue, WriteCoordinator, WriteRequest } from '@cdss/cache';
import type { ReadThroughCache, StateTransaction, WriteOptions } from '../domain/ports.js';

/** Runs work in one transaction of the server's state store (connected mode), or directly (sandbox). */
export type Transact = <T>(work: (transaction: StateTransaction) => Promise<T>) => Promise<T>;

/**
 * The JSON text of cached values, kept beside them: a value from the cache's memory tier is deep-frozen and replaced,
 * never changed, when its key is written, so its text can be computed once and reused for every answer.
 */
const jsonTexts = new WeakMap<object, string>();

/** The JSON text of a value read from the cache, computed once per cached value (undefined for other values). */
function cachedJson(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || !Object.isFrozen(value)) return undefined;
  let text = jsonTexts.get(value);
  if (text === undefined) jsonTexts.set(value, (text = JSON.stringify(value)));
  return text;
}

/** No transaction: the memory stores of sandbox mode. */
export const noTransaction: Transact = (work) => work({});

/**
 * The port over a cache and its write coordinator.
 * @param cache - the cache (L1, or L1 over MySQL L2)
 * @param writes - the write coordinator sharing that cache
 * @param store - the store, pinged by readiness
 * @param transact - the transaction a write without an idempotency key commits its outbox rows in
 */
export function cachePort(
  cache: Cache,
  writes: WriteCoordinator,
  store: CacheStore,
  transact: Transact = noTransaction,
): ReadThroughCache {
  return {
    async read<T>(key: string, load: () => Promise<T>) {
      const result = await cache.getOrLoad(key, load);
      const json = cachedJson(result.value);
      return json === undefined
        ? { value: result.value, stale: result.stale }
        : { value: result.value, stale: result.stale, json };
    },
    async write<T>(upstreamWrite: () => Promise<T>, options: WriteOptions<T>) {
      const { idempotency, commit } = options;
      const base = { upstream: () => upstreamWrite() };
      const outcome = idempotency
        ? await writes.write<T>({
            ...base,
            idempotencyKey: idempotency.key,
            request: idempotency.request,
            resultSchema: options.schema,
            // with a key, the outbox rows commit in the transaction that records the answer
            ...(commit ? { commit } : {}),
            ...(idempotency.prepare ? { prepare: idempotency.prepare } : {}),
            ...(idempotency.readBack ? { readBack: ({ prepared }) => idempotency.readBack!(prepared) } : {}),
          } satisfies WriteRequest<T>)
        : await writes.write<T>({
            ...base,
            ...(commit ? { commit: (result: T) => transact((transaction) => commit(result, transaction)) } : {}),
          });
      // The key is known only from the result (a create): fill it now. A failure here only costs a later miss.
      const key = options.key?.(outcome.result);
      if (key !== undefined)
        await cache.set(key, outcome.result as JsonValue).catch(() => cache.invalidate(key).catch(() => undefined));
      return { value: outcome.result, replayed: outcome.replayed };
    },
    async ping() {
      await store.get('readiness:probe');
    },
  };
}
