/**
 * What the tests that run the server against real upstreams share: the environment that points it at them, and a
 * hospital identity provider whose tokens the server verifies with a public key (as in a deployment).
 */
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { ServiceName, ServiceProbe } from '@cdss/core/testing';
import { SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { DEMO_USERS } from '../src/auth/tokens.js';

/**
 * The server's `OPENEMR_*` settings for an OpenEMR emulator: its seeded API client and administrator.
 * @param url - the emulator's base URL
 */
export function openEmrEmulatorEnv(url: string): Record<string, string> {
  return {
    OPENEMR_URL: url,
    OPENEMR_CLIENT_ID: SEED_CLIENT.clientId,
    OPENEMR_CLIENT_SECRET: SEED_CLIENT.clientSecret,
    OPENEMR_USERNAME: SEED_ADMIN.username,
    OPENEMR_PASSWORD: SEED_ADMIN.password,
  };
}

/**
 * The server's `ORTHANC_*` settings from a service URL that carries its credentials (`http://user:pass@host:port`,
 * as `requireService('orthanc')` gives it).
 * @param serviceUrl - Orthanc's URL with credentials
 */
export function orthancEnv(serviceUrl: string): Record<string, string> {
  const url = new URL(serviceUrl);
  return {
    ORTHANC_URL: `${url.protocol}//${url.host}`,
    ORTHANC_USERNAME: decodeURIComponent(url.username),
    ORTHANC_PASSWORD: decodeURIComponent(url.password),
  };
}

/**
 * Connected mode's upstreams as the server's environment: OpenEMR (an emulator), and HAPI FHIR, Orthanc, RabbitMQ and
 * MariaDB as `requireService` found them.
 * @param openemrUrl - the emulator's base URL
 * @param services - the probes of `hapi-fhir`, `orthanc`, `rabbitmq` and `mariadb`, in any order
 */
export function connectedUpstreamEnv(openemrUrl: string, services: readonly ServiceProbe[]): Record<string, string> {
  const url = (name: ServiceName): string => {
    const probe = services.find((s) => s.name === name);
    if (!probe) throw new Error(`connectedUpstreamEnv: no ${name} among the services`);
    return probe.url;
  };
  return {
    ...openEmrEmulatorEnv(openemrUrl),
    FHIR_URL: url('hapi-fhir'),
    ...orthancEnv(url('orthanc')),
    AMQP_URL: url('rabbitmq'),
    MYSQL_URL: url('mariadb'),
  };
}

/** A hospital identity provider for tests: the server trusts its public key, and it signs the demo users' tokens. */
export interface TestIdentityProvider {
  /** `CDSS_AUTH_PUBLIC_KEY` and `CDSS_AUTH_ISSUER`. */
  env: { CDSS_AUTH_PUBLIC_KEY: string; CDSS_AUTH_ISSUER: string };
  /**
   * An access token for one of the demo users (with its name and role), audience `cdss`.
   * @param userId - a demo user's id
   * @param expiresIn - lifetime as jose reads it; default `10m`
   */
  tokenFor(userId: string, expiresIn?: string): Promise<string>;
}

/**
 * Generates an RS256 key pair and the identity provider around it.
 * @param issuer - the tokens' `iss`; default `https://idp.hospital.test`
 */
export async function createTestIdentityProvider(issuer = 'https://idp.hospital.test'): Promise<TestIdentityProvider> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  return {
    env: { CDSS_AUTH_PUBLIC_KEY: await exportSPKI(publicKey), CDSS_AUTH_ISSUER: issuer },
    async tokenFor(userId, expiresIn = '10m') {
      const user = DEMO_USERS.find((u) => u.id === userId);
      if (!user) throw new Error(`no demo user ${userId}`);
      return new SignJWT({ name: user.name, roles: [user.role] })
        .setProtectedHeader({ alg: 'RS256' })
        .setSubject(user.id)
        .setIssuer(issuer)
        .setAudience('cdss')
        .setExpirationTime(expiresIn)
        .sign(privateKey);
    },
  };
}
