/**
 * A SMART Backend Services authorization server for tests and the sandbox: the token endpoint verifies each client
 * assertion as the specification's "Signature verification" steps say, and every FHIR request must then carry one
 * of the tokens it issued, with a scope that covers it. The embedded FHIR server mounts it with its
 * `backendServices` option; a test can also put it in front of another FHIR server (HAPI FHIR checks no token).
 *
 * Assertion checks: `client_assertion_type` jwt-bearer; header `alg` RS384 or ES384, a `kid`, `typ` JWT, and a
 * `jku` only if it is the client's registered JWKS URL; the signature by the key with that `kid` in the client's
 * JWKS (fetched at every token request by default, so a rotated key verifies and a retired one fails at once); `iss` = `sub` = a registered
 * client id; `aud` = the token endpoint URL; `exp` in the future and at most five minutes ahead; a `jti` never
 * seen before. Tokens live 300 s by default and come without a refresh token.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';

/** A registered backend-services client. */
export const backendClientSchema = z
  .strictObject({
    clientId: z.string().min(1),
    /** The client's JWKS URL (`jwks_uri`): fetched when an assertion names a `kid` not seen yet. */
    jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Or its public keys inline (`jwks`). */
    jwks: z
      .custom<JSONWebKeySet>(
        (value) =>
          Array.isArray((value as { keys?: unknown } | null)?.keys) && (value as JSONWebKeySet).keys.length > 0,
        'a JWKS {"keys":[…]} with at least one key',
      )
      .optional(),
    /** The `system/` scopes it may be granted, space-separated (SMART v2 `cruds` or v1 `read`/`write`/`*`). */
    scope: z.string().trim().min(1),
  })
  .refine((c) => (c.jwksUrl === undefined) !== (c.jwks === undefined), {
    message: 'one of jwksUrl or jwks',
    path: ['jwksUrl'],
  });
/** A registered backend-services client. */
export type BackendClient = z.input<typeof backendClientSchema>;

/** Options of {@link createSmartBackendAuth}. */
export interface SmartBackendAuthOptions {
  clients: readonly BackendClient[];
  /** Access-token lifetime in seconds. Default 300. */
  tokenLifetimeSeconds?: number | undefined;
  /** Path of the token endpoint on the app that mounts {@link SmartBackendAuth.router}. Default `/auth/token`. */
  tokenPath?: string | undefined;
  /**
   * The token endpoint URL assertions must name as `aud`. Default: the URL the request was sent to (scheme, `Host`
   * and path), as a server that knows its own address would compute it.
   */
  tokenEndpoint?: string | undefined;
  /**
   * How long a client's JWKS (from its URL) is used before it is fetched again, ms; an unknown `kid` fetches it at
   * once. Default 0: fetched at every token request, as OpenEMR does, so a retired key is refused at once.
   */
  jwksCacheMs?: number | undefined;
  /** Time source in epoch ms. Default `Date.now`. */
  now?: (() => number) | undefined;
}

/** What the server saw, for tests. */
export interface SmartBackendAuthStats {
  /** Tokens issued. */
  issued: number;
  /** The last 100 refused token requests, by OAuth2 error and reason. */
  refused: Array<{ error: string; reason: string }>;
  /** FHIR requests let through, and those refused (401/403). */
  authorized: number;
  denied: number;
}

/** The outcome of checking a FHIR request's bearer token. */
export type BearerCheck =
  | { ok: true; clientId: string; scopes: string[] }
  | { ok: false; status: 401 | 403; error: 'invalid_request' | 'invalid_token' | 'insufficient_scope'; reason: string };

