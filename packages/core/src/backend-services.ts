/**
 * SMART Backend Services (client credentials with a `private_key_jwt` client assertion) for any authorization
 * server that follows the SMART App Launch 2 specification: a FHIR server's own (HAPI FHIR behind a SMART-aware
 * gateway, a cloud FHIR service) or OpenEMR's (whose client in `@cdss/openemr-client` signs with
 * {@link signClientAssertion} too). Tokens plug into any transport through `oauth2Auth`.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 * @packageDocumentation
 */
import { KeyObject, randomUUID, type webcrypto } from 'node:crypto';
import { SignJWT, importJWK, importPKCS8, type JWK } from 'jose';
import { z } from 'zod';
import type { OAuth2Token, TokenProvider } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import { HttpError, ValidationError } from './errors.js';
import type { Logger } from './logger.js';
import { HttpTransport } from './transport.js';

/** The signature algorithms SMART Backend Services allows for client assertions (RS384 is what OpenEMR accepts). */
export const CLIENT_ASSERTION_ALGORITHMS = ['RS384', 'ES384'] as const;
/** A client-assertion signature algorithm. */
export type ClientAssertionAlgorithm = (typeof CLIENT_ASSERTION_ALGORITHMS)[number];

/** A private key: a `KeyObject`, a `CryptoKey`, a private JWK, or PKCS#8 PEM text. */
export type AssertionPrivateKey = KeyObject | webcrypto.CryptoKey | JWK | string;

/** The key a client signs its assertions with: its private half and the `kid` of its public half in the JWKS. */
export interface ClientAssertionKey {
  /** The `kid` of the public key in the client's registered JWKS. */
  kid: string;
  /** The private key. */
  privateKey: AssertionPrivateKey;
  /** `RS384` (default) or `ES384`. Other algorithms are refused before anything is signed. */
  alg?: string | undefined;
}

/** Input of {@link signClientAssertion}. */
export interface ClientAssertionInput {
  /** The registered client id: the assertion's `iss` and `sub`. */
  clientId: string;
  /** The assertion's `aud`: the token endpoint URL, exactly as the authorization server knows it. */
  audience: string;
  /** The signing key. */
  key: ClientAssertionKey;
  /** Seconds until `exp`; SMART allows at most 300. Default 240. */
  lifetimeSeconds?: number | undefined;
  /** A `jku` header naming the client's registered JWKS URL (only when the server asks for it). */
  jku?: string | undefined;
  /** Time source. Default the system clock. */
  clock?: Clock | undefined;
}

const assertionInputSchema = z.object({
  clientId: z.string().min(1),
  audience: z.url({ protocol: /^https?$/ }),
  key: z.object({
    kid: z.string().min(1),
    alg: z
      .enum(CLIENT_ASSERTION_ALGORITHMS, { message: 'SMART client assertions are signed with RS384 or ES384' })
      .optional(),
  }),
  lifetimeSeconds: z.number().int().min(1).max(300, 'SMART allows an exp at most five minutes ahead').optional(),
  jku: z.url({ protocol: /^https?$/ }).optional(),
});

function isJwk(key: unknown): key is JWK {
  return typeof key === 'object' && key !== null && 'kty' in key;
}

async function signingKey(
  key: AssertionPrivateKey,
  alg: ClientAssertionAlgorithm,
): Promise<webcrypto.CryptoKey | KeyObject | Uint8Array> {
  if (typeof key === 'string') return importPKCS8(key, alg);
  if (key instanceof KeyObject) return key;
  if (isJwk(key)) return importJWK({ ...key, alg }, alg);
  return key;
}

/**
 * Signs a client assertion as SMART Backend Services asks: header `alg` (RS384 or ES384), `kid`, `typ: JWT`
 * (and `jku` when given); claims `iss` = `sub` = the client id, `aud` = the token endpoint, `exp` at most five
 * minutes ahead, `iat`, and a fresh random `jti` (servers refuse a reused one).
 * @param input - client id, audience, key, lifetime
 * @returns the compact JWT
 * @throws {@link ValidationError} for an algorithm other than RS384/ES384, a lifetime over 300 s, or a bad URL
 * @example
 * ```ts
 * const assertion = await signClientAssertion({ clientId, audience: tokenEndpoint, key: { kid, privateKey } });
 * ```
 * @category Auth
 */
