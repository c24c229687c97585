/**
 * A typed client for the CDSS reference server. It uses only `fetch` and `WebSocket`, so it runs in browsers,
 * React Native and Node ≥ 20 alike; every response is validated with the API's zod schemas.
 */
import { z } from 'zod';
import { CdssApiError } from './errors.js';
import {
  allergyListSchema,
  analysisAcceptedSchema,
  analysisListSchema,
  analysisSchema,
  assessmentSchema,
  auditListSchema,
  cachedPatientSchema,
  claimSchema,
  demoUserSchema,
  fhirBundleSchema,
  encounterListSchema,
  measurementListSchema,
  medicationListSchema,
  patientPageSchema,
  patientSchema,
  problemListSchema,
  studyListSchema,
  studySchema,
  tokenResponseSchema,
  vitalsListSchema,
  worklistSchema,
  type AnalysisRequest,
  type Measurement,
  type PatientInput,
  type ReviewRequest,
} from './schemas.js';

/** Options of {@link createCdssClient}. */
export interface CdssClientOptions {
  /** The server, e.g. `https://cdss.example.org` (no trailing path). */
  baseUrl: string;
  /** Returns the current access token; called before each request. */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Retries of requests that are safe to repeat (see {@link CdssRetryOptions}); `{ retries: 0 }` turns them off. */
  retry?: CdssRetryOptions;
}

/**
 * Retries of requests that are safe to repeat: GET, PUT, and a POST that carries an `Idempotency-Key` (the server
 * answers a repeat with the first answer). They are retried when the server cannot be reached or answers 408, 425,
 * 429, 500, 502, 503 or 504; never after the caller's abort.
 */
export interface CdssRetryOptions {
  /** Retries after the first attempt (default 2). */
  retries?: number;
  /** Pause before the first retry in ms, doubled for each next one, with jitter (default 300). */
  baseDelayMs?: number;
  /** Longest pause in ms, also the cap on a `Retry-After` the server sends (default 5000). */
  maxDelayMs?: number;
}

