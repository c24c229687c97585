/**
 * OAuth2 / OIDC against OpenEMR's `/oauth2/{site}` endpoints (notes §2): token grants, refresh-token
 * rotation shared by concurrent callers, PKCE and authorization-URL helpers, client credentials with an
 * RS384 JWT assertion (jose), dynamic client registration, introspection and discovery. Tokens are never
 * logged: the transport logs no bodies or headers, and errors carry only the server's error body.
 * @packageDocumentation
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CdssError,
  HttpError,
  HttpTransport,
  ValidationError,
  signClientAssertion,
  systemClock,
  type AssertionPrivateKey,
  type Clock,
  type Logger,
  type OAuth2Token,
  type TokenProvider,
} from '@cdss/core';
import { z } from 'zod';
import {
  clientRegistrationResponseSchema,
  clientRegistrationSchema,
  discoverySchema,
  introspectionSchema,
  tokenResponseSchema,
  type ClientRegistration,
  type ClientRegistrationInput,
  type DiscoveryDocument,
  type Introspection,
  type TokenSet,
} from './schemas.js';
import { OpenEmrSessionEndedError } from './http.js';

/** Options of {@link OpenEmrOAuth}. */
export interface OpenEmrOAuthOptions {
  /** The server root, e.g. `https://emr.example` (without `/oauth2`). */
  baseUrl: string;
  /** Multisite name. Default `default`. */
  site?: string | undefined;
  /** The registered client id. Needed for every grant. */
  clientId?: string | undefined;
  /** The client secret of a confidential client (sent as `client_secret_post`). */
  clientSecret?: string | undefined;
  /** Transport to use (for tests or custom TLS); default a new one on `<baseUrl>/oauth2/<site>` with no retries. */
  transport?: HttpTransport | undefined;
  /** Time source, for token expiry. Default the system clock. */
  clock?: Clock | undefined;
  /** Logger for the default transport (it never sees tokens). */
  logger?: Logger | undefined;
}

/** Password-grant credentials (the grant must be enabled in OpenEMR: Admin → Config → Connectors). */
export interface PasswordGrantInput {
  username: string;
  password: string;
  /** `users` (clinicians; required for `/api`) or `patient`. Default `users`. */
  userRole?: 'users' | 'patient' | undefined;
  /** Required by OpenEMR when `userRole` is `patient`. */
  email?: string | undefined;
  /** Space-separated scopes or a list. */
  scope: string | readonly string[];
}

/** Options of {@link OpenEmrOAuth.clientCredentials}. */
export interface ClientCredentialsInput {
  /** The private key whose public half is in the client's registered JWKS: a `KeyObject`, `CryptoKey`, JWK or PKCS#8 PEM. */
  privateKey: AssertionPrivateKey;
  /** The `kid` of that key in the registered JWKS. */
  kid: string;
  /** `system/...` scopes (space-separated or a list). */
  scope: string | readonly string[];
  /**
   * The assertion's `aud`: exactly the token endpoint URL OpenEMR knows itself by (`site_addr_oath` +
   * `/oauth2/<site>/token`; anything else answers 400 `invalid_client`, recorded-8.0.0 file 94). Default the
   * client's own token endpoint; set it when the client reaches OpenEMR through another address.
   */
  audience?: string | undefined;
}

/** A PKCE pair (RFC 7636, S256). */
export interface PkcePair {
  /** Keep secret until the token exchange. */
  verifier: string;
  /** Send with the authorization request. */
  challenge: string;
  method: 'S256';
}

/**
 * Creates a PKCE verifier and its S256 challenge.
 * @returns the pair
 */
export function createPkcePair(): PkcePair {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url'), method: 'S256' };
}

const scopeText = (scope: string | readonly string[]): string =>
  (typeof scope === 'string' ? scope : scope.join(' ')).trim();

const passwordInputSchema = z.object({
  username: z.string().min(1),
  password: z.string().min(1),
  userRole: z.enum(['users', 'patient']).default('users'),
  email: z.email().optional(),
  scope: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
});

