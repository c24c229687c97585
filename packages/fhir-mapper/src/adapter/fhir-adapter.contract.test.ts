/**
 * The FHIR contract suite: one set of tests run against the embedded FHIR server (@cdss/sandbox) and
 * a real HAPI FHIR JPA server (`npm run services -- start hapi-fhir`). Each run uses fresh identifiers,
 * so the suite can run against a long-lived server.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, requireService } from '@cdss/core/testing';
import { createEmbeddedFhirServer } from '@cdss/sandbox';
import type { Bundle, DiagnosticReport, Observation, Patient, Resource } from 'fhir/r4.js';
import { FhirAdapter } from './fhir-adapter.js';
import { KeyedMutex } from './keyed-mutex.js';
import { FhirConflictError, FhirInvalidResourceError, FhirNotFoundError } from './errors.js';
import {
  allergyToFhir,
  analysisIdentifiers,
  analysisToTransaction,
  encounterToFhir,
  medicationToFhir,
  patientToFhir,
  prescriptionToFhir,
  problemToCondition,
  ranoToCancerDiseaseStatus,
  vitalsToObservations,
} from '../index.js';
import * as samples from '../__fixtures__/samples.js';

const hapi = await requireService('hapi-fhir');

interface Target {
  name: string;
  start(): Promise<{ url: string; stop(): Promise<void> }>;
}

const targets: Target[] = [
  {
    name: 'embedded (Medplum FhirRouter)',
    async start() {
      const { url, close } = await createEmbeddedFhirServer().listen(await freePort());
      return { url, stop: close };
    },
  },
  {
    name: 'HAPI FHIR JPA',
    async start() {
      return { url: hapi.url, stop: async () => undefined };
    },
  },
];

const RUN = randomUUID().slice(0, 8);
const SYS = `urn:cdss:test:${RUN}`;

function patient(value: string, family = `Contract${RUN}`): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ system: SYS, value }],
    name: [{ family, given: ['Test'] }],
    gender: 'female',
    birthDate: '1970-01-01',
  };
}

describe.each(targets)('FHIR contract: $name', (target) => {
  const skip = target.name.startsWith('HAPI') && !hapi.available;
  let fhir: FhirAdapter;
  let stop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    if (skip) return;
    const started = await target.start();
    stop = started.stop;
    fhir = new FhirAdapter({ baseUrl: started.url, retry: { maxRetries: 1, baseDelayMs: 10 } });
  });
  afterAll(async () => stop());

  it.skipIf(skip)('creates and reads a resource', async () => {
    const created = await fhir.create(patient(`create-${randomUUID()}`));
    expect(created.status).toBe(201);
    expect(created.created).toBe(true);
    expect(created.versionId).toBeTruthy();
    const read = await fhir.read<Patient>('Patient', created.id);
    expect(read.id).toBe(created.id);
    expect(read.name?.[0]?.family).toBe(`Contract${RUN}`);
  });

  it.skipIf(skip)('read of a missing resource is FhirNotFoundError', async () => {
    await expect(fhir.read('Patient', `missing-${RUN}`)).rejects.toBeInstanceOf(FhirNotFoundError);
  });

  it.skipIf(skip)('conditional create returns the existing resource, even for parallel calls', async () => {
    const value = `cc-${randomUUID()}`;
    const first = await fhir.createIfNoneExist(patient(value), { system: SYS, value });
    const again = await fhir.createIfNoneExist(patient(value), { system: SYS, value });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.id).toBe(first.id);
    const value2 = `ccp-${randomUUID()}`;
    const parallel = await Promise.all(
      Array.from({ length: 8 }, () => fhir.createIfNoneExist(patient(value2), { system: SYS, value: value2 })),
    );
    expect(new Set(parallel.map((r) => r.id)).size).toBe(1);
    expect(parallel.filter((r) => r.created)).toHaveLength(1);
    expect(await fhir.findByIdentifier('Patient', { system: SYS, value: value2 })).toHaveLength(1);
  });

  it.skipIf(skip)('conditional update creates, then updates the one match', async () => {
    const value = `cu-${randomUUID()}`;
    const first = await fhir.upsert(patient(value, 'Before'), { system: SYS, value });
    const second = await fhir.upsert(patient(value, 'After'), { system: SYS, value });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.id).toBe(first.id);
    expect(second.versionId).not.toBe(first.versionId);
    const found = await fhir.findByIdentifier<Patient>('Patient', { system: SYS, value });
    expect(found).toHaveLength(1);
    expect(found[0]?.name?.[0]?.family).toBe('After');
  });

  // Independent writers racing conditional creates of one identifier store one resource: HAPI keeps a unique row per
  // match URL while the resource is at its first version (hapifhir/hapi-fhir#4609). Racing *upserts* are not
  // raced here: HAPI deletes that row when the resource is first updated, so a conditional create still in flight
  // at that moment can create a second resource (seen once in CI; see `FhirAdapter.upsert`).
  it.skipIf(skip)(
    'independent writers (no shared lock, like separate processes) racing conditional creates store one resource',
    async () => {
      const value = `race-${randomUUID()}`;
      const identifier = { system: SYS, value };
      const writers = Array.from({ length: 8 }, (_, i) =>
        new FhirAdapter({
          baseUrl: fhir.baseUrl,
          mutex: new KeyedMutex(),
          retry: { maxRetries: 2, baseDelayMs: 20 },
        }).createIfNoneExist(patient(value, `Race${i}`), identifier),
      );
      const results = await Promise.all(writers);
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const stored = await fhir.findByIdentifier<Patient>('Patient', identifier);
      expect(stored).toHaveLength(1);
      expect(stored[0]?.name?.[0]?.family).toMatch(/^Race\d$/);
      // The upsert that follows the race updates the one resource.
      const updated = await fhir.upsert(patient(value, 'AfterRace'), identifier);
      expect(updated).toMatchObject({ id: results[0]?.id, created: false });
      expect(await fhir.findByIdentifier('Patient', identifier)).toHaveLength(1);
    },
  );

  it.skipIf(skip)('search pages follow next links and return every match once', async () => {
    const family = `Page${RUN}${target.name.length}`;
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++) ids.add((await fhir.create(patient(`page-${i}-${randomUUID()}`, family))).id);
    const pages: Bundle[] = [];
    for await (const page of fhir.pages('Patient', { family, _count: 3 })) pages.push(page);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    for await (const p of fhir.searchAll<Patient>('Patient', { family, _count: 3 })) seen.push(p.id as string);
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(ids);
  });

  it.skipIf(skip)('a stale If-Match version is a FhirConflictError and changes nothing', async () => {
    const created = await fhir.create(patient(`ver-${randomUUID()}`, 'V1'));
    const v1 = created.versionId as string;
    const updated = await fhir.update(
      { ...created.resource, id: created.id, name: [{ family: 'V2' }] },
      { ifMatch: v1 },
    );
    expect(updated.versionId).not.toBe(v1);
    const stale = fhir.update({ ...created.resource, id: created.id, name: [{ family: 'V3' }] }, { ifMatch: v1 });
    await expect(stale).rejects.toBeInstanceOf(FhirConflictError);
    await expect(stale).rejects.toMatchObject({ kind: 'version-conflict' });
    expect((await fhir.read<Patient>('Patient', created.id)).name?.[0]?.family).toBe('V2');
  });

  it.skipIf(skip)(
    'an invalid resource is FhirInvalidResourceError with an OperationOutcome and is not stored',
    async () => {
      const value = `invalid-${randomUUID()}`;
      const bad = { ...patient(value), active: 'yes' } as unknown as Patient;
      const err = await fhir.create(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FhirInvalidResourceError);
      expect(
        (err as FhirInvalidResourceError).outcome?.issue?.some((i) => i.severity === 'error' || i.severity === 'fatal'),
      ).toBe(true);
      expect(await fhir.findByIdentifier('Patient', { system: SYS, value })).toHaveLength(0);
      // a transaction with one invalid entry changes nothing
      const good = `txgood-${randomUUID()}`;
      const tx: Bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: `urn:uuid:${randomUUID()}`, resource: patient(good), request: { method: 'POST', url: 'Patient' } },
          { fullUrl: `urn:uuid:${randomUUID()}`, resource: bad, request: { method: 'POST', url: 'Patient' } },
        ],
      };
      await expect(fhir.transaction(tx)).rejects.toBeInstanceOf(FhirInvalidResourceError);
      expect(await fhir.findByIdentifier('Patient', { system: SYS, value: good })).toHaveLength(0);
    },
  );

  it.skipIf(skip)('writes a batch of AuditEvents PUT by id, and the same batch again changes nothing', async () => {
    const ids = Array.from({ length: 3 }, () => `audit-${randomUUID()}`);
    const batch: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: ids.map((id) => ({
        resource: {
          resourceType: 'AuditEvent',
          id,
          type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
          action: 'R',
          recorded: new Date().toISOString(),
          outcome: '0',
          agent: [{ who: { identifier: { system: 'urn:cdss:user', value: `contract-${RUN}` } }, requestor: true }],
          source: { observer: { display: 'contract test' } },
        },
        request: { method: 'PUT', url: `AuditEvent/${id}` },
      })) as Bundle['entry'],
    };
    const first = await fhir.batch(batch);
    expect(first.type).toBe('batch-response');
    expect(first.entry).toHaveLength(3);
    // What the outbox sends: only each entry's outcome comes back.
    const minimal = await fhir.batch(batch, { returnMinimal: true });
    expect(minimal.entry?.map((e) => [e.resource, e.response?.status.charAt(0)])).toEqual(
      ids.map(() => [undefined, '2']),
    );
    for (const id of ids) expect((await fhir.read('AuditEvent', id)).id).toBe(id);
    const found = await fhir.search('AuditEvent', { _id: ids.join(',') });
    expect(found.entry).toHaveLength(3);
  });

  it.skipIf(skip)('accepts the transaction of a full analysis result, idempotently', async () => {
    const puuid = randomUUID();
    const sub = (n: number): string => `1.2.826.0.1.3680043.8.498.${Date.now()}${n}${Math.floor(Math.random() * 1e6)}`;
    const result = samples.analysisResult({
      analysisId: `job-${RUN}-${randomUUID().slice(0, 8)}`,
      patientUuid: puuid,
      study: { ...(samples.analysisResult()['study'] as object), studyInstanceUid: sub(1) },
      segmentation: { seriesInstanceUid: sub(2), sopInstanceUid: sub(3) },
    });
    const pat = await fhir.upsert(patientToFhir({ ...samples.openEmrPatient, uuid: puuid }), {
      system: 'urn:cdss:openemr:default:patient-uuid',
      value: puuid,
    });
    const subject = { reference: `Patient/${pat.id}` };
    const response = await fhir.transaction(analysisToTransaction(result, { subject }));
    expect(response.type).toBe('transaction-response');
    expect(response.entry?.map((e) => e.response?.status?.slice(0, 1))).toEqual(
      Array(response.entry?.length).fill('2'),
    );
    const ids = analysisIdentifiers(result);
    const [report] = await fhir.findByIdentifier<DiagnosticReport>('DiagnosticReport', ids.diagnosticReport);
    expect(report?.subject?.reference).toBe(`Patient/${pat.id}`);
    expect(report?.result).toHaveLength(4);
    for (const ref of report?.result ?? []) {
      expect(ref.reference).toMatch(/^Observation\/[^/]+$/);
      const obs = await fhir.read<Observation>('Observation', (ref.reference as string).split('/')[1] as string);
      expect(obs.subject?.reference).toBe(`Patient/${pat.id}`);
    }
    expect(report?.imagingStudy?.[0]?.reference).toMatch(/^ImagingStudy\//);
    // the same result again (a retry, or the final report) updates in place
    await fhir.transaction(analysisToTransaction({ ...result, status: 'final' }, { subject }));
    const reports = await fhir.findByIdentifier<DiagnosticReport>('DiagnosticReport', ids.diagnosticReport);
    expect(reports).toHaveLength(1);
    expect(reports[0]?.status).toBe('final');
    expect(await fhir.findByIdentifier('Observation', ids.volumes.WT)).toHaveLength(1);
    expect(await fhir.findByIdentifier('ImagingStudy', ids.imagingStudy)).toHaveLength(1);
  });

  it.skipIf(skip)('$validate reports no errors for every resource the mapper produces', async () => {
    const produced: Resource[] = [
      patientToFhir(samples.openEmrPatient),
      encounterToFhir(samples.openEmrEncounter),
      problemToCondition(samples.openEmrProblemGbm),
      problemToCondition(samples.openEmrProblemOther),
      allergyToFhir(samples.openEmrAllergy),
      medicationToFhir(samples.openEmrMedication),
      prescriptionToFhir(samples.openEmrPrescription),
      ...vitalsToObservations(samples.openEmrVitals),
      ...(analysisToTransaction(samples.analysisResult()).entry ?? []).map((e) => e.resource as Resource),
      ranoToCancerDiseaseStatus({
        patientUuid: samples.PATIENT_UUID,
        baseline: { analysisId: 'a0', date: '2025-10-01', enhancingMl: 10 },
        current: { analysisId: 'a1', date: '2026-01-05', enhancingMl: 15 },
      }).observation,
    ];
    // four at a time: HAPI's validator is the slow part of this suite
    for (let i = 0; i < produced.length; i += 4) {
      const batch = produced.slice(i, i + 4);
      const outcomes = await Promise.all(batch.map((r) => fhir.validate(r)));
      outcomes.forEach((outcome, j) => {
        const type = batch[j]?.resourceType;
        const errors = (outcome.issue ?? []).filter((x) => x.severity === 'error' || x.severity === 'fatal');
        expect({ type, errors }).toEqual({ type, errors: [] });
      });
    }
  });
});
