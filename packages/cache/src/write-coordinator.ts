/**
 * Upstream-first writes (OpenEMR first): the upstream write runs first; only after it succeeds is the cache
 * updated. With an idempotency key (IETF `Idempotency-Key` draft semantics) a retried request gets the first answer
 * and the upstream is written once, even when the first attempt's outcome was unknown.
 * @packageDocumentation
 */
import { createHash, randomUUID } from 'node:crypto';
import { HttpError, systemClock, TimeoutError, ValidationError, type Clock } from '@cdss/core';
import { z } from 'zod';
import type { Cache, CacheLogger } from './cache.js';
import {
  CacheUnavailableError,
  IdempotencyConflictError,
  IdempotencyInProgressError,
  IdempotencyOutcomeUnknownError,
  parseOrThrow,
} from './errors.js';
import {
  idempotencyKeySchema,
  MemoryIdempotencyStore,
  type IdempotencyStore,
  type IdempotencyTransaction,
} from './idempotency.js';
import { emit, type CacheMetricsListener, type JsonValue } from './types.js';
import { checkKey } from './validate.js';

/** Schema of {@link WriteCoordinatorOptions}' plain fields. */
export const writeCoordinatorOptionsSchema = z.object({
  /**
   * How long a claimed idempotency key is held before another request may take it over (its owner presumed dead;
   * the outcome is then unknown and is read back). Must exceed the upstream write's own timeout.
   */
  leaseMs: z.number().int().positive().default(120_000),
  /** How long a finished request's answer (or an unresolved outcome) is kept. */
  recordTtlMs: z
    .number()
    .int()
    .positive()
    .default(24 * 60 * 60 * 1000),
  /**
   * What to do when the shared idempotency store is unreachable: `local` keeps records in this process only and
   * still writes (availability first; fine when the upstream deduplicates by itself), `fail` refuses the write with
   * `CacheUnavailableError` (nothing is written that a retry on another instance could duplicate).
   */
  whenStoreDown: z.enum(['local', 'fail']).default('local'),
  /**
   * With a shared `idempotency` store: the most records this process keeps besides it, the oldest going first — the
   * copies of finished answers that let a retry be replayed without asking the shared store, and the records kept
   * while it is down (`whenStoreDown: 'local'`). The copies are an optimisation only: without this bound they would
   * pile up for `recordTtlMs` (a day) in every process, one per write. Without a shared store the process's records
   * are the only ones and keep `MemoryIdempotencyStore`'s bound.
   */
  localRecords: z.number().int().positive().default(10_000),
});

/** Options of {@link WriteCoordinator}. */
export interface WriteCoordinatorOptions extends Partial<z.input<typeof writeCoordinatorOptionsSchema>> {
  /** The cache to update after upstream writes. */
  cache: Cache;
  /**
   * Where idempotency records are shared between instances (a {@link MySqlIdempotencyStore}). Without it, records
   * are kept in this process only.
   */
  idempotency?: IdempotencyStore;
  /** Time; `@cdss/core`'s `Clock`. */
  clock?: Clock;
  /** Metrics hooks (`storeError` with operation `idempotency`). */
  metrics?: CacheMetricsListener;
  /** Receives what cannot be reported to the caller (e.g. an answer that could not be recorded). */
  logger?: CacheLogger;
  /**
   * Whether an upstream error leaves the write's outcome unknown (it may have been applied). Default
   * {@link isOutcomeUnknown}.
   */
  isOutcomeUnknown?: (error: unknown) => boolean;
}

/** What happened to the cache after a successful upstream write. */
export type CacheUpdate =
  /** The new value is in the cache. */
  | 'updated'
  /** The key was removed (by request, or because the update failed); the next read reloads it. */
  | 'evicted'
  /** Update and evict both failed; a background repair evicts the key, and reads bypass it meanwhile. */
  | 'repair-scheduled'
  /** No cache key was named. */
  | 'none';