/** An OAuth2 error from OpenEMR's token endpoint (`error`, `error_description`, `hint`). */
export class OpenEmrAuthError extends CdssError {
  /** OAuth2 error code, e.g. `invalid_grant`, `invalid_client`, `invalid_scope`. */
  readonly error: string;
  /** HTTP status of the answer. */
  readonly status: number | undefined;
  /** The server's hint, if any. */
  readonly hint: string | undefined;

  constructor(
    error: string,
    description: string,
    status: number | undefined,
    hint: string | undefined,
    cause: unknown,
  ) {
    super(`OpenEMR OAuth2 error ${error}: ${description}${hint ? ` (${hint})` : ''}`, { code: 'OAUTH_ERROR', cause });
    this.error = error;
    this.status = status;
    this.hint = hint;
  }
}

function toAuthError(error: unknown): unknown {
  if (!HttpError.isInstance(error)) return error;
  const body = error.responseBody as
    { error?: unknown; error_description?: unknown; message?: unknown; hint?: unknown } | undefined;
  if (body && typeof body.error === 'string') {
    const description =
      typeof body.error_description === 'string'
        ? body.error_description
        : typeof body.message === 'string'
          ? body.message
          : '';
    return new OpenEmrAuthError(
      body.error,
      description,
      error.status,
      typeof body.hint === 'string' ? body.hint : undefined,
      error,
    );
  }
  return error;
}

/**
 * OpenEMR's OAuth2 server.
 * @example
 * ```ts
 * const oauth = new OpenEmrOAuth({ baseUrl: 'https://emr.example', clientId, clientSecret });
 * const tokens = await oauth.passwordGrant({ username, password, scope: CDSS_SCOPES });
 * ```
 */
export class OpenEmrOAuth {
  /** `<baseUrl>/oauth2/<site>`. */
  readonly issuerUrl: string;
  private readonly transport: HttpTransport;
  private readonly clock: Clock;
  private clientId: string | undefined;
  private clientSecret: string | undefined;

  /**
   * @param options - server, client credentials, transport, clock
   * @throws {@link ValidationError} when `baseUrl` is not an http(s) URL
   */
  constructor(options: OpenEmrOAuthOptions) {
    const base = z.url({ protocol: /^https?$/ }).safeParse(options.baseUrl);
    if (!base.success) throw ValidationError.fromZod(base.error, 'Invalid OpenEMR baseUrl');
    const site = options.site ?? 'default';
    this.issuerUrl = `${options.baseUrl.replace(/\/+$/, '')}/oauth2/${encodeURIComponent(site)}`;
    this.transport =
      options.transport ?? new HttpTransport({ baseUrl: this.issuerUrl, retry: false, logger: options.logger });
    this.clock = options.clock ?? systemClock;
    this.clientId = options.clientId;
    this.clientSecret = options.clientSecret;
  }

  /** The token endpoint URL (also the `aud` of client assertions). */
  get tokenEndpoint(): string {
    return `${this.issuerUrl}/token`;
  }

  private requireClientId(): string {
    if (this.clientId === undefined) {
      throw new ValidationError('OpenEMR OAuth needs a client id', [
        { path: 'clientId', message: 'required', code: 'invalid_type' },
      ]);
    }
    return this.clientId;
  }

