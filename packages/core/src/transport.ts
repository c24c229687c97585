/**
 * The HTTP transport every CDSS client sends its requests through: axios underneath, with auth strategies,
 * a retry policy, per-request timeouts combined with the caller's `AbortSignal`, hooks, and zod validation
 * of responses.
 * @packageDocumentation
 */
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import axios, { type AxiosInstance, type AxiosProgressEvent, type AxiosRequestConfig, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { AuthStrategy } from './auth.js';
import { basicAuth } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import { HttpError, RetryError, TimeoutError, ValidationError } from './errors.js';
import { socketGet } from './socket-get.js';
import { noopLogger, type Logger } from './logger.js';
import { createRetryPolicy, type RetryPolicy, type RetryPolicyOptions } from './retry.js';

/** HTTP methods the transport sends. */
export type HttpMethod = 'GET' | 'HEAD' | 'OPTIONS' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * How the response body is returned: parsed JSON, text, a `Buffer`, a `Readable`, or (`chunks`) handed to
 * `onChunk` piece by piece while the request runs (see {@link RequestOptions.onChunk}).
 */
export type ResponseType = 'json' | 'text' | 'arraybuffer' | 'stream' | 'chunks';

/** Query parameter values; arrays repeat the parameter, `undefined` leaves it out. */
export type QueryValue = string | number | boolean | undefined | readonly (string | number | boolean)[];

/** Progress of an upload or download. */
export interface TransferProgress {
  /** Bytes transferred so far. */
  loaded: number;
  /** Total bytes, when the length is known. */
  total?: number | undefined;
  /** `loaded / total` in [0, 1], when the length is known. */
  progress?: number | undefined;
  /** Bytes since the previous event. */
  bytes: number;
  /** Bytes per second, when axios can estimate it. */
  rate?: number | undefined;
}

/** What a request hook sees; `headers` may be changed by `onRequest`. */
export interface RequestContext {
  /** HTTP method, upper case. */
  method: HttpMethod;
  /** The full URL, credentials removed. */
  url: string;
  /** The headers about to be sent (lower-case names), credentials included: never log them unredacted. */
  headers: Record<string, string>;
  /** 1 for the first attempt, 2 for the first retry, ... */
  attempt: number;
}

/** What `onResponse` sees. */
export interface ResponseContext extends RequestContext {
  /** The response status. */
  status: number;
  /** Response headers, lower-case names. */
  responseHeaders: Record<string, string>;
  /** Time from sending to the response, by the transport's clock. */
  durationMs: number;
}

/** What `onError` sees: the attempt failed with `error` (it may still be retried). */
export interface ErrorContext extends RequestContext {
  /** The attempt's error ({@link HttpError}, {@link TimeoutError}, ... or the caller's abort reason). */
  error: unknown;
}

/** Hooks observing (and, for `onRequest`, adjusting) every attempt. A hook that throws fails the request. */
export interface TransportHooks {
  /** Before each attempt is sent, after auth. May change `headers`. */
  onRequest?: (context: RequestContext) => void | Promise<void>;
  /** After each response arrives, whatever its status. */
  onResponse?: (context: ResponseContext) => void | Promise<void>;
  /** After each failed attempt. */
  onError?: (context: ErrorContext) => void | Promise<void>;
}

/**
 * Options of {@link HttpTransport}. Only `baseUrl` is required.
 * @category Transport
 */
export interface HttpTransportOptions {
  /**
   * The service's base URL, e.g. `https://emr.example/apis/default/fhir`. A trailing slash is removed.
   * User-info in it (`http://user:pass@host`) is taken out of the URL and used as basic auth when `auth` is
   * not given, so credentials never appear in URLs, errors or logs.
   */
  baseUrl: string;
  /** How requests authenticate. Default: none (or basic auth from the URL's user-info). */
  auth?: AuthStrategy | undefined;
  /** Retry policy, or its options, or `false` for none. Default `createRetryPolicy()` (2 retries). */
  retry?: RetryPolicy | RetryPolicyOptions | false | undefined;
  /** Per-attempt time limit in milliseconds. Default 30 000. */
  timeoutMs?: number | undefined;
  /** Headers sent with every request. */
  headers?: Record<string, string> | undefined;
  /** Where the transport logs attempts and retries (no bodies, no headers, query values masked). Default {@link noopLogger}. */
  logger?: Logger | undefined;
  /** The axios instance to send with. Default `axios.create()`. */
  axios?: AxiosInstance | undefined;
  /** Hooks around every attempt. */
  hooks?: TransportHooks | undefined;
  /** Time source for backoff sleeps and durations. Default {@link systemClock}. */
  clock?: Clock | undefined;
}

/**
 * One request. Only `method` and `path` are required.
 * @typeParam T - the type of `data` in the response (inferred from `schema`)
 * @category Transport
 */
export interface RequestOptions<T = unknown> {
  /** HTTP method. */
  method: HttpMethod;
  /** Path relative to the base URL (`Patient/1` or `/Patient/1` both mean `<baseUrl>/Patient/1`), or an absolute URL. */
  path: string;
  /** Query parameters, encoded and appended. */
  query?: Readonly<Record<string, QueryValue>> | undefined;
  /** Extra headers for this request (override the transport's). */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * The body: a `Buffer`/`Uint8Array` (sent as is, `application/octet-stream` unless `content-type` is
   * set), a `Readable` stream (sent as is; never retried, it cannot be replayed), a string (sent as is,
   * `text/plain` unless set), or any other value, sent as JSON.
   */
  body?: unknown;
  /** How to return the body. Default `json` (an empty body gives `undefined`). */
  responseType?: ResponseType | undefined;
  /** Validates the response body; a mismatch throws {@link ValidationError}. Applies to every returned response. */
  schema?: z.ZodType<T> | undefined;
  /** The caller's cancellation. Its abort rejects with `signal.reason` and is never retried. */
  signal?: AbortSignal | undefined;
  /**
   * Per-attempt time limit for this request. For `stream` and `chunks` responses it bounds the wait for the
   * headers; a `chunks` body then fails with {@link TimeoutError} when no byte arrives for this long.
   */
  timeoutMs?: number | undefined;
  /** Sent as `Idempotency-Key`; makes a POST or PATCH retryable. */
  idempotencyKey?: string | undefined;
  /** Retry policy options for this request, or `false` for none. Default: the transport's policy. */
  retry?: RetryPolicyOptions | false | undefined;
  /** Statuses that are returned instead of thrown (e.g. `(s) => s === 404`). 2xx are always returned. */
  acceptStatus?: ((status: number) => boolean) | undefined;
  /** `false` keeps gzip/deflate/br bodies compressed (axios `decompress`). Default true. */
  decompress?: boolean | undefined;
  /** Sent as `Accept-Encoding`; `'identity'` asks for an uncompressed body (large binary transfers). */
  acceptEncoding?: string | undefined;
  /** Download progress events. */
  onDownloadProgress?: ((progress: TransferProgress) => void) | undefined;
  /** Upload progress events. */
  onUploadProgress?: ((progress: TransferProgress) => void) | undefined;
  /**
   * With `responseType: 'chunks'` (required there): receives the body of a returned response, in order, while
   * the request runs; the request resolves (with `data` undefined) once the whole body has been delivered.
   *
   * The chunk is a view into a read buffer that is reused for the next read: copy what you keep before
   * returning. That is the point: a GET over `http:` or `https:` without a proxy is then read straight from its
   * own socket into one buffer, with no allocation per read, which makes large downloads (DICOM series) cheaper
   * than a `stream` response (see the `socket-get` module). Behind a proxy (axios `proxy` or the
   * `HTTP(S)_PROXY` variables), with a custom axios `adapter`, or for other methods, the body comes through
   * axios as a stream and is handed on the same way. An error thrown here fails the request; once a chunk has
   * been delivered the request is never retried. `onDownloadProgress` does not apply: count the bytes here.
   */
  onChunk?: ((chunk: Uint8Array) => void) | undefined;
  /** With `responseType: 'chunks'`: called once with the headers of a returned response, before the first chunk. */
  onHeaders?: ((headers: Record<string, string>, status: number) => void) | undefined;
}

/**
 * A response. `url` is the request URL without credentials.
 * @category Transport
 */
export interface HttpResponse<T> {
  /** The status. */
  status: number;
  /** Response headers, lower-case names (repeated headers joined with `, `). */
  headers: Record<string, string>;
  /** The body: parsed JSON (validated when a schema was given), text, a `Buffer`, or a `Readable`. */
  data: T;
  /** The request URL, without credentials. */
  url: string;
}

const isFunction = (v: unknown): boolean => typeof v === 'function';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL');

const transportOptionsSchema = z.object({
  baseUrl: httpUrl,
  auth: z
    .custom<AuthStrategy>((v) => isObject(v) && isFunction(v['authorize']), 'must have an authorize() method')
    .optional(),
  retry: z
    .union([
      z.literal(false),
      z.custom<RetryPolicy>((v) => isObject(v) && isFunction(v['nextDelay']), 'must be a RetryPolicy'),
      z.object({}).passthrough(),
    ])
    .optional(),
  timeoutMs: z.number().positive().finite().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  logger: z
    .custom<Logger>(
      (v) => isObject(v) && ['debug', 'info', 'warn', 'error'].every((k) => isFunction(v[k])),
      'must be a Logger',
    )
    .optional(),
  axios: z
    .custom<AxiosInstance>(
      (v) => isFunction(v) && isFunction((v as { request?: unknown }).request),
      'must be an axios instance',
    )
    .optional(),
  hooks: z
    .object({
      onRequest: z.custom<TransportHooks['onRequest']>(isFunction).optional(),
      onResponse: z.custom<TransportHooks['onResponse']>(isFunction).optional(),
      onError: z.custom<TransportHooks['onError']>(isFunction).optional(),
    })
    .optional(),
  clock: z
    .custom<Clock>((v) => isObject(v) && isFunction(v['now']) && isFunction(v['sleep']), 'must be a Clock')
    .optional(),
});

const METHODS = new Set<string>(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE']);
const RESPONSE_TYPES = new Set<string>(['json', 'text', 'arraybuffer', 'stream', 'chunks']);
const ABSOLUTE_URL = /^[a-z][a-z\d+.-]*:\/\//i;
/** Query parameters whose values are credentials: masked in error URLs and logs. */
const SECRET_QUERY =
  /^(access_?token|refresh_?token|id_?token|token|api_?key|apikey|key|password|client_?secret|code|signature|sig)$/i;
/** Characters that would split a request's head. */
const UNSAFE_HEADER_TEXT = /[\r\n\0]/;
/** Environment variables through which axios (proxy-from-env) picks a proxy. */
const PROXY_VARIABLES = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy'];
/** The TLS settings of an https agent that a socket read carries over. */
const TLS_OPTION_KEYS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'crl',
  'ciphers',
  'minVersion',
  'maxVersion',
  'rejectUnauthorized',
  'servername',
  'checkServerIdentity',
  'secureContext',
] as const;
/** How much of an error body is read from a stream, for the `HttpError`. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

function invalid(message: string, path: string, detail: string): ValidationError {
  return new ValidationError(message, [{ path, message: detail, code: 'invalid_value' }]);
}

/** Removes user-info and masks secret query values: the form of a URL that may appear in errors. */
function safeUrl(url: URL): string {
  if (url.username === '' && url.password === '' && !hasSecretQuery(url)) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  for (const key of [...copy.searchParams.keys()]) if (SECRET_QUERY.test(key)) copy.searchParams.set(key, 'REDACTED');
  return copy.href;
}

function hasSecretQuery(url: URL): boolean {
  if (url.search === '') return false;
  for (const key of url.searchParams.keys()) if (SECRET_QUERY.test(key)) return true;
  return false;
}

/**
 * Path segments that identify a record (a patient's uuid or pid, a DICOM UID): masked in logs, since they link a log
 * line to a person. Resource names and API versions (`patient`, `v1`, `dicom-web`) stay readable.
 */
const ID_SEGMENT =
  /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+|\d+(\.\d+)+|[0-9a-f]{8}(-[0-9a-f]{8}){4})$/i;

