/**
 * The dashboard's session after a SMART App Launch: the dashboard (a public SMART app, PKCE) gets an id_token from
 * OpenEMR and trades it here for a CDSS session token. The id_token is verified against OpenEMR's JWKS (`iss` =
 * OpenEMR's OAuth issuer, `aud` = the dashboard's client id, `exp`), used once, and its `fhirUser` becomes the
 * session's user, so every audit record names the EHR user who launched the app. Roles come from configuration
 * (a default role, and roles per `fhirUser`). Session tokens are signed with the server's key and accepted beside
 * the identity provider's tokens.
 * @see https://hl7.org/fhir/smart-app-launch/STU2.2/
 */
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { roleSchema, type Role } from '../auth/rbac.js';
import { verifiedTokenCache, type Principal, type TokenVerifier, type VerifierOptions } from '../auth/tokens.js';
import { ApiError } from '../http/errors.js';
import { defineRoute, type AnyRoute } from '../http/route.js';
import type { JtiReplayStore } from '../cds-hooks/caller-auth.js';
import type { ServerKeys } from './server-keys.js';

/** The `iss` of session tokens this server signs after a SMART launch. */
export const SMART_SESSION_ISSUER = 'urn:cdss:smart-session';

/** How the dashboard launches (served to it by `GET /api/smart/config`). */
export const smartConfigSchema = z.object({
  clientId: z.string(),
  /** The EHR's FHIR base (standalone launch; an EHR launch names its own `iss`). */
  fhirBaseUrl: z.string(),
  /** Scopes of an EHR launch and of a standalone launch. */
  ehrScope: z.string(),
  standaloneScope: z.string(),
  redirectPath: z.string(),
});
/** The dashboard's SMART settings. */
export type SmartConfig = z.infer<typeof smartConfigSchema>;

/** What the server needs to open SMART sessions. */
export interface SmartSessionSettings extends SmartConfig {
  /** OpenEMR's OAuth issuer (`{site address}/oauth2/{site}`), the id_token's `iss`. */
  issuer: string;
  /** OpenEMR's JWKS (default `{issuer}/jwk`). */
  jwksUrl?: string;
  defaultRole: Role;
  /** Roles by `fhirUser` (`Person/…`, `Practitioner/…`, or the full URL). */
  userRoles: Readonly<Record<string, Role>>;
  /** CDSS token audience and role claim (as the verifier expects). */
  audience: string;
  roleClaim: string;
  sessionSeconds?: number;
}

const sessionResponseSchema = z.object({
  access_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number(),
  user: z.object({ id: z.string(), name: z.string(), role: z.string() }),
  fhirUser: z.string(),
});

/** `Person/abc` from `http://ehr/apis/default/fhir/Person/abc` or `Person/abc`. */
function fhirUserReference(value: string): string {
  const match = /([A-Za-z]+\/[A-Za-z0-9\-.]{1,64})$/.exec(value);
  return match?.[1] ?? value;
}

/**
 * The SMART routes: the dashboard's launch settings and the session exchange.
 * @param settings - OpenEMR issuer and client, roles, token settings
 * @param keys - the server's signing keys
 * @param replay - remembers id_tokens already exchanged
 * @param keysAt - test seam: the key source for a JWKS URL
 */
export function smartRoutes(
  settings: SmartSessionSettings,
  keys: ServerKeys,
  replay: JtiReplayStore,
  keysAt: (url: string) => JWTVerifyGetKey = (url) => createRemoteJWKSet(new URL(url), { timeoutDuration: 3_000 }),
): AnyRoute[] {
  const ehrKeys = keysAt(settings.jwksUrl ?? `${settings.issuer.replace(/\/+$/, '')}/jwk`);
  const config: SmartConfig = smartConfigSchema.parse(settings);
  return [
    defineRoute({
      method: 'get',
      path: '/api/smart/config',
      operationId: 'getSmartConfig',
      summary: 'The dashboard’s SMART App Launch settings (client id, scopes, the EHR’s FHIR base)',
      tags: ['smart'],
      access: 'public',
      response: { status: 200, description: 'The settings', schema: smartConfigSchema },
      handler: async () => ({ body: config }),
    }),
    defineRoute({
      method: 'post',
      path: '/api/smart/session',
      operationId: 'openSmartSession',
      summary: 'Trades the id_token of a SMART launch for a CDSS session bound to the EHR user',
      tags: ['smart'],
      access: 'public',
      body: z.strictObject({ id_token: z.string().min(20).max(8192) }),
      response: { status: 200, description: 'A bearer token for the launching user', schema: sessionResponseSchema },
      errors: [400, 401],
      handler: async ({ body }) => {
        let claims;
        try {
          ({ payload: claims } = await jwtVerify(body.id_token, ehrKeys, {
            issuer: settings.issuer,
            audience: settings.clientId,
            requiredClaims: ['sub', 'exp', 'iat'],
            clockTolerance: 30,
          }));
        } catch {
          throw new ApiError(401, 'login', 'The id_token is not a valid id_token of the EHR for this app');
        }
        const fhirUser = typeof claims['fhirUser'] === 'string' ? fhirUserReference(claims['fhirUser']) : undefined;
        if (!fhirUser) throw new ApiError(401, 'login', 'The id_token names no fhirUser (request the fhirUser scope)');
        const digest = createHash('sha256').update(body.id_token).digest('base64url');
        if (!(await replay.remember(`smart-id-token ${digest}`, (claims.exp ?? 0) * 1000)))
          throw new ApiError(401, 'login', 'This id_token was already exchanged');
        const role =
          settings.userRoles[fhirUser] ?? settings.userRoles[String(claims['fhirUser'])] ?? settings.defaultRole;
        const name = typeof claims['name'] === 'string' ? claims['name'] : fhirUser;
        const seconds = settings.sessionSeconds ?? 3600;
        const accessToken = await new SignJWT({ name, [settings.roleClaim]: [role], fhirUser, ehr: settings.issuer })
          .setProtectedHeader({ alg: keys.current.alg, kid: keys.current.kid, typ: 'JWT' })
          .setIssuer(SMART_SESSION_ISSUER)
          .setSubject(fhirUser)
          .setAudience(settings.audience)
          .setIssuedAt()
          .setExpirationTime(`${seconds}s`)
          .sign(keys.current.privateKey);
        return {
          body: {
            access_token: accessToken,
            token_type: 'Bearer' as const,
            expires_in: seconds,
            user: { id: fhirUser, name, role },
            fhirUser,
          },
        };
      },
    }),
  ];
}