  private async tokenRequest(form: Record<string, string | undefined>): Promise<TokenSet> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
    const started = this.clock.now();
    let data: unknown;
    try {
      ({ data } = await this.transport.request({
        method: 'POST',
        path: 'token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body.toString(),
      }));
    } catch (error) {
      throw toAuthError(error);
    }
    const parsed = tokenResponseSchema.safeParse(data);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid OpenEMR token response');
    const t = parsed.data;
    return {
      accessToken: t.access_token,
      expiresAt: started + t.expires_in * 1000,
      refreshToken: t.refresh_token,
      idToken: t.id_token,
      scopes: (t.scope ?? '').split(/\s+/).filter(Boolean),
      patient: t.patient,
      encounter: t.encounter,
      needPatientBanner: t.need_patient_banner,
      smartStyleUrl: t.smart_style_url,
      intent: t.intent,
    };
  }

  /**
   * Password grant (`grant_type=password` with `user_role`).
   * @param input - credentials and scopes
   * @returns the tokens; a refresh token only when `offline_access` was granted
   * @throws {@link ValidationError} on missing input; {@link OpenEmrAuthError} when OpenEMR refuses
   */
  async passwordGrant(input: PasswordGrantInput): Promise<TokenSet> {
    const parsed = passwordInputSchema.safeParse(input);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid password grant input');
    if (parsed.data.userRole === 'patient' && parsed.data.email === undefined) {
      throw new ValidationError('Invalid password grant input', [
        { path: 'email', message: 'required when userRole is patient', code: 'invalid_type' },
      ]);
    }
    return this.tokenRequest({
      grant_type: 'password',
      client_id: this.requireClientId(),
      client_secret: this.clientSecret,
      user_role: parsed.data.userRole,
      username: parsed.data.username,
      password: parsed.data.password,
      email: parsed.data.email,
      scope: scopeText(input.scope),
    });
  }

  /**
   * Refresh-token grant. OpenEMR rotates the refresh token: store the new one from the result.
   * @param refreshToken - the current refresh token
   * @throws {@link OpenEmrAuthError} when it was used, revoked, expired or the user logged out
   */
  async refresh(refreshToken: string): Promise<TokenSet> {
    if (refreshToken === '')
      throw new ValidationError('Invalid refresh', [{ path: 'refreshToken', message: 'required', code: 'too_small' }]);
    return this.tokenRequest({
      grant_type: 'refresh_token',
      client_id: this.requireClientId(),
      client_secret: this.clientSecret,
      refresh_token: refreshToken,
    });
  }

  /**
   * The URL to send a user to for the authorization-code flow (SMART App Launch 2: PKCE S256 always; `aud`
   * is the FHIR base, and OpenEMR requires it with `launch`, recorded-8.0.0 file 83). OpenEMR then shows its
   * login page, a patient picker (`launch/patient`) and the scope approval page, and redirects to
   * `redirectUri` with a code that lives 60 s.
   * @param input - redirect URI (exactly as registered), scopes, state, PKCE challenge, audience, launch token
   * @returns the URL of `/authorize`
   * @throws {@link ValidationError} without a PKCE challenge, or with `launch` but no `aud`
   */
  authorizationUrl(input: {
    redirectUri: string;
    scope: string | readonly string[];
    state: string;
    /** The S256 challenge of a {@link createPkcePair} (OpenEMR refuses public apps without it, file 79). */
    codeChallenge: string;
    /** The API the token is for, e.g. `<baseUrl>/apis/default/fhir`; required with `launch`. */
    aud?: string | undefined;
    /** The opaque `launch` parameter OpenEMR's launcher gave the app (EHR launch). */
    launch?: string | undefined;
  }): string {
    const issues: { path: string; message: string; code: string }[] = [];
    if (typeof input.codeChallenge !== 'string' || input.codeChallenge === '')
      issues.push({ path: 'codeChallenge', message: 'PKCE (S256) is required', code: 'invalid_type' });
    if (input.launch !== undefined && (input.aud === undefined || input.aud === ''))
      issues.push({
        path: 'aud',
        message: 'required with launch (the FHIR base URL, the launch `iss`)',
        code: 'invalid_type',
      });
    if (issues.length > 0) throw new ValidationError('Invalid authorization request', issues);
    const url = new URL(`${this.issuerUrl}/authorize`);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.requireClientId());
    url.searchParams.set('redirect_uri', input.redirectUri);
    url.searchParams.set('scope', scopeText(input.scope));
    url.searchParams.set('state', input.state);
    if (input.aud !== undefined) url.searchParams.set('aud', input.aud);
    if (input.launch !== undefined) url.searchParams.set('launch', input.launch);
    url.searchParams.set('code_challenge', input.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    return url.toString();
  }

  /**
   * Exchanges an authorization code (from the redirect) for tokens.
   * @param input - the code, the same redirect URI, and the PKCE verifier
   * @throws {@link OpenEmrAuthError} on a bad, expired or reused code, or a verifier mismatch
   */
  async exchangeCode(input: {
    code: string;
    redirectUri: string;
    codeVerifier?: string | undefined;
  }): Promise<TokenSet> {
    if (input.code === '')
      throw new ValidationError('Invalid code exchange', [{ path: 'code', message: 'required', code: 'too_small' }]);
    return this.tokenRequest({
      grant_type: 'authorization_code',
      code: input.code,
      redirect_uri: input.redirectUri,
      client_id: this.requireClientId(),
      client_secret: this.clientSecret,
      code_verifier: input.codeVerifier,
    });
  }

  /**
   * Client-credentials grant with a signed RS384 JWT assertion (SMART Backend Services), for `system/*`
   * FHIR scopes. As recorded on 8.0.0 (files 92–96): `iss` = `sub` = the client id, `aud` = the token
   * endpoint exactly, a fresh `jti` each time (a reused one is refused), `exp` within 24 h (the client uses
   * 4 minutes); the token lasts 300 s and comes without a refresh token. The client must be enabled by an
   * administrator, and the `rest_system_scopes_api` global must be on.
   * @param input - the private key, its kid, and the scopes
   * @throws {@link OpenEmrAuthError} when OpenEMR refuses the assertion
   */
  async clientCredentials(input: ClientCredentialsInput): Promise<TokenSet> {
    const assertion = await signClientAssertion({
      clientId: this.requireClientId(),
      audience: input.audience ?? this.tokenEndpoint,
      key: { kid: input.kid, privateKey: input.privateKey, alg: 'RS384' },
      lifetimeSeconds: 240,
      clock: this.clock,
    });
    return this.tokenRequest({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: scopeText(input.scope),
    });
  }

  /**
   * Dynamic client registration (RFC 7591). Confidential clients asking for `user/` or `system/` scopes
   * are created disabled: an administrator must enable them (Admin → System → API Clients).
   * @param input - client metadata
   * @returns the registration, including `client_id` and (confidential clients) `client_secret`
   * @throws {@link ValidationError} before sending when the metadata is invalid; {@link OpenEmrAuthError} when OpenEMR refuses it
   */
  async registerClient(input: ClientRegistrationInput): Promise<ClientRegistration> {
    const parsed = clientRegistrationSchema.safeParse(input);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid client registration');
    const scopes = parsed.data.scope.split(/\s+/);
    if (
      parsed.data.application_type !== 'private' &&
      scopes.some((s) => s.startsWith('user/') || s.startsWith('system/'))
    ) {
      throw new ValidationError('Invalid client registration', [
        { path: 'scope', message: 'public clients may not request user/ or system/ scopes', code: 'invalid_value' },
      ]);
    }
    if (
      scopes.some((s) => s.startsWith('system/')) &&
      parsed.data.jwks === undefined &&
      parsed.data.jwks_uri === undefined
    ) {
      throw new ValidationError('Invalid client registration', [
        { path: 'jwks', message: 'system/ scopes need jwks or jwks_uri', code: 'invalid_type' },
      ]);
    }
    let data: unknown;
    try {
      ({ data } = await this.transport.request({ method: 'POST', path: 'registration', body: parsed.data }));
    } catch (error) {
      throw toAuthError(error);
    }
    const result = clientRegistrationResponseSchema.safeParse(data);
    if (!result.success) throw ValidationError.fromZod(result.error, 'Invalid OpenEMR registration response');
    this.clientId = result.data.client_id;
    this.clientSecret = result.data.client_secret;
    return result.data;
  }

  /**
   * OIDC discovery (`/.well-known/openid-configuration`).
   * @returns the discovery document
   */
  async discover(): Promise<DiscoveryDocument> {
    const { data } = await this.transport.request({
      method: 'GET',
      path: '.well-known/openid-configuration',
      schema: discoverySchema,
    });
    return data;
  }

  /**
   * Token introspection (RFC 7662). Needs the client's secret.
   * @param token - an access or refresh token
   */
  async introspect(token: string): Promise<Introspection> {
    const body = new URLSearchParams({ token, client_id: this.requireClientId() });
    if (this.clientSecret !== undefined) body.set('client_secret', this.clientSecret);
    try {
      const { data } = await this.transport.request({
        method: 'POST',
        path: 'introspect',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: body.toString(),
        schema: introspectionSchema,
      });
      return data;
    } catch (error) {
      throw toAuthError(error);
    }
  }
}

