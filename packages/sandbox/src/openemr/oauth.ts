/**
 * The emulator's `/oauth2/{site}/...` endpoints with OpenEMR's behaviour (notes §2): dynamic client
 * registration (confidential clients asking for user/system scopes start disabled), password,
 * refresh-token (rotated), authorization-code (+PKCE) and client-credentials (RS384 JWT assertion)
 * grants, introspection, logout, JWKS and OIDC discovery.
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
  empty,
  json,
  makeUuid,
  oauthError,
  type EmulatorRequest,
  type EmulatorResponse,
  type EngineContext,
} from './context.js';
import { hasScope, isKnownScope } from './scopes.js';
import type { OAuthClientRow, TokenRow, UserRow } from './types.js';

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

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

/** Result of authenticating a bearer token on an API route. */
export type BearerCheck =
  | { ok: true; token: TokenRow; user: UserRow | undefined }
  | { ok: false; reason: 'missing' | 'invalid' | 'logged_out' };

/** The OAuth2 server. */
export class OAuthServer {
  private readonly privateKey: KeyObject;
  private readonly publicJwk: JsonWebKey & { kid: string };
  private readonly usedJti = new Set<string>();
  /** Only known tokens are indexed; the table is the persistent copy. */
  private readonly index = new Map<string, TokenRow>();
  /** Users whose sessions were ended by `/logout` (notes §2.7): their tokens answer 400. */
  readonly loggedOut = new Set<string>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly options: { passwordGrant: boolean; autoLoginUser: string },
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

