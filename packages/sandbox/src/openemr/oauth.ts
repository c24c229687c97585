/**
 * The emulator's `/oauth2/{site}/...` endpoints as a real OpenEMR answers them (the exchanges in
 * `shared/reference/openemr/recorded-*`; notes §2 where they are silent): dynamic registration (its rules
 * for public, confidential, EHR-launch and backend clients), the password, refresh-token (rotated; a reused
 * one answers 401), authorization-code and client-credentials grants, the SMART authorization flow as HTML
 * pages (login, patient picker, scope approval; 60-second codes; `aud` required with `launch`), the EHR
 * launcher, SMART Backend Services assertions (RS384, `aud` = the token endpoint, `exp` ≤ 24 h, single-use
 * `jti`), introspection, logout, JWKS and discovery.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  scryptSync,
  sign,
  timingSafeEqual,
  verify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import {
  bodyText,
  empty,
  isKernel8,
  json,
  makeUuid,
  oauthError,
  type EmulatorRequest,
  type EmulatorResponse,
  type EngineContext,
} from './context.js';
import { hasScope, isKnownScope, supportedScopes } from './scopes.js';
import {
  autosubmitPage,
  coreLoginPage,
  coreMainPage,
  dashboardPage,
  loginPage,
  patientSelectPage,
  scopeApprovalPage,
} from './smart-pages.js';
import type { OAuthClientRow, TokenRow, UserRow } from './types.js';

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** The `response_types_supported` OpenEMR announces (discovery and SMART configuration, files 02, 03). */
export const RESPONSE_TYPES = [
  'code',
  'token',
  'id_token',
  'code token',
  'code id_token',
  'token id_token',
  'code token id_token',
] as const;

/**
 * Hashes a password for the users table (scrypt, random salt).
 * @param password - the clear password
 */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `${salt.toString('hex')}:${scryptSync(password, salt, 32, SCRYPT).toString('hex')}`;
}

/** A sandbox, not a production credential store: a light scrypt cost keeps logins fast in tests. */
const SCRYPT = { N: 1024 } as const;

let serverKey: { privateKey: KeyObject; publicKey: KeyObject } | undefined;

/** The process's token-signing key pair, generated once (RSA generation is slow on small machines). */
function signingKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  serverKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return serverKey;
}

function checkPassword(password: string, stored: string | null): boolean {
  if (stored === null) return false;
  const [saltHex, hashHex] = stored.split(':');
  if (saltHex === undefined || hashHex === undefined) return false;
  const actual = scryptSync(password, Buffer.from(saltHex, 'hex'), 32, SCRYPT);
  return timingSafeEqual(actual, Buffer.from(hashHex, 'hex'));
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The cookies of a request. */
function cookies(req: EmulatorRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers['cookie'] ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) out[part.slice(0, at).trim()] = decodeURIComponent(part.slice(at + 1).trim());
  }
  return out;
}

const INVALID_REQUEST =
  'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.';
const INVALID_GRANT =
  'The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.';
const INVALID_SCOPE = 'The requested scope is invalid, unknown, or malformed';
const CLIENT_AUTH_FAILED = 'Client authentication failed';

/** Result of authenticating a bearer token on an API route. */
export type BearerCheck =
  | { ok: true; token: TokenRow; user: UserRow | undefined }
  | { ok: false; reason: 'missing' | 'invalid' | 'revoked' | 'expired' | 'logged_out' };

/** An authorization request in progress (OpenEMR's `authserverOpenEMR` session). */
interface AuthSession {
  csrf: string;
  params: URLSearchParams;
  client: OAuthClientRow;
  scopes: string[];
  user?: UserRow | undefined;
  patient?: string | undefined;
  launch?: { patient?: string; encounter?: string; intent?: string } | undefined;
}

/** A core (OpenEMR UI) login session: the `OpenEMR` cookie. */
interface CoreSession {
  user: UserRow;
  csrf: string;
  patient?: string | undefined;
}

/** The OAuth2 server. */
export class OAuthServer {
  private readonly privateKey: KeyObject;
  private readonly publicJwk: JsonWebKey & { kid: string };
  private readonly usedJti = new Set<string>();
  /** Only known tokens are indexed; the table is the persistent copy. */
  private readonly index = new Map<string, TokenRow>();
  /** Users whose sessions were ended by `/logout` until they log in again with a password (notes §2.7). */
  readonly loggedOut = new Set<string>();
  private readonly sessions = new Map<string, AuthSession>();
  private readonly coreSessions = new Map<string, CoreSession>();
  private readonly launches = new Map<
    string,
    { patient?: string; encounter?: string; intent?: string; expires: number }
  >();

  constructor(
    private readonly ctx: EngineContext,
    private readonly options: { passwordGrant: boolean; fetch: (url: string) => Promise<unknown> },
  ) {
    const { privateKey, publicKey } = signingKey();
    this.privateKey = privateKey;
    this.publicJwk = {
      ...publicKey.export({ format: 'jwk' }),
      kid: makeUuid('server-signing-key'),
      alg: 'RS256',
      use: 'sig',
    };
    for (const row of ctx.store.tables.tokens) this.index.set(row.token, row);
  }

  private get store() {
    return this.ctx.store;
  }

  private get k8(): boolean {
    return isKernel8(this.ctx.version);
  }

  private base(req: EmulatorRequest): string {
    return `${req.origin}/oauth2/${this.ctx.site}`;
  }

  private known(scope: string): boolean {
    return isKnownScope(scope, { v2: this.k8, system: this.store.tables.globals['rest_system_scopes_api'] === '1' });
  }

  /** Enables a registered client, as an administrator does in Admin → System → API Clients. */
  enableClient(clientId: string): boolean {
    const client = this.findClient(clientId);
    if (!client) return false;
    client.is_enabled = true;
    this.store.touch('clients');
    this.store.flush();
    return true;
  }

