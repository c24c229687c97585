/**
 * SMART Backend Services as the server's own way into OpenEMR's FHIR API: the server's client is registered in the
 * OpenEMR emulator with the server's JWKS URL (system scopes turned on, the client enabled by an administrator, as
 * recorded on 8.0.0, files 89–96); the automatic analyses then read the patient's problem list as FHIR Conditions
 * with a client-credentials token whose RS384 assertion OpenEMR verified against that JWKS.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCdssClient } from '@cdss/client';
import { generateTemplatePhantom, writePhantomStudy } from '@cdss/dicom';
import { OrthancClient } from '@cdss/orthanc-client';
import { createOpenEmrEmulator } from '@cdss/sandbox';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, DEMO_GRID, type ComposedServer } from '../src/compose.js';
import { freePort } from './processes.js';
import { openEmrEmulatorEnv } from './upstreams.js';
import { listenOnFreePort } from '@cdss/core/testing';

describe('SMART Backend Services into OpenEMR’s FHIR API', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-backend-'));
  const router = createOpenEmrEmulator({ dataDir: join(dataDir, 'openemr'), seed: true, systemScopes: true });
  let emulator: Server;
  let composed: ComposedServer;
  let cdssUrl: string;

  beforeAll(async () => {
    emulator = createServer(express().use(router));
    await listenOnFreePort(emulator);
    const emulatorUrl = `http://127.0.0.1:${(emulator.address() as AddressInfo).port}`;
    const port = await freePort();
    cdssUrl = `http://127.0.0.1:${port}`;
    const registration = await fetch(`${emulatorUrl}/oauth2/default/registration`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        application_type: 'private',
        client_name: 'CDSS server',
        redirect_uris: [`${cdssUrl}/unused`],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: `${cdssUrl}/.well-known/jwks.json`,
        scope: 'system/Patient.rs system/Condition.rs',
      }),
    });
    expect(registration.status).toBe(200);
    const { client_id: clientId } = (await registration.json()) as { client_id: string };
    router.engine.enableClient(clientId);
    composed = await composeServer(
      loadConfig({
        CDSS_DATA_DIR: join(dataDir, 'cdss'),
        CDSS_LOG_LEVEL: 'warn',
        CDSS_WORKER: 'off',
        CDSS_SANDBOX_STUDIES: '0',
        CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
        CDSS_RATE_LIMIT_PER_MINUTE: '10000',
        ...openEmrEmulatorEnv(emulatorUrl),
        OPENEMR_BACKEND_CLIENT_ID: clientId,
      }),
      createLogger('warn'),
      'test',
    );
    await composed.server.listen(port, '127.0.0.1');
  }, 120_000);

  afterAll(async () => {
    await composed?.close();
    await new Promise((ok) => emulator?.close(ok));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('publishes the key OpenEMR verifies, and the problem list read with a system token starts the analysis', async () => {
    const jwks = (await (await fetch(`${cdssUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ alg: string }> };
    expect(jwks.keys.map((k) => k.alg)).toEqual(['RS384']);
    const token = (await createCdssClient({ baseUrl: cdssUrl }).sandbox.token('demo-physician')).access_token;
    const client = createCdssClient({ baseUrl: cdssUrl, getToken: () => token });
    const patients = router.engine.store.tables.patients;
    const tumour = patients.find((p) =>
      router.engine.store.tables.lists.some(
        (l) => l.pid === p.pid && l.type === 'medical_problem' && /glio/i.test(l.title),
      ),
    )!;
    const seed = `backend-${randomUUID()}`;
    const study = writePhantomStudy(generateTemplatePhantom({ seed, ...DEMO_GRID }), {
      patientId: String(tumour.uuid),
      patientName: 'Backend^Services',
      uidSeed: seed,
    });
    const orthanc = new OrthancClient({ baseUrl: composed.embedded.orthanc! });
    await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
    await expect
      .poll(async () => (await client.analyses.list({ patient: String(tumour.uuid) })).items.map((a) => a.studyUid), {
        timeout: 60_000,
        interval: 500,
      })
      .toContain(study.studyInstanceUid);
    expect(router.engine.stats.tokenRequests['client_credentials']).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