  private base(req: EmulatorRequest): string {
    return `${req.origin}/oauth2/${this.ctx.site}`;
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
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: this.publicJwk.kid }));
    const payload = b64url(JSON.stringify(claims));
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), this.privateKey);
    return `${header}.${payload}.${b64url(signature)}`;
  }

  // ---------------------------------------------------------------- discovery

  /** `GET /oauth2/{site}/.well-known/openid-configuration` (notes §2.1). */
  discovery(req: EmulatorRequest): EmulatorResponse {
    const base = this.base(req);
    const grants = ['authorization_code', 'refresh_token', 'client_credentials'];
    if (this.options.passwordGrant) grants.push('password');
    return json(200, {
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/jwk`,
      userinfo_endpoint: `${base}/userinfo`,
      registration_endpoint: `${base}/registration`,
      end_session_endpoint: `${base}/logout`,
      introspection_endpoint: `${base}/introspect`,
      scopes_supported: ['openid', 'offline_access', 'api:oemr', 'api:fhir', 'api:port'],
      response_types_supported: ['code'],
      grant_types_supported: grants,
      code_challenge_methods_supported: ['S256', 'plain'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
      id_token_signing_alg_values_supported: ['RS256'],
      subject_types_supported: ['public'],
      claims_supported: ['aud', 'email', 'exp', 'family_name', 'given_name', 'iat', 'iss', 'name', 'sub', 'fhirUser'],
    });
  }

  /** `GET /oauth2/{site}/jwk`. */
  jwks(): EmulatorResponse {
    return json(200, { keys: [this.publicJwk] });
  }

  // ------------------------------------------------------------- registration

  /** `POST /oauth2/{site}/registration` (notes §2.2). */
  register(req: EmulatorRequest): EmulatorResponse {
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(req.body ?? '');
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
    const scopeText =
      typeof body['scope'] === 'string' ? body['scope'] : 'openid email phone address api:oemr api:fhir api:port';
    const scopes = scopeText.split(/\s+/).filter(Boolean);
    const invalid = scopes.find((s) => !isKnownScope(s));
    if (invalid !== undefined) return oauthError(400, 'invalid_client_metadata', `Invalid scope ${invalid}`);
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
    const authMethod =
      typeof body['token_endpoint_auth_method'] === 'string'
        ? body['token_endpoint_auth_method']
        : confidential
          ? 'client_secret_post'
          : 'none';
    if (!['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'].includes(authMethod)) {
      return oauthError(400, 'invalid_client_metadata', 'Unsupported token_endpoint_auth_method');
    }
    const dsi = typeof body['dsi_type'] === 'string' ? body['dsi_type'] : 'none';
    if (!['none', 'evidence', 'predictive'].includes(dsi))
      return oauthError(400, 'invalid_client_metadata', 'Invalid dsi_type');
    const clientId = b64url(randomBytes(32));
    const row: OAuthClientRow = {
      client_id: clientId,
      client_secret: confidential ? b64url(randomBytes(64)) : null,
      client_name: typeof body['client_name'] === 'string' ? body['client_name'] : '',
      client_role: wantsSystem ? 'system' : 'user',
      is_confidential: confidential,
      // Manual approval (notes §2.2): confidential clients with user/ or system/ scopes start disabled.
      is_enabled: !(confidential && (wantsUser || wantsSystem)),
      redirect_uris: redirectUris as string[],
      grant_types: Array.isArray(body['grant_types'])
        ? (body['grant_types'] as unknown[]).map(String)
        : ['authorization_code'],
      scope: scopes,
      token_endpoint_auth_method: authMethod,
      jwks,
      jwks_uri: jwksUri,
      registration_access_token: b64url(randomBytes(32)),
      registration_client_uri_path: b64url(randomBytes(16)),
      dsi_type: dsi,
      contacts: Array.isArray(body['contacts']) ? (body['contacts'] as unknown[]).map(String) : [],
      created: Math.floor(this.ctx.now() / 1000),
    };
    this.store.tables.clients.push(row);
    this.store.touch('clients');
    return json(200, this.clientView(req, row));
  }

  private clientView(req: EmulatorRequest, row: OAuthClientRow): Record<string, unknown> {
    const view: Record<string, unknown> = {
      client_id: row.client_id,
      client_id_issued_at: row.created,
      registration_access_token: row.registration_access_token,
      registration_client_uri: `${this.base(req)}/client/${row.registration_client_uri_path}`,
      client_name: row.client_name,
      redirect_uris: row.redirect_uris,
      grant_types: row.grant_types,
      response_types: ['code'],
      token_endpoint_auth_method: row.token_endpoint_auth_method,
      application_type: row.is_confidential ? 'private' : 'public',
      contacts: row.contacts,
      scope: row.scope.join(' '),
      dsi_type: row.dsi_type,
    };
    if (row.client_secret !== null) {
      view['client_secret'] = row.client_secret;
      view['client_secret_expires_at'] = 0;
    }
    if (row.jwks_uri !== null) view['jwks_uri'] = row.jwks_uri;
    if (row.jwks !== null) view['jwks'] = row.jwks;
    return view;
  }

  /** `GET /oauth2/{site}/client/{path}`: registration read-back, bearer = registration access token. */
  readClient(req: EmulatorRequest, path: string): EmulatorResponse {
    const row = this.store.tables.clients.find((c) => c.registration_client_uri_path === path);
    const auth = req.headers['authorization'] ?? '';
    if (!row || !safeEqual(auth, `Bearer ${row.registration_access_token}`)) {
      return oauthError(401, 'invalid_client', 'Client authentication failed');
    }
    return json(200, this.clientView(req, row));
  }

  // ---------------------------------------------------------------- authorize

  /**
   * `GET|POST /oauth2/{site}/authorize`. The real server shows HTML login and consent screens; the
   * emulator logs in `autoLoginUser` and consents to everything requested, then redirects with a code.
   */
  authorize(req: EmulatorRequest, params: URLSearchParams): EmulatorResponse {
    const client = this.findClient(params.get('client_id') ?? '');
    const redirectUri = params.get('redirect_uri') ?? '';
    if (!client || !client.redirect_uris.includes(redirectUri)) {
      // A redirect URI mismatch surfaces as invalid_client (openemr/openemr#6644).
      return oauthError(401, 'invalid_client', 'Client authentication failed');
    }
    const back = (q: Record<string, string>): EmulatorResponse => {
      const url = new URL(redirectUri);
      for (const [k, v] of Object.entries(q)) url.searchParams.set(k, v);
      const state = params.get('state');
      if (state !== null) url.searchParams.set('state', state);
      return { status: 302, headers: { location: url.toString() } };
    };
    if (params.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' });
    if (!client.is_enabled) return back({ error: 'invalid_client', error_description: 'Client is disabled' });
    const challenge = params.get('code_challenge');
    const method = params.get('code_challenge_method') ?? 'plain';
    if (!client.is_confidential && (challenge === null || method !== 'S256')) {
      return back({ error: 'invalid_request', error_description: 'PKCE with S256 is required for public clients' });
    }
    const aud = params.get('aud');
    const apiBase = `${req.origin}/apis/${this.ctx.site}`;
    if (aud !== null && ![`${apiBase}/fhir`, `${apiBase}/api`, `${apiBase}/portal`].includes(aud)) {
      return back({ error: 'invalid_request', error_description: 'Invalid audience' });
    }
    const granted = this.negotiateScopes(client, params.get('scope') ?? '');
    if ('error' in granted) return back({ error: 'invalid_scope', error_description: granted.error });
    const user = this.store.tables.users.find((u) => u.username === this.options.autoLoginUser);
    if (!user) return back({ error: 'access_denied' });
    const code = b64url(randomBytes(32));
    this.addToken({
      kind: 'code',
      token: code,
      client_id: client.client_id,
      user_id: user.uuid,
      role: 'users',
      scope: granted.scopes,
      expires_at: this.ctx.now() + this.ctx.lifetimes.authorizationCodeSeconds * 1000,
      revoked: false,
      code_challenge: challenge,
      code_challenge_method: method,
      redirect_uri: redirectUri,
    });
    return back({ code });
  }

  // -------------------------------------------------------------------- token

  private negotiateScopes(client: OAuthClientRow, requested: string): { scopes: string[] } | { error: string } {
    const list = requested.split(/\s+/).filter(Boolean);
    const invalid = list.find((s) => !isKnownScope(s));
    if (invalid !== undefined) return { error: `The requested scope is invalid, unknown, or malformed: ${invalid}` };
    // Scopes the client did not register are silently dropped (notes §2.5); a narrower permission set
    // of a registered resource scope is kept.
    const registered = client.scope;
    const kept = list.filter((s) => {
      if (registered.includes(s)) return true;
      const m = /^(user|patient|system)\/([A-Za-z_*]+)\.([a-z]+)$/.exec(s);
      if (!m) return false;
      const letters = m[3] === 'read' ? 'rs' : m[3] === 'write' ? 'cud' : (m[3] ?? '');
      return [...letters].every((l) => hasScope(registered, m[1] ?? '', m[2] ?? '', l));
    });
    return { scopes: kept };
  }

  private issued = 0;

  private addToken(row: TokenRow): void {
    // Housekeeping, so a long-running sandbox does not grow its tokens file without bound.
    if (++this.issued % 200 === 0) this.prune();
    this.store.tables.tokens.push(row);
    this.index.set(row.token, row);
    this.store.touch('tokens');
  }

  private clientAuth(
    req: EmulatorRequest,
    form: URLSearchParams,
  ): { client: OAuthClientRow; secretChecked: boolean } | { error: EmulatorResponse } {
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
    const fail = { error: oauthError(401, 'invalid_client', 'Client authentication failed') };
    if (!client) return fail;
    if (client.is_confidential) {
      if (secret === null) return form.get('client_assertion') !== null ? { client, secretChecked: false } : fail;
      if (client.client_secret === null || !safeEqual(secret, client.client_secret)) return fail;
      return { client, secretChecked: true };
    }
    return { client, secretChecked: false };
  }

  /** `POST /oauth2/{site}/token`. */
  token(req: EmulatorRequest): EmulatorResponse {
    const form = new URLSearchParams(req.body ?? '');
    const grant = form.get('grant_type');
    if (grant === 'client_credentials') return this.clientCredentials(req, form);
    const auth = this.clientAuth(req, form);
    if ('error' in auth) return auth.error;
    const client = auth.client;
    if (!client.is_enabled)
      return oauthError(401, 'invalid_client', 'Client authentication failed', 'Client is not enabled');
    switch (grant) {
      case 'password':
        return this.passwordGrant(client, form);
      case 'refresh_token':
        return this.refreshGrant(client, form);
      case 'authorization_code':
        return this.codeGrant(client, form);
      default:
        return oauthError(
          400,
          'unsupported_grant_type',
          'The authorization grant type is not supported by the authorization server.',
        );
    }
  }

  private issue(
    client: OAuthClientRow,
    user: UserRow | undefined,
    role: TokenRow['role'],
    scopes: string[],
    lifetimeSeconds: number,
    withRefresh: boolean,
  ): EmulatorResponse {
    const now = this.ctx.now();
    const jti = b64url(randomBytes(24));
    const access = this.signJwt({
      aud: client.client_id,
      jti,
      iat: Math.floor(now / 1000),
      nbf: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + lifetimeSeconds,
      sub: user?.uuid ?? client.client_id,
      scopes,
    });
    this.addToken({
      kind: 'access',
      token: access,
      client_id: client.client_id,
      user_id: user?.uuid ?? null,
      role,
      scope: scopes,
      expires_at: now + lifetimeSeconds * 1000,
      revoked: false,
    });
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      expires_in: lifetimeSeconds,
      access_token: access,
      scope: scopes.join(' '),
    };
    if (scopes.includes('openid') && user) {
      body['id_token'] = this.signJwt({
        iss: `openemr`,
        aud: client.client_id,
        sub: user.uuid,
        iat: Math.floor(now / 1000),
        exp: Math.floor(now / 1000) + 3600,
        fhirUser: `Practitioner/${user.uuid}`,
      });
    }
    if (withRefresh && scopes.includes('offline_access')) {
      const refresh = b64url(randomBytes(48));
      this.addToken({
        kind: 'refresh',
        token: refresh,
        client_id: client.client_id,
        user_id: user?.uuid ?? null,
        role,
        scope: scopes,
        expires_at: now + this.ctx.lifetimes.refreshTokenSeconds * 1000,
        revoked: false,
      });
      body['refresh_token'] = refresh;
    }
    return json(200, body, { 'cache-control': 'no-store', pragma: 'no-cache' });
  }

  private passwordGrant(client: OAuthClientRow, form: URLSearchParams): EmulatorResponse {
    if (!this.options.passwordGrant) {
      return oauthError(
        400,
        'unsupported_grant_type',
        'The authorization grant type is not supported by the authorization server.',
      );
    }
    const role = form.get('user_role');
    if (role !== 'users' && role !== 'patient') {
      return oauthError(
        400,
        'invalid_request',
        'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.',
        'Check the `user_role` parameter',
      );
    }
    if (role === 'patient') {
      return oauthError(
        400,
        'invalid_grant',
        'The user credentials were incorrect.',
        'The emulator has no patient portal accounts',
      );
    }
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const user = this.store.tables.users.find((u) => u.username === username && u.active === '1');
    if (!user || !checkPassword(password, user.password)) {
      return oauthError(400, 'invalid_grant', 'The user credentials were incorrect.');
    }
    const scopes = this.negotiateScopes(client, form.get('scope') ?? '');
    if ('error' in scopes) return oauthError(400, 'invalid_scope', scopes.error);
    this.loggedOut.delete(user.uuid);
    return this.issue(client, user, 'users', scopes.scopes, this.ctx.lifetimes.accessTokenSeconds, true);
  }

  private refreshGrant(client: OAuthClientRow, form: URLSearchParams): EmulatorResponse {
    const row = this.index.get(form.get('refresh_token') ?? '');
    if (!row || row.kind !== 'refresh' || row.client_id !== client.client_id) {
      return oauthError(400, 'invalid_grant', 'The refresh token is invalid.', 'Cannot decrypt the refresh token');
    }
    if (row.revoked)
      return oauthError(400, 'invalid_request', 'The refresh token is invalid.', 'Token has been revoked');
    if (row.expires_at <= this.ctx.now())
      return oauthError(400, 'invalid_request', 'The refresh token is invalid.', 'Token has expired');
    if (row.user_id !== null && this.loggedOut.has(row.user_id)) {
      return oauthError(400, 'invalid_request', 'Refresh Token revoked or logged out');
    }
    // Rotation: the old refresh token is revoked the moment a new one is issued.
    row.revoked = true;
    this.store.touch('tokens');
    const user = this.store.tables.users.find((u) => u.uuid === row.user_id);
    return this.issue(client, user, row.role, row.scope, this.ctx.lifetimes.accessTokenSeconds, true);
  }

  private codeGrant(client: OAuthClientRow, form: URLSearchParams): EmulatorResponse {
    const row = this.index.get(form.get('code') ?? '');
    if (
      !row ||
      row.kind !== 'code' ||
      row.client_id !== client.client_id ||
      row.revoked ||
      row.expires_at <= this.ctx.now()
    ) {
      return oauthError(
        400,
        'invalid_grant',
        'The provided authorization grant is invalid, expired or revoked.',
        'Authorization code is invalid',
      );
    }
    if (row.redirect_uri !== form.get('redirect_uri')) {
      return oauthError(401, 'invalid_client', 'Client authentication failed');
    }
    if (row.code_challenge !== null && row.code_challenge !== undefined) {
      const verifier = form.get('code_verifier') ?? '';
      const computed =
        row.code_challenge_method === 'S256' ? b64url(createHash('sha256').update(verifier).digest()) : verifier;
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || computed !== row.code_challenge) {
        return oauthError(
          400,
          'invalid_grant',
          'The provided authorization grant is invalid, expired or revoked.',
          'Failed to verify `code_verifier`.',
        );
      }
    }
    row.revoked = true;
    this.store.touch('tokens');
    const user = this.store.tables.users.find((u) => u.uuid === row.user_id);
    return this.issue(client, user, 'users', row.scope, this.ctx.lifetimes.accessTokenSeconds, true);
  }

  private clientCredentials(req: EmulatorRequest, form: URLSearchParams): EmulatorResponse {
    const fail = (hint: string): EmulatorResponse =>
      oauthError(401, 'invalid_client', 'Client authentication failed', hint);
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return fail('client_assertion_type must be jwt-bearer');
    }
    const assertion = form.get('client_assertion') ?? '';
    const parts = assertion.split('.');
    if (parts.length !== 3) return fail('Malformed client_assertion');
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
      claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail('Malformed client_assertion');
    }
    if (header['alg'] !== 'RS384') return fail('Only RS384 assertions are accepted');
    const client = this.findClient(String(claims['iss'] ?? ''));
    if (!client || claims['sub'] !== client.client_id) return fail('iss and sub must be the client_id');
    if (!client.is_enabled) return fail('Client is not enabled');
    const keys = (client.jwks as { keys?: (JsonWebKey & { kid?: string })[] } | null)?.keys ?? [];
    const jwk = keys.find((k) => k.kid === header['kid']) ?? (keys.length === 1 ? keys[0] : undefined);
    if (!jwk) return fail('No registered key matches the assertion kid');
    const ok = verify(
      'sha384',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      createPublicKey({ key: jwk, format: 'jwk' }),
      Buffer.from(parts[2] ?? '', 'base64url'),
    );
    if (!ok) return fail('Signature verification failed');
    const nowS = Math.floor(this.ctx.now() / 1000);
    const exp = Number(claims['exp']);
    if (!Number.isFinite(exp) || exp <= nowS || exp > nowS + 300)
      return fail('exp must be in the future and at most 5 minutes away');
    if (claims['aud'] !== `${this.base(req)}/token`) return fail('aud must be the token endpoint');
    const jti = String(claims['jti'] ?? '');
    if (jti === '' || this.usedJti.has(jti)) return fail('jti must be unique');
    this.usedJti.add(jti);
    const scopes = this.negotiateScopes(client, form.get('scope') ?? '');
    if ('error' in scopes) return oauthError(400, 'invalid_scope', scopes.error);
    const systemOnly = scopes.scopes.filter(
      (s) => s.startsWith('system/') || s === 'api:fhir' || s === 'openid' || s === 'fhirUser',
    );
    return this.issue(client, undefined, 'system', systemOnly, this.ctx.lifetimes.clientCredentialsSeconds, false);
  }

  // --------------------------------------------------------- introspect/logout

  /** `POST /oauth2/{site}/introspect` (RFC 7662; client authentication required). */
  introspect(req: EmulatorRequest): EmulatorResponse {
    const form = new URLSearchParams(req.body ?? '');
    const auth = this.clientAuth(req, form);
    if ('error' in auth) return auth.error;
    const row = this.index.get(form.get('token') ?? '');
    if (!row || row.revoked || row.expires_at <= this.ctx.now() || row.client_id !== auth.client.client_id) {
      return json(200, { active: false });
    }
    return json(200, {
      active: true,
      scope: row.scope.join(' '),
      client_id: row.client_id,
      token_type: row.kind === 'refresh' ? 'refresh_token' : 'access_token',
      exp: Math.floor(row.expires_at / 1000),
      sub: row.user_id ?? row.client_id,
    });
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
    if (!row || row.kind !== 'access' || row.revoked || row.expires_at <= this.ctx.now())
      return { ok: false, reason: 'invalid' };
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
