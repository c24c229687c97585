/**
 * One error middleware turns every error into a FHIR OperationOutcome with the right status. No stack traces or
 * upstream internals reach clients: upstream failures are summarised, unknown errors become a generic 500.
 * @see https://hl7.org/fhir/R4/operationoutcome.html
 */
import { CdssError, HttpError, RetryError, TimeoutError, ValidationError } from '@cdss/core';
import {
  CacheUnavailableError,
  IdempotencyConflictError,
  IdempotencyInProgressError,
  IdempotencyOutcomeUnknownError,
} from '@cdss/cache';
import type { ErrorRequestHandler } from 'express';
import type { Duplex } from 'node:stream';
import type { FhirResource, OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';
import type { Logger } from 'pino';

/** FHIR issue types we emit. @see https://hl7.org/fhir/R4/valueset-issue-type.html */
type IssueCode = OperationOutcomeIssue['code'];

/** An error with an HTTP status meant for the client. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly issueCode: IssueCode,
    message: string,
    readonly expressions: readonly string[] = [],
    /** FHIR resources the outcome carries in `contained` (e.g. the candidates of a suspected duplicate). */
    readonly contained: readonly FhirResource[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** 404 for a resource that does not exist. */
export const notFound = (what: string): ApiError => new ApiError(404, 'not-found', `${what} not found`);

/**
 * Builds an OperationOutcome.
 * @param issues - severity error unless given
 */
export function operationOutcome(
  issues: Array<{
    code: IssueCode;
    diagnostics: string;
    expression?: string[];
    severity?: OperationOutcomeIssue['severity'];
  }>,
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((issue) => ({
      severity: issue.severity ?? 'error',
      code: issue.code,
      diagnostics: issue.diagnostics,
      ...(issue.expression && issue.expression.length > 0 ? { expression: issue.expression } : {}),
    })),
  };
}

interface MappedError {
  status: number;
  outcome: OperationOutcome;
  /** Whether the error is ours to log at error level (5xx we did not expect). */
  unexpected: boolean;
}

/**
 * Maps any thrown value to a status and an OperationOutcome.
 * @param error - what was thrown
 */
export function mapError(error: unknown): MappedError {
  if (error instanceof ApiError) {
    const outcome = operationOutcome([
      { code: error.issueCode, diagnostics: error.message, expression: [...error.expressions] },
    ]);
    return {
      status: error.status,
      outcome: error.contained.length > 0 ? { ...outcome, contained: [...error.contained] } : outcome,
      unexpected: false,
    };
  }
  if (ValidationError.isInstance(error)) {
    return {
      status: 400,
      outcome: operationOutcome(
        error.issues.map((issue) => ({
          code: 'invalid' as const,
          diagnostics: issue.path ? `${issue.path}: ${issue.message}` : issue.message,
          expression: issue.path ? [issue.path] : [],
        })),
      ),
      unexpected: false,
    };
  }
  const idempotency = mapIdempotencyError(error);
  if (idempotency) return idempotency;
  if (TimeoutError.isInstance(error)) {
    return {
      status: 504,
      outcome: operationOutcome([{ code: 'timeout', diagnostics: 'An upstream system did not answer in time' }]),
      unexpected: false,
    };
  }
  if (HttpError.isInstance(error)) {
    // Upstream 4xx that reach here are our bug or a conflict; 5xx and no-response mean the upstream is unavailable.
    if (error.status === 409 || error.status === 412) {
      return {
        status: 409,
        outcome: operationOutcome([{ code: 'conflict', diagnostics: 'The record was changed by someone else' }]),
        unexpected: false,
      };
    }
    if (error.status === 404) {
      return {
        status: 404,
        outcome: operationOutcome([{ code: 'not-found', diagnostics: 'Not found upstream' }]),
        unexpected: false,
      };
    }
    return {
      status: 503,
      outcome: operationOutcome([
        { code: 'transient', diagnostics: 'An upstream system is unavailable; try again later' },
      ]),
      unexpected: false,
    };
  }
  if (CdssError.isInstance(error) && error.code === 'NOT_FOUND') {
    // An upstream client's "no such record" (e.g. OpenEMR on a write to a missing patient).
    return {
      status: 404,
      outcome: operationOutcome([{ code: 'not-found', diagnostics: 'Not found upstream' }]),
      unexpected: false,
    };
  }
  if (RetryError.isInstance(error)) {
    return {
      status: 503,
      outcome: operationOutcome([
        { code: 'transient', diagnostics: 'An upstream system is unavailable; try again later' },
      ]),
      unexpected: false,
    };
  }
  const bodyParser = error as { type?: string; status?: number };
  if (bodyParser && typeof bodyParser === 'object' && typeof bodyParser.type === 'string') {
    if (bodyParser.type === 'entity.too.large') {
      return {
        status: 413,
        outcome: operationOutcome([{ code: 'too-costly', diagnostics: 'Request body too large' }]),
        unexpected: false,
      };
    }
    if (bodyParser.type === 'entity.parse.failed') {
      return {
        status: 400,
        outcome: operationOutcome([{ code: 'structure', diagnostics: 'Request body is not valid JSON' }]),
        unexpected: false,
      };
    }
    if (bodyParser.status && bodyParser.status >= 400 && bodyParser.status < 500) {
      return {
        status: bodyParser.status,
        outcome: operationOutcome([{ code: 'invalid', diagnostics: 'Malformed request' }]),
        unexpected: false,
      };
    }
  }
  return {
    status: 500,
    outcome: operationOutcome([{ code: 'exception', diagnostics: 'Internal server error' }]),
    unexpected: true,
  };
}

const UNAVAILABLE = (): MappedError => ({
  status: 503,
  outcome: operationOutcome([{ code: 'transient', diagnostics: 'An upstream system is unavailable; try again later' }]),
  unexpected: false,
});

function isDriverCode(error: object): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|PROTOCOL_|ER_)/.test(code);
}

