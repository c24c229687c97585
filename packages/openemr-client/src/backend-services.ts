/**
 * SMART Backend Services for OpenEMR (client credentials with a `private_key_jwt` RS384 assertion), with
 * the client's keys kept as a rotating JWKS: register the client once with `jwks_uri` pointing at where
 * the application publishes {@link BackendServicesKeys.jwks} (OpenEMR fetches it on every token request,
 * recorded-8.0.0 file 90), then rotate keys without registering again: publish the next key, sign with it,
 * retire the old one. See https://hl7.org/fhir/smart-app-launch/backend-services.html.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { ValidationError, type OAuth2Token, type TokenProvider } from '@cdss/core';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { ClientCredentialsInput, OpenEmrOAuth } from './oauth.js';
import type { TokenSet } from './schemas.js';

/** One signing key: its private half (never published) and its public JWK. */
export interface BackendServicesKey {
  kid: string;
  privateKey: ClientCredentialsInput['privateKey'];
  /** The public JWK, with `kid`, `alg: RS384` and `use: sig`. */
  publicJwk: JWK;
}

/**
 * The keys a backend-services client signs with. The first is the current one; every key not retired is
 * published by {@link BackendServicesKeys.jwks}, so a token signed just before a rotation still verifies.
 */
export class BackendServicesKeys {
  private keys: BackendServicesKey[];

  /**
   * @param keys - the current key first, then keys still published
   * @throws {@link ValidationError} when there is no key, or two share a `kid`
   */
  constructor(keys: readonly BackendServicesKey[]) {
    if (keys.length === 0 || new Set(keys.map((k) => k.kid)).size !== keys.length) {
      throw new ValidationError('Invalid backend-services keys', [
        { path: 'keys', message: 'at least one key, each with its own kid', code: 'invalid_value' },
      ]);
    }
    this.keys = [...keys];
  }

  /**
   * A new 2048-bit RSA key for RS384.
   * @param kid - its key id; default a random one
   */
  static async generateKey(kid: string = `cdss-${randomUUID()}`): Promise<BackendServicesKey> {
    const { privateKey, publicKey } = await generateKeyPair('RS384', { modulusLength: 2048, extractable: true });
    const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS384', use: 'sig' };
    return { kid, privateKey: privateKey as ClientCredentialsInput['privateKey'], publicJwk };
  }

  /** A key set with one new key. */
  static async generate(): Promise<BackendServicesKeys> {
    return new BackendServicesKeys([await BackendServicesKeys.generateKey()]);
  }

  /** The key assertions are signed with. */
  get current(): BackendServicesKey {
    return this.keys[0] as BackendServicesKey;
  }

  /** The public JWKS to serve at the registered `jwks_uri` (or to register inline as `jwks`). */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /**
   * Starts signing with `next` (default a new key). The previous keys stay published until {@link retire}d,
   * so publish the new JWKS before the next token request.
   * @param next - the key to sign with from now on
   * @returns the new current key
   */
  async rotate(next?: BackendServicesKey): Promise<BackendServicesKey> {
    const key = next ?? (await BackendServicesKeys.generateKey());
    if (this.keys.some((k) => k.kid === key.kid)) {
      throw new ValidationError('Invalid backend-services key', [
        { path: 'kid', message: `a key ${key.kid} exists already`, code: 'invalid_value' },
      ]);
    }
    this.keys = [key, ...this.keys];
    return key;
  }

  /**
   * Stops publishing a previous key.
   * @param kid - the key to drop (not the current one)
   * @throws {@link ValidationError} when `kid` is the current key
   */
  retire(kid: string): void {
    if (kid === this.current.kid) {
      throw new ValidationError('Cannot retire the current key', [
        { path: 'kid', message: 'rotate to another key first', code: 'invalid_value' },
      ]);
    }
    this.keys = this.keys.filter((k) => k.kid !== kid);
  }
}

/** Options of {@link createBackendServicesTokenProvider}. */
export interface BackendServicesTokenProviderOptions {
  /** The OpenEMR OAuth client, with the registered (and enabled) backend client id. */
  oauth: OpenEmrOAuth;
  /** The signing keys. */
  keys: BackendServicesKeys;
  /** `system/...` scopes (and `api:fhir` is not needed: system tokens are FHIR only). */
  scope: string | readonly string[];
  /** The assertion `aud`, when OpenEMR knows its token endpoint by another address than the client's. */
  audience?: string | undefined;
  /** Called with every token set. Never log its contents. */
  onTokens?: ((tokens: TokenSet) => void) | undefined;
}

/**
 * A token provider for `oauth2Auth` that gets 300-second system tokens with client credentials, signing each
 * assertion with the current key of `keys` (a fresh `jti` each time). Concurrent callers share one request.
 * @param options - the OAuth client, keys and scopes
 * @returns the provider
 * @example
 * ```ts
 * const keys = await BackendServicesKeys.generate(); // serve keys.jwks() at https://cdss.example/.well-known/jwks.json
 * const oauth = new OpenEmrOAuth({ baseUrl, clientId });
 * const fhirAuth = oauth2Auth(createBackendServicesTokenProvider({ oauth, keys, scope: 'system/Patient.rs' }));
 * ```
 */
export function createBackendServicesTokenProvider(options: BackendServicesTokenProviderOptions): TokenProvider {
  let inflight: Promise<TokenSet> | undefined;
  return {
    async fetchToken(): Promise<OAuth2Token> {
      inflight ??= options.oauth
        .clientCredentials({
          privateKey: options.keys.current.privateKey,
          kid: options.keys.current.kid,
          scope: options.scope,
          audience: options.audience,
        })
        .then((t) => {
          options.onTokens?.(t);
          return t;
        })
        .finally(() => {
          inflight = undefined;
        });
      const t = await inflight;
      return { accessToken: t.accessToken, expiresAt: t.expiresAt };
    },
  };
}
