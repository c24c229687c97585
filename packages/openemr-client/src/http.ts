/**
 * How the client reads OpenEMR's answers, hiding its quirks (notes §3.2, §3.3): the envelope vs raw
 * bodies, validation errors keyed by field (with 400, or 200 on 8.x), an empty list returned as 404,
 * unknown uuids answered with 400 `validationErrors.uuid`, and `[]` as "not found" for single resources.
 * @packageDocumentation
 */
import {
  CdssError,
  HttpError,
  ValidationError,
  type HttpMethod,
  type HttpResponse,
  type HttpTransport,
  type QueryValue,
  type RequestOptions,
  type ValidationIssue,
} from '@cdss/core';
import type { z } from 'zod';
import { envelopeSchema, particleErrorsSchema } from './schemas.js';

/** A write targeted a record that does not exist. */
export class OpenEmrNotFoundError extends CdssError {
  /** What was looked for, e.g. `patient 1b4e…`. */
  readonly target: string;
  constructor(target: string) {
    super(`OpenEMR has no ${target}`, { code: 'NOT_FOUND' });
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
 * The user's OpenEMR session ended (`/logout`, or an administrator de-trusted the user): OpenEMR answers
 * 400 "Refresh Token revoked or logged out" (notes §2.7) and the credentials must be renewed by logging in
 * again. The client does that by itself when it can (password grant); otherwise it throws this.
 */
export class OpenEmrSessionEndedError extends CdssError {
  constructor() {
    super('The OpenEMR session was revoked or logged out: log in again', { code: 'SESSION_ENDED' });
  }
}

/** True when an OpenEMR 400 body says the session was revoked or the user logged out. */
export function isSessionEndedBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  const b = body as Record<string, unknown>;
  return [b['message'], b['error_description'], b['hint']].some(
    (v) => typeof v === 'string' && /revoked or logged out/i.test(v),
  );
}

/** Renews credentials after a session ended; resolves true when a retry may succeed. */
export type Reauthenticate = () => Promise<boolean>;

/**
 * Sends a request; when OpenEMR says the session ended, renews the credentials once (if it can) and
 * resends, since the refused request was not processed. Other statuses behave as `acceptStatus` says.
 * @param transport - the transport
 * @param options - the request
 * @param reauth - how to renew credentials, if possible
 * @throws {@link OpenEmrSessionEndedError} when the session ended and could not be renewed
 */
export async function sendWithSession<T>(
  transport: HttpTransport,
  options: RequestOptions<T>,
  reauth: Reauthenticate | undefined,
): Promise<HttpResponse<T>> {
  const accept = options.acceptStatus;
  const opts: RequestOptions<T> = { ...options, acceptStatus: (s) => s === 400 || (accept?.(s) ?? false) };
  let res = await transport.request<T>(opts);
  if (res.status === 400 && isSessionEndedBody(res.data)) {
    const renewed = reauth === undefined ? false : await reauth().catch(() => false);
    if (renewed) res = await transport.request<T>(opts);
    if (res.status === 400 && isSessionEndedBody(res.data)) throw new OpenEmrSessionEndedError();
  }
  if (res.status === 400 && !(accept?.(400) ?? false)) {
    throw new HttpError({
      method: options.method,
      url: res.url,
      status: 400,
      statusText: 'Bad Request',
      responseBody: res.data,
      responseHeaders: res.headers,
    });
  }
  return res;
}

/** Marker for "OpenEMR says there is nothing". */
export const NOT_FOUND: unique symbol = Symbol('not-found');

/** One request to the standard or FHIR API. */
export interface ApiRequest {
  method: HttpMethod;
  path: string;
  query?: Readonly<Record<string, QueryValue>> | undefined;
  body?: unknown;
  signal?: AbortSignal | undefined;
}

const NONEXISTENT = 'invalid or nonexisting value';

/**
 * Converts OpenEMR's validation errors (`{field: {"Rule::CODE": msg}}` or `{field: msg}`) to issues.
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
    else for (const [rule, message] of Object.entries(value)) issues.push({ path: field, message, code: rule });
  }
  return issues;
}

function hasErrors(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.length > 0;
  return typeof value === 'object' && Object.keys(value).length > 0;
}

/** True when every error says a uuid does not exist: OpenEMR's way of answering "not found". */
function onlyNonexistent(errors: unknown): boolean {
  const issues = particleIssues(errors);
  return issues.length > 0 && issues.every((i) => i.code === NONEXISTENT);
}

/** The result of an envelope call: data, or not found; plus pagination links. */
export interface EnvelopeResult<T> {
  data: T | typeof NOT_FOUND;
  links: Record<string, string> | undefined;
}

/**
 * The standard API, read through its quirks.
 */
export class StandardApiCaller {
  constructor(
    private readonly transport: HttpTransport,
    private readonly reauth?: Reauthenticate | undefined,
  ) {}