/** The fields of a {@link WriteRequest} besides the idempotency key and result schema. */
export interface WriteRequestFields<R> {
  /**
   * The upstream write (e.g. an OpenEMR create). Receives the idempotency key, to pass on to an upstream that
   * understands one.
   */
  upstream: (context: { idempotencyKey: string | undefined }) => Promise<R>;
  /** The cache key of the written record. */
  key?: string;
  /** The value to cache under `key` from the upstream's answer; without it `key` is evicted instead. */
  toCache?: (result: R) => JsonValue | undefined;
  /** TTL of the cached value (the cache's default otherwise). */
  ttlMs?: number;
  /** More keys the write makes stale (e.g. a list that contains the record); they are evicted. */
  invalidate?: readonly string[];
  /**
   * The request, fingerprinted (canonical JSON, SHA-256) so that an idempotency key reused for another request is
   * refused. Include what identifies the operation: method, path and body.
   */
  request?: unknown;
  /**
   * Runs after a successful upstream write and before the answer is acknowledged: with an idempotency key, in the
   * same transaction that records the answer (so the caller's outbox rows and the idempotency record commit
   * together). If it throws, the write's outcome is recorded as unknown and the error is rethrown; a retry reads the
   * upstream back and commits again.
   */
  commit?: (result: R, transaction: IdempotencyTransaction) => Promise<void>;
  /**
   * Reads the upstream before the first attempt (e.g. the records that already match what is about to be written).
   * Kept with the claim and handed to {@link WriteRequestFields.readBack}.
   */
  prepare?: () => Promise<JsonValue>;
  /**
   * Settles an unknown outcome (a timeout or reset after sending, or an owner that died): reads the upstream back and
   * returns what the earlier attempt wrote, or `undefined` when it wrote nothing (then the write runs again). Throws
   * when it cannot tell. Without it, an unknown outcome is never written again
   * ({@link IdempotencyOutcomeUnknownError}).
   */
  readBack?: (context: { prepared: JsonValue | undefined }) => Promise<R | undefined>;
}

/**
 * One write. With an `idempotencyKey` the answer is recorded for replay, so a `resultSchema` is required to read it
 * back (it is JSON from storage).
 */
export type WriteRequest<R> = WriteRequestFields<R> &
  (
    | {
        /** The client's `Idempotency-Key`: a retry with the same key gets the first answer, and the upstream is written once. */
        idempotencyKey: string;
        /** Reads the recorded answer back (it is JSON from storage). */
        resultSchema: z.ZodType<R>;
      }
    | {
        /** No idempotency key: every call runs the upstream write. */
        idempotencyKey?: undefined;
        /** Not needed without an idempotency key. */
        resultSchema?: z.ZodType<R>;
      }
  );

/** What {@link WriteCoordinator.write} returns. */
export interface WriteOutcome<R> {
  /** The upstream's answer (replayed from the first request when `replayed`). */
  result: R;
  /** True when this is the recorded answer of an earlier request with the same idempotency key. */
  replayed: boolean;
  /** What happened to the cache (`none` when replayed). */
  cache: CacheUpdate;
  /** True when an earlier attempt's unknown outcome was settled by reading the upstream back (it had written). */
  recovered?: boolean;
}

/** Error codes of a request that never left this machine or was refused before it was processed. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Whether an upstream error leaves the write's outcome unknown: a timeout, a connection reset or closed after the
 * request went out, or a 500/502/504 (a gateway that timed out may have passed the write on). Refused connections
 * and other 4xx/5xx answers mean nothing was written.
 * @param error - what the upstream write threw
 */
export function isOutcomeUnknown(error: unknown): boolean {
  if (TimeoutError.isInstance(error)) return true;
  if (!HttpError.isInstance(error)) return false;
  if (error.status === undefined) {
    const code = (error.cause as { code?: unknown } | undefined)?.code;
    return !(typeof code === 'string' && NOT_SENT_CODES.has(code));
  }
  return error.status === 500 || error.status === 502 || error.status === 504;
}

