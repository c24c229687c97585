/**
 * The whole loop inside the EHR, connected to the real Orthanc, RabbitMQ, MariaDB and HAPI FHIR (OpenEMR through its
 * emulator, run as its own process): an `order-select` card for a brain MRI, the automatic analysis accepted as
 * feedback, the study uploaded to Orthanc, the analysis started by itself, reviewed, the DiagnosticReport final in
 * HAPI, the report filed in OpenEMR's chart as a PDF document, and the `patient-view` card
 * showing the new status. The EHR signs its CDS Hooks calls with an ES384 key whose JWKS it serves over HTTP.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { DiagnosticReport } from 'fhir/r4.js';
import { basicAuth } from '@cdss/core';
import { listenOnFreePort, requireService } from '@cdss/core/testing';
import { createCdssClient, type CdssClient } from '@cdss/client';
import { generateTemplatePhantom, writePhantomStudy } from '@cdss/dicom';
import { FhirAdapter } from '@cdss/fhir-mapper';
import { OrthancClient } from '@cdss/orthanc-client';
import { SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { CDSS_SCOPES, createOpenEmrClient } from '@cdss/openemr-client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, DEMO_GRID, type ComposedServer } from '../src/compose.js';
import { CDS_SERVICE_IDS } from '../src/cds-hooks/services.js';
import type { HookResponse } from '../src/cds-hooks/schemas.js';
import { freePort, startTsProcess, type Child } from './processes.js';
import { connectedUpstreamEnv, createTestIdentityProvider } from './upstreams.js';

const services = await Promise.all(
  (['orthanc', 'rabbitmq', 'mariadb', 'hapi-fhir'] as const).map((name) => requireService(name)),
);
const [orthancSvc, , , hapiSvc] = services;

describe.skipIf(!services.every((s) => s.available))('the loop inside the EHR, on the real services', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-loop-'));
  const emulatorData = mkdtempSync(join(tmpdir(), 'cdss-loop-openemr-'));
  const orthancUrl = new URL(orthancSvc!.url);
  const orthanc = new OrthancClient({
    baseUrl: `${orthancUrl.protocol}//${orthancUrl.host}`,
    auth: basicAuth(decodeURIComponent(orthancUrl.username), decodeURIComponent(orthancUrl.password)),
  });
  let emulator: Child;
  let ehrJwks: Server;
  let composed: ComposedServer;
  let baseUrl: string;
  let ehrKey: CryptoKey;
  let emulatorUrl: string;
  let clientOf: (userId: string) => Promise<CdssClient>;

  beforeAll(async () => {
    const emulatorPort = await freePort();
    emulator = await startTsProcess(
      'test/openemr-emulator-process.ts',
      { PORT: String(emulatorPort), DATA_DIR: emulatorData },
      /^ready/m,
    );
    emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
    // The EHR's CDS Hooks signing key, its JWKS served over HTTP.
    const ehr = await generateKeyPair('ES384');
    ehrKey = ehr.privateKey;
    const jwk = { ...(await exportJWK(ehr.publicKey)), kid: 'ehr-1', alg: 'ES384', use: 'sig' };
    ehrJwks = createServer((_req, res) =>
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })),
    );
    await listenOnFreePort(ehrJwks);
    const jwksUrl = `http://127.0.0.1:${(ehrJwks.address() as AddressInfo).port}/jwks`;
    // The hospital's identity provider for the API.
    const idp = await createTestIdentityProvider();
    clientOf = async (userId) => {
      const token = await idp.tokenFor(userId, '20m');
      return createCdssClient({ baseUrl, getToken: () => token });
    };
    const config = loadConfig({
      CDSS_MODE: 'connected',
      CDSS_DATA_DIR: dataDir,
      CDSS_LOG_LEVEL: 'warn',
      CDSS_RATE_LIMIT_PER_MINUTE: '10000',
      ...idp.env,
      CDSS_WEBHOOK_SECRET: 'x'.repeat(40),
      CDSS_CDS_CLIENTS: JSON.stringify([{ iss: 'https://ehr.hospital.test', jwksUrls: [jwksUrl] }]),
      ...connectedUpstreamEnv(`http://127.0.0.1:${emulatorPort}`, services),
    });
    composed = await composeServer(config, createLogger('warn'), 'test');
    baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
  }, 180_000);

  afterAll(async () => {
    await composed?.close();
    await emulator?.stop();
    ehrJwks?.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(emulatorData, { recursive: true, force: true });
  });

  /** Calls the CDS service as the EHR: a fresh JWT for the exact URL. */
  const cds = async (path: string, body: unknown): Promise<{ status: number; body: HookResponse }> => {
    const url = `${baseUrl}/cds-services/${path}`;
    const jwt = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'ehr-1' })
      .setIssuer('https://ehr.hospital.test')
      .setAudience(url)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(ehrKey);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as HookResponse };
  };

  it('order card → study in Orthanc → automatic analysis → review → HAPI report and chart → patient-view card', async () => {
    const physician = await clientOf('demo-physician');
    const radiologist = await clientOf('demo-radiologist');
    const patient = await physician.patients.create({
      givenName: 'Loop',
      familyName: `Ehr${Date.now()}`,
      birthDate: '1968-04-05',
      sex: 'female',
    });
    const fhirPatient = {
      resourceType: 'Patient',
      id: patient.id,
      name: [{ family: patient.familyName, given: ['Loop'] }],
    };
    const noProblems = { resourceType: 'Bundle', type: 'searchset', entry: [] };

    // 1. The clinician orders a brain MRI; the card offers the protocol and the automatic analysis; accepted.
    const order = {
      resourceType: 'ServiceRequest',
      id: `mri-${Date.now()}`,
      status: 'draft',
      intent: 'order',
      code: { coding: [{ system: 'http://loinc.org', code: '24590-2', display: 'MR Brain WO and W contrast IV' }] },
      subject: { reference: `Patient/${patient.id}` },
    };
    const select = await cds(CDS_SERVICE_IDS.mriProtocolSelect, {
      hook: 'order-select',
      hookInstance: randomUUID(),
      context: {
        userId: 'Practitioner/1',
        patientId: patient.id,
        selections: [`ServiceRequest/${order.id}`],
        draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: order }] },
      },
      prefetch: { patient: fhirPatient, conditions: noProblems },
    });
    expect(select.status).toBe(200);
    const card = select.body.cards[0]!;
    const offer = card.suggestions!.find((s) => s.label.startsWith('Analyse the study automatically'))!;
    const feedback = await cds(`${CDS_SERVICE_IDS.mriProtocolSelect}/feedback`, {
      feedback: [
        {
          card: card.uuid,
          outcome: 'accepted',
          acceptedSuggestions: [{ id: offer.uuid }],
          outcomeTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
    });
    expect(feedback.status).toBe(200);

    // 2. The study arrives in Orthanc; the analysis starts by itself and succeeds.
    const seed = `loop-${randomUUID()}`;
    const study = writePhantomStudy(generateTemplatePhantom({ seed, ...DEMO_GRID }), {
      patientId: patient.id,
      patientName: `${patient.familyName}^Loop`,
      uidSeed: seed,
    });
    await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
    await expect
      .poll(async () => (await physician.analyses.list({ patient: patient.id })).items.length, {
        timeout: 90_000,
        interval: 500,
      })
      .toBe(1);
    const [queued] = (await physician.analyses.list({ patient: patient.id })).items;
    expect(queued).toMatchObject({ studyUid: study.studyInstanceUid, requestedBy: 'cdss-auto-analysis' });
    await expect
      .poll(async () => (await physician.analyses.get(queued!.id)).status, { timeout: 180_000, interval: 1_000 })
      .toBe('succeeded');

    // 3. Reviewed: the DiagnosticReport is final in HAPI, and the report goes to the chart.
    await radiologist.analyses.review(queued!.id, { decision: 'approve', comment: 'Checked the key slices.' });
    const bundle = await physician.analyses.report(queued!.id);
    const identifier = (
      bundle.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
        ?.resource as unknown as DiagnosticReport
    ).identifier![0]!;
    const fhir = new FhirAdapter({ baseUrl: hapiSvc!.url });
    await expect
      .poll(
        async () =>
          (
            await fhir
              .findByIdentifier<DiagnosticReport>('DiagnosticReport', {
                system: identifier.system!,
                value: identifier.value!,
              })
              .catch(() => [])
          )[0]?.status,
        { timeout: 60_000, interval: 500 },
      )
      .toBe('final');
    // OpenEMR first: the approved report is filed in the emulator's chart as a PDF document (its upload answers
    // 500 although stored, as OpenEMR 8.0.0 does; the client confirms by listing before any retry).
    await expect
      .poll(async () => (await composed.ehr.chart.state(queued!.id))?.state, { timeout: 60_000, interval: 500 })
      .toBe('delivered');
    const openemr = createOpenEmrClient({
      baseUrl: emulatorUrl,
      version: '8',
      auth: {
        kind: 'password',
        ...SEED_CLIENT,
        username: SEED_ADMIN.username,
        password: SEED_ADMIN.password,
        scope: CDSS_SCOPES,
      },
    });
    const filed = await openemr.documents.list(patient.pid!, 'Medical_Record');
    expect(filed.map((d) => [d.filename, d.mimetype])).toEqual([
      [`cdss-ai-report-${queued!.id}.pdf`, 'application/pdf'],
    ]);
    const references = await openemr.documents.references(patient.id);
    const pdf = await openemr.documents.read(references[0]!.id!);
    expect(Buffer.from(pdf!.content).subarray(0, 5).toString()).toBe('%PDF-');

    // 4. The patient-view card shows the new status, with the scan's date and the analysis to open.
    const view = await cds(CDS_SERVICE_IDS.tumourStatus, {
      hook: 'patient-view',
      hookInstance: randomUUID(),
      context: { userId: 'Practitioner/1', patientId: patient.id },
      prefetch: { patient: fhirPatient, conditions: noProblems },
    });
    expect(view.status).toBe(200);
    const [status] = view.body.cards;
    expect(status?.summary).toMatch(/^Brain tumour: not evaluable/);
    expect(status?.detail).toContain('**Review:** approved by Dr. Rita Radiologist');
    expect(status?.links?.[0]?.appContext).toBe(JSON.stringify({ patientId: patient.id, analysisId: queued!.id }));
  }, 420_000);
});
