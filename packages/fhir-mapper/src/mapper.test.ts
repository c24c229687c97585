import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import type { Bundle, DiagnosticReport, Observation, Resource } from 'fhir/r4.js';
import {
  allergyToFhir,
  analysisIdentifiers,
  analysisToTransaction,
  assessRano,
  classifyBrainTumor,
  encounterToFhir,
  medicationToFhir,
  observationsToVitals,
  parseOpenEmrCodes,
  patientFromFhir,
  patientToFhir,
  prescriptionToFhir,
  problemToCondition,
  ranoToCancerDiseaseStatus,
  studyFromOrthanc,
  vitalsToObservations,
} from './index.js';
import { fhirIssues } from './validate.js';
import * as s from './__fixtures__/samples.js';

function expectValid(r: Resource): void {
  expect({ type: r.resourceType, issues: fhirIssues(r) }).toEqual({ type: r.resourceType, issues: [] });
}

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  throw new Error('expected a ValidationError');
}

describe('patient', () => {
  it('maps identifiers, name, gender, birth sex, telecom and address, and validates', () => {
    const p = patientToFhir(s.openEmrPatient);
    expectValid(p);
    expect(p.identifier?.map((i) => [i.system, i.value])).toEqual([
      ['urn:cdss:openemr:default:patient-uuid', s.PATIENT_UUID],
      ['urn:cdss:openemr:default:patient-pid', '7'],
      ['urn:cdss:openemr:default:patient-mrn', 'MRN-0007'],
    ]);
    expect(p.name?.[0]).toEqual({ use: 'official', family: 'Testperson', given: ['Ada', 'B'], prefix: ['Ms.'] });
    expect(p.gender).toBe('female');
    expect(p.birthDate).toBe('1961-04-12');
    expect(p.extension?.[0]).toEqual({
      url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex',
      valueCode: 'F',
    });
    expect(p.telecom?.map((t) => t.use)).toEqual(['home', 'mobile', undefined]);
    expect(p.address?.[0]?.city).toBe('Springfield');
  });

  it.each([
    ['Male', 'male', 'M'],
    ['Female', 'female', 'F'],
    ['UNK', 'unknown', 'UNK'],
    ['Unknown', 'unknown', 'UNK'],
    ['Nonbinary', 'other', 'UNK'],
  ])('maps sex %s to gender %s and birth sex %s', (sex, gender, birthSex) => {
    const p = patientToFhir({ ...s.openEmrPatient, sex });
    expect(p.gender).toBe(gender);
    expect(p.extension?.[0]?.valueCode).toBe(birthSex);
  });

  it('round-trips through patientFromFhir', () => {
    const back = patientFromFhir(patientToFhir(s.openEmrPatient));
    expect(back).toEqual({
      fname: 'Ada',
      mname: 'B',
      lname: 'Testperson',
      title: 'Ms.',
      DOB: '1961-04-12',
      sex: 'Female',
      street: '1 Test Street',
      city: 'Springfield',
      state: 'IL',
      postal_code: '62701',
      country_code: 'US',
      phone_home: '555-0100',
      phone_cell: '555-0101',
      email: 'ada@example.org',
      uuid: s.PATIENT_UUID,
      pid: '7',
      pubpid: 'MRN-0007',
    });
  });

  it('rejects invalid input with a ValidationError naming the fields and not their values', () => {
    const e = validationError(() => patientToFhir({ ...s.openEmrPatient, fname: '', DOB: '12/04/1961', uuid: 'nope' }));
    expect(e.fields.sort()).toEqual(['DOB', 'fname', 'uuid']);
    expect(e.message).not.toContain('12/04/1961');
    expect(
      validationError(() => patientFromFhir({ resourceType: 'Patient', name: [{ given: ['A'] }] })).fields,
    ).toEqual(['name.0.family']);
  });

  it('puts the site in the identifier systems and rejects a bad site', () => {
    expect(patientToFhir(s.openEmrPatient, { site: 'north' }).identifier?.[0]?.system).toBe(
      'urn:cdss:openemr:north:patient-uuid',
    );
    expect(() => patientToFhir(s.openEmrPatient, { site: 'a b' })).toThrow(ValidationError);
  });
});