/**
 * Runs upstream-first writes:
 * 1. the upstream write; if it fails, its error is thrown and nothing is written anywhere;
 * 2. on success, `commit` (the caller's own durable writes, e.g. outbox rows);
 * 3. then the cache is updated (or the key evicted); if that fails, the key is evicted; if the evict fails too, a
 *    repair is scheduled. The write still succeeds: the upstream has the data.
 *
 * With an idempotency key (IETF `Idempotency-Key` draft): the key is bound to the request's fingerprint (another
 * request with it: {@link IdempotencyConflictError}, 422); a concurrent duplicate gets
 * {@link IdempotencyInProgressError} (409); a retry of a finished request replays its answer; an attempt whose
 * outcome is unknown (timeout, reset after sending, crash) keeps the key `unknown`, and the next attempt reads the
 * upstream back (`readBack`) before it writes again.
 *
 * @example
 * ```ts
 * const { result } = await writes.write({
 *   idempotencyKey, request: { method: 'POST', path: '/api/patients', body }, resultSchema: patientSchema,
 *   upstream: () => openemr.patients.create(body),
 *   readBack: () => findCreatedPatient(body),
 *   key: `patient:${id}`, toCache: (p) => p,
 * });
 * ```
 */
export class WriteCoordinator {
  private readonly cache: Cache;
  private readonly durable: IdempotencyStore | undefined;
  private readonly local: MemoryIdempotencyStore;
  private readonly options: z.output<typeof writeCoordinatorOptionsSchema>;
  private readonly clock: Clock;
  private readonly metrics: CacheMetricsListener | undefined;
  private readonly logger: CacheLogger | undefined;
  private readonly unknownOutcome: (error: unknown) => boolean;
  private readonly inflight = new Map<string, string>();

  /**
   * @param options - cache, idempotency store, timings
   * @throws `ValidationError` for bad options
   */
  constructor(options: WriteCoordinatorOptions) {
    const { cache, idempotency, clock, metrics, logger, isOutcomeUnknown: unknown, ...plain } = options;
    this.options = parseOrThrow(writeCoordinatorOptionsSchema, plain, 'Invalid WriteCoordinator options');
    this.cache = cache;
    this.durable = idempotency;
    this.local = new MemoryIdempotencyStore(idempotency ? { maxRecords: this.options.localRecords } : {});
    this.clock = clock ?? systemClock;
    this.metrics = metrics;
    this.logger = logger;
    this.unknownOutcome = unknown ?? isOutcomeUnknown;
  }

  /**
   * Runs one write, upstream first.
   * @param request - the upstream call, the cache keys, and optionally an idempotency key
   * @returns the upstream's answer, whether it was replayed, and what happened to the cache
   * @throws whatever the upstream throws; `ValidationError` for bad keys (before anything runs);
   *   {@link IdempotencyConflictError} when the key was used for a different request;
   *   {@link IdempotencyInProgressError} while a request with the key runs; {@link IdempotencyOutcomeUnknownError}
   *   when an earlier attempt's outcome cannot be settled; `CacheUnavailableError` when the shared store is down
   *   and `whenStoreDown` is `fail`
   */
  async write<R>(request: WriteRequest<R>): Promise<WriteOutcome<R>> {
    if (request.key !== undefined) checkKey(request.key);
    for (const key of request.invalidate ?? []) checkKey(key);
    if (request.idempotencyKey === undefined) {
      const result = await request.upstream({ idempotencyKey: undefined });
      await request.commit?.(result, {});
      return this.afterWrite(request, result);
    }
    const idempotencyKey = parseOrThrow(idempotencyKeySchema, request.idempotencyKey, 'Invalid idempotency key');
    if (typeof (request.resultSchema as unknown as { safeParse?: unknown } | undefined)?.safeParse !== 'function') {
      // The type requires it; this guards untyped callers before anything is written.
      throw new ValidationError('Invalid write request', [
        { path: 'resultSchema', message: 'a zod schema is required with an idempotency key', code: 'invalid_type' },
      ]);
    }
    const fingerprint = fingerprintOf(request.request);
    const running = this.inflight.get(idempotencyKey);
    if (running !== undefined) {
      // A concurrent duplicate in this process.
      throw running === fingerprint ? new IdempotencyInProgressError() : new IdempotencyConflictError();
    }
    this.inflight.set(idempotencyKey, fingerprint);
    try {
      return await this.idempotent(request, idempotencyKey, fingerprint, request.resultSchema);
    } finally {
      this.inflight.delete(idempotencyKey);
    }
  }