export async function signClientAssertion(input: ClientAssertionInput): Promise<string> {
  const parsed = assertionInputSchema.safeParse(input);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid client assertion');
  const alg = parsed.data.key.alg ?? 'RS384';
  const now = Math.floor((input.clock ?? systemClock).now() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg, kid: input.key.kid, typ: 'JWT', ...(input.jku ? { jku: input.jku } : {}) })
    .setIssuer(input.clientId)
    .setSubject(input.clientId)
    .setAudience(input.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (parsed.data.lifetimeSeconds ?? 240))
    .sign(await signingKey(input.key.privateKey, alg));
}

/** Options of {@link createSmartBackendServicesTokenProvider}: a token endpoint, or a FHIR base to discover it from. */
export interface SmartBackendServicesOptions {
  /** The registered client id. */
  clientId: string;
  /**
   * The client's keys; `current` signs (read at every token request, so a rotated key is used at once). Both
   * `BackendServicesKeys` of `@cdss/openemr-client` and a plain `{ current: { kid, privateKey, alg } }` fit.
   */
  keys: { readonly current: ClientAssertionKey };
  /** `system/...` scopes (space-separated or a list). */
  scope: string | readonly string[];
  /** The token endpoint. Without it, it is read from `<fhirBaseUrl>/.well-known/smart-configuration` once. */
  tokenEndpoint?: string | undefined;
  /** The FHIR server whose SMART configuration names the token endpoint (when `tokenEndpoint` is not given). */
  fhirBaseUrl?: string | undefined;
  /** The assertion's `aud`, when the server knows its token endpoint by another URL. Default the token endpoint. */
  audience?: string | undefined;
  /** Seconds each assertion lives (at most 300). Default 240. */
  assertionLifetimeSeconds?: number | undefined;
  /** Sends a `jku` header with this JWKS URL (some servers want it; it must be the registered one). */
  jku?: string | undefined;
  /** Transport for discovery and token requests. Default one without retries (a token request is not repeated blindly). */
  transport?: HttpTransport | undefined;
  /** Time source (token expiry, assertion times). Default the system clock. */
  clock?: Clock | undefined;
  /** Logger for the default transport (it logs neither bodies nor headers, so never a token). */
  logger?: Logger | undefined;
}

const optionsSchema = z
  .object({
    clientId: z.string().min(1),
    tokenEndpoint: z.url({ protocol: /^https?$/ }).optional(),
    fhirBaseUrl: z.url({ protocol: /^https?$/ }).optional(),
    audience: z.url({ protocol: /^https?$/ }).optional(),
    scope: z.union([z.string().trim().min(1), z.array(z.string().min(1)).min(1)]),
  })
  .refine((o) => o.tokenEndpoint !== undefined || o.fhirBaseUrl !== undefined, {
    message: 'a tokenEndpoint, or a fhirBaseUrl to discover it from',
    path: ['tokenEndpoint'],
  });

/** The part of `.well-known/smart-configuration` a backend-services client reads. */
const smartConfigurationSchema = z.looseObject({
  token_endpoint: z.url({ protocol: /^https?$/ }),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  token_endpoint_auth_signing_alg_values_supported: z.array(z.string()).optional(),
  grant_types_supported: z.array(z.string()).optional(),
});

/** A token response (RFC 6749 §5.1); SMART recommends `expires_in` ≤ 300 and no refresh token. */
const tokenResponseSchema = z.looseObject({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i, 'token_type must be bearer'),
  expires_in: z.number().positive().optional(),
  scope: z.string().optional(),
});

/**
 * A {@link TokenProvider} for `oauth2Auth` that gets system access tokens with the client-credentials grant and a
 * signed client assertion (SMART Backend Services), one fresh assertion (new `jti`) per token request. With only
 * `fhirBaseUrl` it reads the token endpoint from the server's SMART configuration first, and refuses a server that
 * announces it accepts neither `private_key_jwt` nor the key's algorithm. Concurrent callers share one request.
 * @param options - client id, keys, scopes, and the token endpoint (or the FHIR base to discover it from)
 * @returns the provider
 * @throws {@link ValidationError} at once for invalid options; from `fetchToken` for an invalid SMART configuration
 *   or token response; {@link HttpError} when the server refuses (message names the OAuth2 `error`)
 * @example
 * ```ts
 * const auth = oauth2Auth(
 *   createSmartBackendServicesTokenProvider({ clientId, keys, scope: 'system/*.rs', fhirBaseUrl: 'https://fhir.example/fhir' }),
 * );
 * ```
 * @category Auth
 */