/** Statuses a repeatable request is retried on (RFC 9110 §15: the request may succeed later). */
const RETRYABLE_STATUSES = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
function pause(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type Query = Record<string, string | number | undefined>;

/** Filters and paging of `GET /api/audit` (all optional, combined with AND). */
export interface AuditQuery {
  /** A patient id. */
  patient?: string;
  /** A user id (the token's `sub`). */
  user?: string;
  outcome?: 'success' | 'failure' | 'denied';
  /** Records at or after this instant: ISO 8601 date-time with offset (`2026-12-06T08:00:00Z`), or a date (UTC). */
  from?: string;
  /** Records at or before this instant, including the whole second (or day) it names. */
  to?: string;
  /** Page size, 1–1000 (default 100). */
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string;
}

/** A voxel grid: `data[i + x*j + x*y*k]`, spacing in millimetres. */
export interface VoxelGrid<T extends Float32Array | Uint8Array> {
  dims: [number, number, number];
  spacing: [number, number, number];
  data: T;
}

function withoutTrailingSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

/**
 * Creates the client.
 * @param options - base URL, token source, fetch, retries
 * @example
 * ```ts
 * const cdss = createCdssClient({ baseUrl: 'https://cdss.example.org', getToken: () => session.token });
 * const { items } = await cdss.patients.search({ q: 'doe' });
 * ```
 */
export function createCdssClient(options: CdssClientOptions) {
  const baseUrl = withoutTrailingSlash(options.baseUrl);
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const retries = options.retry?.retries ?? 2;
  const baseDelayMs = options.retry?.baseDelayMs ?? 300;
  const maxDelayMs = options.retry?.maxDelayMs ?? 5_000;

  /** The pause before retry number `attempt + 1`: the server's `Retry-After` (seconds) if any, else backoff. */
  function delayOf(attempt: number, retryAfter: string | null): number {
    const seconds = retryAfter === null ? NaN : Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, maxDelayMs);
    return Math.min(baseDelayMs * 2 ** attempt * (0.5 + Math.random() / 2), maxDelayMs);
  }

  /** One fetch, repeated as {@link CdssRetryOptions} says when `repeatable`; network failures become status 0. */
  async function send(method: string, path: string, url: string, init: RequestInit, repeatable: boolean) {
    for (let attempt = 0; ; attempt++) {
      const last = !repeatable || attempt >= retries;
      let response: Response;
      try {
        response = await doFetch(url, init);
      } catch (error) {
        if (last || init.signal?.aborted)
          throw new CdssApiError(0, `${method} ${path}: the server could not be reached`, [], { cause: error });
        await pause(delayOf(attempt, null), init.signal);
        continue;
      }
      if (response.ok || last || !RETRYABLE_STATUSES.has(response.status)) return response;
      await response.arrayBuffer().catch(() => undefined); // let the connection be reused
      await pause(delayOf(attempt, response.headers.get('retry-after')), init.signal);
    }
  }

  async function request<S extends z.ZodType>(
    schema: S,
    method: string,
    path: string,
    init: { query?: Query; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<z.infer<S>> {
    const url = new URL(`${baseUrl}${path}`);
    for (const [key, value] of Object.entries(init.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    const token = await options.getToken?.();
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const repeatable = method === 'GET' || method === 'PUT' || headers['idempotency-key'] !== undefined;
    const response = await send(
      method,
      path,
      url.toString(),
      {
        method,
        headers,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      },
      repeatable,
    );
    const text = await response.text();
    const body: unknown = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const outcome = body as
        { issue?: CdssApiError['issues']; contained?: Array<Record<string, unknown>> } | undefined;
      const issues = outcome?.issue ?? [];
      const detail = issues
        .map((issue) => issue.diagnostics)
        .filter(Boolean)
        .join('; ');
      throw new CdssApiError(
        response.status,
        `${method} ${path}: ${response.status}${detail ? ` ${detail}` : ''}`,
        issues,
        Array.isArray(outcome?.contained) ? { contained: outcome.contained } : undefined,
      );
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success)
      throw new CdssApiError(response.status, `${method} ${path}: unexpected response shape`, [], {
        cause: parsed.error,
      });
    return parsed.data;
  }

  /** GET of a binary voxel grid (`X-Volume-Dims`, `X-Volume-Spacing` headers). */
  async function grid<T extends Float32Array | Uint8Array>(
    path: string,
    make: (buffer: ArrayBuffer) => T,
    signal?: AbortSignal,
  ): Promise<VoxelGrid<T>> {
    const headers: Record<string, string> = { accept: 'application/octet-stream' };
    const token = await options.getToken?.();
    if (token) headers['authorization'] = `Bearer ${token}`;
    const response = await send('GET', path, `${baseUrl}${path}`, { headers, ...(signal ? { signal } : {}) }, true);
    if (!response.ok) throw new CdssApiError(response.status, `GET ${path}: ${response.status}`);
    const triple = (name: string): [number, number, number] => {
      const values = (response.headers.get(name) ?? '').split(',').map(Number);
      if (values.length !== 3 || values.some((v) => !Number.isFinite(v) || v <= 0))
        throw new CdssApiError(response.status, `GET ${path}: missing or bad ${name}`);
      return values as [number, number, number];
    };
    const dims = triple('x-volume-dims');
    const data = make(await response.arrayBuffer());
    if (data.length !== dims[0] * dims[1] * dims[2])
      throw new CdssApiError(response.status, `GET ${path}: ${data.length} voxels for dims ${dims.join('x')}`);
    return { dims, spacing: triple('x-volume-spacing'), data };
  }

  const enc = encodeURIComponent;
  return {
    /** Sandbox only: the demo users and their tokens. */
    sandbox: {
      users: () => request(demoUserSchema.array(), 'GET', '/api/sandbox/users'),
      token: (userId: string) => request(tokenResponseSchema, 'POST', '/api/sandbox/token', { body: { userId } }),
    },
    patients: {
      search: (query: { q?: string; limit?: number; cursor?: string } = {}) =>
        request(patientPageSchema, 'GET', '/api/patients', { query }),
      get: (id: string) => request(cachedPatientSchema, 'GET', `/api/patients/${enc(id)}`),
      /**
       * Creates a patient. A patient with the same names and birth date makes it fail with a 409 whose candidates
       * {@link duplicateCandidates} reads; `confirmDuplicate` creates it anyway.
       */
      create: (input: PatientInput, opts: { idempotencyKey?: string; confirmDuplicate?: boolean } = {}) =>
        request(patientSchema, 'POST', '/api/patients', {
          body: input,
          ...(opts.confirmDuplicate ? { query: { confirm: 'duplicate' } } : {}),
          ...(opts.idempotencyKey ? { headers: { 'idempotency-key': opts.idempotencyKey } } : {}),
        }),
      update: (id: string, input: PatientInput) =>
        request(patientSchema, 'PUT', `/api/patients/${enc(id)}`, { body: input }),
      encounters: (id: string) => request(encounterListSchema, 'GET', `/api/patients/${enc(id)}/encounters`),
      problems: (id: string) => request(problemListSchema, 'GET', `/api/patients/${enc(id)}/problems`),
      allergies: (id: string) => request(allergyListSchema, 'GET', `/api/patients/${enc(id)}/allergies`),
      medications: (id: string) => request(medicationListSchema, 'GET', `/api/patients/${enc(id)}/medications`),
      vitals: (id: string) => request(vitalsListSchema, 'GET', `/api/patients/${enc(id)}/vitals`),
      studies: (id: string) => request(studyListSchema, 'GET', `/api/patients/${enc(id)}/studies`),
      assessment: (id: string) => request(assessmentSchema, 'GET', `/api/patients/${enc(id)}/assessment`),
    },
    studies: {
      get: (studyUid: string) => request(studySchema, 'GET', `/api/studies/${enc(studyUid)}`),
      /** One series' voxels (rescaled intensities), for viewers. */
      volume: (studyUid: string, seriesUid: string, signal?: AbortSignal) =>
        grid(`/api/studies/${enc(studyUid)}/series/${enc(seriesUid)}/volume`, (b) => new Float32Array(b), signal),
    },
    analyses: {
      request: (studyUid: string, body: AnalysisRequest) =>
        request(analysisAcceptedSchema, 'POST', `/api/studies/${enc(studyUid)}/analyses`, { body }),
      get: (id: string) => request(analysisSchema, 'GET', `/api/analyses/${enc(id)}`),
      /** A page of analyses (newest first) of a patient, or by review status; pass `nextCursor` on for the next. */
      list: (
        query: {
          patient?: string;
          review?: 'pending' | 'approved' | 'rejected';
          limit?: number;
          cursor?: string;
        } = {},
      ) => request(analysisListSchema, 'GET', '/api/analyses', { query }),
      cancel: (id: string) => request(analysisSchema, 'POST', `/api/analyses/${enc(id)}/cancel`),
      review: (id: string, body: ReviewRequest) =>
        request(analysisSchema, 'POST', `/api/analyses/${enc(id)}/review`, { body }),
      /** The AI segmentation as BraTS labels (0, 1 necrotic core, 2 oedema, 4 or 3 enhancing) on the T1c grid. */
      segmentation: (id: string, signal?: AbortSignal) =>
        grid(`/api/analyses/${enc(id)}/segmentation`, (b) => new Uint8Array(b), signal),
      /** The FHIR transaction Bundle of the result (DiagnosticReport, Observations, ImagingStudy). */
      report: (id: string) => request(fhirBundleSchema, 'GET', `/api/analyses/${enc(id)}/report`),
      /** Claims an analysis for review (a 409 names who holds it). */
      claim: (id: string) => request(claimSchema, 'POST', `/api/analyses/${enc(id)}/claim`),
      /** Gives a claim back. */
      release: (id: string) => request(z.unknown(), 'DELETE', `/api/analyses/${enc(id)}/claim`),
      /** The measurements saved with an analysis. */
      measurements: (id: string) => request(measurementListSchema, 'GET', `/api/analyses/${enc(id)}/measurements`),
      /** Replaces the measurements of an analysis. */
      saveMeasurements: (id: string, items: Measurement[]) =>
        request(measurementListSchema, 'PUT', `/api/analyses/${enc(id)}/measurements`, { body: { items } }),
    },
    /** The radiologist's worklist: analyses waiting for review, oldest first. */
    worklist: () => request(worklistSchema, 'GET', '/api/worklist'),
    audit: {
      /**
       * A page of audit records, newest first. `from`/`to` are ISO 8601 date-times with an offset (or dates, UTC);
       * `to` includes the whole second (or day) it names. Pass a page's `nextCursor` as `cursor` for the next page.
       */
      list: (query: AuditQuery = {}) => request(auditListSchema, 'GET', '/api/audit', { query: { ...query } }),
    },
  };
}

/** The client's type. */
export type CdssClient = ReturnType<typeof createCdssClient>;