describe('encounter, problems, allergies, medications', () => {
  it('maps an encounter with class, period (with the zone offset) and reason', () => {
    const e = encounterToFhir(s.openEmrEncounter, { utcOffset: '+01:00' });
    expectValid(e);
    expect(e.class).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
      code: 'AMB',
      display: 'ambulatory',
    });
    expect(e.period?.start).toBe('2026-01-05T09:30:00+01:00');
    expect(e.subject).toEqual({
      type: 'Patient',
      identifier: { system: 'urn:cdss:openemr:default:patient-uuid', value: s.PATIENT_UUID },
    });
    expect(validationError(() => encounterToFhir({ ...s.openEmrEncounter, class_code: 'XYZ' })).fields).toEqual([
      'class_code',
    ]);
    expect(encounterToFhir(s.openEmrEncounter, { subject: { reference: 'Patient/42' } }).subject).toEqual({
      reference: 'Patient/42',
    });
  });

  it('maps a glioblastoma to an mCODE PrimaryCancerCondition with SNOMED codes and brain body site', () => {
    const c = problemToCondition(s.openEmrProblemGbm);
    expectValid(c);
    expect(c.meta?.profile).toEqual([
      'http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition',
    ]);
    expect(c.code?.coding?.map((x) => x.code)).toEqual(['C71.2', '393563007', '428061005']);
    expect(c.code?.coding?.[0]?.display).toBe('Malignant neoplasm of temporal lobe');
    expect(c.bodySite?.[0]?.coding?.[0]?.code).toBe('12738006');
    expect(c.clinicalStatus?.coding?.[0]?.code).toBe('active');
    expect(c.verificationStatus?.coding?.[0]?.code).toBe('confirmed');
    expect(c.onsetDateTime).toBe('2025-11-20');
  });

  it('maps other problems without the cancer profile; resolved and entered-in-error statuses', () => {
    const c = problemToCondition(s.openEmrProblemOther);
    expectValid(c);
    expect(c.meta).toBeUndefined();
    expect(c.bodySite).toBeUndefined();
    expect(c.onsetDateTime).toBe('2019-03-01T00:00:00+00:00');
    const resolved = problemToCondition({ ...s.openEmrProblemOther, enddate: '2020-01-01' });
    expect(resolved.clinicalStatus?.coding?.[0]?.code).toBe('resolved');
    const eie = problemToCondition({ ...s.openEmrProblemOther, verification: 'entered-in-error' });
    expect(eie.clinicalStatus).toBeUndefined();
    expectValid(eie);
  });

  it('classifies brain tumours by code and by title', () => {
    expect(classifyBrainTumor(parseOpenEmrCodes('ICD10:C71.9'), 'x')).toBe('primary-malignant');
    expect(classifyBrainTumor(parseOpenEmrCodes('ICD10:C79.31'), 'x')).toBe('secondary-malignant');
    expect(classifyBrainTumor(parseOpenEmrCodes('ICD10:D33.2'), 'x')).toBe('other-neoplasm');
    expect(classifyBrainTumor(parseOpenEmrCodes('ICD10:I10'), 'glioblastoma')).toBe('none');
    expect(classifyBrainTumor([], 'Anaplastic astrocytoma')).toBe('primary-malignant');
    expect(classifyBrainTumor([], 'Brain metastases from lung')).toBe('secondary-malignant');
    expect(classifyBrainTumor([], 'Brain tumour, unspecified')).toBe('other-neoplasm');
    expect(classifyBrainTumor([], 'Migraine')).toBe('none');
    expect(parseOpenEmrCodes('ICD10:C71.2;SNOMED-CT:393563007;CPT4:99213')).toEqual([
      { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C71.2', display: 'Malignant neoplasm of temporal lobe' },
      { system: 'http://snomed.info/sct', code: '393563007', display: 'Glioblastoma multiforme' },
    ]);
  });

  it('maps an allergy with reaction severity and criticality', () => {
    const a = allergyToFhir(s.openEmrAllergy);
    expectValid(a);
    expect(a.reaction?.[0]).toEqual({ manifestation: [{ text: 'hives' }], severity: 'moderate' });
    expect(a.criticality).toBe('low');
    expect(allergyToFhir({ ...s.openEmrAllergy, severity_al: 'life_threatening_severity' }).criticality).toBe('high');
    expect(validationError(() => allergyToFhir({ ...s.openEmrAllergy, title: '' })).fields).toEqual(['title']);
  });

  it('maps medication-list entries (plan) and prescriptions (order)', () => {
    const m = medicationToFhir(s.openEmrMedication);
    expectValid(m);
    expect([m.intent, m.status, m.medicationCodeableConcept?.text]).toEqual(['plan', 'active', 'Levetiracetam 500 mg']);
    const r = prescriptionToFhir(s.openEmrPrescription);
    expectValid(r);
    expect(r.intent).toBe('order');
    expect(r.medicationCodeableConcept?.coding).toEqual([
      { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1114523' },
    ]);
    expect(r.dosageInstruction?.[0]?.text).toBe('1 capsule oral daily');
    expect(r.dispenseRequest?.quantity).toEqual({ value: 42 });
    expect(prescriptionToFhir({ ...s.openEmrPrescription, active: '0' }).status).toBe('stopped');
    expect(() => prescriptionToFhir({ ...s.openEmrPrescription, puuid: undefined, pid: undefined })).toThrow(
      ValidationError,
    );
  });
});

