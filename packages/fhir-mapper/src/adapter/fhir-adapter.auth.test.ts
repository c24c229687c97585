/**
 * The adapter with injected auth: SMART Backend Services tokens (`oauth2Auth` over core's provider) against the
 * embedded FHIR server protected by its own token endpoint, and against the real HAPI FHIR on its default port
 * behind the sandbox's SMART gateway (HAPI checks no token, so the gateway checks and records what arrives).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError, bearerAuth, createSmartBackendServicesTokenProvider, oauth2Auth } from '@cdss/core';
import { freePort, requireService } from '@cdss/core/testing';
import {
  createEmbeddedFhirServer,
  createSmartBackendAuth,
  createSmartFhirGateway,
  type GatewayRequest,
  type SmartBackendAuth,
} from '@cdss/sandbox';
import type { Bundle, Patient } from 'fhir/r4.js';
import { FhirAdapter } from './fhir-adapter.js';
import { FhirServerError } from './errors.js';

const hapi = await requireService('hapi-fhir');
const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { kid: 'cdss-test-1', privateKey: pair.privateKey };
const client = {
  clientId: 'cdss-server',
  jwks: { keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid: key.kid, alg: 'RS384' }] },
  scope: 'system/Patient.cruds',
};
const RUN = randomUUID().slice(0, 8);
const SYSTEM = `urn:cdss:test:auth:${RUN}`;

interface Target {
  name: string;
  available: boolean;
  start(): Promise<{ url: string; auth: SmartBackendAuth; seen: GatewayRequest[] | undefined; stop(): Promise<void> }>;
}

const targets: Target[] = [
  {
    name: 'embedded FHIR server with its token endpoint',
    available: true,
    async start() {
      const server = createEmbeddedFhirServer({ backendServices: { clients: [client] } });
      const { url, close } = await server.listen(await freePort());
      return { url, auth: server.backendAuth!, seen: undefined, stop: close };
    },
  },
  {
    name: 'HAPI FHIR JPA behind the SMART gateway',
    available: hapi.available,
    async start() {
      const auth = createSmartBackendAuth({ clients: [client] });
      const seen: GatewayRequest[] = [];
      const gateway = createSmartFhirGateway({ auth, upstream: hapi.url, onRequest: (r) => seen.push(r) });
      const { url, close } = await gateway.listen(await freePort());
      return { url, auth, seen, stop: close };
    },
  },
];

const patient = (value: string, family: string): Patient => ({
  resourceType: 'Patient',
  identifier: [{ system: SYSTEM, value }],
  name: [{ family, given: ['Auth'] }],
  gender: 'female',
  birthDate: '1970-01-01',
});

describe.each(targets)('FhirAdapter with SMART Backend Services: $name', (target) => {
  let server: Awaited<ReturnType<Target['start']>>;
  let adapter: FhirAdapter;

  beforeAll(async () => {
    if (!target.available) return;
    server = await target.start();
    adapter = new FhirAdapter({
      baseUrl: server.url,
      auth: oauth2Auth(
        createSmartBackendServicesTokenProvider({
          clientId: client.clientId,
          keys: { current: key },
          scope: 'system/Patient.cruds',
          fhirBaseUrl: server.url, // the token endpoint comes from its .well-known/smart-configuration
        }),
      ),
      retry: false,
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it.skipIf(!target.available)('sends the bearer token with every read and write', async () => {
    const created = await adapter.createIfNoneExist(patient(`p-${RUN}-1`, 'Bearer'), {
      system: SYSTEM,
      value: `p-${RUN}-1`,
    });
    expect(created.created).toBe(true);
    expect((await adapter.read<Patient>('Patient', created.id)).name?.[0]?.family).toBe('Bearer');
    await adapter.upsert(patient(`p-${RUN}-1`, 'Bearer-Updated'), { system: SYSTEM, value: `p-${RUN}-1` });
    const tx: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: patient(`p-${RUN}-2`, 'Transaction'),
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${SYSTEM}|p-${RUN}-2` },
        },
      ],
    };
    await adapter.transaction(tx);
    const found = await adapter.findByIdentifier<Patient>('Patient', { system: SYSTEM, value: `p-${RUN}-1` });
    expect(found.map((p) => p.name?.[0]?.family)).toEqual(['Bearer-Updated']);

    expect(server.auth.stats).toMatchObject({ issued: 1, denied: 0 });
    expect(server.auth.stats.authorized).toBeGreaterThanOrEqual(6);
    if (server.seen) {
      // What reached HAPI: every request through the gateway, each with the bearer token the gateway issued.
      expect(server.seen.length).toBe(server.auth.stats.authorized);
      expect(new Set(server.seen.map((r) => r.authorization)).size).toBe(1);
      expect(
        server.seen.every((r) => r.outcome === 'forwarded' && /^Bearer \S{40,}$/.test(r.authorization ?? '')),
      ).toBe(true);
      expect(server.seen.map((r) => r.method)).toEqual(expect.arrayContaining(['GET', 'POST', 'PUT']));
    }
  });

  it.skipIf(!target.available)('a refused token (revoked) is replaced once, and the call succeeds', async () => {
    const issued = server.auth.stats.issued;
    const denied = server.auth.stats.denied;
    server.auth.revokeTokens();
    const page = await adapter.search('Patient', { identifier: `${SYSTEM}|p-${RUN}-1` });
    expect(page.entry).toHaveLength(1);
    expect(server.auth.stats.issued).toBe(issued + 1);
    expect(server.auth.stats.denied).toBe(denied + 1);
  });

  it.skipIf(!target.available)('without credentials the server answers 401, and nothing is retried', async () => {
    const anonymous = new FhirAdapter({ baseUrl: server.url });
    const denied = server.auth.stats.denied;
    const error = await anonymous.search('Patient', { _count: '1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FhirServerError);
    expect((error as FhirServerError).status).toBe(401);
    expect(server.auth.stats.denied).toBe(denied + 1);
  });

  it.skipIf(!target.available)('a token without the scope for the interaction answers 403', async () => {
    const reader = new FhirAdapter({
      baseUrl: server.url,
      auth: oauth2Auth(
        createSmartBackendServicesTokenProvider({
          clientId: client.clientId,
          keys: { current: key },
          scope: 'system/Patient.rs',
          fhirBaseUrl: server.url,
        }),
      ),
      retry: false,
    });
    expect((await reader.search('Patient', { _count: '1' })).resourceType).toBe('Bundle');
    const error = await reader.create(patient(`p-${RUN}-3`, 'Forbidden')).catch((e: unknown) => e);
    expect((error as FhirServerError).status).toBe(403);
  });
});

describe('FhirAdapter auth options', () => {
  it('refuses auth together with bearerToken', () => {
    expect(
      () => new FhirAdapter({ baseUrl: 'http://127.0.0.1:1/fhir', bearerToken: 't', auth: bearerAuth('u') }),
    ).toThrow(ValidationError);
  });
});
