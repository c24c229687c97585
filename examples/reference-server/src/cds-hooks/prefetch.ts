/**
 * Prefetch (§ Providing FHIR Resources to a CDS Service): each service declares templates; a value the client sent
 * is used as it is, a missing one is fetched from the client's `fhirServer` with the `fhirAuthorization` token, and a
 * required one that can be had neither way answers 412 Precondition Failed.
 * @see https://cds-hooks.hl7.org/2.0/#prefetch-template
 */
import type { Bundle, FhirResource, OperationOutcome } from 'fhir/r4.js';
import { ApiError } from '../http/errors.js';
import type { HookRequest } from './schemas.js';

/** One prefetch template of a service. */
export interface PrefetchTemplate {
  /** A FHIR read or search with `{{context.<field>}}` tokens. */
  query: string;
  /** Without it the service cannot answer (412). */
  required: boolean;
}

/** What a template resolved to: a resource, a search Bundle, or nothing (the client's `null`, or not found). */
export type PrefetchValue = FhirResource | Bundle | null;

/**
 * Replaces `{{context.<field>}}` tokens with the context's root-level primitive values (URL-encoded).
 * @returns undefined when a token names a field the context lacks
 */
export function fillTemplate(query: string, context: Record<string, unknown>): string | undefined {
  let missing = false;
  const filled = query.replace(/\{\{\s*context\.(\w+)\s*\}\}/g, (_token, field: string) => {
    const value = context[field];
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      missing = true;
      return '';
    }
    return encodeURIComponent(String(value));
  });
  return missing ? undefined : filled;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Options of {@link resolvePrefetch}. */
export interface ResolvePrefetchOptions {
  /** Bound on each FHIR request to the client's server, ms (default 3000: the whole call should take ~500 ms). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Resolves a service's templates for a call.
 * @param templates - the service's templates by key
 * @param request - the validated hook request
 * @throws {@link ApiError} 412 when a required template is neither prefetched nor fetchable
 */
export async function resolvePrefetch(
  templates: Readonly<Record<string, PrefetchTemplate>>,
  request: HookRequest,
  options: ResolvePrefetchOptions = {},
): Promise<Record<string, PrefetchValue>> {
  const resolved: Record<string, PrefetchValue> = {};
  const sent = request.prefetch ?? {};
  await Promise.all(
    Object.entries(templates).map(async ([key, template]) => {
      const given = sent[key];
      // A resource or Bundle as sent; an OperationOutcome means the client failed to prefetch, so fetch it ourselves.
      if (given !== undefined && !isOperationOutcome(given) && typeof given !== 'string') {
        resolved[key] = given as PrefetchValue;
        return;
      }
      if (given === null) {
        resolved[key] = null;
        return;
      }
      const query = fillTemplate(template.query, request.context);
      const fetched = query === undefined ? undefined : await fetchFromClient(query, request, options);
      if (fetched !== undefined) resolved[key] = fetched;
      else if (template.required)
        throw new ApiError(
          412,
          'processing',
          `Prefetch "${key}" (${template.query}) was not sent and cannot be fetched: send it, or send fhirServer with fhirAuthorization`,
        );
    }),
  );
  return resolved;
}

function isOperationOutcome(value: unknown): value is OperationOutcome {
  return (value as { resourceType?: unknown } | null)?.resourceType === 'OperationOutcome';
}

/** A FHIR read or search on the client's server; undefined when it cannot be had (no token, error, not https). */
async function fetchFromClient(
  query: string,
  request: HookRequest,
  options: ResolvePrefetchOptions,
): Promise<PrefetchValue | undefined> {
  const auth = request.fhirAuthorization;
  if (!auth || !request.fhirServer) return undefined;
  const base = new URL(request.fhirServer);
  // The specification requires https with real data; plain http is accepted only on this machine (tests, sandbox).
  if (base.protocol !== 'https:' && !LOOPBACK.has(base.hostname)) return undefined;
  const url = `${request.fhirServer.replace(/\/+$/, '')}/${query.replace(/^\/+/, '')}`;
  try {
    const response = await (options.fetch ?? fetch)(url, {
      headers: { authorization: `Bearer ${auth.access_token}`, accept: 'application/fhir+json, application/json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 3_000),
    });
    if (response.status === 404 || response.status === 410) return null;
    if (!response.ok) return undefined;
    const body = (await response.json()) as { resourceType?: unknown };
    if (typeof body?.resourceType !== 'string' || isOperationOutcome(body)) return undefined;
    return body as PrefetchValue;
  } catch {
    return undefined;
  }
}

/**
 * The resources of a prefetch value of a given type (from a Bundle's entries, or the value itself).
 * @param value - a resolved prefetch value
 * @param resourceType - e.g. `Condition`
 */
export function resourcesOf<T extends FhirResource>(
  value: PrefetchValue | undefined,
  resourceType: T['resourceType'],
): T[] {
  if (!value) return [];
  if (value.resourceType === 'Bundle')
    return (value.entry ?? []).flatMap((e) => (e.resource?.resourceType === resourceType ? [e.resource as T] : []));
  return value.resourceType === resourceType ? [value as T] : [];
}