describe('vitals', () => {
  it('maps each measured vital to a LOINC/UCUM Observation, converting US units', () => {
    const obs = vitalsToObservations(s.openEmrVitals);
    obs.forEach(expectValid);
    const by = (loinc: string): Observation | undefined => obs.find((o) => o.code.coding?.[0]?.code === loinc);
    expect(
      by('85354-9')?.component?.map((c) => [c.code.coding?.[0]?.code, c.valueQuantity?.value, c.valueQuantity?.code]),
    ).toEqual([
      ['8480-6', 128, 'mm[Hg]'],
      ['8462-4', 82, 'mm[Hg]'],
    ]);
    expect(by('29463-7')?.valueQuantity).toEqual({
      value: 68.04,
      unit: 'kg',
      system: 'http://unitsofmeasure.org',
      code: 'kg',
    });
    expect(by('8302-2')?.valueQuantity?.value).toBe(165.1);
    expect(by('8310-5')?.valueQuantity).toMatchObject({ value: 37, code: 'Cel' });
    expect(by('8310-5')?.method?.text).toBe('Oral');
    expect(by('2708-6')?.code.coding?.map((c) => c.code)).toEqual(['2708-6', '59408-5']);
    // head_circ and waist_circ were 0 (not measured): no Observation
    expect(by('9843-4')).toBeUndefined();
    expect(obs).toHaveLength(8);
    expect(new Set(obs.map((o) => o.identifier?.[0]?.value)).size).toBe(8);
  });

  it('keeps metric values as they are', () => {
    const obs = vitalsToObservations({
      ...s.openEmrVitals,
      weight: '70',
      weight_unit: 'kg',
      temperature: '37.2',
      temperature_unit: 'Cel',
    });
    expect(obs.find((o) => o.code.coding?.[0]?.code === '29463-7')?.valueQuantity?.value).toBe(70);
    expect(obs.find((o) => o.code.coding?.[0]?.code === '8310-5')?.valueQuantity?.value).toBe(37.2);
  });

  it('maps Observations back to OpenEMR US units', () => {
    const back = observationsToVitals(vitalsToObservations(s.openEmrVitals));
    expect(back).toMatchObject({
      bps: 128,
      bpd: 82,
      pulse: 72,
      respiration: 16,
      BMI: 24.96,
      oxygen_saturation: 98,
      date: '2026-01-05 09:35:00',
    });
    expect(back.weight).toBeCloseTo(150, 1);
    expect(back.height).toBeCloseTo(65, 1);
    expect(back.temperature).toBeCloseTo(98.6, 1);
    const bad = vitalsToObservations(s.openEmrVitals).find(
      (o) => o.code.coding?.[0]?.code === '29463-7',
    ) as Observation;
    expect(() => observationsToVitals([{ ...bad, valueQuantity: { value: 1, code: 'g' } }])).toThrow(ValidationError);
  });

  it('rejects a row with no id and a bad value', () => {
    expect(validationError(() => vitalsToObservations({ ...s.openEmrVitals, bps: 'high' })).fields).toEqual(['bps']);
    expect(
      validationError(() => vitalsToObservations({ ...s.openEmrVitals, id: undefined, uuid: undefined })).fields,
    ).toEqual(['uuid']);
  });
});