/**
 * `fetchToken` over `obtain`: concurrent calls share one request, so a burst of expiries makes a single
 * token request and a rotated refresh token is never used twice.
 */
function sharedFetch(obtain: () => Promise<TokenSet>): () => Promise<OAuth2Token> {
  let inflight: Promise<TokenSet> | undefined;
  return async () => {
    inflight ??= obtain().finally(() => {
      inflight = undefined;
    });
    const t = await inflight;
    return { accessToken: t.accessToken, expiresAt: t.expiresAt };
  };
}

/** Options of {@link createPasswordTokenProvider}. */
export interface PasswordTokenProviderOptions extends PasswordGrantInput {
  /** The OAuth client. */
  oauth: OpenEmrOAuth;
  /** Called with every new token set (e.g. to persist the rotated refresh token). Never log its contents. */
  onTokens?: ((tokens: TokenSet) => void) | undefined;
}

/**
 * A token provider for `oauth2Auth` that logs in with the password grant once, then refreshes with the
 * (rotating) refresh token; if the refresh token is refused it logs in again. Concurrent calls share one
 * request, so a burst of expiries makes a single refresh and the rotated token is never used twice.
 * @param options - the OAuth client, credentials and scopes
 * @returns the provider
 */
export function createPasswordTokenProvider(
  options: PasswordTokenProviderOptions,
): TokenProvider & { readonly tokens: TokenSet | undefined; forceLogin(): void } {
  let tokens: TokenSet | undefined;
  const obtain = async (): Promise<TokenSet> => {
    if (tokens?.refreshToken !== undefined) {
      try {
        return await options.oauth.refresh(tokens.refreshToken);
      } catch (error) {
        if (!(error instanceof OpenEmrAuthError) || (error.status !== undefined && error.status >= 500)) throw error;
      }
    }
    return options.oauth.passwordGrant(options);
  };
  return {
    get tokens() {
      return tokens;
    },
    forceLogin() {
      // The session ended: a refresh would succeed but its token would be refused (recorded-8.0.0 file 60).
      tokens = undefined;
    },
    fetchToken: sharedFetch(() =>
      obtain().then((t) => {
        tokens = t;
        options.onTokens?.(t);
        return t;
      }),
    ),
  };
}

