/**
 * The one small error hierarchy of the CDSS toolkit. Every package throws these, never bare strings.
 *
 * Errors are marked with a `Symbol.for` key so that `CdssError.isInstance` recognises them even when two
 * copies of `@cdss/core` end up in one program (where `instanceof` fails). Pattern from vercel/ai.
 * @packageDocumentation
 */
import type { z } from 'zod';

const MARKER = Symbol.for('@cdss/core.error');

function hasMarker(value: unknown, marker: symbol): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
}

/**
 * Base class of every error the toolkit throws.
 * @category Errors
 */
export class CdssError extends Error {
  private readonly [MARKER] = true;
  /** A stable machine-readable code, e.g. `HTTP_ERROR`. */
  readonly code: string;

  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'CDSS_ERROR';
  }

  /**
   * True when `error` is a `CdssError` from any copy of `@cdss/core`.
   * @param error - the value to test
   */
  static isInstance(error: unknown): error is CdssError {
    return hasMarker(error, MARKER);
  }
}

/** Options of {@link HttpError}. */
export interface HttpErrorOptions {
  /** HTTP method, upper case. */
  method: string;
  /** The full request URL. Query strings are kept; credentials never appear in URLs we build. */
  url: string;
  /** Response status, or `undefined` when no response arrived (network error). */
  status?: number | undefined;
  /** Response status text. */
  statusText?: string | undefined;
  /** The parsed response body, if any. */
  responseBody?: unknown;
  /** Response headers, lower-cased names. */
  responseHeaders?: Record<string, string> | undefined;
  /** Whether a retry policy may try the request again. Defaults from the status. */
  retryable?: boolean | undefined;
  /** The underlying error. */
  cause?: unknown;
  /** Overrides the default message. */
  message?: string | undefined;
}

/**
 * Statuses that are worth retrying: request timeout, too early, too many requests, server errors. Also the retry
 * policy's default `retryStatuses`.
 * @internal
 */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * An HTTP request failed: an error status, or no response at all (then `status` is undefined).
 * Message like `GET https://host/path: 404 Not Found`.
 * @category Errors
 */
export class HttpError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/core.http-error');
  readonly method: string;
  readonly url: string;
  readonly status: number | undefined;
  readonly statusText: string | undefined;
  readonly responseBody: unknown;
  readonly responseHeaders: Record<string, string>;
  readonly retryable: boolean;

  constructor(options: HttpErrorOptions) {
    const what = options.status === undefined ? 'no response' : `${options.status} ${options.statusText ?? ''}`.trim();
    super(options.message ?? `${options.method.toUpperCase()} ${options.url}: ${what}`, {
      code: 'HTTP_ERROR',
      cause: options.cause,
    });
    (this as unknown as Record<symbol, boolean>)[HttpError.marker] = true;
    this.method = options.method.toUpperCase();
    this.url = options.url;
    this.status = options.status;
    this.statusText = options.statusText;
    this.responseBody = options.responseBody;
    this.responseHeaders = options.responseHeaders ?? {};
    this.retryable = options.retryable ?? (options.status === undefined || RETRYABLE_STATUSES.has(options.status));
  }

  /**
   * True when `error` is an `HttpError` from any copy of `@cdss/core`.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is HttpError {
    return hasMarker(error, HttpError.marker);
  }
}

/** One problem found by validation. */
export interface ValidationIssue {
  /** Dotted path of the field, e.g. `name.0.family`; empty for the value as a whole. */
  path: string;
  /** What is wrong, in words. */
  message: string;
  /** A machine-readable kind, e.g. zod's `invalid_type`, or the upstream's rule name. */
  code: string;
  /** The kind of value expected, where known (e.g. `string`). */
  expected?: string | undefined;
  /** The kind of value received (e.g. `undefined`, `number`): never the value itself, which may be PHI. */
  received?: string | undefined;
}

/**
 * Input or a response did not match its schema. Carries every issue, each naming its field.
 * @category Errors
 */
export class ValidationError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/core.validation-error');
  readonly issues: readonly ValidationIssue[];

  constructor(message: string, issues: readonly ValidationIssue[], options: { cause?: unknown } = {}) {
    const fields = [...new Set(issues.map((i) => i.path || '(root)'))];
    super(fields.length > 0 ? `${message}: ${fields.join(', ')}` : message, {
      code: 'VALIDATION_ERROR',
      cause: options.cause,
    });
    (this as unknown as Record<symbol, boolean>)[ValidationError.marker] = true;
    this.issues = issues;
  }

  /** The names of the fields with a problem. */
  get fields(): string[] {
    return [...new Set(this.issues.map((i) => i.path))];
  }

  /**
   * Builds a `ValidationError` from a zod error.
   * @param error - the `ZodError`
   * @param message - what was being validated, e.g. `Invalid patient`
   */
  static fromZod(error: z.ZodError, message = 'Validation failed'): ValidationError {
    const issues = error.issues.map((issue): ValidationIssue => {
      const detail = issue as { expected?: unknown; input?: unknown };
      return {
        path: issue.path.map(String).join('.'),
        message: issue.message,
        code: issue.code,
        expected: typeof detail.expected === 'string' ? detail.expected : undefined,
        // zod 4 leaves the input out of issues unless asked (`reportInput`); its message names the kind.
        received: 'input' in detail ? kindOf(detail.input) : /received (\w+)/.exec(issue.message)?.[1],
      };
    });
    return new ValidationError(message, issues, { cause: error });
  }

  /**
   * True when `error` is a `ValidationError` from any copy of `@cdss/core`.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is ValidationError {
    return hasMarker(error, ValidationError.marker);
  }
}

/** The kind of a value, for messages that must not echo the value itself. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * An operation did not finish within its time limit.
 * @category Errors
 */
export class TimeoutError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/core.timeout-error');
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number, options: { cause?: unknown } = {}) {
    super(message, { code: 'TIMEOUT', cause: options.cause });
    (this as unknown as Record<symbol, boolean>)[TimeoutError.marker] = true;
    this.timeoutMs = timeoutMs;
  }

  /**
   * True when `error` is a `TimeoutError` from any copy of `@cdss/core`.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is TimeoutError {
    return hasMarker(error, TimeoutError.marker);
  }
}

/**
 * Every attempt of a retried operation failed. `errors` holds each attempt's error, in order.
 * @category Errors
 */
export class RetryError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/core.retry-error');
  readonly errors: readonly unknown[];

  constructor(errors: readonly unknown[], message?: string) {
    const last = errors.at(-1);
    const lastMessage = last instanceof Error ? last.message : String(last);
    super(message ?? `Failed after ${errors.length} attempts: ${lastMessage}`, {
      code: 'RETRY_EXHAUSTED',
      cause: last,
    });
    (this as unknown as Record<symbol, boolean>)[RetryError.marker] = true;
    this.errors = errors;
  }

  /** The last attempt's error. */
  get lastError(): unknown {
    return this.errors.at(-1);
  }

  /**
   * True when `error` is a `RetryError` from any copy of `@cdss/core`.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is RetryError {
    return hasMarker(error, RetryError.marker);
  }
}
