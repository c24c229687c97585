/**
 * How the client reads OpenEMR's answers, hiding its quirks (notes §3.2, §3.3 and the recordings in
 * `shared/reference/openemr/recorded-*`): the envelope vs raw bodies, `links` as `[]` or an object,
 * validation errors keyed by field (with 400, or 200 on 8.x), not-found in its several shapes, empty
 * lists as 404, HTML error pages where JSON was expected, and sessions that end (logout, refused tokens).
 * Writes whose outcome is unknown (a 5xx, a timeout, an odd answer) are never re-sent here: the caller
 * reads back to confirm.
 * @packageDocumentation
 */
import {
  CdssError,
  HttpError,
  RetryError,
  TimeoutError,
  ValidationError,
  type HttpMethod,
  type HttpTransport,
  type QueryValue,
  type ValidationIssue,
} from '@cdss/core';
import type { z } from 'zod';
import { envelopeSchema, particleErrorsSchema } from './schemas.js';

/** A write targeted a record that does not exist. */
export class OpenEmrNotFoundError extends CdssError {
  /** What was looked for, e.g. `patient`. */
  readonly target: string;
  constructor(target: string) {
    super(`OpenEMR has no such ${target}`, { code: 'NOT_FOUND' });
    this.target = target;
  }
}

/** The record changed since it was read: the optimistic lost-update check refused the write. */
export class OpenEmrConflictError extends CdssError {
  /** The version the caller expected. */
  readonly expectedVersion: string;
  /** The version found on the server just before the write. */
  readonly currentVersion: string;
  constructor(target: string, expectedVersion: string, currentVersion: string) {
    super(
      `OpenEMR ${target} changed since it was read (expected version ${expectedVersion}, found ${currentVersion})`,
      { code: 'CONFLICT' },
    );
    this.expectedVersion = expectedVersion;
    this.currentVersion = currentVersion;
  }
}

/**
 * The user's OpenEMR session ended (`/logout`, or an administrator de-trusted the user) and logging in again
 * did not help or was not possible (a refresh-token or bearer client cannot log in by itself).
 */
export class OpenEmrSessionEndedError extends CdssError {
  constructor() {
    super('The OpenEMR session was revoked or logged out: log in again', { code: 'SESSION_ENDED' });
  }
}

/**
 * A write whose outcome is unknown because OpenEMR's answer could not be read (an HTML page, an odd shape),
 * and reading back could not show whether it was stored. It was not sent again: check before retrying it.
 * A timeout or a 5xx whose read-back cannot tell is thrown as itself (`TimeoutError`, `HttpError`), which
 * already means "unknown outcome" to `@cdss/core` users; {@link isUnknownOutcome} recognises all of them.
 */
export class OpenEmrUnknownOutcomeError extends CdssError {
  /** What was written, e.g. `vitals create`. */
  readonly operation: string;
  constructor(operation: string, cause: unknown) {
    super(`OpenEMR may or may not have stored the ${operation}: check before retrying`, {
      code: 'UNKNOWN_OUTCOME',
      cause,
    });
    this.operation = operation;
  }
}

/** True when an OpenEMR body says the session was revoked or the user logged out (8.0 file 60, 7.0.1 file 44). */
export function isSessionEndedBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  const b = body as Record<string, unknown>;
  return [b['message'], b['error_description'], b['hint']].some(
    (v) => typeof v === 'string' && /revoked or logged out/i.test(v),
  );
}

/**
 * Renews credentials after a session ended or a refreshed token was refused: logs in again with the client's
 * grant. Resolves true when a retry may succeed, false when the client cannot log in by itself.
 */
export type Relogin = () => Promise<boolean>;

/** Errors that say a write may have been stored: the client must read back instead of re-sending. */
const ODD_ANSWERS = new WeakSet<object>();

/** Marks `error` as "OpenEMR answered something the client cannot read", an unknown outcome for a write. */
function oddAnswer<E extends Error>(error: E): E {
  ODD_ANSWERS.add(error);
  return error;
}

/**
 * True when a failed write may nevertheless have been stored: a 5xx, no answer, a timeout, or an answer the
 * client could not read ({@link OpenEmrUnknownOutcomeError}). False for refusals that store nothing
 * (validation, not found, 4xx).
 * @param error - what the write threw
 */