/** The `Idempotency-Key` outcomes (IETF draft): 422 for a reused key, 409 while the first request runs. */
function mapIdempotencyError(error: unknown): MappedError | undefined {
  if (IdempotencyConflictError.isInstance(error))
    return {
      status: 422,
      outcome: operationOutcome([
        {
          code: 'business-rule',
          diagnostics: 'This Idempotency-Key was already used for a different request',
          expression: ['Idempotency-Key'],
        },
      ]),
      unexpected: false,
    };
  if (IdempotencyInProgressError.isInstance(error))
    return {
      status: 409,
      outcome: operationOutcome([
        { code: 'conflict', diagnostics: 'A request with this Idempotency-Key is still being processed; retry later' },
      ]),
      unexpected: false,
    };
  if (IdempotencyOutcomeUnknownError.isInstance(error)) {
    // Reading the upstream back failed (it is down): retry later. Otherwise it could not be settled automatically.
    const cause = error.cause;
    if (HttpError.isInstance(cause) || TimeoutError.isInstance(cause) || RetryError.isInstance(cause))
      return UNAVAILABLE();
    return {
      status: 409,
      outcome: operationOutcome([
        {
          code: 'conflict',
          diagnostics:
            'An earlier request with this Idempotency-Key may have been applied, and it could not be confirmed; check the record before sending it again with a new key',
        },
      ]),
      unexpected: false,
    };
  }
  if (CacheUnavailableError.isInstance(error)) return UNAVAILABLE();
  // The database refused or dropped a statement (mysql2 errors carry a SQLSTATE or a driver code): the shared
  // state is unavailable, and nothing was committed.
  if (typeof error === 'object' && error !== null && ('sqlState' in error || isDriverCode(error))) return UNAVAILABLE();
  return undefined;
}

/**
 * The error middleware.
 * @param logger - where unexpected errors are logged (with redaction configured on the logger)
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const mapped = mapError(error);
    if (mapped.unexpected) logger.error({ err: error, requestId: req.id }, 'unhandled error');
    else if (mapped.status >= 500)
      logger.warn({ err: { message: (error as Error).message }, requestId: req.id }, 'upstream failure');
    if (res.headersSent) return;
    res.status(mapped.status).type('application/fhir+json').json(mapped.outcome);
  };
}

/** What Node's HTTP parser refuses before Express sees a request, answered as the API answers everything else. */
const CLIENT_ERRORS: Record<string, { status: number; reason: string; code: IssueCode; diagnostics: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: 'Request Header Fields Too Large',
    code: 'too-long',
    diagnostics: 'The request line and headers (URL and query included) exceed the server’s limit',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: 'Request Timeout',
    code: 'timeout',
    diagnostics: 'The request did not arrive in time',
  },
};

/**
 * The HTTP server's `clientError` listener: a request the parser refuses (headers over the limit, a malformed
 * request line) gets an OperationOutcome instead of Node's empty answer, and a broken connection is simply closed.
 * @param error - the parser's error (its `code` says what went wrong)
 * @param socket - the client's socket
 * @see https://nodejs.org/api/http.html#event-clienterror
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const known = CLIENT_ERRORS[error.code ?? ''] ?? {
    status: 400,
    reason: 'Bad Request',
    code: 'structure' as const,
    diagnostics: 'Malformed HTTP request',
  };
  const body = JSON.stringify(operationOutcome([{ code: known.code, diagnostics: known.diagnostics }]));
  socket.end(
    `HTTP/1.1 ${known.status} ${known.reason}\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
