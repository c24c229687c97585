/**
 * Authentication of CDS Clients as CDS Hooks 2.0 asks (§ Trusting CDS Clients): every call, discovery included,
 * carries `Authorization: Bearer <JWT>` signed by the client's private key. The service trusts only the issuers on
 * its allow-list, fetches keys only from the JWKS URLs allow-listed for that issuer (a `jku` header must name one
 * of them), and checks `aud` = the exact URL called, `exp`, `iat` and that the `jti` was never seen before.
 * @see https://cds-hooks.hl7.org/2.0/#trusting-cds-clients
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { z } from 'zod';
import { clientJwtClaimsSchema, clientJwtHeaderSchema } from './schemas.js';

/** A CDS Client this service trusts. */
export const trustedClientSchema = z
  .strictObject({
    /** The `iss` its JWTs carry. */
    iss: z.string().min(1),
    /** JWKS URLs of its signing keys; a JWT's `jku`, when present, must be one of them. */
    jwksUrls: z
      .array(z.url({ protocol: /^https?$/ }))
      .min(1)
      .optional(),
    /** Or its public keys, registered inline (then a JWT with a `jku` is refused). */
    jwks: z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().min(1) })).min(1) }).optional(),
    /** A name for the audit trail (default: `iss`). */
    name: z.string().min(1).optional(),
  })
  .refine((client) => client.jwksUrls !== undefined || client.jwks !== undefined, {
    message: 'a CDS Client needs jwksUrls or jwks',
    path: ['jwksUrls'],
  });
/** A trusted CDS Client. */
export type TrustedClient = z.infer<typeof trustedClientSchema>;

/** Remembers JWT ids until they expire, to refuse a replayed JWT. */
export interface JtiReplayStore {
  /**
   * Records a JWT id.
   * @param key - issuer and `jti`
   * @param expiresAt - epoch ms after which the id may be forgotten (the JWT's `exp`)
   * @returns true the first time, false when the id was already recorded (a replay)
   */
  remember(key: string, expiresAt: number): Promise<boolean>;
}

/** Why a caller was refused; `reason` is safe to send back (it names no key material). */
export class CdsAuthError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CdsAuthError';
  }
}

/** The authenticated CDS Client. */
export interface CdsCaller {
  iss: string;
  name: string;
  jti: string;
  tenant?: string;
}

/** Options of {@link createCdsCallerVerifier}. */
export interface CdsCallerVerifierOptions {
  clients: readonly TrustedClient[];
  replay: JtiReplayStore;
  /** Key source for a JWKS URL (default: jose's remote JWKS set, cached per URL). */
  keysAt?: (jwksUrl: string) => JWTVerifyGetKey;
  /** Longest accepted lifetime `exp - iat`, seconds (default 300: these JWTs are per call). */
  maxLifetimeSeconds?: number;
  clockToleranceSeconds?: number;
  /** The current time (tests). */
  now?: () => Date;
}

/** Verifies the bearer JWT of a CDS Client for the URL it called. */
export interface CdsCallerVerifier {
  /**
   * @param authorization - the `Authorization` header
   * @param audience - the absolute URL that was called (the discovery URL or the service URL), or the URLs that
   *   each name the endpoint
   * @throws {@link CdsAuthError} when the caller is not authenticated
   */
  verify(authorization: string | undefined, audience: string | string[]): Promise<CdsCaller>;
}

/**
 * The verifier.
 * @param options - trusted clients, the replay store, and test seams
 */
