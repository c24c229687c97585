/**
 * Access-token verification with jose: a JWKS URL or a PEM public key in connected mode; in sandbox mode an HS256
 * key generated at start signs the demo users' tokens. Roles come from a configurable claim.
 *
 * Every token must carry `sub` and `exp`; `exp` may lie at most {@link TokenSettings.maxLifetimeSeconds} ahead, and
 * `nbf` and `iat`, when present, must not lie in the future. Each check allows {@link CLOCK_TOLERANCE_SECONDS} of
 * clock skew. The accepted signature algorithms are an explicit list per kind of key ({@link ALGORITHMS_BY_KEY_TYPE}),
 * so neither `alg: none`, nor an HMAC over a public key, nor HS384/HS512 over the HS256 secret can pass.
 *
 * A verified token is remembered, keyed by its SHA-256, until the earlier of its `exp` and a short TTL, so the
 * signature of a token is checked once rather than on every request; the memory is cleared when the key set rotates.
 * @see https://www.rfc-editor.org/rfc/rfc8725 JSON Web Token Best Current Practices
 */
import { createPublicKey, hash, randomBytes, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { roleSchema, type Role } from './rbac.js';

/** The authenticated caller. */
export interface Principal {
  /** Stable user id (`sub`). */
  id: string;
  /** Display name, for audit. */
  name: string;
  roles: Role[];
}

/** Verifies bearer tokens. */
export interface TokenVerifier {
  /**
   * @param token - the compact JWT
   * @returns the caller
   * @throws Error when the token is invalid, expired, or carries no known role
   */
  verify(token: string): Promise<Principal>;
  /**
   * The caller of a token this verifier verified earlier and still trusts (see {@link createTokenVerifier}'s
   * memory), without verifying anything: a synchronous look-up for the request path.
   * @param token - the compact JWT
   * @returns the caller, or undefined when the token must go through {@link TokenVerifier.verify}
   */
  remembered?(token: string): Principal | undefined;
}

/** Settings shared by verification and the sandbox issuer. */
export interface TokenSettings {
  issuer: string;
  audience: string;
  roleClaim: string;
  /** The longest accepted remaining lifetime (`exp` − now) of a token, in seconds; 24 hours by default. */
  maxLifetimeSeconds?: number;
  /**
   * Narrows the algorithms accepted for the key's type (each must be in {@link ALGORITHMS_BY_KEY_TYPE} for it).
   * Empty or absent: the key type's whole list.
   */
  algorithms?: readonly string[];
}

/** Clock skew allowed on `exp`, `nbf` and `iat`. */
export const CLOCK_TOLERANCE_SECONDS = 30;

const DEFAULT_MAX_LIFETIME_SECONDS = 24 * 60 * 60;

/**
 * The signature algorithms accepted for each kind of key (RFC 7518 §3.1, RFC 8037). A symmetric key is the sandbox's
 * HS256 secret and nothing else.
 */
export const ALGORITHMS_BY_KEY_TYPE = {
  oct: ['HS256'],
  rsa: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'rsa-pss': ['PS256', 'PS384', 'PS512'],
  ec: ['ES256', 'ES384', 'ES512'],
  ed25519: ['EdDSA', 'Ed25519'],
} as const satisfies Record<string, readonly string[]>;

/** A kind of key in {@link ALGORITHMS_BY_KEY_TYPE}. */
export type KeyType = keyof typeof ALGORITHMS_BY_KEY_TYPE;

/** A JWKS may hold any asymmetric key: every asymmetric algorithm, never an HMAC. */
const JWKS_ALGORITHMS: readonly string[] = [
  ...new Set([...ALGORITHMS_BY_KEY_TYPE.rsa, ...ALGORITHMS_BY_KEY_TYPE.ec, ...ALGORITHMS_BY_KEY_TYPE.ed25519]),
];

/**
 * The algorithms to accept for a key.
 * @param permitted - what the key type allows
 * @param configured - the operator's narrower list, if any
 * @throws Error naming an algorithm the key type does not allow
 */
function allowList(permitted: readonly string[], configured: readonly string[] | undefined, what: string): string[] {
  if (!configured || configured.length === 0) return [...permitted];
  const refused = configured.filter((alg) => !permitted.includes(alg));
  if (refused.length > 0)
    throw new Error(`${refused.join(', ')} cannot verify tokens with ${what} (allowed: ${permitted.join(', ')})`);
  return [...configured];
}

const rolesClaimSchema = z.union([roleSchema, z.array(z.string())]);

function principalFrom(payload: JWTPayload, roleClaim: string): Principal {
  if (!payload.sub) throw new Error('token has no subject');
  const claim = rolesClaimSchema.safeParse(payload[roleClaim]);
  // Unknown role names are ignored rather than rejected: identity providers often add their own.
  const roles = claim.success
    ? (Array.isArray(claim.data) ? claim.data : [claim.data]).flatMap((r) => {
        const role = roleSchema.safeParse(r);
        return role.success ? [role.data] : [];
      })
    : [];
  if (roles.length === 0) throw new Error(`token carries no CDSS role in claim ${roleClaim}`);
  const name = typeof payload['name'] === 'string' ? payload['name'] : payload.sub;
  return { id: payload.sub, name, roles };
}

/** Options of the verified-token cache. */
export interface VerifiedTokenCacheOptions {
  /** Tokens remembered at most (least recently used go first); 10,000 by default. 0 turns the cache off. */
  maxEntries?: number;
  /** How long a verdict is trusted before the signature is checked again; 60 s by default. */
  ttlMs?: number;
}

/** Options of a verifier beside its key and settings. */
export interface VerifierOptions {
  cache?: VerifiedTokenCacheOptions;
  /** The clock (ms since the epoch); `Date.now` by default. */
  now?: () => number;
}

/** A verifier that remembers what it verified. */
export interface CachingTokenVerifier extends TokenVerifier {
  remembered(token: string): Principal | undefined;
  /** Forgets every verified token (the key set changed). */
  clear(): void;
  /** Tokens remembered now. */
  cached(): number;
}

let lastToken: string | undefined;
let lastKey = '';
/**
 * The cache key of a token: its SHA-256 (one-shot hashing: half the time of a Hash object). The last token's key is
 * kept: one request asks for it up to three times (a SMART session token: the primary verifier's memory, then the
 * sessions'; a token not remembered yet: again when it is verified).
 */
function tokenKey(token: string): string {
  if (token !== lastToken) {
    lastKey = hash('sha256', token, 'base64url');
    lastToken = token;
  }
  return lastKey;
}

/**
 * A bounded memory of verified tokens, keyed by the SHA-256 of the token (the cache keeps no token), each
 * valid until the earlier of its `exp` and the TTL.
 * @param options - size and TTL
 * @param now - the clock (ms since the epoch)
 */
export function verifiedTokenCache(options: VerifiedTokenCacheOptions, now: () => number) {
  const maxEntries = options.maxEntries ?? 10_000;
  const ttlMs = options.ttlMs ?? 60_000;
  const entries = new Map<string, { principal: Principal; until: number }>();
  return {
    key: tokenKey,
    get(key: string): Principal | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      entries.delete(key);
      if (entry.until <= now()) return undefined;
      entries.set(key, entry); // most recently used last
      return entry.principal;
    },
    set(key: string, principal: Principal, expSeconds: number): void {
      if (maxEntries === 0) return;
      entries.delete(key);
      entries.set(key, { principal, until: Math.min(expSeconds * 1000, now() + ttlMs) });
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
    },
    clear: () => entries.clear(),
    size: () => entries.size,
  };
}