/** The form of a URL for logs: no user-info, identifier path segments and every query value masked (PHI). */
function logUrl(url: URL): string {
  const copy = new URL(safeUrl(url));
  copy.pathname = copy.pathname
    .split('/')
    .map((segment) => (ID_SEGMENT.test(decodeURIComponent(segment)) ? ':id' : segment))
    .join('/');
  for (const key of [...copy.searchParams.keys()]) copy.searchParams.set(key, '*');
  return copy.href;
}

function flattenHeaders(headers: AxiosResponse['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined || value === null) continue;
    out[key.toLowerCase()] = Array.isArray(value) ? value.map(String).join(', ') : String(value as string | number);
  }
  return out;
}

function toProgress(callback: (progress: TransferProgress) => void): (event: AxiosProgressEvent) => void {
  return (event) =>
    callback({
      loaded: event.loaded,
      total: event.total,
      progress: event.progress,
      bytes: event.bytes,
      rate: event.rate,
    });
}

async function readCapped(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(buf);
      size += buf.length;
      if (size >= max) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, max);
}

/** Decodes an error response body tolerantly: JSON when it parses, else text. */
function decodeErrorBody(raw: unknown): unknown {
  let text: string;
  if (typeof raw === 'string') text = raw;
  else if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) text = Buffer.from(raw).toString('utf8');
  else if (raw instanceof ArrayBuffer) text = Buffer.from(raw).toString('utf8');
  else return raw;
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** An error from axios with its config (which holds credentials) dropped, so it is safe to keep as `cause`. */
function sanitizeCause(error: unknown): Error {
  const source = error as { message?: unknown; code?: unknown; name?: unknown };
  const clean = new Error(typeof source.message === 'string' ? source.message : 'request failed');
  clean.name = typeof source.name === 'string' ? source.name : 'Error';
  if (typeof source.code === 'string') (clean as Error & { code?: string }).code = source.code;
  return clean;
}

/** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

/**
 * The caller's `onHeaders` (run after `beforeHeaders`) and `onChunk` of a `chunks` request, wrapped so that an error
 * they throw is recorded in `failed`/`error`: it goes back to the caller as it is, never translated.
 */
function chunkConsumer(options: RequestOptions<unknown>, beforeHeaders: () => void) {
  const onChunk = options.onChunk as (chunk: Uint8Array) => void;
  const consumer = {
    failed: false,
    error: undefined as unknown,
    onHeaders: (headers: Record<string, string>, status: number): void => {
      try {
        beforeHeaders();
        options.onHeaders?.(headers, status);
      } catch (error) {
        throw fail(error);
      }
    },
    onChunk: (chunk: Uint8Array): void => {
      try {
        onChunk(chunk);
      } catch (error) {
        throw fail(error);
      }
    },
  };
  const fail = (error: unknown): unknown => {
    consumer.failed = true;
    consumer.error = error;
    return error;
  };
  return consumer;
}

interface Prepared {
  method: HttpMethod;
  url: URL;
  displayUrl: string;
  body: unknown;
  bodyHeaders: Record<string, string>;
  replayable: boolean;
}

/**
 * Sends HTTP requests for the CDSS clients. One instance per service; it holds no per-request state, so it
 * is safe to share between concurrent callers.
 *
 * @example
 * ```ts
 * const fhir = new HttpTransport({ baseUrl: 'https://emr.example/apis/default/fhir', auth: oauth2Auth(provider) });
 * const { data } = await fhir.request({ method: 'GET', path: 'Patient/1', schema: patientSchema });
 * ```
 * @category Transport
 */
