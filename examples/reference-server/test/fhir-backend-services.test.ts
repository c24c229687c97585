/**
 * SMART Backend Services as the server's way into the FHIR server (FHIR_BACKEND_CLIENT_ID): its FHIR writes carry
 * system tokens obtained with assertions signed by the key it publishes at `/.well-known/jwks.json`.
 *
 * 1. A protected FHIR server (the sandbox's, with its token endpoint) knows the server's client by its JWKS URL: the
 *    server's keys are rotated (a new key first, then the old one retired) across restarts, and the token endpoint
 *    verifies each assertion against what the server publishes at that moment.
 * 2. The real HAPI FHIR on its default port, behind the SMART gateway (HAPI checks no token): the whole clinical
 *    flow, and every request that reached HAPI carried the bearer token.
 * 3. The sandbox with FHIR_BACKEND_CLIENT_ID alone protects its embedded FHIR server the same way.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCdssClient } from '@cdss/client';
import { createSmartBackendServicesTokenProvider, oauth2Auth, signClientAssertion } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import { FhirAdapter, identifierSystems } from '@cdss/fhir-mapper';
import { OrthancClient } from '@cdss/orthanc-client';
import {
  createEmbeddedFhirServer,
  createSmartBackendAuth,
  createSmartFhirGateway,
  type GatewayRequest,
} from '@cdss/sandbox';
import type { Patient } from 'fhir/r4.js';
import { FHIR_BACKEND_DEFAULT_SCOPE, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { generateServerJwks, serverKeysFromJwks, type SigningKey } from '../src/smart/server-keys.js';
import { runClinicalFlow } from './flow.js';
import { freePort } from './processes.js';

const hapi = await requireService('hapi-fhir');
const CLIENT_ID = 'cdss-server';

/** A private JWKS file's keys. */
const keysOf = (text: string): Array<Record<string, unknown>> =>
  (JSON.parse(text) as { keys: Array<Record<string, unknown>> }).keys;

async function startCdss(
  dataDir: string,
  port: number,
  env: Record<string, string>,
): Promise<{ composed: ComposedServer; url: string }> {
  const composed = await composeServer(
    loadConfig({
      CDSS_DATA_DIR: dataDir,
      CDSS_LOG_LEVEL: 'warn',
      CDSS_SANDBOX_STUDIES: '0',
      CDSS_AUTO_ANALYSIS: 'false',
      CDSS_RATE_LIMIT_PER_MINUTE: '10000',
      FHIR_BACKEND_CLIENT_ID: CLIENT_ID,
      ...env,
    }),
    createLogger('warn'),
    'test',
  );
  await composed.server.listen(port, '127.0.0.1');
  return { composed, url: `http://127.0.0.1:${port}` };
}

async function createPatient(url: string, familyName: string): Promise<string> {
  const token = (await createCdssClient({ baseUrl: url }).sandbox.token('demo-physician')).access_token;
  const client = createCdssClient({ baseUrl: url, getToken: () => token });
  return (await client.patients.create({ givenName: 'Backend', familyName, birthDate: '1970-02-03', sex: 'female' }))
    .id;
}

