/**
 * The FHIR server adapter over fhir-kit-client: conditional create (`If-None-Exist`) and conditional
 * update keyed by identifiers, transactions, version-aware updates (`If-Match`), paging as an async
 * iterator, OperationOutcomes as typed errors, retries for idempotent operations only, and per-
 * identifier serialisation so parallel syncs of one patient never duplicate it.
 * @packageDocumentation
 */
import { Client, type FhirResource as KitResource, type RequestOptions } from 'fhir-kit-client';
import {
  HttpError,
  TimeoutError,
  ValidationError,
  bearerAuth,
  createRetryPolicy,
  noopLogger,
  systemClock,
  type AuthRequest,
  type AuthStrategy,
  type Clock,
  type Logger,
  type RetryPolicy,
  type RetryPolicyOptions,
} from '@cdss/core';
import { z } from 'zod';
import type { Bundle, BundleEntry, Identifier, OperationOutcome, Resource } from 'fhir/r4.js';
import { identifierQuery } from '../ai-result.js';
import { parseInput } from '../util.js';
import { FhirConflictError, FhirServerError, fhirErrorFor } from './errors.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { BatchEntriesText } from '../outbox/types.js';

/** Options of {@link FhirAdapter}: only `baseUrl` is required. */
export interface FhirAdapterOptions {
  /** The FHIR base URL, e.g. `http://127.0.0.1:28090/fhir`. */
  baseUrl: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /**
   * How requests are authenticated: an `AuthStrategy` of `@cdss/core`, e.g. `oauth2Auth(createSmartBackendServicesTokenProvider(...))`
   * for SMART Backend Services, `bearerAuth(token)` or `basicAuth(user, password)`. It authorises every attempt, and
   * a 401 is retried once when the strategy says its credentials were refreshed. Default none.
   */
  auth?: AuthStrategy;
  /** Shorthand for `auth: bearerAuth(token)` (not together with `auth`). */
  bearerToken?: string;
  /** Per-attempt timeout. Default 30 000 ms. */
  timeoutMs?: number;
  /** Retry policy (options for `createRetryPolicy`, a policy, or `false`). Applies to idempotent operations only. */
  retry?: RetryPolicyOptions | RetryPolicy | false;
  /** Logger (no PHI is logged: only method, path without query, status, attempt). Default no-op. */
  logger?: Logger;
  /** Clock for backoff sleeps. Default the system clock. */
  clock?: Clock;
  /** An injected fhir-kit-client instance (tests, custom auth). Default one built from the options. */
  client?: Client;
  /** Shared lock table, when several adapters in one process write to the same server. */
  mutex?: KeyedMutex;
  /** Pages {@link FhirAdapter.searchAll} follows at most (a guard against `next` loops). Default 1000. */
  maxPages?: number;
}

const optionsSchema = z.object({
  baseUrl: z.url().refine((u) => /^https?:/i.test(u), 'Expected an http(s) URL'),
  timeoutMs: z.number().int().positive().default(30_000),
  maxPages: z.number().int().positive().default(1000),
});

/** The outcome of a write. */
export interface WriteResult<T extends Resource> {
  /** The resource as the server returned it (or as sent, with the id from `Location`, when it returned none). */
  resource: T;
  id: string;
  versionId: string | undefined;
  /** True when the server created it (201); false when a conditional write matched an existing one. */
  created: boolean;
  status: number;
}

/** Options of one adapter call. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of {@link FhirAdapter.batch}. */
export interface BatchOptions extends CallOptions {
  /**
   * Sends `Prefer: return=minimal`: the server may leave the resources out of the batch-response's entries (HAPI FHIR
   * and the sandbox's embedded server do), so that a caller that needs only each entry's outcome does not receive and
   * parse every resource it sent. Default false.
   * @see https://hl7.org/fhir/R4/http.html#ops
   */
  returnMinimal?: boolean;
}

/** Search parameters: name -> value (arrays repeat the parameter). */
export type FhirSearchParams = Record<string, string | number | boolean | readonly (string | number)[]>;

