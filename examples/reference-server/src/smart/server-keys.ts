/**
 * The server's own signing keys, published as a JWKS (`GET /.well-known/jwks.json`): OpenEMR and HAPI FHIR fetch it
 * to verify the server's SMART Backend Services client assertions (registered as the client's `jwks_uri`), and the
 * server signs the dashboard sessions it opens after a SMART launch with it.
 *
 * Rotation: the first key of the set signs; every key stays published. To rotate, put a new key first, keep the old
 * one after it until what it signed has expired (assertions live 5 minutes, sessions an hour), then remove it.
 * Keys come from `CDSS_SERVER_JWKS_FILE` (a JWKS with private members, RS384 as OpenEMR requires); in sandbox mode
 * without one, a key is made at the first start and kept in the data folder (mode 0600).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { z } from 'zod';
import type { ServerConfig } from '../config.js';

const privateJwkSchema = z.looseObject({
  kty: z.enum(['RSA', 'EC']),
  kid: z.string().min(1),
  alg: z.enum(['RS384', 'ES384', 'RS256', 'ES256']),
  d: z.string().min(1),
});
const privateJwksSchema = z.object({ keys: z.array(privateJwkSchema).min(1) });

/** A signing key. */
export interface SigningKey {
  kid: string;
  alg: 'RS384' | 'ES384' | 'RS256' | 'ES256';
  privateKey: CryptoKey;
}

/** The server's keys. */
export interface ServerKeys {
  /** The key that signs now (the first of the set). */
  current: SigningKey;
  /** The public keys of the whole set. */
  publicJwks: JSONWebKeySet;
  /** Every key of the set, current first (for the backend-services token provider). */
  all: ReadonlyArray<SigningKey & { publicJwk: JWK }>;
  /** Finds a key by id (verification of what this server signed). */
  publicKey(kid: string): Promise<CryptoKey | undefined>;
}

/** The public members of a private RSA or EC JWK (the rest, `d`, `p`, `q`… and `key_ops`, stay private). */
function publicPart(jwk: JWK): JWK {
  const { kty, kid, alg, n, e, crv, x, y } = jwk;
  return Object.fromEntries(
    Object.entries({ kty, kid, alg, use: 'sig', n, e, crv, x, y }).filter(([, value]) => value !== undefined),
  ) as JWK;
}

/**
 * Loads a private JWKS.
 * @param text - the JSON
 * @throws Error naming what is wrong (never echoing key material)
 */
export async function serverKeysFromJwks(text: string): Promise<ServerKeys> {
  let parsed;
  try {
    parsed = privateJwksSchema.parse(JSON.parse(text));
  } catch {
    throw new Error('the server JWKS must be JSON {"keys":[…]} of private keys with kty, kid, alg and d');
  }
  const keys = await Promise.all(
    parsed.keys.map(async (jwk) => ({
      kid: jwk.kid,
      alg: jwk.alg,
      privateKey: (await importJWK(jwk as JWK, jwk.alg)) as CryptoKey,
      publicJwk: publicPart(jwk as JWK),
    })),
  );
  const publicKeys = new Map<string, Promise<CryptoKey>>();
  return {
    current: keys[0]!,
    publicJwks: { keys: keys.map((k) => k.publicJwk) },
    all: keys,
    async publicKey(kid) {
      const key = keys.find((k) => k.kid === kid);
      if (!key) return undefined;
      let imported = publicKeys.get(kid);
      if (!imported) {
        imported = importJWK(key.publicJwk, key.alg) as Promise<CryptoKey>;
        publicKeys.set(kid, imported);
      }
      return imported;
    },
  };
}

/** A new RS384 private JWKS (one key), as JSON. */
export async function generateServerJwks(kid = `cdss-${new Date().toISOString().slice(0, 10)}`): Promise<string> {
  const { privateKey } = await generateKeyPair('RS384', { modulusLength: 2048, extractable: true });
  return JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid, alg: 'RS384' }] });
}

/**
 * The server's keys from a file; with `createIfMissing`, a new key is written there first (sandbox).
 * @param file - a private JWKS file
 * @param createIfMissing - make the file when it does not exist
 */
export async function loadServerKeys(file: string, createIfMissing: boolean): Promise<ServerKeys> {
  try {
    return await serverKeysFromJwks(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !createIfMissing) throw error;
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const jwks = await generateServerJwks();
  await writeFile(file, jwks, { mode: 0o600, flag: 'wx' }).catch(async (error: unknown) => {
    // Another process made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  return serverKeysFromJwks(await readFile(file, 'utf8'));
}

/**
 * The server's keys as configured: `CDSS_SERVER_JWKS_FILE`, or in sandbox mode without it `server-jwks.json` in the
 * data folder (made at the first start). Undefined in connected mode without a file.
 * @param config - the validated configuration
 */
export async function configuredServerKeys(config: ServerConfig): Promise<ServerKeys | undefined> {
  if (config.CDSS_SERVER_JWKS_FILE) return loadServerKeys(config.CDSS_SERVER_JWKS_FILE, false);
  if (config.CDSS_MODE !== 'sandbox') return undefined;
  return loadServerKeys(join(resolve(config.CDSS_DATA_DIR), 'server-jwks.json'), true);
}