  private async idempotent<R>(
    request: WriteRequest<R>,
    key: string,
    fingerprint: string,
    schema: z.ZodType<R>,
  ): Promise<WriteOutcome<R>> {
    const now = this.clock.now();
    const known = this.local.peekDone(key, now);
    if (known) return this.replay(known, fingerprint, schema);
    const prepared = request.prepare ? await request.prepare() : undefined;
    const owner = randomUUID();
    const input = {
      key,
      fingerprint,
      owner,
      now,
      leaseMs: this.options.leaseMs,
      retainMs: this.options.recordTtlMs,
      ...(prepared === undefined ? {} : { context: JSON.stringify(prepared) }),
    };
    let store = this.durable ?? this.local;
    let claim;
    try {
      claim = await store.claim(input);
    } catch (error) {
      if (store === this.local || !CacheUnavailableError.isInstance(error)) throw error;
      emit(this.metrics, 'storeError', 'idempotency', 'l2');
      if (this.options.whenStoreDown === 'fail') throw error;
      // Availability first: the write still reaches the upstream, with this process's records only.
      this.logger?.warn(
        { err: { name: error.name, code: error.code } },
        'cache: idempotency store unavailable; using local records',
      );
      store = this.local;
      claim = await store.claim(input);
    }
    switch (claim.status) {
      case 'done':
        return this.replay(claim, fingerprint, schema);
      case 'pending':
        throw claim.fingerprint === fingerprint ? new IdempotencyInProgressError() : new IdempotencyConflictError();
      case 'unknown':
        throw new IdempotencyConflictError();
      case 'recover': {
        const found = await this.readBack(request, store, key, owner, claim.context);
        if (found !== undefined) return this.finish(request, store, key, fingerprint, owner, found, true);
        return this.attempt(request, store, key, fingerprint, owner);
      }
      case 'claimed':
        return this.attempt(request, store, key, fingerprint, owner);
    }
  }

  /** Settles an unknown outcome by reading the upstream back; leaves the key unknown when that fails. */
  private async readBack<R>(
    request: WriteRequest<R>,
    store: IdempotencyStore,
    key: string,
    owner: string,
    context: string | undefined,
  ): Promise<R | undefined> {
    try {
      if (!request.readBack) {
        throw new IdempotencyOutcomeUnknownError(
          'An earlier attempt with this idempotency key may have been applied, and this write cannot check',
        );
      }
      const prepared = context === undefined ? undefined : (JSON.parse(context) as JsonValue);
      return await request.readBack({ prepared });
    } catch (error) {
      await this.markUnknown(store, key, owner);
      if (IdempotencyOutcomeUnknownError.isInstance(error)) throw error;
      throw new IdempotencyOutcomeUnknownError(
        'An earlier attempt with this idempotency key may have been applied, and reading it back failed',
        { cause: error },
      );
    }
  }

  private async attempt<R>(
    request: WriteRequest<R>,
    store: IdempotencyStore,
    key: string,
    fingerprint: string,
    owner: string,
  ): Promise<WriteOutcome<R>> {
    let result: R;
    try {
      result = await request.upstream({ idempotencyKey: key });
    } catch (error) {
      if (this.unknownOutcome(error)) {
        // It may have been written: keep the key, so that a retry reads back before writing again.
        await this.markUnknown(store, key, owner);
      } else {
        // Nothing was written upstream: free the key so that a retry may try again.
        await store.release(key, owner).catch(() => emit(this.metrics, 'storeError', 'idempotency', 'l2'));
      }
      throw error;
    }
    return this.finish(request, store, key, fingerprint, owner, result, false);
  }