export function isUnknownOutcome(error: unknown): boolean {
  if (error !== null && typeof error === 'object' && ODD_ANSWERS.has(error)) return true;
  if (CdssError.isInstance(error) && error.code === 'UNKNOWN_OUTCOME') return true;
  return isTransportUnknown(error);
}

/** A timeout, no answer or a 5xx: what `@cdss/core` users already read as "the write may have happened". */
export function isTransportUnknown(error: unknown): boolean {
  if (error !== null && typeof error === 'object' && ODD_ANSWERS.has(error)) return false;
  if (TimeoutError.isInstance(error) || RetryError.isInstance(error)) return true;
  return HttpError.isInstance(error) && (error.status === undefined || error.status >= 500);
}

/** Statuses a read is retried on by the transport's policy (OpenEMR's own 500s are deterministic defects). */
const TRANSIENT = new Set([408, 425, 429, 502, 503, 504]);

/** Marker for "OpenEMR says there is nothing". */
export const NOT_FOUND: unique symbol = Symbol('not-found');

/** One request to the standard or FHIR API. */
export interface ApiRequest {
  method: HttpMethod;
  path: string;
  query?: Readonly<Record<string, QueryValue>> | undefined;
  body?: unknown;
  headers?: Readonly<Record<string, string>> | undefined;
  signal?: AbortSignal | undefined;
}

/** An answer as read off the wire: JSON when it parses, else its text. */
export interface RawAnswer {
  status: number;
  url: string;
  headers: Record<string, string>;
  /** Parsed JSON, or `undefined` for an empty body. */
  data: unknown;
  /** The body when it was not JSON (an HTML error page, a file). */
  text: string | undefined;
}

/**
 * Sends a request and reads whatever comes back, healing ended sessions: after a 400 "revoked or logged
 * out", or a 401 that the transport's own token refresh did not cure, it logs in again once and resends
 * once (the refused request was not processed, so resending writes nothing twice). Writes are never retried
 * by the transport: their unknown outcomes are the caller's to confirm.
 * @param transport - the transport
 * @param req - the request
 * @param relogin - how to log in again, if the client can
 * @param binary - read the body as bytes (files)
 * @throws {@link OpenEmrSessionEndedError} when the session ended and logging in again did not help
 * @throws {@link HttpError} for a 401 that survived logging in again
 */
export async function sendWithSession(
  transport: HttpTransport,
  req: ApiRequest,
  relogin: Relogin | undefined,
  binary = false,
): Promise<RawAnswer & { bytes?: Buffer | undefined }> {
  const write = req.method !== 'GET' && req.method !== 'HEAD';
  const once = async (): Promise<RawAnswer & { bytes?: Buffer | undefined }> => {
    const res = await transport.request<unknown>({
      method: req.method,
      path: req.path,
      query: req.query,
      body: req.body,
      signal: req.signal,
      headers: { accept: 'application/json', ...req.headers },
      responseType: binary ? 'arraybuffer' : 'text',
      // Everything comes back to be read here but 401 (first through the transport's token refresh) and, for
      // reads, the transient statuses the transport retries. OpenEMR's 500s are defects, not transient.
      acceptStatus: (s) => s !== 401 && (write || !TRANSIENT.has(s)),
      ...(write ? { retry: false as const } : {}),
    });
    if (binary) {
      const bytes = res.data as Buffer;
      const json = (res.headers['content-type'] ?? '').includes('json') ? parseJson(bytes.toString('utf8')) : undefined;
      return { status: res.status, url: res.url, headers: res.headers, data: json?.data, text: undefined, bytes };
    }
    const text = typeof res.data === 'string' ? res.data : '';
    const parsed = parseJson(text);
    return {
      status: res.status,
      url: res.url,
      headers: res.headers,
      data: parsed?.data,
      text: parsed === undefined && text !== '' ? text : undefined,
    };
  };
  const attempt = async (): Promise<(RawAnswer & { bytes?: Buffer | undefined }) | 'unauthorized'> => {
    try {
      return await once();
    } catch (error) {
      if (HttpError.isInstance(error) && error.status === 401) return 'unauthorized';
      throw error;
    }
  };
  const first = await attempt();
  const ended = (a: typeof first): boolean => a === 'unauthorized' || (a.status === 400 && isSessionEndedBody(a.data));
  if (!ended(first)) return first as RawAnswer;
  const renewed = relogin === undefined ? false : await relogin().catch(() => false);
  const second = renewed ? await attempt() : first;
  if (second !== 'unauthorized' && !ended(second)) return second;
  if (second !== 'unauthorized') throw new OpenEmrSessionEndedError();
  throw new HttpError({
    method: req.method,
    url: req.path,
    status: 401,
    statusText: 'Unauthorized',
    message: `OpenEMR refused the credentials for ${req.method} ${req.path} (401): check the client's scopes`,
    retryable: false,
  });
}

