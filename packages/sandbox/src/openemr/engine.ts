/**
 * The OpenEMR emulator's framework-free core: route table, authentication and scope checks with
 * OpenEMR's algorithm (notes §2.6) and failure statuses per version (notes §2.7), dispatch, and
 * persistence after each changing request. Express (`createOpenEmrEmulator`) and msw adapt to it.
 */
import { z } from 'zod';
import {
  DEFAULT_TOKEN_LIFETIMES,
  json,
  kernelError,
  type EmulatorRequest,
  type EmulatorResponse,
  type EngineContext,
  type OpenEmrVersion,
  type RouteInput,
  type TokenLifetimes,
} from './context.js';
import { FhirApi } from './fhir-api.js';
import { OAuthServer } from './oauth.js';
import { hasScope, permissionFor } from './scopes.js';
import { seedOpenEmr } from './seed.js';
import { StandardApi } from './standard-api.js';
import { OpenEmrStore } from './store.js';

/** Options of the OpenEMR emulator. */
export interface OpenEmrEmulatorOptions {
  /** The OpenEMR version whose behaviour to reproduce. Default `'8'`. */
  version?: OpenEmrVersion | undefined;
  /** Folder for the JSON table files; omitted = in memory only. */
  dataDir?: string | undefined;
  /** Token lifetimes in seconds (OpenEMR's defaults otherwise). Short ones test expiry. */
  tokenLifetimes?: Partial<TokenLifetimes> | undefined;
  /**
   * Seed demo data into an empty database: `true` (default), `false` (empty database with only the admin
   * user and the sandbox client), or `{ extraPatients }` to add generated patients for paging and load.
   */
  seed?: boolean | { extraPatients?: number | undefined } | undefined;
  /** Multisite name in `/apis/{site}` and `/oauth2/{site}`. Default `default`. */
  site?: string | undefined;
  /** Whether the password grant is enabled (off by default in OpenEMR; on here). Default true. */
  passwordGrant?: boolean | undefined;
  /** The user the non-interactive `/authorize` logs in. Default `admin`. */
  autoLoginUser?: string | undefined;
  /** Time source in epoch milliseconds, for token expiry. Default `Date.now`. */
  now?: (() => number) | undefined;
}

const optionsSchema = z.object({
  version: z.enum(['7.0', '8']).optional(),
  dataDir: z.string().min(1).optional(),
  tokenLifetimes: z
    .object({
      accessTokenSeconds: z.number().positive().optional(),
      refreshTokenSeconds: z.number().positive().optional(),
      clientCredentialsSeconds: z.number().positive().optional(),
      authorizationCodeSeconds: z.number().positive().optional(),
    })
    .optional(),
  seed: z.union([z.boolean(), z.object({ extraPatients: z.number().int().min(0).max(100_000).optional() })]).optional(),
  site: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
  passwordGrant: z.boolean().optional(),
  autoLoginUser: z.string().optional(),
  now: z.function().optional(),
});

type Handler = (input: RouteInput) => EmulatorResponse;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
  /** `api`: standard API auth; `fhir`: FHIR auth; `none`: public. */
  auth: 'api' | 'fhir' | 'none';
  /** 8.x-only routes answer 404 on the 7.0 profile. */
  since8?: boolean;
}

/** Counters the emulator exposes for tests (e.g. one refresh per expiry). */
export interface OpenEmrEmulatorStats {
  /** Token endpoint calls by grant type. */
  tokenRequests: Record<string, number>;
  /** API requests answered, by status. */
  apiResponses: Record<number, number>;
}

/**
 * The emulator core. `handle()` answers one request; everything else is administration for tests and
 * the sandbox (the things an OpenEMR administrator does in the UI).
 */
export class OpenEmrEngine {
  readonly version: OpenEmrVersion;
  readonly site: string;
  readonly store: OpenEmrStore;
  readonly stats: OpenEmrEmulatorStats = { tokenRequests: {}, apiResponses: {} };
  private readonly ctx: EngineContext;
  private readonly oauth: OAuthServer;
  private readonly routes: Route[] = [];