describe('AI analysis result -> transaction', () => {
  const bundle = analysisToTransaction(s.analysisResult(), {
    newUuid: (() => {
      let n = 0;
      return () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
    })(),
  });
  const resources = (bundle.entry ?? []).map((e) => e.resource as Resource);
  const find = <T extends Resource>(type: string): T[] => resources.filter((r) => r.resourceType === type) as T[];

  it('builds a transaction of conditional updates with urn:uuid references that all resolve inside it', () => {
    expect(bundle.type).toBe('transaction');
    expect(resources.map((r) => r.resourceType)).toEqual([
      'Patient',
      'Device',
      'Endpoint',
      'ImagingStudy',
      'BodyStructure',
      'Observation',
      'Observation',
      'Observation',
      'Observation',
      'DiagnosticReport',
    ]);
    resources.forEach(expectValid);
    const fullUrls = new Set(bundle.entry?.map((e) => e.fullUrl));
    for (const e of bundle.entry ?? []) {
      expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
      const shared = ['Patient', 'Device', 'Endpoint', 'BodyStructure'].includes(e.resource?.resourceType as string);
      if (shared) {
        expect(e.request).toMatchObject({ method: 'POST', url: e.resource?.resourceType });
        expect(e.request?.ifNoneExist).toMatch(/^identifier=[^|]+\|.+$/);
      } else {
        expect(e.request?.method).toBe('PUT');
        expect(e.request?.url).toMatch(/^[A-Za-z]+\?identifier=[^|]+\|.+$/);
      }
    }
    const refs = JSON.stringify(bundle).match(/"reference":"([^"]+)"/g) ?? [];
    for (const r of refs) expect(fullUrls.has(r.slice(13, -1))).toBe(true);
  });

  it('reports volumes per region in mL (SNOMED 118565006), TumorSize in mm, and a report that ties them together', () => {
    const obs = find<Observation>('Observation');
    const volumes = obs.filter((o) => o.code.coding?.[0]?.code === '118565006');
    expect(volumes.map((o) => [o.bodySite?.coding?.[0]?.code, o.valueQuantity?.value, o.valueQuantity?.code])).toEqual([
      ['ET', 10.3, 'mL'],
      ['TC', 20.1, 'mL'],
      ['WT', 45.2, 'mL'],
    ]);
    expect(volumes.every((o) => o.status === 'preliminary' && o.derivedFrom?.length === 1 && o.device?.reference)).toBe(
      true,
    );
    // derivedFrom is the ImagingStudy itself (whose series include the SEG), never an ImagingStudy typed SOP UID
    const study = bundle.entry?.find((e) => e.resource?.resourceType === 'ImagingStudy');
    expect(volumes[0]?.derivedFrom).toEqual([
      { reference: study?.fullUrl, display: expect.stringContaining(s.SEG_SERIES_UID) },
    ]);
    const patient = bundle.entry?.[0];
    expect(volumes.every((o) => o.subject?.reference === patient?.fullUrl)).toBe(true);
    expect(patient?.request?.ifNoneExist).toBe(
      `identifier=${encodeURIComponent('urn:cdss:openemr:default:patient-uuid')}|${s.PATIENT_UUID}`,
    );
    const size = obs.find((o) => o.code.coding?.[0]?.code === '21889-1');
    expect(
      size?.component?.map((c) => [c.code.coding?.[0]?.code, c.valueQuantity?.value, c.valueQuantity?.code]),
    ).toEqual([
      ['33728-7', 52.4, 'mm'],
      ['33729-5', 38.1, 'mm'],
    ]);
    expect(size?.focus?.[0]?.reference).toBe(bundle.entry?.[4]?.fullUrl);
    const [report] = find<DiagnosticReport>('DiagnosticReport');
    expect(report?.identifier?.[0]).toEqual({ system: 'urn:dicom:uid', value: `urn:oid:${s.SEG_SOP_UID}` });
    expect(report?.code.coding?.[0]?.code).toBe('24590-2');
    expect(report?.category?.[0]?.coding?.[0]?.code).toBe('RAD');
    expect(report?.result).toHaveLength(4);
    expect(report?.issued).toBe('2026-01-05T10:07:30+00:00');
    expect(report?.conclusion).toContain('whole tumor 45.20 mL');
    expect(report?.extension?.[0]?.valueReference?.reference).toBe(bundle.entry?.[1]?.fullUrl);
  });

  it('builds the ImagingStudy from the series metadata and adds the SEG series', () => {
    const [study] = find<
      {
        resourceType: 'ImagingStudy';
        series?: { uid: string; modality: { code?: string } }[];
        numberOfSeries?: number;
        numberOfInstances?: number;
      } & Resource
    >('ImagingStudy');
    expect(study?.series?.map((x) => x.modality.code)).toEqual(['MR', 'MR', 'MR', 'MR', 'SEG']);
    expect(study?.series?.[4]?.uid).toBe(s.SEG_SERIES_UID);
    expect(study?.numberOfSeries).toBe(5);
    expect(study?.numberOfInstances).toBe(641);
  });

  it('omits TumorSize when nothing was segmented', () => {
    const b: Bundle = analysisToTransaction(
      s.analysisResult({ volumesMl: { ET: 0, TC: 0, WT: 0 }, largestDiameterMm: 0 }),
    );
    expect(
      b.entry?.some(
        (e) =>
          e.resource?.resourceType === 'Observation' &&
          (e.resource as Observation).code.coding?.[0]?.code === '21889-1',
      ),
    ).toBe(false);
    const report = b.entry?.find((e) => e.resource?.resourceType === 'DiagnosticReport')?.resource as DiagnosticReport;
    expect(report.conclusion).toContain('no tumor segmented');
    expect(report.conclusionCode).toBeUndefined();
  });

  it('rejects an invalid result before building anything', () => {
    expect(
      validationError(() => analysisToTransaction(s.analysisResult({ volumesMl: { ET: 30, TC: 20, WT: 45 } }))).fields,
    ).toEqual(['volumesMl.ET']);
    expect(
      validationError(() =>
        analysisToTransaction(s.analysisResult({ segmentation: { seriesInstanceUid: 'abc', sopInstanceUid: '1.2' } })),
      ).fields,
    ).toEqual(['segmentation.seriesInstanceUid']);
    expect(() => analysisIdentifiers({})).toThrow(ValidationError);
  });
});