/** The authorization server. */
export interface SmartBackendAuth {
  /** Serves `POST <tokenPath>` (form-encoded). Mount it at the app's root. */
  readonly router: Router;
  readonly tokenPath: string;
  readonly stats: SmartBackendAuthStats;
  /**
   * The SMART configuration document (`.well-known/smart-configuration`) for a FHIR base on this server.
   * @param origin - `scheme://host[:port]` the FHIR base is reached at
   */
  smartConfiguration(origin: string): Record<string, unknown>;
  /**
   * Checks a FHIR request: a bearer token this server issued, not expired or revoked, with a scope that covers the
   * interaction (every entry of a batch or transaction).
   * @param authorization - the `Authorization` header
   * @param method - the HTTP method
   * @param path - the path below the FHIR base, without query (`Patient/1`, `''` for a Bundle POST)
   * @param body - the parsed body (Bundle entries are checked one by one)
   */
  check(authorization: string | undefined, method: string, path: string, body?: unknown): BearerCheck;
  /** Revokes every token issued so far (the next request with one answers 401). */
  revokeTokens(): void;
}

/** The `system/` scope a request needs: resource type (or `*`) and one of SMART v2's c, r, u, d, s. */
interface Need {
  type: string;
  permission: 'c' | 'r' | 'u' | 'd' | 's';
}

interface Grant {
  type: string;
  permissions: Set<string>;
}

/** `system/Patient.rs`, `system/*.cruds`, `system/Observation.read` (v1) → a grant; anything else → undefined. */
function parseScope(scope: string): Grant | undefined {
  const match = /^system\/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$/.exec(scope);
  if (!match) return undefined;
  const [, type, perms] = match as unknown as [string, string, string];
  const v1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
  const letters = v1[perms] ?? (/^c?r?u?d?s?$/.test(perms) ? perms : undefined);
  return letters ? { type, permissions: new Set(letters) } : undefined;
}

function covers(grants: readonly Grant[], need: Need): boolean {
  return grants.some((g) => (g.type === '*' || g.type === need.type) && g.permissions.has(need.permission));
}

/** Whether the allowed scopes cover a requested scope (same or wider type, and every permission). */
function allowedScope(allowed: readonly Grant[], requested: string): boolean {
  const grant = parseScope(requested);
  if (!grant) return false;
  return [...grant.permissions].every((p) =>
    covers(allowed, { type: grant.type, permission: p as Need['permission'] }),
  );
}