function isKitError(
  e: unknown,
): e is Error & { response: { status: number; data: unknown }; config?: { headers?: Headers } } {
  return (
    typeof e === 'object' &&
    e !== null &&
    'response' in e &&
    typeof (e as { response?: { status?: unknown } }).response?.status === 'number'
  );
}

function isOutcome(v: unknown): v is OperationOutcome {
  return typeof v === 'object' && v !== null && (v as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}

function headersOf(h: Headers | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  h?.forEach((v, k) => {
    out[k.toLowerCase()] = v;
  });
  return out;
}

/** `W/"3"` or `"3"` -> `3`. */
function versionFromEtag(etag: string | null | undefined): string | undefined {
  return etag ? /^(?:W\/)?"?([^"]*)"?$/.exec(etag)?.[1] : undefined;
}

/** `.../Patient/123/_history/2` -> {id: 123, version: 2}. */
function parseLocation(loc: string | null | undefined): { id?: string; version?: string } {
  const m = loc
    ? /\/?([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/([A-Za-z0-9.-]{1,64}))?\/?$/.exec(loc.split('?')[0] ?? '')
    : null;
  return m ? { id: m[2], ...(m[3] ? { version: m[3] } : {}) } : {};
}

function pathOnly(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

/**
 * The keys a conditional URL locks: `Type?identifier=system|value` for each identifier parameter, so
 * any two writes that may match the same resource run one after the other.
 */
function conditionalKeys(resourceType: string, query: string): string[] {
  const keys: string[] = [];
  for (const part of query.split('&')) {
    const [name, value] = part.split('=');
    if (name === 'identifier' && value) keys.push(`${resourceType}|${decodeURIComponent(value)}`);
  }
  return keys.length > 0 ? keys : [`${resourceType}?${query}`];
}

/**
 * A FHIR R4 server, through fhir-kit-client. Every method throws typed errors:
 * {@link FhirConflictError} (409/412), {@link FhirNotFoundError}, {@link FhirInvalidResourceError}
 * (400/422), {@link FhirServerError} (other statuses), `HttpError` without status (no response),
 * `TimeoutError`, `RetryError`-free: after the last retry the last error is thrown as is.
 */
export class FhirAdapter {
  /** The fhir-kit-client instance in use. */
  readonly client: Client;
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly maxPages: number;
  private readonly policy: RetryPolicy | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly mutex: KeyedMutex;
  private readonly auth: AuthStrategy | undefined;

  /**
   * @param options - see {@link FhirAdapterOptions}
   * @throws `ValidationError` (`@cdss/core`) for invalid options
   */
  constructor(options: FhirAdapterOptions) {
    const parsed = parseInput(optionsSchema, options, 'FhirAdapter options');
    if (options.auth && options.bearerToken !== undefined)
      throw new ValidationError('Invalid FhirAdapter options', [
        { path: 'bearerToken', message: 'give auth or bearerToken, not both', code: 'invalid_value' },
      ]);
    this.baseUrl = parsed.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = parsed.timeoutMs;
    this.maxPages = parsed.maxPages;
    this.auth = options.auth ?? (options.bearerToken !== undefined ? bearerAuth(options.bearerToken) : undefined);
    this.client =
      options.client ?? new Client({ baseUrl: this.baseUrl, customHeaders: { ...(options.headers ?? {}) } });
    this.policy =
      options.retry === false
        ? undefined
        : options.retry && 'nextDelay' in options.retry
          ? options.retry
          : createRetryPolicy(options.retry ?? {});
    this.logger = options.logger ?? noopLogger;
    this.clock = options.clock ?? systemClock;
    this.mutex = options.mutex ?? new KeyedMutex();
  }

  // ------------------------------------------------------------------------------------ plumbing

  private async exchange<T>(
    method: string,
    url: string,
    idempotent: boolean,
    call: (options: RequestOptions & { headers: Record<string, string> }) => Promise<KitResource>,
    opts: CallOptions = {},
  ): Promise<{ body: T; status: number; headers: Record<string, string> }> {
    let reauthorized = false;
    for (let attempt = 1; ; attempt++) {
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
      // Credentials for this attempt only (fhir-kit-client's shared headers are never mutated).
      const authorized: AuthRequest = { method, url: this.absolute(url), headers: {} };
      // A strategy that cannot authorise (its token endpoint refuses or is down) fails the call as it is: nothing was sent.
      await this.auth?.authorize(authorized);
      try {
        const body = await call({ signal, headers: authorized.headers });
        const http = Client.httpFor(body);
        const status = http.response?.status ?? 200;
        this.logger.debug({ method, path: pathOnly(url), status, attempt }, 'fhir request');
        return { body: body as T, status, headers: headersOf(http.response?.headers) };
      } catch (raw) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? raw;
        const error = this.toError(raw, method, url, timeout.aborted);
        const status = HttpError.isInstance(error) ? error.status : undefined;
        // A refused token: the server did not act on the request, so any request may be sent once more.
        if (status === 401 && !reauthorized && this.auth?.onUnauthorized) {
          reauthorized = true;
          if (await this.auth.onUnauthorized(authorized)) {
            this.logger.debug(
              { method, path: pathOnly(url), attempt },
              'fhir request unauthorized, credentials refreshed',
            );
            attempt -= 1; // not one of the retry policy's attempts
            continue;
          }
        }
        const delay =
          this.policy && idempotent
            ? this.policy.nextDelay({ error, attempt, method, hasIdempotencyKey: true, now: this.clock.now() })
            : undefined;
        if (delay === undefined) {
          this.logger.debug({ method, path: pathOnly(url), status, attempt }, 'fhir request failed');
          throw error;
        }
        this.logger.warn(
          { method, path: pathOnly(url), status, attempt, delayMs: Math.round(delay) },
          'fhir request failed, retrying',
        );
        await this.clock.sleep(delay, opts.signal);
      }
    }
  }

  private absolute(url: string): string {
    return /^https?:/i.test(url) ? url : `${this.baseUrl}/${url.replace(/^\//, '')}`;
  }

  private toError(raw: unknown, method: string, url: string, timedOut: boolean): Error {
    const full = this.absolute(url);
    if (isKitError(raw)) {
      const data = raw.response.data;
      return fhirErrorFor({
        method,
        url: full,
        status: raw.response.status,
        responseBody: data,
        responseHeaders: headersOf(raw.config?.headers),
        outcome: isOutcome(data) ? data : undefined,
        cause: raw,
      });
    }
    if (timedOut) return new TimeoutError(`${method} ${full} timed out after ${this.timeoutMs} ms`, this.timeoutMs);
    return new HttpError({
      method,
      url: full,
      cause: raw,
      message: `${method} ${full}: no response (${(raw as Error)?.message ?? 'network error'})`,
    });
  }

  private writeResult<T extends Resource>(
    sent: T,
    r: { body: unknown; status: number; headers: Record<string, string> },
  ): WriteResult<T> {
    const body = (
      r.body && typeof r.body === 'object' && (r.body as Resource).resourceType === sent.resourceType
        ? r.body
        : undefined
    ) as T | undefined;
    const loc = parseLocation(r.headers['location'] ?? r.headers['content-location']);
    const id = body?.id ?? loc.id;
    if (!id)
      throw new FhirServerError({
        method: 'PUT',
        url: this.baseUrl,
        status: r.status,
        message: 'The FHIR server returned neither a resource nor a Location',
      });
    const versionId = body?.meta?.versionId ?? versionFromEtag(r.headers['etag']) ?? loc.version;
    return { resource: body ?? ({ ...sent, id } as T), id, versionId, created: r.status === 201, status: r.status };
  }

  // ------------------------------------------------------------------------------------ reads

  /**
   * Reads a resource.
   * @throws {@link FhirNotFoundError} when it does not exist
   */
  async read<T extends Resource>(resourceType: T['resourceType'], id: string, opts?: CallOptions): Promise<T> {
    const r = await this.exchange<T>(
      'GET',
      `${resourceType}/${id}`,
      true,
      (options) => this.client.read({ resourceType, id, options }),
      opts,
    );
    return r.body;
  }

  /** Searches one page. */
  async search<T extends Resource = Resource>(
    resourceType: string,
    params: FhirSearchParams = {},
    opts?: CallOptions,
  ): Promise<Bundle<T>> {
    const r = await this.exchange<Bundle<T>>(
      'GET',
      resourceType,
      true,
      (options) => this.client.search({ resourceType, searchParams: params as Record<string, string>, options }),
      opts,
    );
    return r.body;
  }

  /**
   * Every page of a search, following `next` links (only to this server's origin) until a page has no
   * `next` or no entries (HAPI can announce an empty last page, hapifhir/hapi-fhir#5237).
   */
  async *pages<T extends Resource = Resource>(
    resourceType: string,
    params: FhirSearchParams = {},
    opts?: CallOptions,
  ): AsyncGenerator<Bundle<T>> {
    let page = await this.search<T>(resourceType, params, opts);
    const seen = new Set<string>();
    const origin = new URL(this.baseUrl).origin;
    for (let n = 1; ; n++) {
      yield page;
      const next = page.link?.find((l) => l.relation === 'next')?.url;
      if (!next || !page.entry?.length) return;
      const abs = new URL(next, `${this.baseUrl}/`).toString();
      if (new URL(abs).origin !== origin)
        throw new FhirServerError({ method: 'GET', url: abs, message: 'A next link points outside the FHIR server' });
      if (seen.has(abs) || n >= this.maxPages) return;
      seen.add(abs);
      const r = await this.exchange<Bundle<T>>(
        'GET',
        abs,
        true,
        (options) => this.client.request(abs, { method: 'GET', options }),
        opts,
      );
      page = r.body;
    }
  }

  /** Every matching resource across all pages (search-mode `match` entries only). */
  async *searchAll<T extends Resource = Resource>(
    resourceType: string,
    params: FhirSearchParams = {},
    opts?: CallOptions,
  ): AsyncGenerator<T> {
    for await (const page of this.pages<T>(resourceType, params, opts)) {
      for (const e of page.entry ?? []) {
        if (e.resource && (e.search?.mode ?? 'match') === 'match' && e.resource.resourceType === resourceType)
          yield e.resource;
      }
    }
  }

  /** Finds the resources carrying an identifier. */
  async findByIdentifier<T extends Resource = Resource>(
    resourceType: T['resourceType'],
    identifier: Identifier,
    opts?: CallOptions,
  ): Promise<T[]> {
    const out: T[] = [];
    for await (const r of this.searchAll<T>(
      resourceType,
      { identifier: `${identifier.system ?? ''}|${identifier.value ?? ''}` },
      opts,
    ))
      out.push(r);
    return out;
  }

  // ------------------------------------------------------------------------------------ writes

  /** Plain create (POST). Not idempotent, so never retried; prefer {@link createIfNoneExist}. */
  async create<T extends Resource>(resource: T, opts?: CallOptions): Promise<WriteResult<T>> {
    const r = await this.exchange(
      'POST',
      resource.resourceType,
      false,
      (options) => this.client.create({ resourceType: resource.resourceType, body: kit(resource), options }),
      opts,
    );
    return this.writeResult(resource, r);
  }

  /**
   * Conditional create keyed by an identifier (`If-None-Exist: identifier=system|value`): creates the
   * resource unless one with that identifier exists, which is returned instead (`created: false`).
   * Idempotent, so retried; serialised per identifier in this process; a lost race with another
   * process (a conflict on the match URL) is retried once, and then finds the winner. HAPI 8 keeps
   * conditional creates unique across processes (a unique index on the match URL).
   */
  async createIfNoneExist<T extends Resource>(
    resource: T,
    identifier: Identifier,
    opts?: CallOptions,
  ): Promise<WriteResult<T>> {
    const query = identifierQuery(identifier);
    return this.mutex.run(conditionalKeys(resource.resourceType, query), () =>
      this.conditionalCreate(resource, query, opts),
    );
  }

  private conditionalCreate<T extends Resource>(
    resource: T,
    query: string,
    opts?: CallOptions,
  ): Promise<WriteResult<T>> {
    return this.withRaceRetry(async () => {
      const r = await this.exchange(
        'POST',
        resource.resourceType,
        true,
        (options) =>
          this.client.create({
            resourceType: resource.resourceType,
            body: kit(resource),
            options: { ...options, headers: { ...options.headers, 'if-none-exist': query } },
          }),
        opts,
      );
      return this.writeResult(resource, r);
    });
  }

  /**
   * Create-or-update keyed by an identifier: a conditional create (`If-None-Exist`), and when a
   * resource with the identifier exists, an update of that resource by id with `If-Match` on the
   * version just returned (skipped when nothing changed). A conflict (another writer got in between)
   * re-runs both steps after a short jittered pause, up to 10 attempts in all.
   *
   * Why not one `PUT Type?identifier=...` (FHIR conditional update)? HAPI FHIR 8.8.0 does not keep
   * conditional updates unique: parallel ones from independent clients created a duplicate in 1 of
   * 12 runs here, while conditional creates stayed unique. Within this process writes of one
   * identifier are also serialised. Across processes, HAPI keeps a conditional create unique only
   * while the resource is at its first version: its first update deletes the match URL's unique row
   * (hapifhir/hapi-fhir#4609), so a conditional create still in flight at that moment can create a
   * second resource, and the next write of that identifier fails with `multiple-matches`. Independent
   * processes should therefore not upsert one identifier at the same moment; the sync outbox claims
   * at most one write per key at a time, in every process that drains it.
   * @throws {@link FhirConflictError} `multiple-matches` when several resources carry the identifier;
   *   another conflict after 10 lost races
   */
  async upsert<T extends Resource>(resource: T, identifier: Identifier, opts?: CallOptions): Promise<WriteResult<T>> {
    const query = identifierQuery(identifier);
    const { id: _id, meta: _meta, ...body } = resource as T & { id?: string };
    const wanted = body as unknown as T;
    return this.mutex.run(conditionalKeys(resource.resourceType, query), async () => {
      for (let attempt = 1; ; attempt++) {
        const found = await this.conditionalCreate(wanted, query, opts);
        if (found.created) return found;
        let current = found.resource;
        if (current.meta?.versionId === undefined) current = await this.read<T>(resource.resourceType, found.id, opts);
        if (sameContent(current, wanted)) return { ...found, resource: current, created: false };
        try {
          const ifMatch = current.meta?.versionId;
          const updated = await this.update({ ...wanted, id: found.id } as T & { id: string }, {
            ...(ifMatch ? { ifMatch } : {}),
            ...(opts?.signal ? { signal: opts.signal } : {}),
          });
          return { ...updated, created: false };
        } catch (e) {
          // A lost race: 412 on the stale If-Match, or HAPI's 409 "version constraint failure" when two
          // updates commit at once (hapifhir/hapi-fhir#5288). Re-read and try again after a short jittered pause.
          if (!(e instanceof FhirConflictError) || e.kind === 'multiple-matches' || attempt >= UPSERT_ATTEMPTS) throw e;
          await this.clock.sleep(Math.random() * 25 * attempt, opts?.signal);
        }
      }
    });
  }

  /**
   * Update by id. With `ifMatch` (a version id) the server rejects a stale version: that is a
   * {@link FhirConflictError} (`version-conflict`), and such an update is not retried (a retry after
   * a lost response would itself conflict). Without it the update is idempotent and retried.
   */
  async update<T extends Resource>(
    resource: T & { id: string },
    options: CallOptions & { ifMatch?: string } = {},
  ): Promise<WriteResult<T>> {
    const ifMatch: Record<string, string> = options.ifMatch ? { 'if-match': `W/"${options.ifMatch}"` } : {};
    const r = await this.exchange(
      'PUT',
      `${resource.resourceType}/${resource.id}`,
      options.ifMatch === undefined,
      (o) =>
        this.client.update({
          resourceType: resource.resourceType,
          id: resource.id,
          body: kit(resource),
          options: { ...o, headers: { ...o.headers, ...ifMatch } },
        }),
      options,
    );
    return this.writeResult(resource, r);
  }

  /** Deletes a resource (idempotent: retried). */
  async delete(resourceType: string, id: string, opts?: CallOptions): Promise<void> {
    await this.exchange(
      'DELETE',
      `${resourceType}/${id}`,
      true,
      (options) => this.client.delete({ resourceType, id, options }),
      opts,
    );
  }

  /**
   * Posts a transaction Bundle. It is retried only when every entry is idempotent (GET, PUT, DELETE,
   * or POST with `ifNoneExist`), as the mapper's bundles are; it is serialised against other writes
   * on the identifiers its conditional entries name.
   * @returns the transaction-response Bundle
   */
  async transaction(bundle: Bundle, opts?: CallOptions): Promise<Bundle> {
    if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction') {
      throw new ValidationError('Invalid transaction', [
        { path: 'type', message: 'Expected a Bundle of type transaction', code: 'invalid_value' },
      ]);
    }
    const entries = bundle.entry ?? [];
    const idempotent = entries.every((e) => isIdempotentEntry(e));
    const keys = entries.flatMap((e) => entryKeys(e));
    return this.mutex.run(keys, () =>
      this.withRaceRetry(async () => {
        const r = await this.exchange<Bundle>(
          'POST',
          '/',
          idempotent,
          (options) => this.client.transaction({ body: kit(bundle), options }),
          opts,
        );
        return r.body;
      }, idempotent),
    );
  }

  /**
   * Posts a `batch` Bundle: its entries succeed or fail one by one (unlike a transaction), so many independent
   * writes (e.g. AuditEvents) cost one request. Every entry must be idempotent (PUT, DELETE, GET, or POST with
   * `ifNoneExist`), which makes sending the whole Bundle again safe: it is retried, and a failed entry fails the
   * call so that the caller sends it again.
   * @param opts - `returnMinimal` asks the server to leave the resources out of the response's entries
   * @returns the batch-response Bundle, when every entry succeeded
   * @throws `ValidationError` for a Bundle that is not a batch of idempotent entries; the error of a failed entry
   *   ({@link fhirErrorFor}), a retryable one (5xx, 429, 408, 409, 412) before a rejection of the entry itself
   * @see https://hl7.org/fhir/R4/http.html#transaction
   */
  async batch(bundle: Bundle, opts?: BatchOptions): Promise<Bundle> {
    const entries = bundle.entry ?? [];
    if (bundle.resourceType !== 'Bundle' || bundle.type !== 'batch' || !entries.every((e) => isIdempotentEntry(e))) {
      throw new ValidationError('Invalid batch', [
        { path: 'type', message: 'Expected a Bundle of type batch with idempotent entries', code: 'invalid_value' },
      ]);
    }
    return this.postBatch(kit(bundle), entries.length, opts);
  }

  /**
   * {@link FhirAdapter.batch} for entries held as JSON text (an outbox that stores its writes as text): posts one batch
   * Bundle of all the given entries, in order, without parsing or serialising them again, with the same checks, retries,
   * errors and result.
   * @param parts - runs of entries: each the JSON texts of entries, comma-separated, and the entries' `request`s
   * @param opts - as for {@link FhirAdapter.batch}
   * @throws as {@link FhirAdapter.batch}; `ValidationError` when there are no entries or one is not idempotent
   */
  async batchText(parts: readonly BatchEntriesText[], opts?: BatchOptions): Promise<Bundle> {
    const requests = parts.flatMap((part) => part.requests);
    if (requests.length === 0 || !requests.every((request) => isIdempotentEntry({ request }))) {
      throw new ValidationError('Invalid batch', [
        { path: 'entry', message: 'Expected idempotent batch entries', code: 'invalid_value' },
      ]);
    }
    const body = `{"resourceType":"Bundle","type":"batch","entry":[${parts.map((part) => part.json).join(',')}]}`;
    return this.postBatch(body, requests.length, opts);
  }

  /** Posts a batch Bundle (an object, or its JSON text) of `count` entries and checks each entry's outcome. */
  private async postBatch(body: KitResource | string, count: number, opts: BatchOptions | undefined): Promise<Bundle> {
    const r = await this.exchange<Bundle>(
      'POST',
      '/',
      true,
      (options) =>
        this.client.batch({
          // fhir-kit-client sends a string body as it is.
          body: body as KitResource,
          options: opts?.returnMinimal ? { ...options, headers: { ...options.headers, Prefer: MINIMAL } } : options,
        }),
      opts,
    );
    const failed = (r.body.entry ?? []).flatMap((entry, index) => {
      const status = Number.parseInt(entry.response?.status ?? '', 10);
      return status >= 200 && status < 300 ? [] : [{ index, status, outcome: entry.response?.outcome }];
    });
    if ((r.body.entry?.length ?? 0) !== count) failed.push({ index: -1, status: 502, outcome: undefined });
    const worst =
      failed.find((f) => !(f.status >= 400 && f.status < 500) || RETRYABLE_ENTRY.has(f.status)) ?? failed[0];
    if (!worst) return r.body;
    throw fhirErrorFor({
      method: 'POST',
      url: this.baseUrl,
      status: Number.isNaN(worst.status) ? 502 : worst.status,
      outcome: isOutcome(worst.outcome) ? worst.outcome : undefined,
      message: `POST batch: ${failed.length} of ${count} entries failed (first: ${
        worst.index < 0 ? 'the response has the wrong number of entries' : `entry ${worst.index}, ${worst.status}`
      })`,
    });
  }

  /**
   * Validates a resource on the server (`POST [type]/$validate`).
   * @returns the OperationOutcome (a 4xx with an OperationOutcome is returned, not thrown)
   */
  async validate(resource: Resource, opts?: CallOptions): Promise<OperationOutcome> {
    try {
      const r = await this.exchange<OperationOutcome>(
        'POST',
        `${resource.resourceType}/$validate`,
        true,
        (options) =>
          this.client.operation({
            name: '$validate',
            resourceType: resource.resourceType,
            method: 'POST',
            input: kit(resource),
            options,
          }),
        opts,
      );
      return r.body;
    } catch (e) {
      if (FhirServerError.isInstance(e) && e.outcome && e.status !== undefined && e.status < 500) return e.outcome;
      throw e;
    }
  }

  /** Conditional writes race in HAPI when two processes write one identifier: retry once after a conflict. */
  private async withRaceRetry<T>(fn: () => Promise<T>, enabled = true): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!enabled || !(e instanceof FhirConflictError) || e.kind === 'version-conflict') throw e;
      this.logger.warn({ kind: e.kind }, 'conditional write conflicted, retrying once');
      return fn();
    }
  }
}

