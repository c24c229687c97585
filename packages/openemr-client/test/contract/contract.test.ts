/**
 * Contract suite: every client method against a server over real HTTP, asserting what a real OpenEMR does
 * (as recorded on 7.0.1 and 8.0.0) through the client's public API only. It runs against the sandbox's
 * emulator for each release profile, and against a live OpenEMR when `CDSS_TEST_OPENEMR_URL` and its
 * credentials are set (see the package README). The suite makes its own synthetic patients (a random
 * suffix in the last name) and removes what the API lets it remove. The 8.2 emulator is also held to the
 * 8.2.0-dev OpenAPI document.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HttpError, ValidationError } from '@cdss/core';
import axios from 'axios';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OpenEmrConflictError,
  OpenEmrNotFoundError,
  OpenEmrUnsupportedError,
  documentHash,
  recordVersion,
  type OpenEmrClient,
  type OpenEmrProfile,
  type Patient,
} from '../../src/index.js';
import { SPEC_EXCEPTIONS } from './spec-exceptions.js';
import { emulatorTarget, liveConfigured, liveTarget, suffix, type ContractTarget } from './target.js';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

async function expectValidation(p: Promise<unknown>, field: string): Promise<ValidationError> {
  const error = await failure(p);
  expect(ValidationError.isInstance(error), `expected a ValidationError naming ${field}, got ${String(error)}`).toBe(
    true,
  );
  const ve = error as ValidationError;
  expect(
    ve.fields.some((f) => f === field || f.startsWith(`${field}.`)),
    ve.fields.join(', '),
  ).toBe(true);
  return ve;
}

/** A small PDF (synthetic content), different on every run. */
function pdf(text: string): Buffer {
  return Buffer.from(
    `%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n% ${text}\ntrailer<</Root 1 0 R>>\n%%EOF\n`,
    'latin1',
  );
}

describe('spec fixtures', () => {
  it('are byte-identical copies of the reference specs (notes, provenance table)', () => {
    const sha = (name: string): string =>
      createHash('sha256')
        .update(readFileSync(fileURLToPath(new URL(`../__fixtures__/${name}`, import.meta.url))))
        .digest('hex');
    expect(sha('openemr-api-8.yaml')).toBe('56f9ce808049d8d87abbc250ec89418cd38aa95dba2dad26fc14de022fc83924');
    expect(sha('openemr-api-7.0.2.yaml')).toBe('0abcbf535a157512920d56127a708a8cc34277fbd223b7cc878b0050aa9e37b6');
  });
});

const TARGETS: [string, () => Promise<ContractTarget>][] = [
  ['emulator 7.0', () => emulatorTarget('7.0')],
  ['emulator 8.0', () => emulatorTarget('8.0')],
  ['emulator 8.2', () => emulatorTarget('8.2')],
];
if (liveConfigured()) TARGETS.push(['live OpenEMR', liveTarget]);
else it.skip('live OpenEMR: set CDSS_TEST_OPENEMR_URL and its credentials to run this suite against one', () => {});