describe('RANO volumetric assessment', () => {
  const base = { patientUuid: s.PATIENT_UUID, baseline: { analysisId: 'b', date: '2025-06-01', enhancingMl: 10 } };
  const at = (date: string, ml: number, id = date): { analysisId: string; date: string; enhancingMl: number } => ({
    analysisId: id,
    date,
    enhancingMl: ml,
  });

  it.each([
    [13.99, 'SD'],
    [14, 'PD'],
    [3.6, 'SD'],
    [3.5, 'PR'],
    [0, 'CR'],
  ])('ET %f mL against a 10 mL baseline is %s', (ml, category) => {
    expect(assessRano({ ...base, current: at('2025-09-01', ml) }).category).toBe(category);
  });

  it('measures progression from the nadir, not the baseline', () => {
    const r = assessRano({ ...base, previous: [at('2025-07-01', 4)], current: at('2025-09-01', 6) });
    expect(r).toMatchObject({ category: 'PD', nadirMl: 4, changeFromNadirPct: 50, changeFromBaselinePct: -40 });
  });

  it('confirms PR/CR only with an earlier response at least 4 weeks before', () => {
    expect(assessRano({ ...base, previous: [at('2025-08-20', 3)], current: at('2025-09-01', 3) }).confirmed).toBe(
      false,
    );
    expect(assessRano({ ...base, previous: [at('2025-08-01', 3)], current: at('2025-09-01', 3) }).confirmed).toBe(true);
  });

  it('applies the overrides: new lesion or clinical deterioration is PD, a steroid increase alone is not', () => {
    expect(assessRano({ ...base, current: at('2025-09-01', 3), newLesion: true }).category).toBe('PD');
    expect(assessRano({ ...base, current: at('2025-09-01', 9), clinicalDeterioration: true }).category).toBe('PD');
    expect(assessRano({ ...base, current: at('2025-09-01', 9), steroidIncrease: true }).category).toBe('SD');
  });

  it('cannot show a response from a non-measurable baseline', () => {
    expect(assessRano({ ...base, baseline: at('2025-06-01', 0.5), current: at('2025-09-01', 0) }).category).toBe('SD');
    expect(assessRano({ ...base, baseline: at('2025-06-01', 0), current: at('2025-09-01', 1.2) }).category).toBe('PD');
  });

  it('maps to an mCODE CancerDiseaseStatus', () => {
    const { observation, assessment } = ranoToCancerDiseaseStatus({ ...base, current: at('2025-09-01', 20) });
    expectValid(observation);
    expect(assessment.category).toBe('PD');
    expect(observation.code.coding?.[0]?.code).toBe('97509-4');
    expect(observation.valueCodeableConcept?.coding?.[0]?.code).toBe('271299001');
    expect(observation.status).toBe('final');
    const pr = ranoToCancerDiseaseStatus({ ...base, current: at('2025-09-01', 2) }).observation;
    expect([pr.valueCodeableConcept?.coding?.[0]?.code, pr.status]).toEqual(['268910001', 'preliminary']);
    expect(
      ranoToCancerDiseaseStatus({ ...base, current: at('2025-09-01', 10) }).observation.valueCodeableConcept
        ?.coding?.[0]?.code,
    ).toBe('359746009');
  });

  it('rejects timepoints out of order', () => {
    expect(validationError(() => assessRano({ ...base, current: at('2025-05-01', 1) })).fields).toEqual([
      'current.date',
    ]);
  });
});