/**
 * A token provider from a refresh token (e.g. after an interactive authorization-code login), rotating it.
 * It cannot log in by itself: when OpenEMR refuses the refresh token (used twice, revoked, logged out: 401
 * or 400, recorded on 7.0.1 and 8.0.0) it throws {@link OpenEmrSessionEndedError}.
 * @param options - the OAuth client, the initial refresh token, and a callback for rotated tokens
 * @returns the provider
 */
export function createRefreshTokenProvider(options: {
  oauth: OpenEmrOAuth;
  refreshToken: string;
  onTokens?: ((tokens: TokenSet) => void) | undefined;
}): TokenProvider {
  let refreshToken = options.refreshToken;
  return {
    fetchToken: sharedFetch(() =>
      options.oauth.refresh(refreshToken).then(
        (t) => {
          if (t.refreshToken !== undefined) refreshToken = t.refreshToken;
          options.onTokens?.(t);
          return t;
        },
        (error: unknown) => {
          if (error instanceof OpenEmrAuthError && error.status !== undefined && error.status < 500)
            throw new OpenEmrSessionEndedError();
          throw error;
        },
      ),
    ),
  };
}

/**
 * A token provider for backend services: client credentials with a signed assertion, re-requested on expiry.
 * @param options - the OAuth client and the assertion key
 * @returns the provider
 */
export function createClientCredentialsTokenProvider(
  options: ClientCredentialsInput & { oauth: OpenEmrOAuth },
): TokenProvider {
  return { fetchToken: sharedFetch(() => options.oauth.clientCredentials(options)) };
}