/**
 * `GET /.well-known/jwks.json`: the server's public keys (register it as the `jwks_uri` of the server's SMART Backend
 * Services client in OpenEMR and HAPI FHIR).
 * @param keys - the server's keys
 */
export function jwksRoute(keys: ServerKeys): AnyRoute {
  return defineRoute({
    method: 'get',
    path: '/.well-known/jwks.json',
    operationId: 'getServerJwks',
    summary: 'The server’s public signing keys (JWKS), for SMART Backend Services and session tokens',
    tags: ['smart'],
    access: 'public',
    response: {
      status: 200,
      description: 'A JWK Set',
      schema: z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string() })) }),
    },
    handler: async () => ({ body: keys.publicJwks as { keys: Array<{ kty: string; kid: string }> } }),
  });
}

/** The longest a session token is accepted after its `iat`. */
const SESSION_MAX_AGE_SECONDS = 12 * 60 * 60;

/**
 * Accepts SMART session tokens (signed by this server) beside the identity provider's tokens.
 *
 * A token either verifier has verified and still remembers is answered from that memory before anything is decoded;
 * a session token, once verified, is remembered as the primary's tokens are (by its SHA-256, until the earlier of
 * its `exp` and a short TTL): the server's keys are fixed for the life of the process.
 * @param primary - the server's verifier (identity provider, or the sandbox issuer)
 * @param keys - the server's keys
 * @param settings - audience and role claim
 * @param options - the memory of verified session tokens, and the clock
 */
export function withSmartSessions(
  primary: TokenVerifier,
  keys: ServerKeys,
  settings: { audience: string; roleClaim: string },
  options: VerifierOptions = {},
): TokenVerifier {
  const now = options.now ?? Date.now;
  const sessions = verifiedTokenCache(options.cache ?? {}, now);
  const remembered = (token: string): Principal | undefined =>
    primary.remembered?.(token) ?? sessions.get(sessions.key(token));
  return {
    remembered,
    async verify(token) {
      const known = remembered(token);
      if (known) return known;
      let iss: unknown;
      try {
        iss = decodeJwt(token).iss;
      } catch {
        return primary.verify(token);
      }
      if (iss !== SMART_SESSION_ISSUER) return primary.verify(token);
      const kid = decodeProtectedHeader(token).kid;
      const key = kid ? await keys.publicKey(kid) : undefined;
      if (!key) throw new Error('unknown session key');
      const { payload } = await jwtVerify(token, key, {
        issuer: SMART_SESSION_ISSUER,
        audience: settings.audience,
        algorithms: ['RS384', 'ES384', 'RS256', 'ES256'],
        requiredClaims: ['sub', 'exp'],
        maxTokenAge: SESSION_MAX_AGE_SECONDS,
        currentDate: new Date(now()),
      });
      const roles = z.array(roleSchema).min(1).parse(payload[settings.roleClaim]);
      const principal: Principal = {
        id: payload.sub!,
        name: typeof payload['name'] === 'string' ? payload['name'] : payload.sub!,
        roles,
      };
      // Trusted until it expires, or grows older than the 12 hours checked above, whichever comes first.
      sessions.set(sessions.key(token), principal, Math.min(payload.exp!, payload.iat! + SESSION_MAX_AGE_SECONDS));
      return principal;
    },
  };
}