  /**
   * @param options - see {@link OpenEmrEmulatorOptions}
   * @throws Error when an option is invalid (naming it)
   */
  constructor(options: OpenEmrEmulatorOptions = {}) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new Error(
        `Invalid OpenEMR emulator options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    this.version = options.version ?? '8';
    this.site = options.site ?? 'default';
    this.store = new OpenEmrStore(options.dataDir);
    const now = options.now ?? Date.now;
    this.ctx = {
      store: this.store,
      version: this.version,
      site: this.site,
      now: () => now(),
      lifetimes: { ...DEFAULT_TOKEN_LIFETIMES, ...stripUndefined(options.tokenLifetimes ?? {}) },
    };
    if (this.store.isEmpty) {
      const seed = options.seed ?? true;
      seedOpenEmr(this.store, { extraPatients: typeof seed === 'object' ? (seed.extraPatients ?? 0) : 0 });
      if (seed === false) this.unseedClinicalData();
      this.store.flush();
    }
    this.oauth = new OAuthServer(this.ctx, {
      passwordGrant: options.passwordGrant ?? true,
      autoLoginUser: options.autoLoginUser ?? 'admin',
    });
    this.buildRoutes();
  }

  /** The clock the emulator uses, in epoch ms. */
  now(): number {
    return this.ctx.now();
  }

  /**
   * Enables a registered client (Admin → System → API Clients → Enable).
   * @param clientId - the client id from registration
   * @returns false when no such client exists
   */
  enableClient(clientId: string): boolean {
    return this.oauth.enableClient(clientId);
  }

  /**
   * Revokes every token issued to `clientId` (Admin → API Clients → revoke), so the next API call gets 401.
   * @param clientId - the client
   */
  revokeClientTokens(clientId: string): void {
    for (const t of this.store.tables.tokens) if (t.client_id === clientId && t.kind === 'access') t.revoked = true;
    this.store.touch('tokens');
    this.store.flush();
  }

  /** Empties the clinical tables again after seeding (`seed: false`); the sequences keep their values. */
  private unseedClinicalData(): void {
    const t = this.store.tables;
    for (const name of [
      'patients',
      'encounters',
      'vitals',
      'soapNotes',
      'lists',
      'appointments',
      'prescriptions',
      'procedures',
    ] as const) {
      t[name] = [];
      this.store.touch(name);
    }
  }

  private add(method: string, path: string, auth: Route['auth'], handler: Handler, since8 = false): void {
    this.routes.push({ method, segments: path.split('/').filter(Boolean), handler, auth, since8 });
  }

  private buildRoutes(): void {
    const api = new StandardApi(this.ctx);
    const fhir = new FhirApi(this.ctx, api);
    const A = '/apis/:site/api';
    const F = '/apis/:site/fhir';
    const O = '/oauth2/:site';
    const oauth = this.oauth;
    const count = (grant: string): void => {
      this.stats.tokenRequests[grant] = (this.stats.tokenRequests[grant] ?? 0) + 1;
    };

    this.add('GET', `${O}/.well-known/openid-configuration`, 'none', ({ req }) => oauth.discovery(req));
    this.add('GET', `${O}/jwk`, 'none', () => oauth.jwks());
    this.add('POST', `${O}/registration`, 'none', ({ req }) => oauth.register(req));
    this.add('GET', `${O}/client/:path`, 'none', ({ req, params }) => oauth.readClient(req, params['path'] ?? ''));
    this.add('GET', `${O}/authorize`, 'none', ({ req, query }) => oauth.authorize(req, query));
    this.add('POST', `${O}/authorize`, 'none', ({ req }) => oauth.authorize(req, new URLSearchParams(req.body ?? '')));
    this.add('POST', `${O}/token`, 'none', ({ req }) => {
      count(new URLSearchParams(req.body ?? '').get('grant_type') ?? '(none)');
      return oauth.token(req);
    });
    this.add('OPTIONS', `${O}/token`, 'none', () => ({ status: 200, headers: {} }));
    this.add('POST', `${O}/introspect`, 'none', ({ req }) => oauth.introspect(req));
    this.add('GET', `${O}/logout`, 'none', ({ query }) => oauth.logout(query));

    this.add('GET', `${A}/version`, 'none', () => api.version());
    this.add('GET', `${A}/product`, 'none', () => api.product());
    this.add('GET', `${A}/list/:list_name`, 'api', (i) => api.list(i));
    this.add('GET', `${A}/patient`, 'api', (i) => api.listPatients(i));
    this.add('POST', `${A}/patient`, 'api', (i) => api.createPatient(i));
    this.add('GET', `${A}/patient/:puuid`, 'api', (i) => api.getPatient(i));
    this.add('PUT', `${A}/patient/:puuid`, 'api', (i) => api.updatePatient(i));
    this.add('GET', `${A}/patient/:puuid/encounter`, 'api', (i) => api.listEncounters(i));
    this.add('POST', `${A}/patient/:puuid/encounter`, 'api', (i) => api.createEncounter(i));
    this.add('GET', `${A}/patient/:puuid/encounter/:euuid`, 'api', (i) => api.getEncounter(i));
    this.add('PUT', `${A}/patient/:puuid/encounter/:euuid`, 'api', (i) => api.updateEncounter(i));
    this.add('GET', `${A}/patient/:pid/encounter/:eid/vital`, 'api', (i) => api.listVitals(i));
    this.add('POST', `${A}/patient/:pid/encounter/:eid/vital`, 'api', (i) => api.createVital(i));
    this.add('GET', `${A}/patient/:pid/encounter/:eid/vital/:vid`, 'api', (i) => api.getVital(i));
    this.add('PUT', `${A}/patient/:pid/encounter/:eid/vital/:vid`, 'api', (i) => api.updateVital(i));
    this.add('GET', `${A}/patient/:pid/encounter/:eid/soap_note`, 'api', (i) => api.listSoapNotes(i));
    this.add('POST', `${A}/patient/:pid/encounter/:eid/soap_note`, 'api', (i) => api.createSoapNote(i));
    this.add('GET', `${A}/patient/:pid/encounter/:eid/soap_note/:sid`, 'api', (i) => api.getSoapNote(i));
    this.add('PUT', `${A}/patient/:pid/encounter/:eid/soap_note/:sid`, 'api', (i) => api.updateSoapNote(i));
    for (const [type, param] of [
      ['medical_problem', 'muuid'],
      ['allergy', 'auuid'],
    ] as const) {
      this.add('GET', `${A}/${type}`, 'api', api.listAllIssues(type));
      this.add('GET', `${A}/${type}/:${param}`, 'api', api.getIssueGlobal(type, param));
      this.add('GET', `${A}/patient/:puuid/${type}`, 'api', api.listIssues(type));
      this.add('POST', `${A}/patient/:puuid/${type}`, 'api', api.createIssue(type));
      this.add('GET', `${A}/patient/:puuid/${type}/:${param}`, 'api', api.getIssue(type, param));
      this.add('PUT', `${A}/patient/:puuid/${type}/:${param}`, 'api', api.updateIssue(type, param));
      this.add('DELETE', `${A}/patient/:puuid/${type}/:${param}`, 'api', api.deleteIssue(type, param));
    }
    this.add('GET', `${A}/patient/:pid/medication`, 'api', (i) => api.listMedications(i));
    this.add('POST', `${A}/patient/:pid/medication`, 'api', (i) => api.createMedication(i));
    this.add('GET', `${A}/patient/:pid/medication/:mid`, 'api', (i) => api.getMedication(i));
    this.add('PUT', `${A}/patient/:pid/medication/:mid`, 'api', (i) => api.updateMedication(i));
    this.add('DELETE', `${A}/patient/:pid/medication/:mid`, 'api', (i) => api.deleteMedication(i));
    this.add('GET', `${A}/prescription`, 'api', (i) => api.listPrescriptions(i));
    this.add('POST', `${A}/prescription`, 'api', (i) => api.createPrescription(i), true);
    this.add('GET', `${A}/prescription/:uuid`, 'api', (i) => api.getPrescription(i));
    this.add('DELETE', `${A}/prescription/:uuid`, 'api', (i) => api.deletePrescription(i), true);
    this.add('GET', `${A}/procedure`, 'api', () => api.listProcedures());
    this.add('GET', `${A}/procedure/:uuid`, 'api', (i) => api.getProcedure(i));
    this.add('GET', `${A}/appointment`, 'api', () => api.listAllAppointments());
    this.add('GET', `${A}/appointment/:eid`, 'api', (i) => api.getAppointmentGlobal(i));
    this.add('GET', `${A}/patient/:pid/appointment`, 'api', (i) => api.listAppointments(i));
    this.add('POST', `${A}/patient/:pid/appointment`, 'api', (i) => api.createAppointment(i));
    this.add('GET', `${A}/patient/:pid/appointment/:eid`, 'api', (i) => api.getAppointment(i));
    this.add('DELETE', `${A}/patient/:pid/appointment/:eid`, 'api', (i) => api.deleteAppointment(i));
    this.add('GET', `${A}/practitioner`, 'api', (i) => api.listPractitioners(i));
    this.add('POST', `${A}/practitioner`, 'api', (i) => api.createPractitioner(i));
    this.add('GET', `${A}/practitioner/:pruuid`, 'api', (i) => api.getPractitioner(i));
    this.add('PUT', `${A}/practitioner/:pruuid`, 'api', (i) => api.updatePractitioner(i));

    this.add('GET', `${F}/metadata`, 'none', (i) => fhir.metadata(i));
    this.add('GET', `${F}/.well-known/smart-configuration`, 'none', (i) => fhir.smartConfiguration(i));
    for (const type of [
      'Patient',
      'Encounter',
      'Condition',
      'AllergyIntolerance',
      'MedicationRequest',
      'Observation',
      'Practitioner',
      'Organization',
    ]) {
      this.add('GET', `${F}/${type}`, 'fhir', fhir.search(type));
      this.add('POST', `${F}/${type}/_search`, 'fhir', fhir.search(type));
      this.add('GET', `${F}/${type}/:uuid`, 'fhir', fhir.read(type));
    }
    this.add('POST', `${F}/Patient`, 'fhir', (i) => fhir.createPatient(i));
    this.add('PUT', `${F}/Patient/:uuid`, 'fhir', (i) => fhir.updatePatient(i));
    this.add('POST', `${F}/Practitioner`, 'fhir', (i) => fhir.createPractitioner(i));
    this.add('PUT', `${F}/Practitioner/:uuid`, 'fhir', (i) => fhir.updatePractitioner(i));
    this.add('POST', `${F}/Organization`, 'fhir', (i) => fhir.createOrganization(i));
    this.add('PUT', `${F}/Organization/:uuid`, 'fhir', (i) => fhir.updateOrganization(i));
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = path
      .split('/')
      .filter(Boolean)
      .map((p) => {
        try {
          return decodeURIComponent(p);
        } catch {
          return p;
        }
      });
    let pathMatched = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i] ?? '';
        const part = parts[i] ?? '';
        if (seg.startsWith(':')) params[seg.slice(1)] = part;
        else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok || (params['site'] !== undefined && params['site'] !== this.site)) continue;
      pathMatched = true;
      if (route.method === method) return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }

  /**
   * Answers one request. Never throws: internal failures become a 500 like OpenEMR's.
   * @param req - the request
   */
  handle(req: EmulatorRequest): EmulatorResponse {
    let response: EmulatorResponse;
    try {
      response = this.dispatch(req);
      this.store.flush();
    } catch (error) {
      response =
        this.version === '8'
          ? kernelError('8', 500, error instanceof Error ? error.message : 'Internal error')
          : json(500, { error: 'internal error' });
    }
    this.stats.apiResponses[response.status] = (this.stats.apiResponses[response.status] ?? 0) + 1;
    // OpenEMR echoes the caller's Origin (notes §5.8); its preflight handling is broken, so OPTIONS on API
    // routes stays a 404 here too.
    const origin = req.headers['origin'];
    if (origin !== undefined) response.headers = { ...response.headers, 'access-control-allow-origin': origin };
    return response;
  }

  private dispatch(req: EmulatorRequest): EmulatorResponse {
    const url = new URL(req.url, 'http://emulator.invalid');
    const found = this.match(req.method.toUpperCase(), url.pathname);
    if (found === undefined || found === 'method') return kernelError(this.version, 404, 'Route not found');
    const { route, params } = found;
    if (route.since8 === true && this.version !== '8') return kernelError(this.version, 404, 'Route not found');
    const input: RouteInput = { req, params, query: url.searchParams, token: undefined, user: undefined };
    if (route.auth === 'none') return route.handler(input);

    const check = this.oauth.authenticate(req);
    if (!check.ok) {
      if (check.reason === 'logged_out') {
        return this.version === '8'
          ? kernelError('8', 400, 'Refresh Token revoked or logged out')
          : json(400, {
              error: 'invalid_request',
              error_description: 'Refresh Token revoked or logged out',
              message: 'Refresh Token revoked or logged out',
            });
      }
      return this.version === '8'
        ? kernelError('8', 401, 'The resource owner or authorization server denied the request.')
        : json(401, {
            error: 'access_denied',
            error_description: 'The resource owner or authorization server denied the request.',
            hint: check.reason === 'missing' ? 'Missing "Authorization" header' : 'Access token could not be verified',
            message: 'The resource owner or authorization server denied the request.',
          });
    }
    input.token = check.token;
    input.user = check.user;
    const scopes = check.token.scope;
    const lastIsParam = (route.segments.at(-1) ?? '').startsWith(':');
    const isSearch = route.segments.at(-1) === '_search';
    const permission = isSearch ? 's' : permissionFor(route.method, lastIsParam);
    if (route.auth === 'api') {
      if (check.token.role !== 'users') return this.unauthorized();
      if (!scopes.includes('api:oemr')) return this.forbidden();
      // Standard API resource: the last non-parameter segment (notes §2.6).
      const resource = [...route.segments].reverse().find((s) => !s.startsWith(':')) ?? '';
      if (!hasScope(scopes, 'user', resource, permission)) return this.unauthorized();
    } else {
      if (!scopes.includes('api:fhir')) return this.forbidden();
      const resource = route.segments[3] ?? '';
      const context = check.token.role === 'system' ? 'system' : check.token.role === 'patient' ? 'patient' : 'user';
      if (check.token.role === 'patient' && route.method !== 'GET') return this.unauthorized();
      if (!hasScope(scopes, context, resource, permission)) return this.unauthorized();
    }
    return route.handler(input);
  }

  private unauthorized(): EmulatorResponse {
    return this.version === '8' ? kernelError('8', 401, 'Unauthorized') : { status: 401, headers: {} };
  }

  /** A token without the API's base scope (`api:oemr` / `api:fhir`): 403 on 8.x, a bare 401 on 7.0. */
  private forbidden(): EmulatorResponse {
    return this.version === '8'
      ? kernelError('8', 403, 'The request has insufficient permissions for the requested resource.')
      : { status: 401, headers: {} };
  }
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]-?: Exclude<T[K], undefined>;
  };
}
