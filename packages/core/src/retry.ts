/**
 * The retry policy: which failures are worth another try, and how long to wait first.
 *
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"), honouring
 * `Retry-After` (RFC 9110 §10.2.3, seconds or an HTTP-date). Retries 408/425/429/5xx answers, network
 * errors and timeouts, for methods that are idempotent (RFC 9110 §9.2.2) and for POST/PATCH only when the
 * request carries an idempotency key. A caller's abort is never retried.
 * @packageDocumentation
 */
import { z } from 'zod';
import { HttpError, RETRYABLE_STATUSES, TimeoutError, ValidationError } from './errors.js';

/**
 * Options of {@link createRetryPolicy}. All optional.
 * @category Retry
 */
export interface RetryPolicyOptions {
  /** Retries after the first attempt (so at most `maxRetries + 1` attempts). Default 2. */
  maxRetries?: number;
  /** The backoff cap of the first retry; doubles each retry. Default 200 ms. */
  baseDelayMs?: number;
  /** No backoff delay exceeds this. Default 10 000 ms. */
  maxDelayMs?: number;
  /**
   * The longest `Retry-After` that is waited for; a server asking for longer is not retried (its error is
   * thrown, with the header in `responseHeaders`). Default 60 000 ms.
   */
  maxRetryAfterMs?: number;
  /** Statuses worth retrying. Default 408, 425, 429, 500, 502, 503, 504. */
  retryStatuses?: readonly number[];
  /** Random numbers in [0, 1) for the jitter. Default `Math.random`; tests pass a constant. */
  random?: () => number;
}

/** What a {@link RetryPolicy} decides about. */
export interface RetryContext {
  /** The error of the attempt that just failed. */
  error: unknown;
  /** How many attempts have failed so far (1 after the first). */
  attempt: number;
  /** HTTP method, upper case. */
  method: string;
  /** Whether the request carries an idempotency key. */
  hasIdempotencyKey: boolean;
  /** Epoch milliseconds now, from the transport's clock (for `Retry-After` dates). */
  now: number;
}

/**
 * Decides whether and when to retry. `createRetryPolicy` builds the standard one; implement it for
 * custom rules.
 * @category Retry
 */
export interface RetryPolicy {
  /** The most retries this policy ever allows. */
  readonly maxRetries: number;
  /**
   * @param context - the failure
   * @returns milliseconds to wait before the next attempt, or `undefined` to stop retrying
   */
  nextDelay(context: RetryContext): number | undefined;
}

/** Methods that are idempotent by definition (RFC 9110 §9.2.2), so a repeat cannot do harm. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const optionsSchema = z.object({
  maxRetries: z.number().int().min(0).max(100).default(2),
  baseDelayMs: z.number().min(0).default(200),
  maxDelayMs: z.number().min(0).default(10_000),
  maxRetryAfterMs: z.number().min(0).default(60_000),
  retryStatuses: z.array(z.number().int().min(100).max(599)).default([...RETRYABLE_STATUSES]),
  random: z.custom<() => number>((v) => typeof v === 'function').optional(),
});

/**
 * Parses a `Retry-After` value: delay-seconds or an HTTP-date.
 * @param value - the header value
 * @param now - epoch milliseconds now
 * @returns the delay in milliseconds (0 for a date in the past), or `undefined` when unparseable
 * @category Retry
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * True when the request may be sent twice without harm: idempotent methods, or POST/PATCH with an
 * idempotency key.
 * @param method - HTTP method
 * @param hasIdempotencyKey - whether the request carries an `Idempotency-Key`
 * @category Retry
 */
export function isRetrySafe(method: string, hasIdempotencyKey: boolean): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase()) || hasIdempotencyKey;
}

/**
 * Builds the standard retry policy.
 * @param options - see {@link RetryPolicyOptions}; defaults `maxRetries: 2`, `baseDelayMs: 200`, `maxDelayMs: 10_000`
 * @returns the policy
 * @throws {@link ValidationError} for invalid options (e.g. a negative `maxRetries`)
 * @category Retry
 */
export function createRetryPolicy(options: RetryPolicyOptions = {}): RetryPolicy {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid retry policy options');
  const { maxRetries, baseDelayMs, maxDelayMs, maxRetryAfterMs } = parsed.data;
  const statuses = new Set(parsed.data.retryStatuses);
  const random = parsed.data.random ?? Math.random;

  return {
    maxRetries,
    nextDelay({ error, attempt, method, hasIdempotencyKey, now }) {
      if (attempt > maxRetries) return undefined;
      if (!isRetrySafe(method, hasIdempotencyKey)) return undefined;
      let retryAfter: number | undefined;
      if (HttpError.isInstance(error)) {
        if (error.status === undefined) {
          if (!error.retryable) return undefined;
        } else {
          if (!statuses.has(error.status)) return undefined;
          retryAfter = parseRetryAfter(error.responseHeaders['retry-after'], now);
        }
      } else if (!TimeoutError.isInstance(error)) {
        // Anything else (a caller's abort, a validation failure, a bug) is not a transient failure.
        return undefined;
      }
      if (retryAfter !== undefined) return retryAfter > maxRetryAfterMs ? undefined : retryAfter;
      // Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      return Math.floor(random() * ceiling);
    },
  };
}
