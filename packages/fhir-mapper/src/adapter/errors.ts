/**
 * Typed errors of the FHIR adapter. A FHIR server's `OperationOutcome` travels with every error.
 * @packageDocumentation
 */
import { HttpError, type HttpErrorOptions } from '@cdss/core';
import type { OperationOutcome } from 'fhir/r4.js';

/** Options of {@link FhirServerError}. */
export interface FhirServerErrorOptions extends HttpErrorOptions {
  /** The server's OperationOutcome, when it sent one. */
  outcome?: OperationOutcome | undefined;
}

/** The issue codes of an outcome (` (invalid, processing)`): never its diagnostics, which may quote patient data. */
function summary(outcome: OperationOutcome | undefined): string {
  const errors = (outcome?.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  const codes = [...new Set(errors.map((i) => i.code))];
  return codes.length > 0 ? ` (${codes.join(', ')})` : '';
}

/** The URL without its query string: conditional URLs carry identifier values. */
function withoutQuery(url: string): string {
  const i = url.indexOf('?');
  return i < 0 ? url : `${url.slice(0, i)}?…`;
}

/**
 * The FHIR server answered with an error status. `outcome` is its OperationOutcome (if any). The
 * message names the method, the path (no query string), the status and the issue codes, never the
 * server's diagnostics, which can quote patient data: read those from `outcome`.
 * @category Errors
 */
export class FhirServerError extends HttpError {
  private static readonly fhirMarker = Symbol.for('@cdss/fhir-mapper.fhir-server-error');
  /** The server's OperationOutcome. */
  readonly outcome: OperationOutcome | undefined;

  constructor(options: FhirServerErrorOptions) {
    const what = options.status === undefined ? 'no response' : `${options.status} ${options.statusText ?? ''}`.trim();
    super({
      ...options,
      message:
        options.message ??
        `${options.method.toUpperCase()} ${withoutQuery(options.url)}: ${what}${summary(options.outcome)}`,
    });
    (this as unknown as Record<symbol, boolean>)[FhirServerError.fhirMarker] = true;
    this.outcome = options.outcome;
  }

  /** True when `error` is a FhirServerError from any copy of this package. */
  static override isInstance(error: unknown): error is FhirServerError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[FhirServerError.fhirMarker] === true
    );
  }
}

/**
 * The server rejected the resource or request as invalid (400, 422): retrying cannot help. The sync
 * outbox dead-letters these with the OperationOutcome.
 * @category Errors
 */
export class FhirInvalidResourceError extends FhirServerError {
  override readonly code = 'FHIR_INVALID';
}

/**
 * The resource does not exist (404) or was deleted (410).
 * @category Errors
 */
export class FhirNotFoundError extends FhirServerError {
  override readonly code = 'FHIR_NOT_FOUND';
}

/**
 * A write conflicted: `version-conflict` when `If-Match` named a stale version (R4: 412; some servers
 * 409), `multiple-matches` when a conditional write matched more than one resource.
 * @category Errors
 */
export class FhirConflictError extends FhirServerError {
  override readonly code = 'FHIR_CONFLICT';
  /** Which conflict. */
  readonly kind: 'version-conflict' | 'multiple-matches' | 'conflict';

  constructor(options: FhirServerErrorOptions & { kind: FhirConflictError['kind'] }) {
    super(options);
    this.kind = options.kind;
  }
}

const MULTIPLE = /multiple|more than one|matched \d+ resources/i;

/**
 * Maps an HTTP failure from the FHIR server to the typed error for its status.
 * @param options - the failed exchange; `outcome` when the body was an OperationOutcome
 */
export function fhirErrorFor(options: FhirServerErrorOptions): FhirServerError {
  const { status } = options;
  const text = (options.outcome?.issue ?? []).map((i) => `${i.diagnostics ?? ''} ${i.details?.text ?? ''}`).join(' ');
  if (status === 409 || status === 412) {
    const kind = MULTIPLE.test(text)
      ? 'multiple-matches'
      : status === 412 || /version/i.test(text)
        ? 'version-conflict'
        : 'conflict';
    return new FhirConflictError({ ...options, kind, retryable: false });
  }
  if (status === 404 || status === 410) return new FhirNotFoundError({ ...options, retryable: false });
  if (status === 400 || status === 422) return new FhirInvalidResourceError({ ...options, retryable: false });
  return new FhirServerError(options);
}
