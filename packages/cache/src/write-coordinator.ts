/**
 * Upstream-first writes (OpenEMR first): the upstream write runs first; only after it succeeds is the cache
 * updated. With an idempotency key, a retried request gets the first answer and the upstream is called once.
 * @packageDocumentation
 */
import { createHash, randomUUID } from 'node:crypto';
import { systemClock, TimeoutError, ValidationError, type Clock } from '@cdss/core';
import { z } from 'zod';
import type { Cache, CacheLogger } from './cache.js';
import { CacheUnavailableError, IdempotencyConflictError, parseOrThrow } from './errors.js';
import { idempotencyKeySchema, MemoryIdempotencyStore, type IdempotencyStore } from './idempotency.js';
import { emit, type CacheMetricsListener, type JsonValue } from './types.js';
import { checkKey } from './validate.js';

/** Schema of {@link WriteCoordinatorOptions}' plain fields. */
export const writeCoordinatorOptionsSchema = z.object({
  /**
   * How long a claimed idempotency key is held before another request may take it over (its owner presumed dead).
   * Must exceed the upstream write's own timeout.
   */
  leaseMs: z.number().int().positive().default(120_000),
  /** How long a duplicate request waits for the first one to finish before failing with `TimeoutError`. */
  waitTimeoutMs: z.number().int().positive().default(30_000),
  /** Pause between checks while waiting on a duplicate that runs in another instance. */
  pollIntervalMs: z.number().int().positive().default(50),
  /** How long a finished request's answer is kept for replay. */
  recordTtlMs: z
    .number()
    .int()
    .positive()
    .default(24 * 60 * 60 * 1000),
});

/** Options of {@link WriteCoordinator}. */
export interface WriteCoordinatorOptions extends Partial<z.input<typeof writeCoordinatorOptionsSchema>> {
  /** The cache to update after upstream writes. */
  cache: Cache;
  /**
   * Where idempotency records are shared between instances (a {@link MySqlIdempotencyStore}). Without it, or while
   * it is unreachable, records are kept in this process only.
   */
  idempotency?: IdempotencyStore;
  /** Time and sleep (polling while a duplicate runs elsewhere); `@cdss/core`'s `Clock`. */
  clock?: Clock;
  /** Metrics hooks (`storeError` with operation `idempotency`). */
  metrics?: CacheMetricsListener;
  /** Receives what cannot be reported to the caller (e.g. an answer that could not be recorded). */
  logger?: CacheLogger;
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
   * The upstream write (e.g. an OpenEMR create). Receives the idempotency key, to pass on to the upstream
   * (`Idempotency-Key` header) so that even a takeover after a crash cannot duplicate the record there.
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
  /** The request, fingerprinted so that an idempotency key reused for another request is refused. */
  request?: unknown;
}

/**
 * One write. With an `idempotencyKey` the answer is recorded for replay, so a `resultSchema` is required to read it
 * back (it is JSON from storage).
 */