  /** Records the answer (atomically with `commit`), then updates the cache. */
  private async finish<R>(
    request: WriteRequest<R>,
    store: IdempotencyStore,
    key: string,
    fingerprint: string,
    owner: string,
    result: R,
    recovered: boolean,
  ): Promise<WriteOutcome<R>> {
    const response = JSON.stringify(result) ?? 'null';
    const expiresAt = this.clock.now() + this.options.recordTtlMs;
    const commit = request.commit;
    let recorded: boolean;
    try {
      recorded = await store.complete(
        { key, owner, response, expiresAt },
        commit ? { within: (transaction) => commit(result, transaction) } : {},
      );
    } catch (error) {
      // Written upstream but not committed here: unknown, so a retry reads back and commits.
      await this.markUnknown(store, key, owner);
      throw error;
    }
    if (!recorded) {
      // Another request took the key over (this one outlived its lease): it reads back and commits the write.
      this.logger?.warn('cache: idempotency lease was taken over before the answer was recorded');
    }
    if (store !== this.local) this.local.remember(key, fingerprint, response, expiresAt);
    const outcome = await this.afterWrite(request, result);
    return recovered ? { ...outcome, recovered } : outcome;
  }

  private async markUnknown(store: IdempotencyStore, key: string, owner: string): Promise<void> {
    await store
      .markUnknown({ key, owner, expiresAt: this.clock.now() + this.options.recordTtlMs })
      .catch(() => emit(this.metrics, 'storeError', 'idempotency', 'l2'));
  }

  private replay<R>(
    record: { fingerprint: string; response: string },
    fingerprint: string,
    schema: z.ZodType<R>,
  ): WriteOutcome<R> {
    if (record.fingerprint !== fingerprint) throw new IdempotencyConflictError();
    let decoded: unknown;
    try {
      decoded = JSON.parse(record.response);
    } catch (error) {
      throw new ValidationError(
        'Recorded idempotent answer is not JSON',
        [{ path: '', message: 'invalid JSON', code: 'invalid_json' }],
        { cause: error },
      );
    }
    return {
      result: parseOrThrow(schema, decoded, 'Recorded idempotent answer does not match its schema'),
      replayed: true,
      cache: 'none',
    };
  }

  private async afterWrite<R>(request: WriteRequest<R>, result: R): Promise<WriteOutcome<R>> {
    let cache: CacheUpdate = 'none';
    if (request.key !== undefined) {
      const value = request.toCache?.(result);
      cache = await this.update(request.key, value, request.ttlMs);
    }
    for (const key of request.invalidate ?? []) {
      const outcome = await this.update(key, undefined, undefined);
      if (outcome === 'repair-scheduled' || cache === 'none') cache = outcome;
    }
    return { result, replayed: false, cache };
  }

  /** Update (or evict) one key after a successful upstream write; never throws. */
  private async update(key: string, value: JsonValue | undefined, ttlMs: number | undefined): Promise<CacheUpdate> {
    if (value !== undefined) {
      try {
        await this.cache.set(key, value, ttlMs === undefined ? {} : { ttlMs });
        return 'updated';
      } catch {
        // fall through to evict: a cache that cannot take the new value must not keep the old one
      }
    }
    try {
      await this.cache.invalidate(key);
      return 'evicted';
    } catch {
      this.cache.scheduleRepair(key);
      this.logger?.warn('cache: update and evict failed after an upstream write; repair scheduled');
      return 'repair-scheduled';
    }
  }
}

/**
 * SHA-256 of a request's canonical JSON (object keys sorted), so key order does not matter.
 * @param request - what identifies the request (method, path, body)
 * @returns the hex digest
 */
export function fingerprintOf(request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Date) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