describe.each(TARGETS)('OpenEMR contract: %s', (_name, start) => {
  let target: ContractTarget;
  let emr: OpenEmrClient;
  let profile: OpenEmrProfile;
  let lname: string;
  /** The main synthetic patient, and two more with the same last name (paging). */
  let patient: Patient;
  const patients: Patient[] = [];
  /** What the suite made and can delete, undone in `afterAll`. */
  const cleanup: (() => Promise<unknown>)[] = [];

  /** Runs `fn` and proves it sent nothing. */
  async function refusedBeforeSending(fn: () => Promise<unknown>): Promise<unknown> {
    const before = target.sent();
    const error = await failure(fn());
    expect(target.sent(), 'requests sent').toBe(before);
    return error;
  }

  beforeAll(async () => {
    target = await start();
    emr = target.client;
    profile = await emr.profile();
    lname = `Contract${suffix()}`;
    for (const [fname, dob] of [
      ['Ada', '1971-03-14'],
      ['Bea', '1980-07-01'],
      ['Cyd', '1992-11-30'],
    ] as const) {
      const created = await emr.patients.create({
        fname,
        lname,
        DOB: dob,
        sex: 'Female',
        email: `${fname}@example.org`,
      });
      const read = await emr.patients.get(created.uuid);
      patients.push(read as Patient);
    }
    patient = patients[0] as Patient;
  }, 60_000);

  afterAll(async () => {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
    await target?.close();
  });

  it('uses the profile of the server’s release', async () => {
    expect(emr.version).toBe(profile.version);
    if (target.harness) expect(target.name).toBe(`emulator ${profile.version}`);
  });

  it('discovers the OAuth2 server, SMART configuration and capabilities', async () => {
    const d = await emr.oauth.discover();
    expect(d.token_endpoint).toMatch(/\/oauth2\/[^/]+\/token$/);
    expect(d.grant_types_supported).toContain('authorization_code');
    const smart = await emr.fhir.smartConfiguration();
    expect(smart.grant_types_supported).toContain('authorization_code');
    expect(smart.code_challenge_methods_supported).toContain('S256');
    const caps = await emr.fhir.capabilities();
    expect(caps.fhirVersion).toBe('4.0.1');
  });

  it('patients: create, get, list, page, search, update with the optimistic check', async () => {
    expect(patient).toMatchObject({ fname: 'Ada', lname, DOB: '1971-03-14' });
    expect(typeof patient.pid).toBe('number');
    expect((await emr.patients.list({ lname })).map((p) => p.fname).sort()).toEqual(['Ada', 'Bea', 'Cyd']);
    const page = await emr.patients.page({ lname }, { limit: 2 });
    expect(page.patients).toHaveLength(2);
    expect(page.hasMore).toBe(true);
    const rest = await emr.patients.page({ lname }, { limit: 2, offset: 2 });
    expect(rest.patients).toHaveLength(1);
    expect(rest.hasMore).toBe(false);
    const all: Patient[] = [];
    for await (const p of emr.patients.search({ lname }, { pageSize: 2 })) all.push(p);
    expect(new Set(all.map((p) => p.uuid))).toEqual(new Set(patients.map((p) => p.uuid)));
    expect(await emr.patients.get(UNKNOWN)).toBeUndefined();

    const second = patients[1] as Patient;
    const version1 = recordVersion(second);
    const updated = await emr.patients.update(second.uuid, { city: 'Lakeside' }, { expectedVersion: version1 });
    expect(updated.city).toBe('Lakeside');
    // The version read earlier is stale now: the opt-in check refuses the write, and nothing changes.
    await expect(
      emr.patients.update(second.uuid, { city: 'Springfield' }, { expectedVersion: version1 }),
    ).rejects.toBeInstanceOf(OpenEmrConflictError);
    expect((await emr.patients.get(second.uuid))?.city).toBe('Lakeside');
    await expect(emr.patients.update(UNKNOWN, { city: 'X' })).rejects.toBeInstanceOf(OpenEmrNotFoundError);
  });

  it('encounters: create, list, get; update as the release allows', async () => {
    const lonely = patients[2] as Patient;
    expect(await emr.encounters.list(lonely.uuid)).toEqual([]);
    const created = await emr.encounters.create(patient.uuid, {
      pc_catid: 5,
      class_code: 'AMB',
      reason: 'MRI review',
      date: '2025-11-20',
    });
    expect(created).toMatchObject({ pid: patient.pid, reason: 'MRI review' });
    const second = await emr.encounters.create(patient.uuid, { pc_catid: '5', class_code: 'AMB', date: '2025-12-01' });
    const list = await emr.encounters.list(patient.uuid);
    expect(list.map((e) => e.euuid).sort()).toEqual([created.euuid, second.euuid].sort());
    expect(await emr.encounters.get(patient.uuid, created.euuid)).toMatchObject({ eid: created.eid });
    expect(await emr.encounters.get(patient.uuid, UNKNOWN)).toBeUndefined();
    if (profile.encounterUpdate === 'unsupported') {
      const error = await refusedBeforeSending(() =>
        emr.encounters.update(patient.uuid, created.euuid, { reason: 'MRI review: stable disease' }),
      );
      expect(error).toBeInstanceOf(OpenEmrUnsupportedError);
    } else {
      const updated = await emr.encounters.update(patient.uuid, created.euuid, {
        reason: 'MRI review: stable disease',
      });
      expect(updated.reason).toBe('MRI review: stable disease');
      expect((await emr.encounters.get(patient.uuid, created.euuid))?.reason).toBe('MRI review: stable disease');
    }
  });

  it('vitals: create, get, update, list; stored writes are reported stored whatever the status', async () => {
    const enc = await emr.encounters.create(patient.uuid, { pc_catid: 5, class_code: 'AMB' });
    const key = { pid: patient.pid, eid: enc.eid };
    expect(await emr.vitals.list(key)).toEqual([]);
    const { vid } = await emr.vitals.create(key, {
      bps: 128,
      bpd: 82,
      weight: 150.5,
      pulse: '72',
      note: 'after chemo',
    });
    const stored = await emr.vitals.get(key, vid);
    expect(stored).toMatchObject({ bps: '128', bpd: '82', eid: enc.eid });
    expect(Number(stored?.weight)).toBe(150.5);
    const updated = await emr.vitals.update(
      key,
      vid,
      { pulse: 70 },
      { expectedVersion: recordVersion(stored as object) },
    );
    expect(Number(updated.pulse)).toBe(70);
    const list = await emr.vitals.list(key);
    expect(list).toHaveLength(1);
    expect(Number(list[0]?.pulse)).toBe(70);
    expect(await emr.vitals.get(key, 999_999_999)).toBeUndefined();
  });

  it('SOAP notes: create, list, get; an update keeps the parts it does not name', async () => {
    const enc = await emr.encounters.create(patient.uuid, { pc_catid: 5, class_code: 'AMB' });
    const key = { pid: patient.pid, eid: enc.eid };
    const { sid } = await emr.soapNotes.create(key, {
      subjective: 'Headache improving',
      plan: 'Repeat MRI in 8 weeks',
    });
    expect(await emr.soapNotes.list(key)).toHaveLength(1);
    const updated = await emr.soapNotes.update(key, sid, { assessment: 'Stable' });
    expect(updated).toMatchObject({
      subjective: 'Headache improving',
      assessment: 'Stable',
      plan: 'Repeat MRI in 8 weeks',
    });
    expect(await emr.soapNotes.get(key, sid)).toMatchObject({ id: sid, assessment: 'Stable' });
  });

  it('medical problems: create, list, get, update, delete', async () => {
    const { uuid } = await emr.medicalProblems.create(patient.uuid, {
      title: 'Glioblastoma',
      begdate: '2025-09-01',
      diagnosis: 'ICD10:C71.2',
    });
    const list = await emr.medicalProblems.list(patient.uuid);
    expect(list.map((p) => p.uuid)).toEqual([uuid]);
    expect(list[0]?.diagnosis).toBe('ICD10:C71.2');
    expect(await emr.medicalProblems.get(patient.uuid, uuid)).toMatchObject({ title: 'Glioblastoma' });
    const updated = await emr.medicalProblems.update(patient.uuid, uuid, { enddate: '2025-10-15' });
    expect(updated.enddate).toMatch(/^2025-10-15/);
    const conditions = await emr.fhir.search('Condition', { patient: patient.uuid });
    // 8.0.0 shows the problem's title only (recorded file 100); 7.0 adds the ICD-10 coding.
    const condition = conditions.entry?.find((e) => e.resource?.id === uuid)?.resource;
    expect(condition?.code?.text ?? condition?.code?.coding?.[0]?.code).toMatch(/^(Glioblastoma|C71\.2)$/);
    await emr.medicalProblems.delete(patient.uuid, uuid);
    expect(await emr.medicalProblems.get(patient.uuid, uuid)).toBeUndefined();
    await expect(emr.medicalProblems.delete(patient.uuid, uuid)).rejects.toBeInstanceOf(OpenEmrNotFoundError);
  });

  it('allergies: create, list, get, update, delete; details only where the release stores them', async () => {
    const { uuid } = await emr.allergies.create(patient.uuid, { title: 'Gadolinium contrast', begdate: '2024-02-02' });
    cleanup.push(() => emr.allergies.delete(patient.uuid, uuid));
    expect((await emr.allergies.list(patient.uuid)).map((a) => a.uuid)).toEqual([uuid]);
    expect(await emr.allergies.get(patient.uuid, uuid)).toMatchObject({ title: 'Gadolinium contrast' });
    if (profile.allergyDetails) {
      expect((await emr.allergies.update(patient.uuid, uuid, { severity_al: 'mild' })).title).toBe(
        'Gadolinium contrast',
      );
    } else {
      const error = await refusedBeforeSending(() => emr.allergies.update(patient.uuid, uuid, { severity_al: 'mild' }));
      expect(ValidationError.isInstance(error) && error.fields).toEqual(['severity_al']);
    }
    expect((await emr.allergies.update(patient.uuid, uuid, { enddate: '2025-01-01' })).enddate).toMatch(/^2025-01-01/);
    await emr.allergies.delete(patient.uuid, uuid);
    expect(await emr.allergies.get(patient.uuid, uuid)).toBeUndefined();
  });

  it('medications: create, get, update, delete (dates as the release wants them)', async () => {
    const lonely = patients[2] as Patient;
    expect(await emr.medications.list(lonely.pid)).toEqual([]);
    const { id } = await emr.medications.create(patient.pid, {
      title: 'Ondansetron',
      begdate: '2025-03-01',
      diagnosis: 'RXCUI:26225',
    });
    cleanup.push(() => emr.medications.delete(patient.pid, id));
    expect(await emr.medications.get(patient.pid, id)).toMatchObject({ title: 'Ondansetron' });
    expect((await emr.medications.get(patient.pid, id))?.begdate).toMatch(/^2025-03-01/);
    const updated = await emr.medications.update(patient.pid, id, { enddate: '2025-04-01' });
    expect(updated.enddate).toMatch(/^2025-04-01/);
    if (profile.notes['medications.list']?.kind === 'defect') {
      // 8.0.0 answers 500 for a list holding a row added through the API (recorded file 41): no workaround.
      const error = await failure(emr.medications.list(patient.pid));
      expect(HttpError.isInstance(error) && error.status).toBe(500);
    } else {
      expect((await emr.medications.list(patient.pid)).map((m) => m.id)).toEqual([id]);
    }
    await emr.medications.delete(patient.pid, id);
    expect(await emr.medications.get(patient.pid, id)).toBeUndefined();
  });

  it('prescriptions: list, get; create and delete only where the release has them', async () => {
    expect(await emr.prescriptions.list(patient.uuid)).toEqual([]);
    expect(await emr.prescriptions.get(UNKNOWN)).toBeUndefined();
    if (profile.prescriptionWrites) {
      const { uuid } = await emr.prescriptions.create({
        patient_id: patient.pid,
        drug: 'Dexamethasone 4 MG Oral Tablet',
        dosage: '4',
        quantity: '30',
      });
      expect(await emr.prescriptions.get(uuid)).toMatchObject({ drug: 'Dexamethasone 4 MG Oral Tablet' });
      expect((await emr.prescriptions.list(patient.uuid)).map((r) => r.uuid)).toEqual([uuid]);
      await emr.prescriptions.delete(uuid);
      expect(await emr.prescriptions.get(uuid)).toBeUndefined();
    } else {
      const error = await refusedBeforeSending(() => emr.prescriptions.create({ patient_id: patient.pid, drug: 'X' }));
      expect(error).toBeInstanceOf(OpenEmrUnsupportedError);
    }
  });

  it('procedures: list where the release can, get', async () => {
    if (profile.procedureList) expect(await emr.procedures.list(patient.uuid)).toEqual([]);
    else
      expect(await refusedBeforeSending(() => emr.procedures.list(patient.uuid))).toBeInstanceOf(
        OpenEmrUnsupportedError,
      );
    expect(await emr.procedures.get(UNKNOWN)).toBeUndefined();
  });

  it('appointments: create, get, list, listAll, delete', async () => {
    const input = {
      pc_catid: 9,
      pc_title: 'Follow-up MRI',
      pc_duration: 1800,
      pc_apptstatus: '-',
      pc_eventDate: '2026-02-02',
      pc_startTime: '14:30:00',
      pc_facility: target.facilityId,
      pc_billing_location: target.facilityId,
      pc_hometext: 'Bring the previous scans',
    };
    if (profile.appointmentCommentRequired) {
      const error = await refusedBeforeSending(() =>
        emr.appointments.create(patient.pid, { ...input, pc_hometext: '' }),
      );
      expect(ValidationError.isInstance(error) && error.fields).toEqual(['pc_hometext']);
    }
    const { id } = await emr.appointments.create(patient.pid, input);
    cleanup.push(() => emr.appointments.delete(patient.pid, id));
    expect(await emr.appointments.get(patient.pid, id)).toMatchObject({
      pc_title: 'Follow-up MRI',
      pc_startTime: '14:30:00',
    });
    expect((await emr.appointments.list(patient.pid)).map((a) => Number(a.pc_eid))).toEqual([id]);
    expect((await emr.appointments.listAll()).some((a) => Number(a.pc_eid) === id)).toBe(true);
    await emr.appointments.delete(patient.pid, id);
    expect(await emr.appointments.get(patient.pid, id)).toBeUndefined();
  });

  it('practitioners: create, list, get, update (read back where the answer is empty)', async () => {
    const plname = `Holm${suffix()}`;
    const npi = `9${String(Date.now()).slice(-9)}`;
    const { uuid } = await emr.practitioners.create({ fname: 'Ingrid', lname: plname, npi, specialty: 'Neurosurgery' });
    const [listed] = await emr.practitioners.list({ lname: plname });
    expect(listed).toMatchObject({ uuid, npi });
    const got = await emr.practitioners.get(uuid);
    // 8.0.0 answers 404 for a practitioner created without a username (recorded file 52).
    if (profile.notes['practitioners.get'] === undefined) expect(got).toMatchObject({ lname: plname });
    const updated = await emr.practitioners.update(uuid, { email: 'i.holm@example.org' });
    if (profile.practitionerUpdateAnswer) expect(updated?.email).toBe('i.holm@example.org');
    expect((await emr.practitioners.list({ lname: plname }))[0]?.email).toBe('i.holm@example.org');
  });

  it('documents: upload once (a repeat uploads nothing), list, find as DocumentReference, read through Binary', async () => {
    const content = pdf(`cdss contract ${lname}`);
    const filename = `mri-report-${lname}.pdf`;
    const first = await emr.documents.upload({ pid: patient.pid, content, filename, contentType: 'application/pdf' });
    expect(first).toMatchObject({ created: true, filename, hash: documentHash(content) });
    const sent = target.sent();
    const again = await emr.documents.upload({ pid: patient.pid, content, filename, contentType: 'application/pdf' });
    expect(again).toMatchObject({ created: false, id: first.id });
    expect(target.sent() - sent).toBe(1); // the listing only
    expect((await emr.documents.list(patient.pid)).map((d) => d.id)).toEqual([first.id]);
    expect(await emr.documents.list((patients[2] as Patient).pid)).toEqual([]);
    await expectValidation(
      emr.documents.upload({
        pid: patient.pid,
        content,
        filename,
        contentType: 'application/pdf',
        category: `No_Such_${lname}`,
      }),
      'category',
    );
    const refs = await emr.documents.references(patient.uuid);
    const ref = refs.find((r) => r.content?.some((c) => c.attachment?.url?.includes('Binary/')));
    expect(ref).toBeDefined();
    const read = await emr.documents.read(ref?.id ?? '');
    expect(read?.contentType).toBe('application/pdf');
    expect(Buffer.compare(read?.content ?? Buffer.alloc(0), content)).toBe(0);
    expect(await emr.documents.read(UNKNOWN)).toBeUndefined();
  });

  it('FHIR: read, search, searchAll, create and update', async () => {
    const read = await emr.fhir.read('Patient', patient.uuid);
    expect(read?.name?.[0]?.family).toBe(lname);
    expect(await emr.fhir.read('Patient', UNKNOWN)).toBeUndefined();
    const family: string[] = [];
    for await (const p of emr.fhir.searchAll('Patient', { family: lname }, { pageSize: 2 })) family.push(p.id ?? '');
    expect(new Set(family)).toEqual(new Set(patients.map((p) => p.uuid)));
    const enc = await emr.encounters.create(patient.uuid, { pc_catid: 5, class_code: 'AMB' });
    await emr.vitals.create({ pid: patient.pid, eid: enc.eid }, { bps: 131, bpd: 85 });
    // A vitals form is a panel and one Observation per member; the blood pressure holds both values.
    const vitals = await emr.fhir.search('Observation', { patient: patient.uuid, category: 'vital-signs' });
    const systolic = vitals.entry
      ?.flatMap((e) => e.resource?.component ?? [])
      .find((c) => c.code.coding?.some((x) => x.code === '8480-6') && c.valueQuantity?.value === 131);
    // 8.0.0 stores API vitals without a uuid, and FHIR never shows them (recorded files 26, 78).
    if (profile.vitalsInFhir) expect(systolic).toBeDefined();
    else expect(systolic).toBeUndefined();
    expect((await emr.fhir.search('Encounter', { patient: patient.uuid })).entry?.length).toBeGreaterThan(0);

    const flname = `Varga${suffix()}`;
    const created = await emr.fhir.create({
      resourceType: 'Patient',
      name: [{ family: flname, given: ['Eszter'] }],
      gender: 'female',
      birthDate: '1988-08-08',
    });
    const stored = await emr.fhir.read('Patient', created.id);
    expect(stored?.name?.[0]?.family).toBe(flname);
    const updated = await emr.fhir.update({ ...(stored as NonNullable<typeof stored>), birthDate: '1988-08-09' });
    expect(updated.birthDate).toBe('1988-08-09');
    expect((await emr.fhir.read('Patient', created.id))?.birthDate).toBe('1988-08-09');

    const npi = `8${String(Date.now()).slice(-9)}`;
    const practitioner = {
      resourceType: 'Practitioner' as const,
      name: [{ family: `Nagy${suffix()}`, given: ['Bela'] }],
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: npi }],
    };
    const pr = await emr.fhir.create(practitioner);
    expect((await emr.fhir.update({ ...practitioner, id: pr.id })).id).toBe(pr.id);
    const orgName = `Lakeside Imaging ${suffix()}`;
    const identifier = [{ system: 'http://hl7.org/fhir/sid/us-npi', value: `7${String(Date.now()).slice(-9)}` }];
    const org = await emr.fhir.create({ resourceType: 'Organization', name: orgName, identifier });
    await emr.fhir.update({ resourceType: 'Organization', id: org.id, name: `${orgName} Centre`, identifier });
    expect(await emr.fhir.read('Organization', org.id)).toMatchObject({ name: `${orgName} Centre` });
  });

  it('a session that ends (logout) is taken up again: one new login, one retry', async () => {
    const idToken = target.idToken();
    if (idToken === undefined) return;
    await axios.get(`${target.baseUrl}/oauth2/${target.site}/logout`, {
      params: { id_token_hint: idToken },
      maxRedirects: 0,
      validateStatus: () => true,
    });
    const before = target.sent();
    expect((await emr.patients.get(patient.uuid))?.lname).toBe(lname);
    // The refused request, a new login, the retry (a refresh first where the transport tries one).
    expect(target.sent() - before).toBeLessThanOrEqual(5);
  });

  describe('bad input for every write is refused before sending', () => {
    const cases: [string, string, (c: OpenEmrClient, p: Patient) => Promise<unknown>][] = [
      [
        'patients.create',
        'lname',
        (c) => c.patients.create({ fname: 'A', lname: 'B', DOB: '1990-01-01', sex: 'Male' }),
      ],
      ['patients.create', 'sex', (c) => c.patients.create({ fname: 'Al', lname: 'Bo', DOB: '1990-01-01', sex: 'UNK' })],
      [
        'patients.create',
        'DOB',
        (c) => c.patients.create({ fname: 'Al', lname: 'Bo', DOB: '1990-02-30', sex: 'Male' }),
      ],
      ['patients.update', 'email', (c, p) => c.patients.update(p.uuid, { email: 'not-an-email' })],
      [
        'encounters.create',
        'class_code',
        (c, p) => c.encounters.create(p.uuid, { pc_catid: 5, class_code: 'ambulatory' }),
      ],
      ['encounters.update', 'date', (c, p) => c.encounters.update(p.uuid, UNKNOWN, { date: '2025-13-01' })],
      ['vitals.create', 'bps', (c, p) => c.vitals.create({ pid: p.pid, eid: 1 }, { bps: 'high' })],
      ['vitals.update', 'pulse', (c, p) => c.vitals.update({ pid: p.pid, eid: 1 }, 1, { pulse: 'fast' })],
      ['soapNotes.create', 'plan', (c, p) => c.soapNotes.create({ pid: p.pid, eid: 1 }, { plan: 'x' })],
      ['soapNotes.update', 'subjective', (c, p) => c.soapNotes.update({ pid: p.pid, eid: 1 }, 1, { subjective: '' })],
      [
        'medicalProblems.create',
        'begdate',
        (c, p) => c.medicalProblems.create(p.uuid, { title: 'Glioma', begdate: '01/02/2024' }),
      ],
      ['medicalProblems.update', 'title', (c, p) => c.medicalProblems.update(p.uuid, UNKNOWN, { title: 'X' })],
      ['allergies.create', 'title', (c, p) => c.allergies.create(p.uuid, { title: 'X' })],
      ['allergies.update', 'enddate', (c, p) => c.allergies.update(p.uuid, UNKNOWN, { enddate: 'tomorrow' })],
      ['medications.create', 'title', (c, p) => c.medications.create(p.pid, { title: '', begdate: '2024-01-01' })],
      ['medications.update', 'begdate', (c, p) => c.medications.update(p.pid, 1, { begdate: '2024-01-01 25:00:00' })],
      [
        'appointments.create',
        'pc_startTime',
        (c, p) =>
          c.appointments.create(p.pid, {
            pc_catid: 5,
            pc_title: 'Visit',
            pc_duration: 900,
            pc_apptstatus: '-',
            pc_eventDate: '2026-01-01',
            pc_startTime: '9am',
            pc_facility: 3,
            pc_billing_location: 3,
            pc_hometext: 'x',
          }),
      ],
      ['vitals.list', 'pid', (c) => c.vitals.list({ pid: 'abc', eid: 1 })],
      ['medications.create', 'pid', (c) => c.medications.create(-1, { title: 'Temozolomide', begdate: '2024-01-01' })],
      ['encounters.create', 'puuid', (c) => c.encounters.create('1', { pc_catid: 5, class_code: 'AMB' })],
      ['practitioners.create', 'npi', (c) => c.practitioners.create({ fname: 'Jo', lname: 'Doe', npi: '123' })],
      ['practitioners.update', 'fname', (c) => c.practitioners.update(UNKNOWN, { fname: 'J' })],
      [
        'documents.upload',
        'contentType',
        (c, p) =>
          c.documents.upload({
            pid: p.pid,
            content: Buffer.from('x'),
            filename: 'a.exe',
            contentType: 'application/x-msdownload' as 'application/pdf',
          }),
      ],
      [
        'documents.upload',
        'content',
        (c, p) =>
          c.documents.upload({
            pid: p.pid,
            content: Buffer.alloc(0),
            filename: 'a.pdf',
            contentType: 'application/pdf',
          }),
      ],
      [
        'fhir.create Patient',
        'name',
        (c) =>
          c.fhir.create({
            resourceType: 'Patient',
            name: [{ family: 'X', given: ['Y'] }],
            gender: 'male',
            birthDate: '2000-01-01',
          }),
      ],
      [
        'fhir.update Patient',
        'birthDate',
        (c, p) =>
          c.fhir.update({
            resourceType: 'Patient',
            id: p.uuid,
            name: [{ family: 'Rossi', given: ['Maria'] }],
            gender: 'female',
            birthDate: '14.03.1968',
          }),
      ],
      [
        'fhir.create Practitioner',
        'identifier',
        (c) => c.fhir.create({ resourceType: 'Practitioner', name: [{ family: 'Nagy', given: ['Bela'] }] }),
      ],
      [
        'fhir.create Organization',
        'identifier',
        (c) => c.fhir.create({ resourceType: 'Organization', name: 'Xavier Imaging' }),
      ],
      [
        'oauth.registerClient',
        'redirect_uris',
        (c) => c.oauth.registerClient({ client_name: 'x', redirect_uris: [], scope: 'openid' }),
      ],
    ];
    it.each(cases)('%s: bad %s', async (_op, field, call) => {
      const before = target.sent();
      await expectValidation(call(emr, patient), field);
      expect(target.sent()).toBe(before);
    });

    it('rules only the server can check come back as a ValidationError naming the field', async () => {
      const encounter = (await emr.encounters.list(patient.uuid))[0];
      await expectValidation(emr.encounters.create(patient.uuid, { pc_catid: 5, class_code: 'XYZ' }), 'class_code');
      if (profile.encounterUpdate !== 'unsupported')
        await expectValidation(
          emr.encounters.update(patient.uuid, encounter?.euuid ?? '', { facility_id: 424_242 }),
          'facility_id',
        );
      if (profile.prescriptionWrites)
        await expectValidation(
          emr.prescriptions.create({ patient_id: 999_999_999, drug: 'Temozolomide' }),
          'patient_id',
        );
    });
  });

  it('8.2: every request and response conforms to the OpenAPI document, apart from the documented exceptions', () => {
    const h = target.harness;
    if (h === undefined || profile.version !== '8.2') return;
    const unexplained = h.unexplained().map(({ exchange, violation }) => ({
      request: `${exchange.method} ${exchange.url.split('?')[0] ?? ''}`,
      status: exchange.status,
      violation: `${violation.side} ${violation.kind}: ${violation.detail}`,
      errors: violation.errors?.map((e) => `${e.instancePath} ${e.message ?? ''}`),
    }));
    expect(unexplained).toEqual([]);
    for (const e of h.exceptionsUsed().keys()) expect(SPEC_EXCEPTIONS).toContain(e);
    expect(h.exchanges.filter((x) => x.url.startsWith('/apis/')).length).toBeGreaterThan(80);
  });
});