function parseJson(text: string): { data: unknown } | undefined {
  if (text.trim() === '') return { data: undefined };
  try {
    return { data: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/**
 * Converts OpenEMR's validation errors (`{field: {"Rule::CODE": msg}}`, `{field: msg}` or `{field: [msg]}`)
 * to issues.
 * @param errors - the `validationErrors` value
 */
export function particleIssues(errors: unknown): ValidationIssue[] {
  const parsed = particleErrorsSchema.safeParse(errors);
  if (!parsed.success) {
    if (Array.isArray(errors))
      return errors.map((e) => ({
        path: '',
        message: String(typeof e === 'string' ? e : JSON.stringify(e)),
        code: 'server',
      }));
    return [{ path: '', message: 'OpenEMR reported a validation error', code: 'server' }];
  }
  const issues: ValidationIssue[] = [];
  for (const [field, value] of Object.entries(parsed.data)) {
    if (typeof value === 'string') issues.push({ path: field, message: value, code: 'server' });
    else if (Array.isArray(value)) for (const message of value) issues.push({ path: field, message, code: 'server' });
    else for (const [rule, message] of Object.entries(value)) issues.push({ path: field, message, code: rule });
  }
  return issues;
}

function hasErrors(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.length > 0;
  return typeof value === 'object' && Object.keys(value).length > 0;
}

/**
 * True when every error says a uuid does not exist: OpenEMR's ways of answering "not found", as recorded
 * on 7.0.1 and 8.0.0: `{uuid: {"invalid or nonexisting value": " value <uuid>"}}` (reads),
 * `{uuid: {"<uuid>": "UUID <uuid> does not exist"}}` (updates) and `{UUID: ["invalid or nonexisting value"]}`
 * (deletes). The field must be a uuid, so "user must be provided, but does not exist" is not one.
 */
function onlyNonexistent(errors: unknown): boolean {
  const issues = particleIssues(errors);
  return (
    issues.length > 0 &&
    issues.every(
      (i) =>
        /uuid$/i.test(i.path) &&
        (/invalid or nonexisting value/i.test(`${i.code} ${i.message}`) || /^UUID .* does not exist$/.test(i.message)),
    )
  );
}

/** The 8.x kernel's error body, `{error: "An error occurred", message, code}`. */
function kernelMessage(data: unknown): string | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const b = data as Record<string, unknown>;
  return typeof b['message'] === 'string' && typeof b['error'] === 'string' ? b['message'] : undefined;
}

/** The result of an envelope call: data, or not found; plus pagination links. */
export interface EnvelopeResult<T> {
  data: T | typeof NOT_FOUND;
  links: Record<string, string> | undefined;
  /**
   * Why there is nothing: OpenEMR said the uuid does not exist (`nonexistent`), or answered `data: []` with no
   * error (`empty`: 8.0.0 does that for a practitioner update it stored, file 53).
   */
  notFound?: 'nonexistent' | 'empty' | undefined;
}

/**
 * The standard API, read through its quirks.
 */
export class StandardApiCaller {
  constructor(
    private readonly transport: HttpTransport,
    private readonly relogin?: Relogin | undefined,
  ) {}

  /**
   * Sends a request and returns the raw answer (no interpretation but sessions).
   * @param req - the request
   * @param binary - read the body as bytes
   */
  send(req: ApiRequest, binary = false): Promise<RawAnswer & { bytes?: Buffer | undefined }> {
    return sendWithSession(this.transport, req, this.relogin, binary);
  }

  /**
   * A call to an envelope (`{validationErrors, internalErrors, data, links?}`) endpoint.
   * @param req - the request
   * @param schema - the schema of `data`
   * @param what - what is being read or written, for error messages (never contains PHI)
   * @throws {@link ValidationError} for validation errors (naming the fields), or an answer that is not an envelope
   * @throws {@link HttpError} for internal errors, server failures and unexpected statuses
   */
  async envelope<T>(req: ApiRequest, schema: z.ZodType<T>, what: string): Promise<EnvelopeResult<T>> {
    const res = await this.send(req);
    if (res.status === 404 && res.data === undefined && res.text === undefined)
      return { data: NOT_FOUND, links: undefined };
    const env = envelopeSchema.safeParse(res.data);
    if (!env.success) throw this.failure(req, res, what);
    const { validationErrors, internalErrors, data, links } = env.data;
    if (hasErrors(validationErrors)) {
      if (onlyNonexistent(validationErrors)) return { data: NOT_FOUND, links, notFound: 'nonexistent' };
      throw new ValidationError(`OpenEMR refused ${what}`, particleIssues(validationErrors));
    }
    if (hasErrors(internalErrors) || res.status >= 500) {
      throw httpError(req, res, `OpenEMR failed ${what}: internal error`, res.status >= 500 ? res.status : 500);
    }
    if (res.status === 404) return { data: NOT_FOUND, links, notFound: 'empty' };
    if (res.status >= 400) throw httpError(req, res, `OpenEMR answered ${res.status} to ${what}`);
    // Single-resource endpoints answer `data: []` when nothing was found.
    if (Array.isArray(data) && data.length === 0 && !schema.safeParse(data).success)
      return { data: NOT_FOUND, links, notFound: 'empty' };
    return { data: parse(schema, data, what), links };
  }

  /**
   * A call to a legacy endpoint that answers raw rows (vitals, SOAP notes, medications, appointments,
   * documents).
   * @param req - the request
   * @param schema - the schema of the body on success
   * @param what - for error messages
   * @throws {@link ValidationError} for validation errors (naming the fields) and unreadable answers
   * @throws {@link HttpError} for server failures
   */
  async raw<T>(req: ApiRequest, schema: z.ZodType<T>, what: string): Promise<T | typeof NOT_FOUND> {
    const res = await this.send(req);
    // Empty result: 404 with an empty body (8.x) or `null` (7.0).
    if (res.status === 404 && res.text === undefined && (res.data === undefined || res.data === null)) return NOT_FOUND;
    const ok = schema.safeParse(res.data);
    if (res.status < 300 && res.text === undefined && ok.success) return ok.data;
    // Validation failures come back as the bare Particle object, with 400 (7.0) or 200 (8.x).
    const particle = particleErrorsSchema.safeParse(res.data);
    if (
      res.status < 500 &&
      particle.success &&
      Object.keys(particle.data).length > 0 &&
      kernelMessage(res.data) === undefined
    ) {
      throw new ValidationError(`OpenEMR refused ${what}`, particleIssues(particle.data));
    }
    throw this.failure(req, res, what, ok.success ? undefined : ok.error);
  }

  /** The error for an answer that is neither success nor a refusal the client understands. */
  private failure(req: ApiRequest, res: RawAnswer, what: string, zodError?: z.ZodError): Error {
    if (res.status >= 500) return httpError(req, res, `OpenEMR failed ${what} (HTTP ${res.status})`);
    if (res.text !== undefined) {
      // An HTML page (PHP error, SQL error) where JSON was expected: the server failed, whatever the status.
      return oddAnswer(httpError(req, res, `OpenEMR failed ${what}: it answered a non-JSON page`, res.status));
    }
    if (res.status === 404 && kernelMessage(res.data) === 'Route not found')
      return httpError(req, res, `OpenEMR has no route for ${what} (404)`);
    if (res.status >= 400) return httpError(req, res, `OpenEMR answered ${res.status} to ${what}`);
    return oddAnswer(
      zodError
        ? ValidationError.fromZod(zodError, `Invalid OpenEMR response to ${what}`)
        : new ValidationError(`Invalid OpenEMR response to ${what}`, [
            { path: '', message: 'not the expected envelope', code: 'invalid_type' },
          ]),
    );
  }
}

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw oddAnswer(ValidationError.fromZod(parsed.error, `Invalid OpenEMR response to ${what}`));
  return parsed.data;
}

function httpError(req: ApiRequest, res: RawAnswer, message: string, status = res.status): HttpError {
  return new HttpError({
    method: req.method,
    url: res.url,
    status,
    responseBody: res.data ?? res.text?.slice(0, 2000),
    responseHeaders: res.headers,
    message,
    retryable: false,
  });
}

/** Marks a parse failure of a write's answer as an unknown outcome (the write may be stored). */
export function unreadableAnswer(error: ValidationError): ValidationError {
  return oddAnswer(error);
}
