/**
 * The OpenEMR emulator's framework-free core: route table, authentication and scope checks with
 * OpenEMR's algorithm (notes §2.6) and failure statuses per version (notes §2.7), dispatch, and
 * persistence after each changing request. Express (`createOpenEmrEmulator`) and msw adapt to it.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  DEFAULT_TOKEN_LIFETIMES,
  bodyText,
  isKernel8,
  json,
  kernelError,
  type EmulatorRequest,
  type EmulatorResponse,
  type EngineContext,
  type OpenEmrVersion,
  type RouteInput,
  type TokenLifetimes,
} from './context.js';
import { DEFAULT_CATEGORIES, DocumentsApi } from './documents.js';
import { FhirApi } from './fhir-api.js';
import { OAuthServer } from './oauth.js';
import { hasScope, permissionFor } from './scopes.js';
import { seedOpenEmr } from './seed.js';
import { StandardApi } from './standard-api.js';
import { OpenEmrStore } from './store.js';

/** Options of the OpenEMR emulator. */
export interface OpenEmrEmulatorOptions {
  /**
   * The OpenEMR release whose behaviour to reproduce: `7.0` (as recorded on 7.0.1), `8.0` (as recorded on
   * 8.0.0, its defects included) or `8.2` (the 8.2.0-dev code). `8` means `8.0`. Default `8.0`.
   */
  version?: OpenEmrVersion | '8' | undefined;
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
  /** Time source in epoch milliseconds, for token expiry. Default `Date.now`. */
  now?: (() => number) | undefined;
  /**
   * OpenEMR's "Enable OpenEMR FHIR System Scopes" global (`rest_system_scopes_api`): off by default, as in
   * OpenEMR, so `system/` scopes are unknown until an administrator turns it on. Default false.
   */
  systemScopes?: boolean | undefined;
  /** How a backend client's `jwks_uri` is fetched (on every token request, as OpenEMR does). Default `fetch`. */
  fetchJwks?: ((url: string) => Promise<unknown>) | undefined;
}

const optionsSchema = z.object({
  version: z.enum(['7.0', '8.0', '8.2', '8']).optional(),
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
  now: z.function().optional(),
  systemScopes: z.boolean().optional(),
  fetchJwks: z.function().optional(),
});