  findClient(clientId: string): OAuthClientRow | undefined {
    return this.store.tables.clients.find((c) => c.client_id === clientId);
  }

  private signJwt(claims: Record<string, unknown>): string {
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: this.publicJwk.kid }));
    const payload = b64url(JSON.stringify(claims));
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), this.privateKey);
    return `${header}.${payload}.${b64url(signature)}`;
  }

  private fhirUser(req: EmulatorRequest, user: UserRow): string {
    // An OpenEMR user is a Person, not a Practitioner (recorded-8.0.0 file 77).
    return `${req.origin}/apis/${this.ctx.site}/fhir/Person/${user.uuid}`;
  }

  // ---------------------------------------------------------------- discovery

  /** `GET /oauth2/{site}/.well-known/openid-configuration` (recorded-8.0.0 file 02). */
  discovery(req: EmulatorRequest): EmulatorResponse {
    const base = this.base(req);
    const grants = ['authorization_code'];
    if (this.options.passwordGrant) grants.push('password');
    grants.push('refresh_token');
    return json(200, {
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/jwk`,
      userinfo_endpoint: `${base}/userinfo`,
      registration_endpoint: `${base}/registration`,
      end_session_endpoint: `${base}/logout`,
      introspection_endpoint: `${base}/introspect`,
      scopes_supported: supportedScopes(this.k8),
      response_types_supported: [...RESPONSE_TYPES],
      code_challenge_methods_supported: ['S256', 'plain'],
      grant_types_supported: grants,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['public'],
      claims_supported: [
        'profile',
        'email',
        'email_verified',
        'phone',
        'phone_verified',
        'family_name',
        'given_name',
        'fhirUser',
        'locale',
        'api:oemr',
        'api:fhir',
        'api:port',
        'aud',
        'iat',
        'iss',
        'exp',
        'sub',
      ],
      require_request_uri_registration: ['false'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256', 'RS384'],
      claims_locales_supported: ['en-US'],
      ui_locales_supported: ['en-US'],
    });
  }

  /** `GET /oauth2/{site}/jwk`. */
  jwks(): EmulatorResponse {
    return json(200, { keys: [this.publicJwk] });
  }

  // ------------------------------------------------------------- registration

  /**
   * `POST /oauth2/{site}/registration` (recorded-8.0.0 files 01, 68, 69, 80, 89, 90; 7.0.1 files 01, 02): 200
   * with the client. Public apps (any `application_type` but `private`) get an empty secret and the role
   * `patient`, may not ask for user/system scopes or send `token_endpoint_auth_method: "none"`; system scopes
   * need the `rest_system_scopes_api` global and a JWKS; a client asking for user/system scopes (confidential)
   * or `launch` (public) starts disabled until an administrator enables it.
   */
  register(req: EmulatorRequest): EmulatorResponse {
    const html = (res: EmulatorResponse): EmulatorResponse =>
      this.k8 ? res : { ...res, headers: { ...res.headers, 'content-type': 'text/html; charset=utf-8' } };
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(bodyText(req));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      return oauthError(400, 'invalid_client_metadata', 'Invalid JSON body');
    }
    const redirectUris = body['redirect_uris'];
    if (
      !Array.isArray(redirectUris) ||
      redirectUris.length === 0 ||
      !redirectUris.every((u) => typeof u === 'string')
    ) {
      return oauthError(400, 'invalid_redirect_uri', 'redirect_uris is invalid');
    }
    const confidential = body['application_type'] === 'private';
    const authMethod =
      typeof body['token_endpoint_auth_method'] === 'string' ? body['token_endpoint_auth_method'] : undefined;
    if (
      authMethod !== undefined &&
      !['client_secret_basic', 'client_secret_post', 'private_key_jwt'].includes(authMethod)
    ) {
      return oauthError(400, 'invalid_client_metadata', `Unsupported token_endpoint_auth_method value : ${authMethod}`);
    }
    const scopeText =
      typeof body['scope'] === 'string' ? body['scope'] : 'openid email phone address api:oemr api:fhir api:port';
    const scopes = scopeText.split(/\s+/).filter(Boolean);
    const invalid = scopes.find((s) => !this.known(s));
    if (invalid !== undefined) return oauthError(400, 'invalid_scope', INVALID_SCOPE, `Check the \`${invalid}\` scope`);
    const wantsUser = scopes.some((s) => s.startsWith('user/'));
    const wantsSystem = scopes.some((s) => s.startsWith('system/'));
    if (!confidential && (wantsUser || wantsSystem)) {
      return oauthError(400, 'invalid_client_metadata', 'Public clients may not request user or system scopes');
    }
    const jwks = body['jwks'] ?? null;
    const jwksUri = typeof body['jwks_uri'] === 'string' ? body['jwks_uri'] : null;
    if (wantsSystem && jwks === null && jwksUri === null) {
      return oauthError(400, 'invalid_client_metadata', 'jwks or jwks_uri is required for system scopes');
    }
    const dsi = typeof body['dsi_type'] === 'string' ? body['dsi_type'] : 'none';
    if (!['none', 'evidence', 'predictive'].includes(dsi))
      return oauthError(400, 'invalid_client_metadata', 'Invalid dsi_type');
    const row: OAuthClientRow = {
      client_id: b64url(randomBytes(32)),
      client_secret: confidential ? b64url(randomBytes(64)) : null,
      client_name: typeof body['client_name'] === 'string' ? body['client_name'] : '',
      client_role: confidential ? 'user' : 'patient',
      is_confidential: confidential,
      // Manual approval (notes §2.2; recorded files 01, 69, 80, 90).
      is_enabled: !((confidential && (wantsUser || wantsSystem)) || (!confidential && scopes.includes('launch'))),
      redirect_uris: redirectUris as string[],
      grant_types: Array.isArray(body['grant_types'])
        ? (body['grant_types'] as unknown[]).map(String)
        : ['authorization_code'],
      scope: scopes,
      token_endpoint_auth_method: authMethod ?? (confidential ? 'client_secret_post' : 'none'),
      jwks,
      jwks_uri: jwksUri,
      registration_access_token: b64url(randomBytes(32)),
      registration_client_uri_path: b64url(randomBytes(16)),
      dsi_type: dsi,
      contacts: Array.isArray(body['contacts']) ? (body['contacts'] as unknown[]).map(String) : [],
      created: Math.floor(this.ctx.now() / 1000),
      initiate_login_uri: typeof body['initiate_login_uri'] === 'string' ? body['initiate_login_uri'] : null,
      skip_ehr_launch_authorization_flow: false,
    };
    this.store.tables.clients.push(row);
    this.store.touch('clients');
    return html(json(200, this.clientView(req, row, body), { 'cache-control': 'no-store', pragma: 'no-cache' }));
  }

  /** A registration answer, in OpenEMR's order; only the metadata that was sent is echoed. */
  private clientView(
    req: EmulatorRequest,
    row: OAuthClientRow,
    sent: Record<string, unknown>,
  ): Record<string, unknown> {
    const view: Record<string, unknown> = {
      client_id: row.client_id,
      client_secret: row.client_secret ?? '',
      registration_access_token: row.registration_access_token,
      registration_client_uri: `${this.base(req)}/client/${row.registration_client_uri_path}`,
      client_id_issued_at: row.created,
      client_secret_expires_at: 0,
      client_role: row.client_role,
    };
    if ('contacts' in sent) view['contacts'] = row.contacts;
    view['application_type'] = row.is_confidential ? 'private' : 'public';
    view['client_name'] = row.client_name;
    view['redirect_uris'] = row.redirect_uris;
    if ('token_endpoint_auth_method' in sent) view['token_endpoint_auth_method'] = row.token_endpoint_auth_method;
    if (row.initiate_login_uri) view['initiate_login_uri'] = row.initiate_login_uri;
    if (row.jwks_uri !== null) view['jwks_uri'] = row.jwks_uri;
    if (row.jwks !== null) view['jwks'] = row.jwks;
    if ('grant_types' in sent) view['grant_types'] = row.grant_types;
    view['scope'] = row.scope.join(' ');
    // 7.0 has no decision-support type (recorded-7.0.1 file 02).
    if (this.k8) view['dsi_type'] = row.dsi_type;
    return view;
  }

  /** `GET /oauth2/{site}/client/{path}`: registration read-back, bearer = registration access token. */
  readClient(req: EmulatorRequest, path: string): EmulatorResponse {
    const row = this.store.tables.clients.find((c) => c.registration_client_uri_path === path);
    const auth = req.headers['authorization'] ?? '';
    if (!row || !safeEqual(auth, `Bearer ${row.registration_access_token}`)) {
      return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    }
    return json(200, this.clientView(req, row, { contacts: 1 }));
  }

  // ---------------------------------------------------------------- authorize

  private newSession(session: AuthSession): { sid: string; cookie: string } {
    const sid = b64url(randomBytes(24));
    this.sessions.set(sid, session);
    return { sid, cookie: `authserverOpenEMR=${sid}; path=/oauth2/; secure; HttpOnly; SameSite=None` };
  }

  /** Whether the request belongs to an authorization in progress (its session cookie is live). */
  hasSession(req: EmulatorRequest): boolean {
    return this.session(req) !== undefined;
  }

  private session(req: EmulatorRequest): AuthSession | undefined {
    const sid = cookies(req)['authserverOpenEMR'];
    return sid === undefined ? undefined : this.sessions.get(sid);
  }

  private coreSession(req: EmulatorRequest): CoreSession | undefined {
    const sid = cookies(req)['OpenEMR'];
    return sid === undefined ? undefined : this.coreSessions.get(sid);
  }

  /**
   * `GET|POST /oauth2/{site}/authorize` (recorded-8.0.0 files 70, 79, 83, 87, 88). Errors come back as JSON
   * (not a redirect); on success a session starts and the browser goes to the login page (307). An EHR launch
   * of a client that skips the authorization flow, with a core session, answers a self-posting page and then
   * the code directly.
   */
  authorize(req: EmulatorRequest, params: URLSearchParams): EmulatorResponse {
    const client = this.findClient(params.get('client_id') ?? '');
    const redirectUri = params.get('redirect_uri') ?? '';
    // A redirect URI mismatch surfaces as invalid_client (openemr/openemr#6644; file 70's note).
    if (!client || !client.redirect_uris.includes(redirectUri))
      return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    if (!client.is_enabled) return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED, 'Client is not enabled');
    if (params.get('response_type') !== 'code') {
      return oauthError(
        400,
        'unsupported_response_type',
        'The authorization server does not support obtaining an access token using this method.',
      );
    }
    const challenge = params.get('code_challenge');
    const method = params.get('code_challenge_method');
    if (challenge === null && !client.is_confidential)
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Code challenge must be provided for public clients');
    if (challenge !== null && method !== 'S256')
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Code challenge method must be one of `S256`');
    const aud = params.get('aud');
    const launch = params.get('launch');
    const apiBase = `${req.origin}/apis/${this.ctx.site}`;
    if ((aud !== null || launch !== null) && (aud === null || ![`${apiBase}/fhir`, `${apiBase}/api`].includes(aud)))
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Aud parameter did not match authorized server');
    const requested = (params.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const invalid = requested.find((s) => !this.known(s));
    if (invalid !== undefined) return oauthError(400, 'invalid_scope', INVALID_SCOPE, `Check the \`${invalid}\` scope`);
    const scopes = this.negotiate(client, requested);
    let context: AuthSession['launch'];
    if (launch !== null) {
      const found = this.launches.get(launch);
      if (!found || found.expires < this.ctx.now())
        return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Invalid launch token');
      context = { patient: found.patient, encounter: found.encounter, intent: found.intent };
    }
    const core = this.coreSession(req);
    if (launch !== null && client.skip_ehr_launch_authorization_flow === true && core) {
      if (params.get('autosubmit') !== '1') {
        const action = new URL(`${this.base(req)}/authorize`);
        action.searchParams.set('autosubmit', '1');
        for (const [k, v] of params) if (k !== 'autosubmit') action.searchParams.append(k, v);
        return {
          status: 200,
          headers: { 'content-type': 'text/html; charset=UTF-8' },
          body: autosubmitPage(action.toString()),
        };
      }
      // Every scope registered for the client is granted, without login or approval (file 88).
      return this.redirectWithCode({
        csrf: '',
        params,
        client,
        scopes: [...client.scope],
        user: core.user,
        launch: context,
      });
    }
    const { cookie } = this.newSession({ csrf: b64url(randomBytes(30)), params, client, scopes, launch: context });
    return {
      status: 307,
      headers: {
        location: `/oauth2/${this.ctx.site}/provider/login`,
        'set-cookie': cookie,
        'content-type': 'text/html; charset=utf-8',
      },
    };
  }

  private html(page: string): EmulatorResponse {
    return { status: 200, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: page };
  }

  /** `GET /oauth2/{site}/provider/login`: the login page (file 71). */
  loginForm(req: EmulatorRequest): EmulatorResponse {
    const s = this.session(req);
    if (!s) return oauthError(400, 'invalid_request', INVALID_REQUEST, 'No authorization request in progress');
    return this.html(loginPage(this.ctx.site, s.csrf, false));
  }

  /**
   * `POST /oauth2/{site}/login` (files 72, 84): `user_role=api` and the right password log the user in, then
   * 307 to the patient picker (scope `launch/patient` and no patient yet) or to the scope approval page.
   */
  login(req: EmulatorRequest): EmulatorResponse {
    const s = this.session(req);
    const form = new URLSearchParams(bodyText(req));
    if (!s || form.get('csrf_token_form') !== s.csrf)
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'CSRF check failed');
    const user = this.store.tables.users.find((u) => u.username === (form.get('username') ?? '') && u.active === '1');
    if (form.get('user_role') !== 'api' || !user || !checkPassword(form.get('password') ?? '', user.password)) {
      return this.html(loginPage(this.ctx.site, s.csrf, true));
    }
    s.user = user;
    this.loggedOut.delete(user.uuid);
    const next =
      s.scopes.includes('launch/patient') && s.patient === undefined && s.launch?.patient === undefined
        ? 'smart/patient-select'
        : 'scope-authorize-confirm';
    return {
      status: 307,
      headers: { location: `${this.base(req)}/${next}`, 'content-type': 'text/html; charset=utf-8' },
    };
  }

  /** `GET|POST /oauth2/{site}/smart/patient-select` (file 73): up to 100 patients, searchable by name. */
  patientSelect(req: EmulatorRequest, query: URLSearchParams): EmulatorResponse {
    const s = this.session(req);
    if (!s?.user) return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Not logged in');
    const match = (field: 'fname' | 'mname' | 'lname', value: string): boolean =>
      value.toLowerCase().includes((query.get(`search[${field}]`) ?? '').toLowerCase());
    const patients = this.store.tables.patients
      .filter((p) => match('fname', p.fname) && match('mname', p.mname) && match('lname', p.lname))
      .map((p) => ({ uuid: p.uuid, name: [p.fname, p.lname].join(' '), DOB: p.DOB, sex: p.sex, email: p.email }));
    return this.html(patientSelectPage(this.base(req), s.csrf, patients));
  }

  /** `POST /oauth2/{site}/smart/patient-select-confirm` (file 74): `csrf_token`, `patient_id` (the uuid). */
  patientSelectConfirm(req: EmulatorRequest): EmulatorResponse {
    const s = this.session(req);
    const form = new URLSearchParams(bodyText(req));
    if (!s?.user || form.get('csrf_token') !== s.csrf)
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'CSRF check failed');
    // The page's script fills the hidden field; without it the pressed button's value comes last.
    const chosen = form.getAll('patient_id').filter(Boolean).at(-1);
    const patient = this.store.tables.patients.find((p) => p.uuid === chosen);
    if (!patient) return oauthError(400, 'invalid_request', INVALID_REQUEST, 'patient id invalid');
    s.patient = patient.uuid;
    return {
      status: 307,
      headers: { location: `${this.base(req)}/scope-authorize-confirm`, 'content-type': 'text/html; charset=utf-8' },
    };
  }

  /** `GET|POST /oauth2/{site}/scope-authorize-confirm` (file 75): the scope approval page. */
  scopeAuthorize(req: EmulatorRequest): EmulatorResponse {
    const s = this.session(req);
    if (!s?.user) return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Not logged in');
    return this.html(scopeApprovalPage(this.ctx.site, s.client.client_name, s.csrf, s.scopes));
  }

  /**
   * `POST /oauth2/{site}/device/code` (files 76, 85): the approved `scope[...]` fields (only those are
   * granted), `csrf_token_form`, `proceed=1` → 302 to the redirect URI with a 60-second code; the session ends.
   */
  approve(req: EmulatorRequest): EmulatorResponse {
    const s = this.session(req);
    const form = new URLSearchParams(bodyText(req));
    if (!s?.user || form.get('csrf_token_form') !== s.csrf || form.get('proceed') !== '1')
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'CSRF check failed');
    const approved = new Set([...form.entries()].filter(([k]) => /^scope\[.*\]$/.test(k)).map(([, v]) => v));
    const sid = cookies(req)['authserverOpenEMR'] ?? '';
    this.sessions.delete(sid);
    const res = this.redirectWithCode({ ...s, scopes: s.scopes.filter((x) => approved.has(x)) });
    res.headers['set-cookie'] =
      `authserverOpenEMR=${b64url(randomBytes(24))}; path=/oauth2/; secure; HttpOnly; SameSite=None`;
    return res;
  }

  private redirectWithCode(s: AuthSession): EmulatorResponse {
    const params = s.params;
    const code = b64url(randomBytes(96));
    const patient = s.launch?.patient ?? s.patient;
    this.addToken({
      kind: 'code',
      token: code,
      client_id: s.client.client_id,
      user_id: s.user?.uuid ?? null,
      role: 'users',
      scope: s.scopes,
      expires_at: this.ctx.now() + this.ctx.lifetimes.authorizationCodeSeconds * 1000,
      revoked: false,
      code_challenge: params.get('code_challenge'),
      code_challenge_method: params.get('code_challenge_method'),
      redirect_uri: params.get('redirect_uri'),
      context:
        patient === undefined
          ? null
          : {
              patient,
              encounter: s.launch?.encounter,
              intent: s.launch?.intent,
              needPatientBanner: s.launch === undefined,
            },
    });
    const url = new URL(params.get('redirect_uri') ?? '');
    url.searchParams.set('code', code);
    const state = params.get('state');
    if (state !== null) url.searchParams.set('state', state);
    return { status: 302, headers: { location: url.toString(), 'content-type': 'text/html; charset=utf-8' } };
  }

  // ----------------------------------------------------------- the core UI

  /**
   * `POST /interface/main/main_screen.php?auth=login&site=…` (file 81): the clinician's OpenEMR login
   * (`authUser`, `clearPass`); 302 to the main page with the `OpenEMR` session cookie.
   */
  coreLogin(req: EmulatorRequest): EmulatorResponse {
    const form = new URLSearchParams(bodyText(req));
    const user = this.store.tables.users.find((u) => u.username === (form.get('authUser') ?? '') && u.active === '1');
    if (!user || !checkPassword(form.get('clearPass') ?? '', user.password)) {
      return {
        status: 302,
        headers: {
          location: `/interface/login/login.php?site=${this.ctx.site}&w`,
          'content-type': 'text/html; charset=utf-8',
        },
      };
    }
    const sid = b64url(randomBytes(24));
    this.coreSessions.set(sid, { user, csrf: randomBytes(20).toString('hex') });
    return {
      status: 302,
      headers: {
        location: `/interface/main/tabs/main.php?token_main=${randomBytes(20).toString('hex')}`,
        'set-cookie': `OpenEMR=${sid}; path=/; SameSite=Strict`,
        'cache-control': 'no-store, no-cache, must-revalidate',
        'content-type': 'text/html; charset=utf-8',
      },
    };
  }

  /** `GET /interface/login/login.php?site=…`: the web login form (`&w` after a failed login). */
  coreLoginForm(query: URLSearchParams): EmulatorResponse {
    return this.html(coreLoginPage(this.ctx.site, query.has('w')));
  }

  /** `GET /interface/main/tabs/main.php`: after the web login, the patients, each linking to its dashboard. */
  coreMain(req: EmulatorRequest): EmulatorResponse {
    if (!this.coreSession(req))
      return { status: 302, headers: { location: `/interface/login/login.php?site=${this.ctx.site}` } };
    return this.html(
      coreMainPage(this.store.tables.patients.map((p) => ({ pid: p.pid, name: `${p.lname}, ${p.fname}` }))),
    );
  }

  /**
   * `GET /interface/patient_file/summary/demographics.php?set_pid=<pid>`: makes the patient active in the core
   * session and shows the emulator's dashboard card of SMART apps (OpenEMR's own page is not emulated).
   */
  dashboard(req: EmulatorRequest, query: URLSearchParams): EmulatorResponse {
    const core = this.coreSession(req);
    if (!core) return { status: 302, headers: { location: `/interface/login/login.php?site=${this.ctx.site}` } };
    const pid = query.get('set_pid');
    const patient =
      pid === null
        ? this.store.tables.patients.find((p) => p.uuid === core.patient)
        : this.store.tables.patients.find((p) => p.pid === pid);
    if (!patient) return this.html('<html><body>No patient selected</body></html>');
    core.patient = patient.uuid;
    const apps = this.store.tables.clients
      .filter((c) => c.is_enabled && c.scope.includes('launch') && c.initiate_login_uri)
      .map((c) => ({ clientId: c.client_id, name: c.client_name }));
    return this.html(dashboardPage(`${patient.fname} ${patient.lname}`, core.csrf, apps));
  }

  /**
   * `GET /interface/smart/ehr-launch-client.php?client_id&csrf_token&intent` (file 82): 302 to the app's launch
   * URL with an opaque `launch` (patient, encounter, intent), `iss` and `aud` (the FHIR base).
   */
  ehrLaunch(req: EmulatorRequest, query: URLSearchParams): EmulatorResponse {
    const core = this.coreSession(req);
    const client = this.findClient(query.get('client_id') ?? '');
    if (!core || query.get('csrf_token') !== core.csrf)
      return { status: 401, headers: { 'content-type': 'text/html; charset=utf-8' }, body: 'CSRF Error' };
    if (!client?.initiate_login_uri || !client.is_enabled)
      return { status: 404, headers: {}, body: 'Client not found' };
    const launch = b64url(randomBytes(195));
    this.launches.set(launch, {
      patient: core.patient,
      intent: query.get('intent') ?? undefined,
      expires: this.ctx.now() + 3_600_000,
    });
    const fhir = `${req.origin}/apis/${this.ctx.site}/fhir`;
    const url = new URL(client.initiate_login_uri);
    url.searchParams.set('launch', launch);
    url.searchParams.set('iss', fhir);
    url.searchParams.set('aud', fhir);
    return {
      status: 302,
      headers: {
        location: url.toString(),
        'cache-control': 'no-store, no-cache, must-revalidate',
        'content-type': 'text/html; charset=utf-8',
      },
    };
  }

  // -------------------------------------------------------------------- token

  /**
   * Scopes the client did not register are silently dropped (recorded file 10); a narrower permission set of
   * a registered resource scope is kept.
   */
  private negotiate(client: OAuthClientRow, requested: readonly string[]): string[] {
    const registered = client.scope;
    return requested.filter((s) => {
      if (registered.includes(s)) return true;
      const m = /^(user|patient|system)\/([A-Za-z_*]+)\.([a-z]+)$/.exec(s);
      if (!m) return false;
      const letters = m[3] === 'read' ? 'rs' : m[3] === 'write' ? 'cud' : (m[3] ?? '');
      return [...letters].every((l) => hasScope(registered, m[1] ?? '', m[2] ?? '', l));
    });
  }

  private issued = 0;

  private addToken(row: TokenRow): void {
    // Housekeeping, so a long-running sandbox does not grow its tokens file without bound.
    if (++this.issued % 200 === 0) this.prune();
    this.store.tables.tokens.push(row);
    this.index.set(row.token, row);
    this.store.touch('tokens');
  }

  private clientAuth(req: EmulatorRequest, form: URLSearchParams): OAuthClientRow | undefined {
    let clientId = form.get('client_id') ?? '';
    let secret = form.get('client_secret');
    const header = req.headers['authorization'];
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const at = decoded.indexOf(':');
      clientId = decodeURIComponent(decoded.slice(0, at));
      secret = decodeURIComponent(decoded.slice(at + 1));
    }
    const client = this.findClient(clientId);
    if (!client) return undefined;
    if (
      client.is_confidential &&
      (secret === null || client.client_secret === null || !safeEqual(secret, client.client_secret))
    )
      return undefined;
    return client;
  }

  /** `POST /oauth2/{site}/token`. */
  async token(req: EmulatorRequest): Promise<EmulatorResponse> {
    const form = new URLSearchParams(bodyText(req));
    const grant = form.get('grant_type');
    if (grant === 'client_credentials') return this.clientCredentials(req, form);
    const client = this.clientAuth(req, form);
    if (!client) return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    if (!client.is_enabled) return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    switch (grant) {
      case 'password':
        return this.passwordGrant(req, client, form);
      case 'refresh_token':
        return this.refreshGrant(req, client, form);
      case 'authorization_code':
        return this.codeGrant(req, client, form);
      default:
        return oauthError(
          400,
          'unsupported_grant_type',
          'The authorization grant type is not supported by the authorization server.',
        );
    }
  }

  private issue(
    req: EmulatorRequest,
    client: OAuthClientRow,
    user: UserRow | undefined,
    role: TokenRow['role'],
    scopes: string[],
    options: { lifetimeSeconds: number; refresh: boolean; context?: TokenRow['context'] },
  ): EmulatorResponse {
    const now = this.ctx.now();
    const grant = b64url(randomBytes(12));
    const iss = this.base(req);
    const lifetime = options.lifetimeSeconds;
    const access = this.signJwt({
      aud: client.client_id,
      jti: randomBytes(40).toString('hex'),
      iat: now / 1000,
      nbf: now / 1000,
      exp: now / 1000 + lifetime,
      sub: user?.uuid ?? makeUuid(`system-user:${client.client_id}`),
      scopes,
      iss,
    });
    this.addToken({
      kind: 'access',
      token: access,
      client_id: client.client_id,
      user_id: user?.uuid ?? null,
      role,
      scope: scopes,
      expires_at: now + lifetime * 1000,
      revoked: false,
      context: options.context ?? null,
      grant,
    });
    const body: Record<string, unknown> = {};
    if (scopes.includes('openid') && user) {
      body['id_token'] = this.signJwt({
        aud: client.client_id,
        iss,
        iat: Math.floor(now / 1000),
        exp: Math.floor(now / 1000) + 3600,
        sub: user.uuid,
        fhirUser: this.fhirUser(req, user),
      });
    }
    const ctx = options.context;
    if (ctx?.patient !== undefined) {
      body['patient'] = ctx.patient;
      if (ctx.encounter !== undefined) body['encounter'] = ctx.encounter;
      body['need_patient_banner'] = ctx.needPatientBanner ?? true;
      if (ctx.intent !== undefined) body['intent'] = ctx.intent;
      body['smart_style_url'] = `${iss}/smart/smart-style`;
    }
    // The answer's scope leaves out the API scopes (and 7.0's site scope), which are granted (files 05, 08).
    body['scope'] = scopes.filter((s) => !s.startsWith('api:') && !s.startsWith('site:')).join(' ');
    body['token_type'] = 'Bearer';
    body['expires_in'] = lifetime;
    body['access_token'] = access;
    if (options.refresh && scopes.includes('offline_access')) {
      const refresh = b64url(randomBytes(96));
      this.addToken({
        kind: 'refresh',
        token: refresh,
        client_id: client.client_id,
        user_id: user?.uuid ?? null,
        role,
        scope: scopes,
        expires_at: now + this.ctx.lifetimes.refreshTokenSeconds * 1000,
        revoked: false,
        context: options.context ?? null,
        grant,
      });
      body['refresh_token'] = refresh;
    }
    return json(200, body, {
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'content-type': 'application/json; charset=UTF-8',
    });
  }

  private passwordGrant(req: EmulatorRequest, client: OAuthClientRow, form: URLSearchParams): EmulatorResponse {
    if (!this.options.passwordGrant) {
      return oauthError(
        400,
        'unsupported_grant_type',
        'The authorization grant type is not supported by the authorization server.',
      );
    }
    const role = form.get('user_role');
    if (role !== 'users' && role !== 'patient')
      return oauthError(400, 'invalid_request', INVALID_REQUEST, 'Check the `user_role` parameter');
    if (role === 'patient')
      return oauthError(400, 'invalid_grant', INVALID_GRANT, 'The emulator has no patient portal accounts');
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const invalid = requested.find((s) => !this.known(s));
    if (invalid !== undefined) return oauthError(400, 'invalid_scope', INVALID_SCOPE, `Check the \`${invalid}\` scope`);
    const user = this.store.tables.users.find((u) => u.username === (form.get('username') ?? '') && u.active === '1');
    if (!user || !checkPassword(form.get('password') ?? '', user.password)) {
      return oauthError(400, 'invalid_grant', INVALID_GRANT, 'Failed Authentication');
    }
    // A password login trusts the user again after a logout.
    this.loggedOut.delete(user.uuid);
    const scopes = this.negotiate(client, requested);
    return this.issue(req, client, user, 'users', scopes, {
      lifetimeSeconds: this.ctx.lifetimes.accessTokenSeconds,
      refresh: true,
    });
  }

  /**
   * Refresh (files 06, 07): rotates the refresh token and revokes the access tokens it had issued (7.0.1 file
   * 41); a refresh token used twice answers 401. After a logout the refresh still succeeds, but the user stays
   * logged out, so its token is refused (8.0.0 file 60).
   */
  private refreshGrant(req: EmulatorRequest, client: OAuthClientRow, form: URLSearchParams): EmulatorResponse {
    const row = this.index.get(form.get('refresh_token') ?? '');
    if (!row || row.kind !== 'refresh' || row.client_id !== client.client_id) {
      return oauthError(400, 'invalid_grant', 'The refresh token is invalid.', 'Cannot decrypt the refresh token');
    }
    if (row.revoked)
      return oauthError(401, 'invalid_request', 'The refresh token is invalid.', 'Token has been revoked');
    if (row.expires_at <= this.ctx.now())
      return oauthError(401, 'invalid_request', 'The refresh token is invalid.', 'Token has expired');
    row.revoked = true;
    for (const t of this.store.tables.tokens) {
      if (t.kind === 'access' && row.grant !== undefined && t.grant === row.grant) t.revoked = true;
    }
    this.store.touch('tokens');
    const user = this.store.tables.users.find((u) => u.uuid === row.user_id);
    return this.issue(req, client, user, row.role, row.scope, {
      lifetimeSeconds: this.ctx.lifetimes.accessTokenSeconds,
      refresh: true,
      context: row.context,
    });
  }

  /** Authorization code (files 77, 86): the code lives 60 s, is bound to the redirect URI and PKCE challenge. */
  private codeGrant(req: EmulatorRequest, client: OAuthClientRow, form: URLSearchParams): EmulatorResponse {
    const row = this.index.get(form.get('code') ?? '');
    if (
      !row ||
      row.kind !== 'code' ||
      row.client_id !== client.client_id ||
      row.revoked ||
      row.expires_at <= this.ctx.now()
    ) {
      return oauthError(400, 'invalid_grant', INVALID_GRANT, 'Authorization code has expired');
    }
    if (row.redirect_uri !== form.get('redirect_uri')) return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    if (row.code_challenge !== null && row.code_challenge !== undefined) {
      const verifier = form.get('code_verifier') ?? '';
      const computed = b64url(createHash('sha256').update(verifier).digest());
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || computed !== row.code_challenge) {
        return oauthError(400, 'invalid_grant', INVALID_GRANT, 'Failed to verify `code_verifier`.');
      }
    }
    row.revoked = true;
    this.store.touch('tokens');
    const user = this.store.tables.users.find((u) => u.uuid === row.user_id);
    const role = row.context?.patient !== undefined && !client.is_confidential ? 'patient' : 'users';
    return this.issue(req, client, user, role, row.scope, {
      lifetimeSeconds: this.ctx.lifetimes.accessTokenSeconds,
      refresh: true,
      context: row.context,
    });
  }

  /** The public keys a backend client registered: inline `jwks`, or fetched from `jwks_uri` on every request. */
  private async clientKeys(client: OAuthClientRow): Promise<(JsonWebKey & { kid?: string })[]> {
    const set = client.jwks_uri !== null ? await this.options.fetch(client.jwks_uri).catch(() => null) : client.jwks;
    const keys = (set as { keys?: unknown } | null)?.keys;
    return Array.isArray(keys) ? (keys as (JsonWebKey & { kid?: string })[]) : [];
  }

  /**
   * Client credentials with a `private_key_jwt` assertion (files 91–96): RS384 only, `iss` = `sub` = the client
   * id, `aud` exactly the token endpoint, `exp` within 24 h (60 s leeway), `iat` at most 5 min old, a `jti`
   * never seen before. Assertion problems answer 400 `invalid_client`; a correct assertion of a client not yet
   * enabled answers 401. Tokens last 300 s, with no refresh token.
   */
  private async clientCredentials(req: EmulatorRequest, form: URLSearchParams): Promise<EmulatorResponse> {
    const fail = (): EmulatorResponse => oauthError(400, 'invalid_client', CLIENT_AUTH_FAILED);
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return fail();
    const parts = (form.get('client_assertion') ?? '').split('.');
    if (parts.length !== 3) return fail();
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
      claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail();
    }
    if (header['alg'] !== 'RS384') return fail();
    const client = this.findClient(String(claims['sub'] ?? ''));
    if (!client || claims['iss'] !== client.client_id) return fail();
    const keys = (await this.clientKeys(client)).filter((k) => k.kty === 'RSA');
    const jwk = header['kid'] === undefined ? keys[0] : keys.find((k) => k.kid === header['kid']);
    if (!jwk) return fail();
    let ok: boolean;
    try {
      ok = verify(
        'sha384',
        Buffer.from(`${parts[0]}.${parts[1]}`),
        createPublicKey({ key: jwk, format: 'jwk' }),
        Buffer.from(parts[2] ?? '', 'base64url'),
      );
    } catch {
      ok = false;
    }
    if (!ok) return fail();
    const nowS = this.ctx.now() / 1000;
    const leeway = 60;
    const exp = Number(claims['exp']);
    const iat = Number(claims['iat'] ?? nowS);
    if (!Number.isFinite(exp) || exp < nowS - leeway) return fail();
    if (exp > nowS + 24 * 3600 + leeway)
      return oauthError(400, 'invalid_request', 'Token expiration exceeds maximum allowed time');
    if (!Number.isFinite(iat) || iat < nowS - 300 - leeway) return fail();
    if (claims['aud'] !== `${this.base(req)}/token`) return fail();
    const jti = typeof claims['jti'] === 'string' ? claims['jti'] : '';
    if (jti === '') return oauthError(400, 'invalid_request', 'Missing jti claim');
    if (this.usedJti.has(jti)) return fail();
    this.usedJti.add(jti);
    if (!client.is_enabled) return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const invalid = requested.find((s) => !this.known(s));
    if (invalid !== undefined) return oauthError(400, 'invalid_scope', INVALID_SCOPE, `Check the \`${invalid}\` scope`);
    const scopes = this.negotiate(client, requested).filter((s) => s.startsWith('system/') || s === 'api:fhir');
    return this.issue(req, client, undefined, 'system', scopes, {
      lifetimeSeconds: this.ctx.lifetimes.clientCredentialsSeconds,
      refresh: false,
    });
  }

  // --------------------------------------------------------- introspect/logout

  /**
   * `POST /oauth2/{site}/introspect` (RFC 7662; client authentication required). JSON labelled `text/html`
   * (recorded on both releases); 7.0.1 serialises `exp` as a PHP DateTime (7.0.1 file 08).
   */
  introspect(req: EmulatorRequest): EmulatorResponse {
    const form = new URLSearchParams(bodyText(req));
    const client = this.clientAuth(req, form);
    if (!client) return oauthError(401, 'invalid_client', CLIENT_AUTH_FAILED);
    const html = { 'content-type': 'text/html; charset=utf-8' };
    const row = this.index.get(form.get('token') ?? '');
    if (!row || row.revoked || row.expires_at <= this.ctx.now() || row.client_id !== client.client_id) {
      return json(200, { active: false }, html);
    }
    const user = this.store.tables.users.find((u) => u.uuid === row.user_id);
    const expiry = new Date(row.expires_at);
    const body: Record<string, unknown> = {
      active: true,
      status: 'active',
      scope: [...row.scope, ...(this.k8 ? [] : [`site:${this.ctx.site}`])].join(' '),
      exp: this.k8
        ? Math.floor(row.expires_at / 1000)
        : {
            date: `${expiry.toISOString().slice(0, 19).replace('T', ' ')}.${String(row.expires_at % 1000).padStart(3, '0')}000`,
            timezone_type: 1,
            timezone: '+00:00',
          },
      sub: row.user_id ?? row.client_id,
      jti: createHash('sha256').update(row.token).digest('hex').slice(0, 80),
      aud: [row.client_id],
    };
    if (this.k8) body['iss'] = this.base(req);
    body['client_id'] = row.client_id;
    if (this.k8 && user) body['fhirUser'] = this.fhirUser(req, user);
    return json(200, body, html);
  }

  /** `GET /oauth2/{site}/logout?id_token_hint=...`: ends the user's session; their tokens stop working. */
  logout(params: URLSearchParams): EmulatorResponse {
    const hint = params.get('id_token_hint') ?? '';
    const payload = hint.split('.')[1];
    let sub: string | undefined;
    try {
      sub = (JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { sub?: string }).sub;
    } catch {
      sub = undefined;
    }
    if (sub === undefined) return oauthError(400, 'invalid_request', 'id_token_hint is invalid');
    this.loggedOut.add(sub);
    const redirect = params.get('post_logout_redirect_uri');
    if (redirect !== null) {
      const url = new URL(redirect);
      const state = params.get('state');
      if (state !== null) url.searchParams.set('state', state);
      return { status: 302, headers: { location: url.toString() } };
    }
    return empty(200);
  }

  /**
   * Checks the bearer token of an API request.
   * @param req - the request
   */
  authenticate(req: EmulatorRequest): BearerCheck {
    const header = req.headers['authorization'];
    if (header === undefined || !header.startsWith('Bearer ')) return { ok: false, reason: 'missing' };
    const row = this.index.get(header.slice(7).trim());
    if (!row || row.kind !== 'access') return { ok: false, reason: 'invalid' };
    if (row.revoked) return { ok: false, reason: 'revoked' };
    if (row.expires_at <= this.ctx.now()) return { ok: false, reason: 'expired' };
    if (row.user_id !== null && this.loggedOut.has(row.user_id)) return { ok: false, reason: 'logged_out' };
    const user = row.user_id === null ? undefined : this.store.tables.users.find((u) => u.uuid === row.user_id);
    return { ok: true, token: row, user };
  }

  /** Drops expired tokens from memory and the table (housekeeping; keeps the tokens file small). */
  prune(): void {
    const now = this.ctx.now();
    const keep: TokenRow[] = [];
    for (const t of this.store.tables.tokens) {
      if (t.expires_at > now && !(t.kind !== 'access' && t.revoked)) keep.push(t);
      else this.index.delete(t.token);
    }
    if (keep.length === this.store.tables.tokens.length) return;
    this.store.tables.tokens = keep;
    this.store.touch('tokens');
  }
}