describe('FHIR_BACKEND_CLIENT_ID towards a protected FHIR server: key rotation through the published JWKS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdss-fhir-backend-'));
  const jwksFile = join(dir, 'server-jwks.json');
  let fhir: ReturnType<typeof createEmbeddedFhirServer>;
  let fhirUrl: string;
  let closeFhir: () => Promise<void>;
  let port: number;
  let readerAdapter: FhirAdapter;

  beforeAll(async () => {
    port = await freePort();
    const readerJwks = keysOf(await generateServerJwks('reader'));
    const readerKeys = await serverKeysFromJwks(JSON.stringify({ keys: readerJwks }));
    fhir = createEmbeddedFhirServer({
      backendServices: {
        clients: [
          // The CDSS server, registered by its JWKS URL (fetched at each token request).
          {
            clientId: CLIENT_ID,
            jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
            scope: FHIR_BACKEND_DEFAULT_SCOPE,
          },
          // The test's own reader, to look at what arrived.
          { clientId: 'test-reader', jwks: readerKeys.publicJwks, scope: 'system/*.rs' },
        ],
      },
    });
    ({ url: fhirUrl, close: closeFhir } = await fhir.listen(await freePort()));
    readerAdapter = new FhirAdapter({
      baseUrl: fhirUrl,
      auth: oauth2Auth(
        createSmartBackendServicesTokenProvider({
          clientId: 'test-reader',
          keys: readerKeys,
          scope: 'system/Patient.rs',
          fhirBaseUrl: fhirUrl,
        }),
      ),
    });
  });

  afterAll(async () => {
    await closeFhir?.();
    rmSync(dir, { recursive: true, force: true });
  });

  const synced = async (patientId: string): Promise<Patient[]> =>
    readerAdapter.findByIdentifier<Patient>('Patient', {
      system: identifierSystems('default').patientUuid,
      value: patientId,
    });

  it('writes with tokens from assertions signed by the current key; a new key verifies at once, a retired one never again', async () => {
    const env = {
      CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
      CDSS_SERVER_JWKS_FILE: jwksFile,
      CDSS_WORKER: 'off',
      FHIR_URL: fhirUrl,
    };
    const keyA = keysOf(await generateServerJwks('key-a'));
    const keyB = keysOf(await generateServerJwks('key-b'));
    const stats = fhir.backendAuth!.stats;

    // Key A alone.
    writeFileSync(jwksFile, JSON.stringify({ keys: keyA }), { mode: 0o600 });
    let cdss = await startCdss(join(dir, 'cdss'), port, env);
    try {
      expect((await (await fetch(`${cdss.url}/readyz`)).json()) as unknown).toMatchObject({ status: 'ready' });
      const first = await createPatient(cdss.url, `Rotation${randomUUID().slice(0, 6)}`);
      await expect.poll(async () => (await synced(first)).length, { timeout: 20_000, interval: 250 }).toBe(1);
    } finally {
      await cdss.composed.close();
    }
    const issuedWithA = stats.issued;
    expect(issuedWithA).toBeGreaterThanOrEqual(2); // the server's and the reader's

    // Rotation: key B signs, key A is still published.
    writeFileSync(jwksFile, JSON.stringify({ keys: [...keyB, ...keyA] }));
    cdss = await startCdss(join(dir, 'cdss'), port, env);
    try {
      const published = (await (await fetch(`${cdss.url}/.well-known/jwks.json`)).json()) as {
        keys: { kid: string }[];
      };
      expect(published.keys.map((k) => k.kid)).toEqual(['key-b', 'key-a']);
      const second = await createPatient(cdss.url, `Rotation${randomUUID().slice(0, 6)}`);
      await expect.poll(async () => (await synced(second)).length, { timeout: 20_000, interval: 250 }).toBe(1);
      // An assertion signed with the old key still verifies while it is published.
      const keyAPrivate = (await serverKeysFromJwks(JSON.stringify({ keys: keyA }))).current;
      expect((await tokenWith(keyAPrivate)).status).toBe(200);
    } finally {
      await cdss.composed.close();
    }
    expect(stats.refused).toEqual([]);

    // Retirement: only key B is published; an assertion signed with key A is refused.
    writeFileSync(jwksFile, JSON.stringify({ keys: keyB }));
    cdss = await startCdss(join(dir, 'cdss'), port, env);
    try {
      const third = await createPatient(cdss.url, `Rotation${randomUUID().slice(0, 6)}`);
      await expect.poll(async () => (await synced(third)).length, { timeout: 20_000, interval: 250 }).toBe(1);
      const keyAPrivate = (await serverKeysFromJwks(JSON.stringify({ keys: keyA }))).current;
      const refused = await tokenWith(keyAPrivate);
      expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_client' } });
    } finally {
      await cdss.composed.close();
    }
    expect(stats.refused.map((r) => r.reason)).toEqual(['no key of the client’s JWKS has the assertion’s kid']);
    // Nothing the server sent was refused at the FHIR endpoint.
    expect(stats.denied).toBe(0);
  }, 180_000);

  /** A token request of the server's client, signed with the given key. */
  async function tokenWith(key: SigningKey): Promise<{
    status: number;
    body: Record<string, string>;
  }> {
    const tokenUrl = `${new URL(fhirUrl).origin}/auth/token`;
    const response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'system/Patient.rs',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await signClientAssertion({ clientId: CLIENT_ID, audience: tokenUrl, key }),
      }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }
});

