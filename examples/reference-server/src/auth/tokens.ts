/**
 * Access-token verification with jose: a JWKS URL or a PEM public key in connected mode; in sandbox mode an HS256
 * key generated at start signs the demo users' tokens. Roles come from a configurable claim.
 */
import {
  createRemoteJWKSet,
  importSPKI,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { randomBytes } from 'node:crypto';
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
}

/** Settings shared by verification and the sandbox issuer. */
export interface TokenSettings {
  issuer: string;
  audience: string;
  roleClaim: string;
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

/**
 * A verifier over a key source.
 * @param key - a JWKS getter, a public key, or a symmetric secret
 * @param settings - expected issuer, audience and the role claim
 */
export function createTokenVerifier(
  key: JWTVerifyGetKey | CryptoKey | Uint8Array,
  settings: TokenSettings,
): TokenVerifier {
  return {
    async verify(token) {
      const options = { issuer: settings.issuer, audience: settings.audience, clockTolerance: 5 };
      const { payload } =
        typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
      return principalFrom(payload, settings.roleClaim);
    },
  };
}

/**
 * A verifier for connected mode.
 * @param source - a JWKS URL or an SPKI PEM public key (RS256/RS384/ES256/ES384)
 * @param settings - expected issuer, audience, role claim
 */
export async function createConnectedVerifier(
  source: { jwksUrl: string } | { publicKeyPem: string; algorithm?: string },
  settings: TokenSettings,
): Promise<TokenVerifier> {
  if ('jwksUrl' in source) return createTokenVerifier(createRemoteJWKSet(new URL(source.jwksUrl)), settings);
  const key = await importSPKI(source.publicKeyPem, source.algorithm ?? 'RS256');
  return createTokenVerifier(key, settings);
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
  verifier: TokenVerifier;
  /**
   * @param userId - a demo user's id
   * @param ttlSeconds - token lifetime
   */
  issue(userId: string, ttlSeconds?: number): Promise<{ accessToken: string; expiresIn: number; user: DemoUser }>;
}

/**
 * The sandbox token issuer: a fresh random HS256 key per process, so sandbox tokens never outlive the server.
 * @param settings - issuer, audience, role claim
 */
export function createSandboxIssuer(settings: TokenSettings): SandboxIssuer {
  const secret = randomBytes(32);
  return {
    verifier: createTokenVerifier(secret, settings),
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