export class HttpTransport {
  /** The normalised base URL (no trailing slash, no credentials). */
  readonly baseUrl: string;
  private readonly auth: AuthStrategy | undefined;
  private readonly retryPolicy: RetryPolicy | undefined;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly logger: Logger;
  private readonly axios: AxiosInstance;
  private readonly hooks: TransportHooks;
  private readonly clock: Clock;

  /**
   * @param options - see {@link HttpTransportOptions}
   * @throws {@link ValidationError} when the options are invalid (e.g. `baseUrl` is not an http(s) URL)
   */
  constructor(options: HttpTransportOptions) {
    const parsed = transportOptionsSchema.safeParse(options);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid HttpTransport options');
    const base = new URL(options.baseUrl);
    const username = decodeURIComponent(base.username);
    const password = decodeURIComponent(base.password);
    base.username = '';
    base.password = '';
    base.hash = '';
    // Strip ONE trailing slash (`http://h/fhir/` -> `http://h/fhir`); never change the path's case.
    this.baseUrl = base.href.endsWith('/') ? base.href.slice(0, -1) : base.href;
    this.auth = options.auth ?? (username !== '' ? basicAuth(username, password) : undefined);
    this.retryPolicy =
      options.retry === false
        ? undefined
        : options.retry !== undefined && 'nextDelay' in options.retry
          ? options.retry
          : createRetryPolicy(options.retry ?? {});
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.logger = options.logger ?? noopLogger;
    this.axios = options.axios ?? axios.create();
    this.hooks = options.hooks ?? {};
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Sends a request, retrying transient failures under the retry policy.
   * @param options - the request
   * @returns the response: 2xx, or a status `acceptStatus` accepts
   * @throws {@link HttpError} for any other status, or a network failure that is not retried
   * @throws {@link TimeoutError} when an attempt exceeds its time limit and is not retried
   * @throws {@link RetryError} when every attempt failed with a retryable error (`errors` holds each one)
   * @throws {@link ValidationError} when the options are invalid or the body does not match `schema`
   * @throws the caller's `signal.reason` (an `AbortError` by default) when the caller aborts; never retried
   */
  async request<T = unknown>(options: RequestOptions<T>): Promise<HttpResponse<T>> {
    const prepared = this.prepare(options);
    const signal = options.signal;
    if (signal?.aborted) throw signal.reason;
    const policy =
      options.retry === false ? undefined : options.retry ? createRetryPolicy(options.retry) : this.retryPolicy;
    const hasKey = options.idempotencyKey !== undefined;
    const errors: unknown[] = [];
    let authRetried = false;
    let delivered = false;
    const onChunk = options.onChunk;
    const attemptOptions: RequestOptions<T> =
      options.responseType === 'chunks' && onChunk
        ? {
            ...options,
            onChunk: (chunk) => {
              delivered = true;
              onChunk(chunk);
            },
          }
        : options;
    for (let attempt = 1; ; attempt++) {
      // Auth may wait for a token refresh: the caller's abort must not wait for it.
      const headers = await untilAborted(this.buildHeaders(options, prepared), signal);
      try {
        const response = await this.attempt(attemptOptions, prepared, headers, attempt);
        return response;
      } catch (error) {
        if (signal?.aborted && error === signal.reason) throw error;
        // Part of the body was handed over: a retry would hand it over again.
        if (delivered) throw error;
        if (
          HttpError.isInstance(error) &&
          error.status === 401 &&
          !authRetried &&
          prepared.replayable &&
          this.auth?.onUnauthorized !== undefined
        ) {
          authRetried = true;
          const req = { method: prepared.method, url: prepared.displayUrl, headers };
          if (await untilAborted(this.auth.onUnauthorized(req), signal)) {
            // The retry with fresh credentials does not count against the retry budget.
            attempt--;
            continue;
          }
        }
        errors.push(error);
        const delay =
          policy !== undefined && prepared.replayable
            ? policy.nextDelay({
                error,
                attempt,
                method: prepared.method,
                hasIdempotencyKey: hasKey,
                now: this.clock.now(),
              })
            : undefined;
        if (delay === undefined) {
          // Retried, and still failing transiently when the policy gave up: every attempt's error goes back.
          if (errors.length > 1 && this.isTransient(error)) {
            throw new RetryError(errors);
          }
          throw error;
        }
        this.logger.warn(
          {
            method: prepared.method,
            url: logUrl(prepared.url),
            attempt,
            delayMs: delay,
            status: HttpError.isInstance(error) ? error.status : undefined,
            error: (error as { code?: unknown }).code,
          },
          'retrying HTTP request',
        );
        await this.clock.sleep(delay, signal);
      }
    }
  }

  /**
   * Whether a `chunks` response is read from its own socket (see `socket-get`): a GET without a body, on the
   * default axios adapter, and no proxy configured or in the environment (axios would use it).
   */
  private readsFromSocket(prepared: Prepared): boolean {
    if (prepared.method !== 'GET' || prepared.body !== undefined) return false;
    const defaults = this.axios.defaults as { adapter?: unknown; proxy?: unknown };
    if (defaults.adapter !== undefined && typeof defaults.adapter === 'function') return false;
    if (defaults.proxy !== undefined && defaults.proxy !== false) return false;
    if (defaults.proxy === undefined && PROXY_VARIABLES.some((name) => (process.env[name] ?? '') !== '')) return false;
    return true;
  }

  /** TLS settings of the axios instance's https agent (CA, client certificate, ...), for socket reads. */
  private tlsOptions(): ConnectionOptions | undefined {
    const agent = this.axios.defaults.httpsAgent as { options?: Record<string, unknown> } | undefined;
    if (!agent?.options) return undefined;
    const picked: Record<string, unknown> = {};
    for (const key of TLS_OPTION_KEYS) if (agent.options[key] !== undefined) picked[key] = agent.options[key];
    return picked as ConnectionOptions;
  }

  private isTransient(error: unknown): boolean {
    return TimeoutError.isInstance(error) || (HttpError.isInstance(error) && error.retryable);
  }

  private prepare(options: RequestOptions<unknown>): Prepared {
    if (!isObject(options)) throw invalid('Invalid request options', '', 'expected an object');
    const method = typeof options.method === 'string' ? options.method.toUpperCase() : '';
    if (!METHODS.has(method))
      throw invalid('Invalid request options', 'method', `unsupported method ${String(options.method)}`);
    if (typeof options.path !== 'string') throw invalid('Invalid request options', 'path', 'expected a string');
    if (options.responseType !== undefined && !RESPONSE_TYPES.has(options.responseType)) {
      throw invalid('Invalid request options', 'responseType', 'expected json, text, arraybuffer, stream or chunks');
    }
    if (options.responseType === 'chunks' && typeof options.onChunk !== 'function') {
      throw invalid('Invalid request options', 'onChunk', "responseType 'chunks' needs an onChunk function");
    }
    if (options.timeoutMs !== undefined && !(options.timeoutMs > 0 && Number.isFinite(options.timeoutMs))) {
      throw invalid('Invalid request options', 'timeoutMs', 'expected a positive number');
    }
    if (
      options.idempotencyKey !== undefined &&
      (typeof options.idempotencyKey !== 'string' || options.idempotencyKey === '')
    ) {
      throw invalid('Invalid request options', 'idempotencyKey', 'expected a non-empty string');
    }
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (typeof value !== 'string' || UNSAFE_HEADER_TEXT.test(name) || UNSAFE_HEADER_TEXT.test(value)) {
        throw invalid(
          'Invalid request options',
          `headers.${name}`,
          'header names and values may not contain CR, LF or NUL',
        );
      }
    }
    let url: URL;
    try {
      url = ABSOLUTE_URL.test(options.path)
        ? new URL(options.path)
        : new URL(options.path === '' ? this.baseUrl : `${this.baseUrl}/${options.path.replace(/^\/+/, '')}`);
    } catch {
      throw invalid('Invalid request options', 'path', 'not a valid URL path');
    }
    if (url.username !== '' || url.password !== '') {
      throw invalid('Invalid request options', 'path', 'credentials in URLs are not allowed: use an auth strategy');
    }
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value))
        for (const item of value as readonly unknown[]) url.searchParams.append(key, String(item));
      else url.searchParams.append(key, String(value as string | number | boolean));
    }
    const bodyHeaders: Record<string, string> = {};
    let body: unknown = options.body;
    let replayable = true;
    if (body === undefined) {
      // no body
    } else if (body instanceof Readable) {
      replayable = false;
      bodyHeaders['content-type'] = 'application/octet-stream';
    } else if (body instanceof Uint8Array) {
      // axios sends Buffers but refuses other typed arrays: a view of the same memory, no copy.
      if (!Buffer.isBuffer(body)) body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      bodyHeaders['content-type'] = 'application/octet-stream';
    } else if (typeof body === 'string') {
      bodyHeaders['content-type'] = 'text/plain; charset=utf-8';
    } else {
      body = JSON.stringify(body);
      bodyHeaders['content-type'] = 'application/json';
    }
    return { method: method as HttpMethod, url, displayUrl: safeUrl(url), body, bodyHeaders, replayable };
  }

  private async buildHeaders(options: RequestOptions<unknown>, prepared: Prepared): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      accept: 'application/json, */*;q=0.5',
      ...prepared.bodyHeaders,
      ...this.headers,
    };
    for (const [key, value] of Object.entries(options.headers ?? {})) headers[key.toLowerCase()] = value;
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    if (options.acceptEncoding !== undefined) headers['accept-encoding'] = options.acceptEncoding;
    if (this.auth) await this.auth.authorize({ method: prepared.method, url: prepared.displayUrl, headers });
    return headers;
  }

  private async attempt<T>(
    options: RequestOptions<T>,
    prepared: Prepared,
    headers: Record<string, string>,
    attempt: number,
  ): Promise<HttpResponse<T>> {
    const context: RequestContext = { method: prepared.method, url: prepared.displayUrl, headers, attempt };
    const responseType = options.responseType ?? 'json';
    const chunks = responseType === 'chunks';
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(
      () =>
        timeout.abort(
          new TimeoutError(`${prepared.method} ${prepared.displayUrl}: no response within ${timeoutMs} ms`, timeoutMs),
        ),
      timeoutMs,
    );
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    const started = this.clock.now();
    try {
      if (this.hooks.onRequest) await this.hooks.onRequest(context);
      const config: AxiosRequestConfig = {
        method: prepared.method,
        url: prepared.url.href,
        headers: context.headers,
        data: prepared.body,
        signal,
        // JSON is parsed here, not by axios, so an invalid body is an error instead of a silent string.
        responseType: responseType === 'json' ? 'text' : chunks ? 'stream' : responseType,
        transformResponse: [(data: unknown) => data],
        transformRequest: [(data: unknown) => data],
        validateStatus: () => true,
        maxContentLength: Infinity,
        maxBodyLength: Infinity,
        decompress: options.decompress ?? true,
      };
      // (a `chunks` caller counts the bytes it is handed; the socket path has no axios progress events)
      if (options.onDownloadProgress && !chunks) config.onDownloadProgress = toProgress(options.onDownloadProgress);
      if (options.onUploadProgress) config.onUploadProgress = toProgress(options.onUploadProgress);
      const isOk = (status: number): boolean =>
        (status >= 200 && status < 300) || (options.acceptStatus?.(status) ?? false);
      let response: Pick<AxiosResponse<unknown>, 'status' | 'statusText' | 'headers' | 'data'>;
      // The headers of a returned response end the wait for a response.
      const consumer = chunks ? chunkConsumer(options, () => clearTimeout(timer)) : undefined;
      try {
        if (consumer && this.readsFromSocket(prepared)) {
          const res = await socketGet({
            method: prepared.method,
            url: prepared.url,
            headers: context.headers,
            signal,
            tls: this.tlsOptions(),
            isOk,
            onHeaders: (head) => consumer.onHeaders(head.headers, head.status),
            onChunk: consumer.onChunk,
            idleTimeoutMs: timeoutMs,
            idleError: () =>
              new TimeoutError(`${prepared.method} ${prepared.displayUrl}: no data for ${timeoutMs} ms`, timeoutMs),
            maxErrorBodyBytes: MAX_ERROR_BODY_BYTES,
          });
          response = { status: res.status, statusText: res.statusText, headers: res.headers, data: res.errorBody };
        } else {
          response = await this.axios.request<unknown>(config);
        }
      } catch (error) {
        if (consumer?.failed) throw consumer.error;
        // the socket read's idle limit
        if (TimeoutError.isInstance(error)) throw error;
        throw this.translateFailure(error, prepared, options.signal, timeout.signal);
      }
      if (responseType === 'stream' || chunks) clearTimeout(timer);
      const responseHeaders = flattenHeaders(response.headers);
      const durationMs = this.clock.now() - started;
      if (this.hooks.onResponse)
        await this.hooks.onResponse({ ...context, status: response.status, responseHeaders, durationMs });
      const ok = isOk(response.status);
      if (this.logger !== noopLogger) {
        this.logger.debug(
          { method: prepared.method, url: logUrl(prepared.url), status: response.status, attempt, durationMs },
          'HTTP request',
        );
      }
      if (!ok) {
        const raw =
          response.data instanceof Readable ? await readCapped(response.data, MAX_ERROR_BODY_BYTES) : response.data;
        throw new HttpError({
          method: prepared.method,
          url: prepared.displayUrl,
          status: response.status,
          statusText: response.statusText,
          responseBody: decodeErrorBody(raw),
          responseHeaders,
        });
      }
      if (consumer) {
        if (response.data instanceof Readable) {
          // The axios path (proxy, custom adapter): the same hand-over from the stream.
          try {
            consumer.onHeaders(responseHeaders, response.status);
            for await (const chunk of response.data) consumer.onChunk(chunk as Buffer);
          } catch (error) {
            response.data.destroy();
            if (consumer.failed) throw consumer.error;
            throw this.translateFailure(error, prepared, options.signal, timeout.signal);
          }
        }
        return { status: response.status, headers: responseHeaders, data: undefined as T, url: prepared.displayUrl };
      }
      const data = this.decodeBody(response.data, responseType, prepared);
      if (options.schema) {
        const result = options.schema.safeParse(data);
        if (!result.success) {
          throw ValidationError.fromZod(
            result.error,
            `Invalid response from ${prepared.method} ${prepared.displayUrl}`,
          );
        }
        return { status: response.status, headers: responseHeaders, data: result.data, url: prepared.displayUrl };
      }
      return { status: response.status, headers: responseHeaders, data: data as T, url: prepared.displayUrl };
    } catch (error) {
      if (this.hooks.onError) await this.hooks.onError({ ...context, error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private decodeBody(raw: unknown, responseType: ResponseType, prepared: Prepared): unknown {
    if (responseType === 'json') {
      const text = typeof raw === 'string' ? raw : raw === undefined || raw === null ? '' : String(raw as string);
      if (text.trim() === '') return undefined;
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new ValidationError(
          `Invalid response from ${prepared.method} ${prepared.displayUrl}`,
          [
            {
              path: '',
              message: 'the body is not valid JSON',
              code: 'invalid_json',
              expected: 'json',
              received: 'string',
            },
          ],
          { cause: error },
        );
      }
    }
    if (responseType === 'arraybuffer') return Buffer.isBuffer(raw) ? raw : Buffer.from(raw as ArrayBuffer);
    return raw;
  }

  private translateFailure(
    error: unknown,
    prepared: Prepared,
    callerSignal: AbortSignal | undefined,
    timeoutSignal: AbortSignal,
  ): unknown {
    if (callerSignal?.aborted) return callerSignal.reason;
    if (timeoutSignal.aborted) return timeoutSignal.reason;
    return new HttpError({
      method: prepared.method,
      url: prepared.displayUrl,
      cause: sanitizeCause(error),
      message: `${prepared.method} ${prepared.displayUrl}: no response (${(error as { code?: unknown }).code ?? (error as Error).message})`,
    });
  }
}