/** Attempts of {@link FhirAdapter.upsert} when other writers keep winning the race. */
const UPSERT_ATTEMPTS = 10;

/** The `Prefer` header of {@link BatchOptions.returnMinimal}. */
const MINIMAL = 'return=minimal';

/** 4xx statuses of a batch entry that sending it again may cure (timeout, conflict, version race, throttling). */
const RETRYABLE_ENTRY = new Set([408, 409, 412, 429]);

/** Canonical JSON (sorted keys) of a resource without id, meta and text, for "did anything change". */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sameContent(a: Resource, b: Resource): boolean {
  const strip = ({ id: _i, meta: _m, text: _t, ...rest }: Resource & { text?: unknown }): unknown => rest;
  return canonical(strip(a)) === canonical(strip(b));
}

/** fhir-kit-client types resources as an index signature; ours are the @types/fhir interfaces. */
function kit(resource: Resource): KitResource {
  return resource as unknown as KitResource;
}

function isIdempotentEntry(e: BundleEntry): boolean {
  const m = e.request?.method;
  return (
    m === 'GET' || m === 'HEAD' || m === 'PUT' || m === 'DELETE' || (m === 'POST' && Boolean(e.request?.ifNoneExist))
  );
}

function entryKeys(e: BundleEntry): string[] {
  const req = e.request;
  if (!req) return [];
  if (req.method === 'POST' && req.ifNoneExist) return conditionalKeys(req.url, req.ifNoneExist);
  const [type, query] = req.url.split('?');
  return query && type ? conditionalKeys(type, query) : [];
}
