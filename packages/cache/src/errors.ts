/**
 * Errors of the cache package, built on `@cdss/core`'s {@link CdssError}.
 * @packageDocumentation
 */
import { CdssError, ValidationError } from '@cdss/core';
import type { z } from 'zod';

/**
 * A store, idempotency store or bus could not be reached (connection refused, timed out, circuit open).
 * The cache degrades around it: reads fall through to the loader, writes still reach the upstream.
 * @category Errors
 */
export class CacheUnavailableError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/cache.unavailable-error');
  /** What was unavailable, e.g. `mysql` or `amqp`. */
  readonly backend: string;

  /**
   * @param backend - what was unavailable, e.g. `mysql`
   * @param message - what failed, without keys or values
   * @param options - `cause`: the driver's error
   */
  constructor(backend: string, message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'CACHE_UNAVAILABLE', cause: options.cause });
    (this as unknown as Record<symbol, boolean>)[CacheUnavailableError.marker] = true;
    this.backend = backend;
  }

  /**
   * True when `error` is a `CacheUnavailableError` from any copy of this package.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is CacheUnavailableError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[CacheUnavailableError.marker] === true
    );
  }
}

/**
 * An idempotency key was reused with a different request: the first request's answer cannot stand for it.
 * @category Errors
 */
export class IdempotencyConflictError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/cache.idempotency-conflict-error');

  /** @param message - what conflicted (never the key's payload) */
  constructor(message = 'Idempotency key was already used for a different request') {
    super(message, { code: 'IDEMPOTENCY_CONFLICT' });
    (this as unknown as Record<symbol, boolean>)[IdempotencyConflictError.marker] = true;
  }

  /**
   * True when `error` is an `IdempotencyConflictError` from any copy of this package.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is IdempotencyConflictError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[IdempotencyConflictError.marker] === true
    );
  }
}

/**
 * A request with the same idempotency key is still running (here or in another instance): the IETF
 * `Idempotency-Key` draft answers such a concurrent duplicate with 409 Conflict; the client retries later.
 * @category Errors
 */
export class IdempotencyInProgressError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/cache.idempotency-in-progress-error');

  /** @param message - what is running (never the key's payload) */
  constructor(message = 'A request with this idempotency key is still being processed') {
    super(message, { code: 'IDEMPOTENCY_IN_PROGRESS' });
    (this as unknown as Record<symbol, boolean>)[IdempotencyInProgressError.marker] = true;
  }

  /**
   * True when `error` is an `IdempotencyInProgressError` from any copy of this package.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is IdempotencyInProgressError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[IdempotencyInProgressError.marker] === true
    );
  }
}

/**
 * An earlier attempt with this idempotency key may or may not have reached the upstream, and reading the upstream
 * back could not settle it: the key stays `unknown`, and nothing is written again until it is resolved.
 * @category Errors
 */
export class IdempotencyOutcomeUnknownError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/cache.idempotency-outcome-unknown-error');

  /**
   * @param message - why it could not be settled
   * @param options - `cause`: the error of the attempt or of the read-back
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'IDEMPOTENCY_OUTCOME_UNKNOWN', cause: options.cause });
    (this as unknown as Record<symbol, boolean>)[IdempotencyOutcomeUnknownError.marker] = true;
  }

  /**
   * True when `error` is an `IdempotencyOutcomeUnknownError` from any copy of this package.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is IdempotencyOutcomeUnknownError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[IdempotencyOutcomeUnknownError.marker] === true
    );
  }
}

/**
 * Parses `input` with `schema`, throwing a {@link ValidationError} that names the fields (never the values).
 * @internal
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, message: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw ValidationError.fromZod(result.error, message);
  return result.data;
}
