/**
 * The end-to-end flow shared by the sandbox and the connected integration suites: create a patient (OpenEMR first,
 * then the cache), read it back from the cache, store a synthetic study, request an analysis, receive progress and
 * completion over the WebSocket, fetch the report, find the preliminary DiagnosticReport and Observations on the FHIR
 * server, review it as a radiologist and see it become final, find the SEG in the PACS, and find the audit entries.
 */
import { expect } from 'vitest';
import { WebSocket } from 'ws';
import { createCdssClient, type CdssClient } from '@cdss/client';
import { FhirAdapter } from '@cdss/fhir-mapper';
import { generateTemplatePhantom, writePhantomStudy } from '@cdss/dicom';
import type { OrthancClient } from '@cdss/orthanc-client';
import type { DiagnosticReport, Observation } from 'fhir/r4.js';
import { DEMO_GRID } from '../src/compose.js';

/** What the flow needs to reach. */
export interface FlowTarget {
  baseUrl: string;
  fhirUrl: string;
  orthanc: OrthancClient;
  /** A bearer token for a demo user id (default: the sandbox token endpoint). */
  tokenFor?: (userId: string) => Promise<string>;
}

/**
 * A client for a demo user.
 * @param target - the server, and how to get tokens
 * @param userId - a demo user
 */
export async function clientFor(
  target: Pick<FlowTarget, 'baseUrl' | 'tokenFor'>,
  userId: string,
): Promise<{ client: CdssClient; token: string }> {
  const token = target.tokenFor
    ? await target.tokenFor(userId)
    : (await createCdssClient({ baseUrl: target.baseUrl }).sandbox.token(userId)).access_token;
  return { client: createCdssClient({ baseUrl: target.baseUrl, getToken: () => token }), token };
}

/**
 * Runs the whole flow and asserts each step.
 * @param target - server, FHIR server, PACS client
 */
export async function runClinicalFlow(target: FlowTarget): Promise<void> {
  const physician = await clientFor(target, 'demo-physician');
  const radiologist = await clientFor(target, 'demo-radiologist');
  const admin = await clientFor(target, 'demo-admin');

  // 1. Create a patient: OpenEMR first, then the cache; read it back.
  const patient = await physician.client.patients.create(
    { givenName: 'Ada', familyName: 'Integration', birthDate: '1971-05-06', sex: 'female' },
    { idempotencyKey: `flow-${Date.now()}` },
  );
  expect(patient.id).toMatch(/^[0-9a-f-]{36}$/);
  const read = await physician.client.patients.get(patient.id);
  expect(read).toMatchObject({ data: { id: patient.id, familyName: 'Integration' }, stale: false });

  // 2. Store a synthetic four-series study for the patient in the PACS.
  const phantom = generateTemplatePhantom({ seed: `flow-${patient.id}`, ...DEMO_GRID });
  const study = writePhantomStudy(phantom, {
    patientId: patient.id,
    patientName: 'Integration^Ada',
    uidSeed: `flow-${patient.id}`,
  });
  await target.orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
  const studies = await physician.client.patients.studies(patient.id);
  expect(studies.items.map((s) => s.uid)).toContain(study.studyInstanceUid);

  // 3. Watch the patient over the WebSocket, then request an analysis.
  const events: Array<{ type: string; analysisId?: string; data: Record<string, unknown> }> = [];
  const ws = new WebSocket(`${target.baseUrl.replace(/^http/, 'ws')}/ws`);
  ws.on('message', (raw) => {
    const message = JSON.parse(raw.toString()) as { type: string; event?: (typeof events)[number] };
    if (message.type === 'event' && message.event) events.push(message.event);
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ type: 'auth', token: physician.token }));
  ws.send(JSON.stringify({ type: 'subscribe', topic: `patient:${patient.id}` }));
  try {
    await expect.poll(() => ws.readyState === ws.OPEN).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const accepted = await physician.client.analyses.request(study.studyInstanceUid, { patientId: patient.id });
    await expect
      .poll(
        async () =>
          ['succeeded', 'failed', 'cancelled'].includes((await physician.client.analyses.get(accepted.id)).status),
        { timeout: 120_000, interval: 500 },
      )
      .toBe(true);
    const done = await physician.client.analyses.get(accepted.id);
    expect(done.status, JSON.stringify(done.failure)).toBe('succeeded');
    await expect
      .poll(() => events.some((e) => e.type === 'analysis.completed' && e.analysisId === accepted.id))
      .toBe(true);
    const progress = events
      .filter((e) => e.type === 'analysis.progress' && e.analysisId === accepted.id)
      .map((e) => Number(e.data['percent']));
    expect(progress.length).toBeGreaterThan(0);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(done.result?.volumes.wholeTumor).toBeGreaterThan(0);

    // 4. The report, and the preliminary DiagnosticReport with its Observations on the FHIR server.
    const report = await physician.client.analyses.report(accepted.id);
    expect(report.entry?.some((e) => e.resource?.resourceType === 'DiagnosticReport')).toBe(true);
    // The server writes with conditional upserts keyed by our identifiers: find the resources by them.
    const reportEntry = report.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')
      ?.resource as unknown as DiagnosticReport;
    const reportId = reportEntry.identifier?.[0];
    expect(reportId?.system && reportId.value).toBeTruthy();
    const fhir = new FhirAdapter({ baseUrl: target.fhirUrl });
    const reportOnServer = async (): Promise<DiagnosticReport | undefined> =>
      (
        await fhir
          .findByIdentifier<DiagnosticReport>('DiagnosticReport', {
            system: reportId!.system!,
            value: reportId!.value!,
          })
          .catch(() => [])
      )[0];
    await expect
      .poll(async () => (await reportOnServer())?.status, { timeout: 30_000, interval: 500 })
      .toBe('preliminary');
    const onServer = (await reportOnServer())!;
    expect(onServer.result?.length ?? 0).toBeGreaterThanOrEqual(3);
    const firstObservation = onServer.result![0]!.reference!;
    const observation = await fhir.read<Observation>('Observation', firstObservation.split('/')[1]!);
    expect(observation.valueQuantity?.unit).toBe('mL');

    // 5. Review as a radiologist: the report becomes final on the FHIR server.
    // A result with plausibility flags is approved only with a comment (409 without one).
    const flags = (await radiologist.client.analyses.get(accepted.id)).result?.flags ?? [];
    const reviewed = await radiologist.client.analyses.review(accepted.id, {
      decision: 'approve',
      ...(flags.length > 0 ? { comment: `checked: ${flags.map((f) => f.code).join(', ')}` } : {}),
    });
    expect(reviewed.review?.status).toBe('approved');
    await expect.poll(async () => (await reportOnServer())?.status, { timeout: 30_000, interval: 500 }).toBe('final');

    // 6. The SEG is in the PACS.
    const segSeries = await target.orthanc.dicomweb.searchForSeries(study.studyInstanceUid, {
      match: { Modality: 'SEG' },
    });
    expect(segSeries.length).toBe(1);
    const srSeries = await target.orthanc.dicomweb.searchForSeries(study.studyInstanceUid, {
      match: { Modality: 'SR' },
    });
    expect(srSeries.length).toBe(1);

    // 7. The audit log has the reads and writes, by whom.
    const audit = await admin.client.audit.list({ patient: patient.id });
    const actions = audit.items.map((r) => `${r.action}:${r.roles.join(',')}:${r.outcome}`);
    for (const expected of [
      'create:physician:success',
      'read:physician:success',
      'request:physician:success',
      'review:radiologist:success',
    ]) {
      expect(actions).toContain(expected);
    }
  } finally {
    ws.close();
  }
}