  private async send(req: ApiRequest): Promise<{ status: number; data: unknown; url: string }> {
    const res = await sendWithSession<unknown>(
      this.transport,
      {
        method: req.method,
        path: req.path,
        query: req.query,
        body: req.body,
        signal: req.signal,
        headers: { accept: 'application/json' },
        // OpenEMR answers validation errors with 400 (or 200 on 8.x) and empty lists with 404: read both.
        acceptStatus: (s) => s === 400 || s === 404,
      },
      this.reauth,
    );
    return res;
  }

  /**
   * A call to an envelope (`{validationErrors, internalErrors, data}`) endpoint.
   * @param req - the request
   * @param schema - the schema of `data`
   * @param what - what is being read or written, for error messages (never contains PHI)
   * @throws {@link ValidationError} for validation errors (naming the fields) and malformed answers
   * @throws {@link HttpError} for internal errors and unexpected statuses
   */
  async envelope<T>(req: ApiRequest, schema: z.ZodType<T>, what: string): Promise<EnvelopeResult<T>> {
    const res = await this.send(req);
    if (res.status === 404 && (res.data === undefined || res.data === null))
      return { data: NOT_FOUND, links: undefined };
    const env = envelopeSchema.safeParse(res.data);
    if (!env.success) {
      if (res.status >= 400) throw this.httpError(req, res, `OpenEMR answered ${res.status} to ${what}`);
      throw ValidationError.fromZod(env.error, `Invalid OpenEMR response to ${what}`);
    }
    const { validationErrors, internalErrors, data, links } = env.data;
    if (hasErrors(validationErrors)) {
      if (onlyNonexistent(validationErrors)) return { data: NOT_FOUND, links };
      throw new ValidationError(`OpenEMR refused ${what}`, particleIssues(validationErrors));
    }
    if (hasErrors(internalErrors)) {
      throw this.httpError(
        req,
        { ...res, status: res.status >= 400 ? res.status : 500 },
        `OpenEMR failed ${what}: internal error`,
      );
    }
    if (res.status === 404) return { data: NOT_FOUND, links };
    if (res.status === 400) throw this.httpError(req, res, `OpenEMR answered 400 to ${what}`);
    // Single-resource endpoints answer `data: []` (with 200 on 8.x) when nothing was found.
    if (Array.isArray(data) && data.length === 0 && !schema.safeParse(data).success) return { data: NOT_FOUND, links };
    return { data: this.parse(schema, data, what), links };
  }

  /**
   * A call to a legacy endpoint that answers raw rows (vitals, SOAP notes, medications, appointments).
   * @param req - the request
   * @param schema - the schema of the body on success
   * @param what - for error messages
   * @throws {@link ValidationError} for validation errors (naming the fields) and malformed answers
   */
  async raw<T>(req: ApiRequest, schema: z.ZodType<T>, what: string): Promise<T | typeof NOT_FOUND> {
    const res = await this.send(req);
    // Empty result: 404 with an empty body (8.x) or `null` (7.0).
    if (res.status === 404) return NOT_FOUND;
    const ok = schema.safeParse(res.data);
    if (res.status !== 400 && ok.success) return ok.data;
    // Validation failures come back as the bare Particle object, with 400 (7.0) or 200 (8.x).
    const particle = particleErrorsSchema.safeParse(res.data);
    if (particle.success && Object.keys(particle.data).length > 0) {
      throw new ValidationError(`OpenEMR refused ${what}`, particleIssues(particle.data));
    }
    if (res.status === 400) throw this.httpError(req, res, `OpenEMR answered 400 to ${what}`);
    throw ValidationError.fromZod((ok as { error: z.ZodError }).error, `Invalid OpenEMR response to ${what}`);
  }

  private parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid OpenEMR response to ${what}`);
    return parsed.data;
  }

  private httpError(req: ApiRequest, res: { status: number; data: unknown; url: string }, message: string): HttpError {
    return new HttpError({
      method: req.method,
      url: res.url,
      status: res.status,
      responseBody: res.data,
      message,
      retryable: false,
    });
  }
}