/**
 * A verifier over a key source.
 * @param key - a JWKS getter, a public key, or the symmetric secret
 * @param algorithms - the algorithms accepted (an explicit list: see {@link ALGORITHMS_BY_KEY_TYPE})
 * @param settings - expected issuer, audience, the role claim and the longest lifetime
 * @param options - the verified-token cache and the clock
 */
export function createTokenVerifier(
  key: JWTVerifyGetKey | KeyObject | Uint8Array,
  algorithms: readonly string[],
  settings: TokenSettings,
  options: VerifierOptions = {},
): CachingTokenVerifier {
  if (algorithms.length === 0 || algorithms.some((alg) => alg.toLowerCase() === 'none'))
    throw new Error('an explicit list of signature algorithms is required');
  const now = options.now ?? Date.now;
  const cache = verifiedTokenCache(options.cache ?? {}, now);
  const maxLifetime = settings.maxLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS;
  const verifyOptions = {
    issuer: settings.issuer,
    audience: settings.audience,
    algorithms: [...algorithms],
    requiredClaims: ['exp', 'sub'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
  };
  return {
    remembered: (token) => cache.get(cache.key(token)),
    async verify(token) {
      const cacheKey = cache.key(token);
      const cached = cache.get(cacheKey);
      if (cached) return cached;
      const currentDate = new Date(now());
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, { ...verifyOptions, currentDate })
          : await jwtVerify(token, key, { ...verifyOptions, currentDate });
      const nowSeconds = now() / 1000;
      // jose checks `iat` only with maxTokenAge, which would make it required; here it is checked when present.
      if (payload.iat !== undefined && payload.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS)
        throw new Error('token issued in the future (iat)');
      const exp = payload.exp!;
      if (exp > nowSeconds + maxLifetime + CLOCK_TOLERANCE_SECONDS)
        throw new Error(`token lives longer than ${maxLifetime} s (exp)`);
      const principal = principalFrom(payload, settings.roleClaim);
      cache.set(cacheKey, principal, exp);
      return principal;
    },
    clear: () => cache.clear(),
    cached: () => cache.size(),
  };
}