describe('RANO bidimensional assessment', () => {
  const at = (date: string, ml: number, spd?: number) => ({
    analysisId: date,
    date,
    enhancingMl: ml,
    ...(spd !== undefined ? { sumOfProductsMm2: spd } : {}),
  });
  const base = { patientUuid: s.PATIENT_UUID, baseline: at('2025-06-01', 10, 800) };

  it.each([
    [400, 'PR'],
    [401, 'SD'],
    [999, 'SD'],
    [1000, 'PD'],
    [0, 'CR'],
  ])('SPD %d mm² against an 800 mm² baseline is %s, and says the bidimensional criteria made it', (spd, category) => {
    const r = assessRano({ ...base, current: at('2025-09-01', 10, spd) });
    expect([r.category, r.criteria, r.byCriteria.bidimensional]).toEqual([category, 'bidimensional', category]);
  });

  it('measures progression from the SPD nadir and reports both criteria', () => {
    const r = assessRano({ ...base, previous: [at('2025-07-01', 4, 300)], current: at('2025-09-01', 5, 380) });
    expect(r).toMatchObject({
      category: 'PD',
      criteria: 'bidimensional',
      byCriteria: { volumetric: 'SD', bidimensional: 'PD' },
      sumOfProducts: { nadirMm2: 300, changeFromNadirPct: 26.7, changeFromBaselinePct: -52.5 },
      nadirMl: 4,
    });
    expect(r.reasons).toContain('status by the bidimensional criteria');
  });

  it('falls back to the volumetric criteria when a timepoint has no SPD', () => {
    const r = assessRano({ ...base, previous: [at('2025-07-01', 4)], current: at('2025-09-01', 14, 2000) });
    expect([r.category, r.criteria, r.byCriteria.bidimensional, r.sumOfProducts]).toEqual([
      'PD',
      'volumetric',
      undefined,
      undefined,
    ]);
  });

  it('cannot show a response from a baseline below one measurable 10 × 10 mm lesion', () => {
    const r = assessRano({ ...base, baseline: at('2025-06-01', 10, 90), current: at('2025-09-01', 10, 0) });
    expect(r.category).toBe('SD');
  });

  it('accepts scan dates as local DICOM date-times and orders by them', () => {
    const r = assessRano({
      ...base,
      baseline: at('2025-06-01T08:00:00', 10, 800),
      current: at('2025-06-01T17:30:00', 10, 1000),
    });
    expect(r.category).toBe('PD');
  });

  it('names the criteria in the CancerDiseaseStatus value', () => {
    const { observation } = ranoToCancerDiseaseStatus({ ...base, current: at('2025-09-01', 10, 1200) });
    expect(observation.valueCodeableConcept?.text).toBe('RANO bidimensional: PD');
  });
});