describe.skipIf(!hapi.available)('FHIR_BACKEND_CLIENT_ID towards the real HAPI FHIR behind a SMART gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdss-hapi-backend-'));
  const seen: GatewayRequest[] = [];
  let closeGateway: () => Promise<void>;
  let cdss: { composed: ComposedServer; url: string };
  let auth: ReturnType<typeof createSmartBackendAuth>;

  beforeAll(async () => {
    const port = await freePort();
    auth = createSmartBackendAuth({
      clients: [
        {
          clientId: CLIENT_ID,
          jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
          scope: FHIR_BACKEND_DEFAULT_SCOPE,
        },
      ],
    });
    const gateway = await createSmartFhirGateway({ auth, upstream: hapi.url, onRequest: (r) => seen.push(r) }).listen(
      0,
    );
    closeGateway = gateway.close;
    // The token endpoint is read from the gateway's .well-known/smart-configuration (no FHIR_BACKEND_TOKEN_URL).
    cdss = await startCdss(join(dir, 'cdss'), port, { CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true', FHIR_URL: gateway.url });
  }, 120_000);

  afterAll(async () => {
    await cdss?.composed.close();
    await closeGateway?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the clinical flow; every request that reached HAPI carried the server’s bearer token', async () => {
    await runClinicalFlow({
      baseUrl: cdss.url,
      fhirUrl: hapi.url, // the test reads HAPI directly
      orthanc: new OrthancClient({ baseUrl: cdss.composed.embedded.orthanc! }),
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((r) => r.outcome !== 'forwarded')).toEqual([]);
    expect(seen.every((r) => /^Bearer \S{40,}$/.test(r.authorization ?? ''))).toBe(true);
    // The patient (conditional create), the analysis report transactions and the audit batches, within the default scopes.
    expect(new Set(seen.map((r) => `${r.method} /${r.path}`))).toEqual(new Set(['POST /Patient', 'POST /']));
    expect(auth.stats.issued).toBeGreaterThanOrEqual(1);
    expect(auth.stats.refused).toEqual([]);
  }, 300_000);
});

describe('sandbox with FHIR_BACKEND_CLIENT_ID: the embedded FHIR server checks the server’s tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdss-sandbox-backend-'));
  let cdss: { composed: ComposedServer; url: string };

  beforeAll(async () => {
    cdss = await startCdss(dir, await freePort(), { CDSS_WORKER: 'off' });
  }, 120_000);

  afterAll(async () => {
    await cdss?.composed.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses anonymous FHIR requests and receives the server’s writes with its key', async () => {
    const fhirUrl = cdss.composed.embedded.fhir!;
    expect((await fetch(`${fhirUrl}/Patient`)).status).toBe(401);
    const patientId = await createPatient(cdss.url, `Sandbox${randomUUID().slice(0, 6)}`);
    // Read as the server's own client (its private JWKS is in the data folder).
    const keys = await serverKeysFromJwks(readFileSync(join(dir, 'server-jwks.json'), 'utf8'));
    const adapter = new FhirAdapter({
      baseUrl: fhirUrl,
      auth: oauth2Auth(
        createSmartBackendServicesTokenProvider({
          clientId: CLIENT_ID,
          keys,
          scope: 'system/Patient.rs',
          fhirBaseUrl: fhirUrl,
        }),
      ),
    });
    await expect
      .poll(
        async () =>
          (
            await adapter.findByIdentifier('Patient', {
              system: identifierSystems('default').patientUuid,
              value: patientId,
            })
          ).length,
        { timeout: 20_000, interval: 250 },
      )
      .toBe(1);
    expect((await (await fetch(`${cdss.url}/readyz`)).json()) as unknown).toMatchObject({ status: 'ready' });
  }, 60_000);
});