/** The interactions a request performs, in scope terms. */
function needsOf(method: string, path: string, body: unknown): Need[] | 'invalid' {
  const segments = path.split('/').filter(Boolean);
  const type = segments[0];
  if (type === undefined) {
    if (method === 'POST') {
      const entries = (body as { entry?: Array<{ request?: { method?: string; url?: string } }> } | undefined)?.entry;
      if (!Array.isArray(entries)) return 'invalid';
      const needs: Need[] = [];
      for (const entry of entries) {
        const request = entry.request;
        if (!request?.method || !request.url) return 'invalid';
        const inner = needsOf(request.method.toUpperCase(), request.url.split('?')[0] ?? '', undefined);
        if (inner === 'invalid') return inner;
        needs.push(...inner);
      }
      return needs;
    }
    return [{ type: '*', permission: method === 'GET' ? 's' : 'r' }];
  }
  if (!/^[A-Z][A-Za-z]+$/.test(type)) return 'invalid';
  const second = segments[1];
  if (method === 'GET' || method === 'HEAD') return [{ type, permission: second === undefined ? 's' : 'r' }];
  if (method === 'POST') {
    if (second === '_search') return [{ type, permission: 's' }];
    if (second?.startsWith('$') || segments[2]?.startsWith('$')) return [{ type, permission: 'r' }];
    return [{ type, permission: 'c' }];
  }
  if (method === 'PUT' || method === 'PATCH') return [{ type, permission: 'u' }];
  if (method === 'DELETE') return [{ type, permission: 'd' }];
  return 'invalid';
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

class TokenRequestError extends Error {
  constructor(
    readonly error: 'invalid_request' | 'invalid_client' | 'invalid_scope' | 'unsupported_grant_type',
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * Creates the authorization server.
 * @param options - registered clients, token lifetime, token endpoint, clock
 * @throws `ValidationError` (`@cdss/core`) for an invalid client registration
 */
export function createSmartBackendAuth(options: SmartBackendAuthOptions): SmartBackendAuth {
  const clients = new Map<string, z.infer<typeof backendClientSchema> & { keys: JWTVerifyGetKey }>();
  for (const [index, raw] of options.clients.entries()) {
    const parsed = backendClientSchema.safeParse(raw);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid backend client ${index}`);
    const c = parsed.data;
    const keys = c.jwks
      ? createLocalJWKSet(c.jwks)
      : createRemoteJWKSet(new URL(c.jwksUrl as string), {
          cacheMaxAge: options.jwksCacheMs ?? 0,
          cooldownDuration: 0,
          timeoutDuration: 5_000,
        });
    clients.set(c.clientId, { ...c, keys });
  }
  const now = options.now ?? Date.now;
  const lifetime = options.tokenLifetimeSeconds ?? 300;
  const tokenPath = options.tokenPath ?? '/auth/token';
  const tokens = new Map<string, { clientId: string; scopes: string[]; grants: Grant[]; expiresAt: number }>();
  const seenJti = new Map<string, number>();
  const stats: SmartBackendAuthStats = { issued: 0, refused: [], authorized: 0, denied: 0 };

  async function issue(form: URLSearchParams, audience: string): Promise<Record<string, unknown>> {
    if (form.get('grant_type') !== 'client_credentials')
      throw new TokenRequestError('unsupported_grant_type', 'grant_type must be client_credentials');
    if (form.get('client_assertion_type') !== JWT_BEARER)
      throw new TokenRequestError('invalid_request', `client_assertion_type must be ${JWT_BEARER}`);
    const assertion = form.get('client_assertion') ?? '';
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (requested.length === 0) throw new TokenRequestError('invalid_request', 'scope is required');
    let header;
    let unverified;
    try {
      header = decodeProtectedHeader(assertion);
      unverified = decodeJwt(assertion);
    } catch {
      throw new TokenRequestError('invalid_request', 'client_assertion is not a JWT');
    }
    if (header.alg !== 'RS384' && header.alg !== 'ES384')
      throw new TokenRequestError('invalid_client', 'the assertion must be signed with RS384 or ES384');
    if (typeof header.kid !== 'string' || header.kid === '')
      throw new TokenRequestError('invalid_client', 'the assertion header has no kid');
    if (header.typ !== 'JWT') throw new TokenRequestError('invalid_client', 'the assertion header typ must be JWT');
    const client = typeof unverified.iss === 'string' ? clients.get(unverified.iss) : undefined;
    if (!client) throw new TokenRequestError('invalid_client', 'iss is not a registered client');
    if (header.jku !== undefined && header.jku !== client.jwksUrl)
      throw new TokenRequestError('invalid_client', 'jku is not the client’s registered JWKS URL');
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, client.keys, {
        issuer: client.clientId,
        subject: client.clientId,
        audience,
        algorithms: ['RS384', 'ES384'],
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
        currentDate: new Date(now()),
      }));
    } catch (error) {
      throw new TokenRequestError('invalid_client', describe(error));
    }
    const exp = payload.exp as number;
    if (exp * 1000 > now() + 300_000)
      throw new TokenRequestError('invalid_client', 'exp is more than five minutes in the future');
    const jti = String(payload.jti);
    for (const [key, until] of seenJti) if (until < now()) seenJti.delete(key);
    const jtiKey = `${client.clientId} ${jti}`;
    if (seenJti.has(jtiKey)) throw new TokenRequestError('invalid_client', 'jti was used before');
    seenJti.set(jtiKey, exp * 1000);
    const allowed = client.scope.split(/\s+/).flatMap((s) => parseScope(s) ?? []);
    const granted = requested.filter((s) => allowedScope(allowed, s));
    if (granted.length === 0)
      throw new TokenRequestError('invalid_scope', 'none of the requested scopes is granted to this client');
    const accessToken = randomBytes(32).toString('base64url');
    tokens.set(accessToken, {
      clientId: client.clientId,
      scopes: granted,
      grants: granted.flatMap((s) => parseScope(s) ?? []),
      expiresAt: now() + lifetime * 1000,
    });
    stats.issued += 1;
    return { access_token: accessToken, token_type: 'bearer', expires_in: lifetime, scope: granted.join(' ') };
  }

  const router = express.Router();
  router.post(tokenPath, express.urlencoded({ extended: false, limit: '64kb' }), (req: Request, res: Response) => {
    const audience =
      options.tokenEndpoint ?? `${req.protocol}://${req.get('host') ?? ''}${req.originalUrl.split('?')[0]}`;
    const form = new URLSearchParams(
      Object.entries((req.body ?? {}) as Record<string, unknown>).flatMap(([k, v]): Array<[string, string]> =>
        typeof v === 'string' ? [[k, v]] : [],
      ),
    );
    res.setHeader('cache-control', 'no-store');
    res.setHeader('pragma', 'no-cache');
    issue(form, audience).then(
      (body) => res.status(200).json(body),
      (error: unknown) => {
        const refusal =
          error instanceof TokenRequestError ? error : new TokenRequestError('invalid_request', 'invalid request');
        stats.refused.push({ error: refusal.error, reason: refusal.reason });
        if (stats.refused.length > 100) stats.refused.shift();
        res.status(400).json({ error: refusal.error, error_description: refusal.reason });
      },
    );
  });

  return {
    router,
    tokenPath,
    stats,
    smartConfiguration(origin) {
      const scopes = new Set([...clients.values()].flatMap((c) => c.scope.split(/\s+/)));
      return {
        token_endpoint: options.tokenEndpoint ?? `${origin}${tokenPath}`,
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        scopes_supported: [...scopes],
        capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
      };
    },
    check(authorization, method, path, body) {
      const deny = (
        status: 401 | 403,
        error: 'invalid_request' | 'invalid_token' | 'insufficient_scope',
        reason: string,
      ): BearerCheck => {
        stats.denied += 1;
        return { ok: false, status, error, reason };
      };
      const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
      if (!token) return deny(401, 'invalid_request', 'no bearer token');
      const held = tokens.get(token);
      if (!held || held.expiresAt <= now())
        return deny(401, 'invalid_token', 'the token is unknown, expired or revoked');
      const needs = needsOf(method.toUpperCase(), path, body);
      if (needs === 'invalid' || !needs.every((need) => covers(held.grants, need)))
        return deny(
          403,
          'insufficient_scope',
          `the token's scopes (${held.scopes.join(' ')}) do not cover ${method} ${path || '/'}`,
        );
      stats.authorized += 1;
      return { ok: true, clientId: held.clientId, scopes: held.scopes };
    },
    revokeTokens() {
      tokens.clear();
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the assertion has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `the assertion's ${error.claim} is not valid`;
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key of the client’s JWKS has the assertion’s kid';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the assertion signature is invalid';
  if (error instanceof errors.JWKSTimeout) return 'the client’s JWKS could not be fetched in time';
  return 'the assertion could not be verified';
}

/**
 * Answers a refused FHIR request: 401 or 403 with an RFC 6750 challenge naming the error, and an OperationOutcome.
 * @param res - the response
 * @param refusal - the failed {@link SmartBackendAuth.check}
 */
export function sendBearerRefusal(res: Response, refusal: Extract<BearerCheck, { ok: false }>): void {
  const description = refusal.reason.replace(/["\\]/g, "'");
  res
    .status(refusal.status)
    .set('www-authenticate', `Bearer realm="fhir", error="${refusal.error}", error_description="${description}"`)
    .type('application/fhir+json; charset=utf-8')
    .send(
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: refusal.status === 401 ? 'login' : 'forbidden', diagnostics: refusal.reason },
        ],
      }),
    );
}