/** Options of a connected verifier's JWKS client (tests shorten them). */
export interface JwksOptions {
  /** Pause between two reloads of the key set for an unknown `kid`; jose's 30 s by default. */
  cooldownMs?: number;
  /** How long a fetched key set is used before it is fetched again; jose's 10 minutes by default. */
  cacheMaxAgeMs?: number;
}

/**
 * A verifier for connected mode.
 * @param source - a JWKS URL (asymmetric algorithms only) or an SPKI PEM public key (its key type decides the
 *   algorithms: RSA, RSA-PSS, EC or Ed25519)
 * @param settings - expected issuer, audience, role claim, lifetime and an optional narrower algorithm list
 * @throws Error when the configured algorithms do not fit the key
 */
export function createConnectedVerifier(
  source: { jwksUrl: string; jwks?: JwksOptions } | { publicKeyPem: string },
  settings: TokenSettings,
  options: VerifierOptions = {},
): CachingTokenVerifier {
  if ('jwksUrl' in source) {
    const remote = createRemoteJWKSet(new URL(source.jwksUrl), {
      ...(source.jwks?.cooldownMs !== undefined ? { cooldownDuration: source.jwks.cooldownMs } : {}),
      ...(source.jwks?.cacheMaxAgeMs !== undefined ? { cacheMaxAge: source.jwks.cacheMaxAgeMs } : {}),
    });
    let seenKeySet: string | undefined;
    // Every fetch of the key set passes through here (a cached token never does): a different set clears the cache.
    const getKey: JWTVerifyGetKey = async (header, token) => {
      const found = await remote(header, token);
      const keySet = JSON.stringify(remote.jwks() ?? null);
      if (seenKeySet !== undefined && keySet !== seenKeySet) verifier.clear();
      seenKeySet = keySet;
      return found;
    };
    const verifier = createTokenVerifier(
      getKey,
      allowList(JWKS_ALGORITHMS, settings.algorithms, 'a JWKS'),
      settings,
      options,
    );
    return verifier;
  }
  const key = createPublicKey(source.publicKeyPem);
  const keyType = key.asymmetricKeyType;
  if (!keyType || !(keyType in ALGORITHMS_BY_KEY_TYPE))
    throw new Error(`unsupported public key type ${keyType ?? 'unknown'}`);
  const permitted = ALGORITHMS_BY_KEY_TYPE[keyType as KeyType];
  return createTokenVerifier(key, allowList(permitted, settings.algorithms, `a ${keyType} key`), settings, options);
}

/** A demo user of the sandbox. */
export interface DemoUser {
  id: string;
  name: string;
  role: Role;
}

/** The sandbox's demo users, one per role. */
export const DEMO_USERS: readonly DemoUser[] = [
  { id: 'demo-admin', name: 'Ada Admin', role: 'admin' },
  { id: 'demo-physician', name: 'Dr. Paul Physician', role: 'physician' },
  { id: 'demo-radiologist', name: 'Dr. Rita Radiologist', role: 'radiologist' },
  { id: 'demo-nurse', name: 'Nina Nurse', role: 'nurse' },
  { id: 'demo-ai', name: 'AI worker', role: 'ai-service' },
];

/** Signs tokens for demo users (sandbox only). */
export interface SandboxIssuer {
  verifier: CachingTokenVerifier;
  /**
   * @param userId - a demo user's id
   * @param ttlSeconds - token lifetime
   */
  issue(userId: string, ttlSeconds?: number): Promise<{ accessToken: string; expiresIn: number; user: DemoUser }>;
}

/**
 * The sandbox token issuer: a fresh random HS256 key per process, so sandbox tokens never outlive the server.
 * @param settings - issuer, audience, role claim
 * @param options - the verifier's cache and clock
 */
export function createSandboxIssuer(settings: TokenSettings, options: VerifierOptions = {}): SandboxIssuer {
  const secret = randomBytes(32);
  return {
    verifier: createTokenVerifier(secret, ALGORITHMS_BY_KEY_TYPE.oct, settings, options),
    async issue(userId, ttlSeconds = 3600) {
      const user = DEMO_USERS.find((u) => u.id === userId);
      if (!user) throw new Error(`unknown demo user ${userId}`);
      const accessToken = await new SignJWT({ name: user.name, [settings.roleClaim]: [user.role] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user.id)
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(secret);
      return { accessToken, expiresIn: ttlSeconds, user };
    },
  };
}