type Handler = (input: RouteInput) => EmulatorResponse | Promise<EmulatorResponse>;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
  /** `api`: standard API auth; `fhir`: FHIR auth; `none`: public. */
  auth: 'api' | 'fhir' | 'none';
  /** Routes only 8.2 has (prescription writes) answer 404 elsewhere. */
  since82?: boolean;
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
    this.version = options.version === '8' || options.version === undefined ? '8.0' : options.version;
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
      seedOpenEmr(this.store, {
        extraPatients: typeof seed === 'object' ? (seed.extraPatients ?? 0) : 0,
        version: this.version,
      });
      if (seed === false) this.unseedClinicalData();
      this.store.flush();
    }
    if (this.store.tables.categories.length === 0) {
      this.store.tables.categories = DEFAULT_CATEGORIES.map((c) => ({ ...c }));
      this.store.touch('categories');
    }
    if (options.systemScopes !== undefined) this.setGlobal('rest_system_scopes_api', options.systemScopes ? '1' : '0');
    this.store.flush();
    this.oauth = new OAuthServer(this.ctx, {
      passwordGrant: options.passwordGrant ?? true,
      fetch:
        options.fetchJwks ??
        (async (url: string) => {
          const res = await fetch(url, { headers: { accept: 'application/json' } });
          return (await res.json()) as unknown;
        }),
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
   * Sets an OpenEMR global (Admin → Config), e.g. `rest_system_scopes_api` to `'1'` to allow system scopes.
   * @param name - the global's name
   * @param value - its value
   */
  setGlobal(name: string, value: string): void {
    this.store.tables.globals[name] = value;
    this.store.touch('globals');
    this.store.flush();
  }

  /**
   * Turns on a client's "Skip EHR Launch Authorization Flow" (Admin → API Clients → edit; recorded-8.0.0 file 87):
   * an EHR launch from a logged-in OpenEMR session then gets its code without the OAuth login and scope pages.
   * @param clientId - the client
   * @returns false when no such client exists
   */
  skipEhrLaunchAuthorization(clientId: string): boolean {
    const client = this.oauth.findClient(clientId);
    if (!client) return false;
    client.skip_ehr_launch_authorization_flow = true;
    this.store.touch('clients');
    this.store.flush();
    return true;
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
      'documents',
    ] as const) {
      t[name] = [];
      this.store.touch(name);
    }
  }

  private add(method: string, path: string, auth: Route['auth'], handler: Handler, since82 = false): void {
    this.routes.push({ method, segments: path.split('/').filter(Boolean), handler, auth, since82 });
  }

  private buildRoutes(): void {
    const api = new StandardApi(this.ctx);
    const fhir = new FhirApi(this.ctx, api);
    const documents = new DocumentsApi(this.ctx);
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
    // The POST form of authorize (SMART `authorize-post`, and the EHR-launch auto-submit: query + body).
    this.add('POST', `${O}/authorize`, 'none', ({ req, query }) => {
      const params = new URLSearchParams(query);
      for (const [k, v] of new URLSearchParams(bodyText(req))) params.set(k, v);
      return oauth.authorize(req, params);
    });
    this.add('GET', `${O}/provider/login`, 'none', ({ req }) => oauth.loginForm(req));
    this.add('POST', `${O}/login`, 'none', ({ req }) => oauth.login(req));
    this.add('GET', `${O}/smart/patient-select`, 'none', ({ req, query }) => oauth.patientSelect(req, query));
    this.add('POST', `${O}/smart/patient-select`, 'none', ({ req, query }) => oauth.patientSelect(req, query));
    this.add('POST', `${O}/smart/patient-select-confirm`, 'none', ({ req }) => oauth.patientSelectConfirm(req));
    this.add('GET', `${O}/scope-authorize-confirm`, 'none', ({ req }) => oauth.scopeAuthorize(req));
    this.add('POST', `${O}/scope-authorize-confirm`, 'none', ({ req }) => oauth.scopeAuthorize(req));
    this.add('POST', `${O}/device/code`, 'none', ({ req }) => oauth.approve(req));
    this.add('POST', `${O}/token`, 'none', ({ req }) => {
      count(new URLSearchParams(bodyText(req)).get('grant_type') ?? '(none)');
      return oauth.token(req);
    });
    // OpenEMR's own UI, as far as a SMART EHR launch needs it (recorded-8.0.0 files 81, 82).
    this.add('GET', '/interface/login/login.php', 'none', ({ query }) => oauth.coreLoginForm(query));
    this.add('POST', '/interface/main/main_screen.php', 'none', ({ req }) => oauth.coreLogin(req));
    this.add('GET', '/interface/main/tabs/main.php', 'none', ({ req }) => oauth.coreMain(req));
    this.add('GET', '/interface/patient_file/summary/demographics.php', 'none', ({ req, query }) =>
      oauth.dashboard(req, query),
    );
    this.add('GET', '/interface/smart/ehr-launch-client.php', 'none', ({ req, query }) => oauth.ehrLaunch(req, query));
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
    this.add('POST', `${A}/patient/:pid/document`, 'api', (i) => documents.upload(i));
    this.add('GET', `${A}/patient/:pid/document`, 'api', (i) => documents.list(i));
    this.add('GET', `${A}/patient/:pid/document/:did`, 'api', () => documents.download());
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
      'DocumentReference',
    ]) {
      this.add('GET', `${F}/${type}`, 'fhir', fhir.search(type));
      this.add('POST', `${F}/${type}/_search`, 'fhir', fhir.search(type));
      this.add('GET', `${F}/${type}/:uuid`, 'fhir', fhir.read(type));
    }
    this.add('GET', `${F}/Binary/:uuid`, 'fhir', fhir.binary());
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
  async handle(req: EmulatorRequest): Promise<EmulatorResponse> {
    let response: EmulatorResponse;
    try {
      response = await this.dispatch(req);
      this.store.flush();
    } catch (error) {
      response = isKernel8(this.version)
        ? kernelError(this.version, 500, error instanceof Error ? error.message : 'Internal error')
        : json(500, { error: 'internal error' });
    }
    this.stats.apiResponses[response.status] = (this.stats.apiResponses[response.status] ?? 0) + 1;
    this.sessionCookie(req, response);
    // OpenEMR echoes the caller's Origin (notes §5.8); its preflight handling is broken, so OPTIONS on API
    // routes stays a 404 here too.
    const origin = req.headers['origin'];
    if (origin !== undefined) response.headers = { ...response.headers, 'access-control-allow-origin': origin };
    return response;
  }

  /**
   * PHP starts a session on every API and OAuth request that has none: the answer carries its cookie
   * (`apiOpenEMR`, `authserverOpenEMR`; 7.0.1 sends them expired). Recorded on every such exchange.
   */
  private sessionCookie(req: EmulatorRequest, response: EmulatorResponse): void {
    if (response.headers['set-cookie'] !== undefined) return;
    const path = req.url.split('?')[0] ?? '';
    const name = path.startsWith('/apis/')
      ? 'apiOpenEMR'
      : path.startsWith('/oauth2/')
        ? 'authserverOpenEMR'
        : undefined;
    if (name === undefined || (name === 'authserverOpenEMR' && this.oauth.hasSession(req))) return;
    const attributes =
      name === 'apiOpenEMR'
        ? 'path=/apis/; secure; HttpOnly; SameSite=Strict'
        : 'path=/oauth2/; secure; HttpOnly; SameSite=None';
    const value = isKernel8(this.version)
      ? randomBytes(16).toString('hex')
      : 'deleted; expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0';
    response.headers = { ...response.headers, 'set-cookie': `${name}=${value}; ${attributes}` };
  }

  /** The answer to a bearer token OpenEMR refuses, per release (8.0.0 file 60; 7.0.1 files 41–45). */
  private refused(reason: 'missing' | 'invalid' | 'revoked' | 'expired' | 'logged_out'): EmulatorResponse {
    if (reason === 'logged_out') {
      return isKernel8(this.version)
        ? kernelError(this.version, 400, 'Refresh Token revoked or logged out')
        : json(400, {
            error: 'invalid _request',
            error_description: 'Refresh Token revoked or logged out',
            message: 'Refresh Token revoked or logged out',
          });
    }
    const denied = 'The resource owner or authorization server denied the request.';
    if (isKernel8(this.version)) return kernelError(this.version, 401, denied);
    if (reason === 'expired') return { status: 401, headers: { 'content-type': 'text/html; charset=utf-8' } };
    const hint =
      reason === 'missing'
        ? 'Missing "Authorization" header'
        : reason === 'revoked'
          ? 'Access token has been revoked'
          : 'Access token could not be verified';
    return json(401, { error: 'access_denied', error_description: denied, hint, message: denied });
  }

  private async dispatch(req: EmulatorRequest): Promise<EmulatorResponse> {
    const url = new URL(req.url, 'http://emulator.invalid');
    const found = this.match(req.method.toUpperCase(), url.pathname);
    if (found === undefined || found === 'method') return kernelError(this.version, 404, 'Route not found');
    const { route, params } = found;
    if (route.since82 === true && this.version !== '8.2') return kernelError(this.version, 404, 'Route not found');
    const input: RouteInput = { req, params, query: url.searchParams, token: undefined, user: undefined };
    if (route.auth === 'none') return route.handler(input);

    const check = this.oauth.authenticate(req);
    if (!check.ok) return this.refused(check.reason);
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
      // SMART tokens work on FHIR without `api:fhir` (recorded-8.0.0 files 78, 93).
      const resource = route.segments[3] ?? '';
      const patient = check.token.context?.patient;
      if (check.token.role === 'system') {
        if (!hasScope(scopes, 'system', resource, permission)) return this.unauthorized();
      } else if (!hasScope(scopes, 'user', resource, permission)) {
        if (patient === undefined || route.method !== 'GET' || !hasScope(scopes, 'patient', resource, permission))
          return this.unauthorized();
        // A patient-context token sees its patient only; asking for another answers 500 (file 78's note).
        if (resource === 'Patient' && params['uuid'] !== undefined && params['uuid'] !== patient)
          return kernelError(this.version, 500, 'patient id invalid');
        input.patient = patient;
      }
    }
    return route.handler(input);
  }

  private unauthorized(): EmulatorResponse {
    return isKernel8(this.version) ? kernelError(this.version, 401, 'Unauthorized') : { status: 401, headers: {} };
  }

  /** A token without the standard API's base scope `api:oemr`: 403 on 8.x, a bare 401 on 7.0. */
  private forbidden(): EmulatorResponse {
    return isKernel8(this.version)
      ? kernelError(this.version, 403, 'The request has insufficient permissions for the requested resource.')
      : { status: 401, headers: {} };
  }
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]-?: Exclude<T[K], undefined>;
  };
}