export function createCdsCallerVerifier(options: CdsCallerVerifierOptions): CdsCallerVerifier {
  const remote = new Map<string, JWTVerifyGetKey>();
  const keysAt =
    options.keysAt ??
    ((jwksUrl: string) => {
      let keys = remote.get(jwksUrl);
      if (!keys) {
        keys = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 3_000, cooldownDuration: 30_000 });
        remote.set(jwksUrl, keys);
      }
      return keys;
    });
  const byIssuer = new Map(options.clients.map((client) => [client.iss, client]));
  const inline = new Map(
    options.clients.flatMap((client) =>
      client.jwks ? [[client.iss, createLocalJWKSet(client.jwks as JSONWebKeySet)] as const] : [],
    ),
  );
  const maxLifetime = options.maxLifetimeSeconds ?? 300;
  const tolerance = options.clockToleranceSeconds ?? 30;

  return {
    async verify(authorization, audience) {
      const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
      if (!token) throw new CdsAuthError('A CDS Client must send Authorization: Bearer <JWT>');
      let header;
      try {
        header = clientJwtHeaderSchema.parse(decodeProtectedHeader(token));
      } catch {
        throw new CdsAuthError('The JWT header must name an asymmetric alg, a kid and typ JWT');
      }
      // The issuer decides where keys may come from, so read it (unverified) before choosing the key source.
      const unverifiedIss = readIssuer(token);
      const client = unverifiedIss === undefined ? undefined : byIssuer.get(unverifiedIss);
      if (!client) throw new CdsAuthError('The JWT issuer is not a trusted CDS Client');
      const jwksUrls = client.jwksUrls ?? [];
      if (header.jku !== undefined && !jwksUrls.includes(header.jku))
        throw new CdsAuthError('The JWT jku is not on the allow-list of its issuer');
      const registered = inline.get(client.iss);
      const candidates: JWTVerifyGetKey[] =
        header.jku !== undefined
          ? [keysAt(header.jku)]
          : [...(registered ? [registered] : []), ...jwksUrls.map((url) => keysAt(url))];

      let payload: unknown;
      let lastError: unknown;
      for (const keys of candidates) {
        try {
          ({ payload } = await jwtVerify(token, keys, {
            issuer: client.iss,
            audience,
            algorithms: [header.alg],
            requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
            clockTolerance: tolerance,
            ...(options.now ? { currentDate: options.now() } : {}),
          }));
          break;
        } catch (error) {
          lastError = error;
          // Only a missing key sends us to the next JWKS; any other failure is final.
          if (!(error instanceof errors.JWKSNoMatchingKey)) break;
        }
      }
      if (payload === undefined) throw new CdsAuthError(describe(lastError));
      const claims = clientJwtClaimsSchema.safeParse(payload);
      if (!claims.success) throw new CdsAuthError('The JWT lacks iss, aud, exp, iat or jti');
      const { exp, iat, jti } = claims.data;
      if (exp - iat > maxLifetime) throw new CdsAuthError(`The JWT may live at most ${maxLifetime} s`);
      if (!(await options.replay.remember(`${client.iss} ${jti}`, exp * 1000)))
        throw new CdsAuthError('The JWT was already used (jti replay)');
      return {
        iss: client.iss,
        name: client.name ?? client.iss,
        jti,
        ...(claims.data.tenant ? { tenant: claims.data.tenant } : {}),
      };
    },
  };
}

function readIssuer(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const iss = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: unknown }).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The JWT has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'The JWT aud is not the URL of this CDS Service endpoint';
    if (error.claim === 'iat' || error.claim === 'nbf') return 'The JWT is not valid yet';
    return `The JWT claim ${error.claim} is invalid`;
  }
  if (error instanceof errors.JWKSNoMatchingKey) return 'No key of the issuer matches the JWT kid';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The JWT signature is invalid';
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JOSEError) return 'The JWT could not be verified';
  return 'The JWT could not be verified';
}

/** A replay store in memory (one process; sandbox and tests). */
export function createMemoryJtiStore(now: () => number = Date.now): JtiReplayStore & { size(): number } {
  const seen = new Map<string, number>();
  return {
    async remember(key, expiresAt) {
      const time = now();
      if (seen.size > 10_000) for (const [k, until] of seen) if (until < time) seen.delete(k);
      const until = seen.get(key);
      if (until !== undefined && until >= time) return false;
      seen.set(key, expiresAt);
      return true;
    },
    size: () => seen.size,
  };
}