describe('studyFromOrthanc', () => {
  const study = {
    ID: 'b9c08539-26f93bde-c81ab0d7-bffaf2cb-a4d0bdd0',
    MainDicomTags: {
      StudyInstanceUID: s.STUDY_UID,
      StudyDate: '20260105',
      StudyTime: '100000.123',
      StudyDescription: 'MR BRAIN',
      AccessionNumber: 'ACC-1',
    },
    Series: ['s1', 's2'],
  };
  const series = [
    {
      ID: 's1',
      MainDicomTags: {
        SeriesInstanceUID: '1.2.3.1',
        Modality: 'MR',
        SeriesNumber: '1',
        SeriesDescription: 'AX T1 POST',
      },
      Instances: ['a', 'b', 'c'],
    },
    {
      ID: 's2',
      MainDicomTags: { SeriesInstanceUID: s.SEG_SERIES_UID, Modality: 'SEG', SeriesNumber: 300 },
      Instances: ['d'],
    },
  ];

  it('builds the analysis study from Orthanc metadata, and the transaction from that', () => {
    const st = studyFromOrthanc(study, series, {
      dicomWebUrl: 'http://127.0.0.1:28042/dicom-web',
      utcOffset: '+01:00',
    });
    expect(st).toEqual({
      studyInstanceUid: s.STUDY_UID,
      started: '2026-01-05T10:00:00+01:00',
      description: 'MR BRAIN',
      accessionNumber: 'ACC-1',
      dicomWebUrl: 'http://127.0.0.1:28042/dicom-web',
      series: [
        { seriesInstanceUid: '1.2.3.1', modality: 'MR', number: 1, description: 'AX T1 POST', numberOfInstances: 3 },
        { seriesInstanceUid: s.SEG_SERIES_UID, modality: 'SEG', number: 300, numberOfInstances: 1 },
      ],
    });
    const bundle = analysisToTransaction(s.analysisResult({ study: st }));
    const imaging = bundle.entry?.find((e) => e.resource?.resourceType === 'ImagingStudy')?.resource as Resource & {
      series: unknown[];
    };
    expect(imaging.series).toHaveLength(2);
    expectValid(imaging);
  });

  it('rejects metadata that is not Orthanc study/series JSON', () => {
    expect(
      validationError(() => studyFromOrthanc({ ID: 'x', MainDicomTags: { StudyInstanceUID: 'nope' } }, series)).fields,
    ).toEqual(['MainDicomTags.StudyInstanceUID']);
    expect(() => studyFromOrthanc(study, [])).toThrow(ValidationError);
  });
});