export type WriteRequest<R> = WriteRequestFields<R> &
  (
    | {
        /** The client's `Idempotency-Key`: a retry with the same key gets the first answer, and the upstream is called once. */
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
}

/**
 * Runs upstream-first writes:
 * 1. the upstream write; if it fails, its error is thrown and nothing is written anywhere;
 * 2. on success, the cache is updated (or the key evicted);
 * 3. if that fails, the key is evicted; if the evict fails too, a repair is scheduled (retried in the background,
 *    and reads bypass the key until it succeeds). The write still succeeds: the upstream has the data.
 *
 * With an idempotency key the first answer is recorded (MySQL when given, and in memory), a retry replays it
 * without calling the upstream, and a concurrent duplicate waits for the first and gets the same answer.
 *
 * @example
 * ```ts
 * const { result } = await writes.write({
 *   idempotencyKey: req.header('Idempotency-Key'), request: body, resultSchema: patientSchema,
 *   upstream: ({ idempotencyKey }) => openemr.patients.create(body, { idempotencyKey }),
 *   key: `patient:${id}`, toCache: (p) => p, invalidate: ['patients:list'],
 * });
 * ```
 */
export class WriteCoordinator {
  private readonly cache: Cache;
  private readonly durable: IdempotencyStore | undefined;
  private readonly local = new MemoryIdempotencyStore();
  private readonly options: z.output<typeof writeCoordinatorOptionsSchema>;
  private readonly clock: Clock;
  private readonly metrics: CacheMetricsListener | undefined;
  private readonly logger: CacheLogger | undefined;
  private readonly inflight = new Map<string, { fingerprint: string; promise: Promise<WriteOutcome<unknown>> }>();

  /**
   * @param options - cache, idempotency store, timings
   * @throws `ValidationError` for bad options
   */
  constructor(options: WriteCoordinatorOptions) {
    const { cache, idempotency, clock, metrics, logger, ...plain } = options;
    this.options = parseOrThrow(writeCoordinatorOptionsSchema, plain, 'Invalid WriteCoordinator options');
    this.cache = cache;
    this.durable = idempotency;
    this.clock = clock ?? systemClock;
    this.metrics = metrics;
    this.logger = logger;
  }

  /**
   * Runs one write, upstream first.
   * @param request - the upstream call, the cache keys, and optionally an idempotency key
   * @returns the upstream's answer, whether it was replayed, and what happened to the cache
   * @throws whatever the upstream throws (nothing was written); `ValidationError` for bad keys (before anything runs);
   *   {@link IdempotencyConflictError} when the idempotency key was used for a different request; `TimeoutError`
   *   when a duplicate request in another instance did not finish within `waitTimeoutMs`
   */
  async write<R>(request: WriteRequest<R>): Promise<WriteOutcome<R>> {
    if (request.key !== undefined) checkKey(request.key);
    for (const key of request.invalidate ?? []) checkKey(key);
    if (request.idempotencyKey === undefined) return this.execute(request);
    const idempotencyKey = parseOrThrow(idempotencyKeySchema, request.idempotencyKey, 'Invalid idempotency key');
    if (typeof (request.resultSchema as unknown as { safeParse?: unknown } | undefined)?.safeParse !== 'function') {
      // The type requires it; this guards untyped callers before anything is written.
      throw new ValidationError('Invalid write request', [
        { path: 'resultSchema', message: 'a zod schema is required with an idempotency key', code: 'invalid_type' },
      ]);
    }
    const fingerprint = fingerprintOf(request.request);
    const running = this.inflight.get(idempotencyKey);
    if (running) {
      // A concurrent duplicate in this process: wait for the first and share its answer.
      if (running.fingerprint !== fingerprint) throw new IdempotencyConflictError();
      const first = (await running.promise) as WriteOutcome<R>;
      return { result: first.result, replayed: true, cache: 'none' };
    }
    const promise = this.idempotent(request, idempotencyKey, fingerprint, request.resultSchema);
    const entry = { fingerprint, promise: promise as Promise<WriteOutcome<unknown>> };
    this.inflight.set(idempotencyKey, entry);
    try {
      return await promise;
    } finally {
      if (this.inflight.get(idempotencyKey) === entry) this.inflight.delete(idempotencyKey);
    }
  }

  private async idempotent<R>(
    request: WriteRequest<R>,
    key: string,
    fingerprint: string,
    schema: z.ZodType<R>,
  ): Promise<WriteOutcome<R>> {
    const owner = randomUUID();
    const deadline = this.clock.now() + this.options.waitTimeoutMs;
    let durable = this.durable;
    for (;;) {
      const now = this.clock.now();
      const known = this.local.peekDone(key, now);
      if (known) return this.replay(known, fingerprint, schema);
      const input = { key, fingerprint, owner, now, leaseMs: this.options.leaseMs };
      let claim;
      try {
        claim = await (durable ?? this.local).claim(input);
      } catch (error) {
        if (!durable || !CacheUnavailableError.isInstance(error)) throw error;
        // MySQL is down: the write must still reach the upstream. Fall back to this process's records (the
        // upstream receives the idempotency key and can deduplicate across instances itself).
        emit(this.metrics, 'storeError', 'idempotency', 'l2');
        this.logger?.warn(
          { err: { name: error.name, code: error.code } },
          'cache: idempotency store unavailable; using local records',
        );
        durable = undefined;
        continue;
      }
      if (claim.status === 'done') return this.replay(claim, fingerprint, schema);
      if (claim.status === 'pending') {
        if (claim.fingerprint !== fingerprint) throw new IdempotencyConflictError();
        if (this.clock.now() >= deadline) {
          throw new TimeoutError(
            `A request with the same idempotency key did not finish within ${this.options.waitTimeoutMs} ms`,
            this.options.waitTimeoutMs,
          );
        }
        await this.clock.sleep(this.options.pollIntervalMs);
        continue;
      }
      return this.runClaimed(request, key, fingerprint, owner, durable);
    }
  }

  private async runClaimed<R>(
    request: WriteRequest<R>,
    key: string,
    fingerprint: string,
    owner: string,
    durable: IdempotencyStore | undefined,
  ): Promise<WriteOutcome<R>> {
    let outcome: WriteOutcome<R>;
    try {
      outcome = await this.execute(request);
    } catch (error) {
      // Nothing was written upstream: free the key so that a retry may try again.
      await (durable ?? this.local)
        .release(key, owner)
        .catch(() => emit(this.metrics, 'storeError', 'idempotency', 'l2'));
      throw error;
    }
    const response = JSON.stringify(outcome.result) ?? 'null';
    const expiresAt = this.clock.now() + this.options.recordTtlMs;
    this.local.remember(key, fingerprint, response, expiresAt);
    if (durable) {
      try {
        const recorded = await durable.complete({ key, owner, response, expiresAt });
        if (!recorded) this.logger?.warn('cache: idempotency lease was taken over before the answer was recorded');
      } catch {
        // The upstream write succeeded; the answer is kept locally, and the lease ends on its own.
        emit(this.metrics, 'storeError', 'idempotency', 'l2');
      }
    }
    return outcome;
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
        {
          cause: error,
        },
      );
    }
    return {
      result: parseOrThrow(schema, decoded, 'Recorded idempotent answer does not match its schema'),
      replayed: true,
      cache: 'none',
    };
  }

  private async execute<R>(request: WriteRequest<R>): Promise<WriteOutcome<R>> {
    const result = await request.upstream({ idempotencyKey: request.idempotencyKey });
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

/** SHA-256 of the request's canonical JSON (object keys sorted), so key order does not matter. */
function fingerprintOf(request: unknown): string {
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