export function createSmartBackendServicesTokenProvider(options: SmartBackendServicesOptions): TokenProvider {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid SMART Backend Services options');
  const clock = options.clock ?? systemClock;
  const transport =
    options.transport ??
    new HttpTransport({
      baseUrl: (parsed.data.tokenEndpoint ?? parsed.data.fhirBaseUrl) as string,
      retry: false,
      timeoutMs: 10_000,
      logger: options.logger,
      clock,
    });
  const scope = (typeof options.scope === 'string' ? options.scope : options.scope.join(' ')).trim();
  let endpoint: Promise<string> | undefined;

  const discover = async (): Promise<string> => {
    const base = (parsed.data.fhirBaseUrl as string).replace(/\/+$/, '');
    const { data } = await transport.request({
      method: 'GET',
      path: `${base}/.well-known/smart-configuration`,
      headers: { accept: 'application/json' },
      schema: smartConfigurationSchema,
    });
    const alg = options.keys.current.alg ?? 'RS384';
    const problems = [
      data.token_endpoint_auth_methods_supported?.includes('private_key_jwt') === false &&
        'token_endpoint_auth_methods_supported lacks private_key_jwt',
      data.token_endpoint_auth_signing_alg_values_supported?.includes(alg) === false &&
        `token_endpoint_auth_signing_alg_values_supported lacks ${alg}`,
      data.grant_types_supported?.includes('client_credentials') === false &&
        'grant_types_supported lacks client_credentials',
    ].filter((p): p is string => typeof p === 'string');
    if (problems.length > 0)
      throw new ValidationError(
        'The FHIR server does not offer SMART Backend Services',
        problems.map((message) => ({ path: 'smart-configuration', message, code: 'invalid_value' })),
      );
    return data.token_endpoint;
  };

  const tokenEndpoint = (): Promise<string> => {
    if (parsed.data.tokenEndpoint) return Promise.resolve(parsed.data.tokenEndpoint);
    endpoint ??= discover().catch((error: unknown) => {
      endpoint = undefined; // a failed discovery is tried again at the next token request
      throw error;
    });
    return endpoint;
  };

  const obtain = async (): Promise<OAuth2Token> => {
    const url = await tokenEndpoint();
    const assertion = await signClientAssertion({
      clientId: parsed.data.clientId,
      audience: parsed.data.audience ?? url,
      key: options.keys.current,
      lifetimeSeconds: options.assertionLifetimeSeconds,
      jku: options.jku,
      clock,
    });
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    const started = clock.now();
    let data: unknown;
    try {
      ({ data } = await transport.request({
        method: 'POST',
        path: url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
      }));
    } catch (error) {
      throw withOAuthError(error);
    }
    const token = tokenResponseSchema.safeParse(data);
    if (!token.success) throw ValidationError.fromZod(token.error, 'Invalid token response');
    return {
      accessToken: token.data.access_token,
      ...(token.data.expires_in !== undefined ? { expiresAt: started + token.data.expires_in * 1000 } : {}),
    };
  };

  let inflight: Promise<OAuth2Token> | undefined;
  return {
    fetchToken() {
      inflight ??= obtain().finally(() => {
        inflight = undefined;
      });
      return inflight;
    },
  };
}

/** An HttpError whose message names the OAuth2 `error` (and description) the token endpoint answered. */
function withOAuthError(error: unknown): unknown {
  if (!HttpError.isInstance(error)) return error;
  const body = error.responseBody as { error?: unknown; error_description?: unknown } | undefined;
  if (typeof body?.error !== 'string') return error;
  const description = typeof body.error_description === 'string' ? `: ${body.error_description}` : '';
  return new HttpError({
    method: error.method,
    url: error.url,
    status: error.status,
    statusText: error.statusText,
    responseBody: error.responseBody,
    responseHeaders: error.responseHeaders,
    retryable: error.retryable,
    cause: error,
    message: `${error.method} ${error.url}: ${error.status ?? 'no response'} ${body.error}${description}`,
  });
}
