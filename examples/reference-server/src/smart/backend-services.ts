/**
 * The server's SMART Backend Services client towards the FHIR server (HAPI FHIR behind a SMART authorization server,
 * a cloud FHIR service, or the embedded one): client credentials with an assertion signed by the server's own key
 * (the one published at `/.well-known/jwks.json`), tokens through `oauth2Auth`, so every FHIR request of the outbox
 * and the readiness check carries a system token.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
import {
  CLIENT_ASSERTION_ALGORITHMS,
  createSmartBackendServicesTokenProvider,
  oauth2Auth,
  type AuthStrategy,
  type Logger,
} from '@cdss/core';
import type { ServerConfig } from '../config.js';
import type { ServerKeys, SigningKey } from './server-keys.js';

/**
 * The server's first key that SMART allows for client assertions (RS384 or ES384), current first.
 * @param keys - the server's keys
 */
export function assertionKey(keys: ServerKeys | undefined): SigningKey | undefined {
  return keys?.all.find((key) => (CLIENT_ASSERTION_ALGORITHMS as readonly string[]).includes(key.alg));
}

/**
 * The FHIR adapter's authentication, when `FHIR_BACKEND_CLIENT_ID` is set.
 * @param config - the validated configuration (client id, token URL, scopes)
 * @param keys - the server's keys
 * @param fhirBaseUrl - the FHIR server, whose SMART configuration names the token endpoint unless configured
 * @param logger - the token transport's logger (it logs no bodies or headers)
 * @throws Error when the client is configured but the server has no RS384 or ES384 key
 */
export function fhirBackendAuth(
  config: ServerConfig,
  keys: ServerKeys | undefined,
  fhirBaseUrl: string,
  logger: Logger,
): AuthStrategy | undefined {
  if (!config.FHIR_BACKEND_CLIENT_ID) return undefined;
  const key = assertionKey(keys);
  if (!key) throw new Error('FHIR_BACKEND_CLIENT_ID needs an RS384 or ES384 key in the server JWKS');
  return oauth2Auth(
    createSmartBackendServicesTokenProvider({
      clientId: config.FHIR_BACKEND_CLIENT_ID,
      keys: { current: key },
      scope: config.FHIR_BACKEND_SCOPE,
      ...(config.FHIR_BACKEND_TOKEN_URL ? { tokenEndpoint: config.FHIR_BACKEND_TOKEN_URL } : { fhirBaseUrl }),
      logger,
    }),
  );
}
