/**
 * What mCODE STU4 requires of the resources we claim its profiles for, written from the IG's published constraints
 * (HL7/fhir-mCODE-ig `input/fsh`, v4.0.0; see shared/notes/standards-and-peers.md §b5), since the IG package itself
 * cannot be loaded here. Each check names the element and the rule it comes from.
 */
import { describe, expect, it } from 'vitest';
import type { BodyStructure, Bundle, CodeableConcept, Condition, Observation, Reference, Resource } from 'fhir/r4.js';
import { analysisToTransaction, problemToCondition, ranoToCancerDiseaseStatus } from './index.js';
import { PROFILES } from './systems.js';
import * as s from './__fixtures__/samples.js';

const SCT = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

const codes = (cc: CodeableConcept | undefined): string[] => (cc?.coding ?? []).map((c) => `${c.system}|${c.code}`);
const has = (cc: CodeableConcept | undefined, system: string, code: string): boolean =>
  codes(cc).includes(`${system}|${code}`);

/** Resolves a reference inside a transaction Bundle (by fullUrl). */
function resolve<T extends Resource>(bundle: Bundle, ref: Reference | undefined): T | undefined {
  return bundle.entry?.find((e) => e.fullUrl === ref?.reference)?.resource as T | undefined;
}

describe('mCODE TumorSize (mcode-tumor-size)', () => {
  const bundle = analysisToTransaction(s.analysisResult());
  const size = bundle.entry
    ?.map((e) => e.resource as Observation)
    .find((r) => r.resourceType === 'Observation' && has(r.code, LOINC, '21889-1'));

  it('declares the profile and has code = LOINC 21889-1 "Size Tumor"', () => {
    expect(size?.meta?.profile).toContain(PROFILES.tumorSize);
    expect(has(size?.code, LOINC, '21889-1')).toBe(true);
  });

  it('has subject 1..1 resolving to a Patient (CancerPatient)', () => {
    expect(resolve(bundle, size?.subject)?.resourceType).toBe('Patient');
  });

  it('has focus (a Tumor) xor specimen (must-have-focus-or-specimen-invariant)', () => {
    expect(Boolean(size?.focus?.length) !== Boolean(size?.specimen)).toBe(true);
    const tumor = resolve<BodyStructure>(bundle, size?.focus?.[0]);
    expect(tumor?.meta?.profile).toContain(PROFILES.tumor);
  });

  it('has method from TumorSizeMethodVS (SCT 113091000 magnetic resonance imaging)', () => {
    expect(has(size?.method, SCT, '113091000')).toBe(true);
  });

  it('has exactly one tumorLongestDimension (LOINC 33728-7) and at most two tumorOtherDimension (33729-5)', () => {
    const comps = size?.component ?? [];
    expect(comps.filter((c) => has(c.code, LOINC, '33728-7'))).toHaveLength(1);
    expect(comps.filter((c) => has(c.code, LOINC, '33729-5')).length).toBeLessThanOrEqual(2);
    expect(comps.every((c) => has(c.code, LOINC, '33728-7') || has(c.code, LOINC, '33729-5'))).toBe(true);
  });

  it('gives each dimension in UCUM mm or cm (TumorSizeUnitsVS, required) and no value[x]', () => {
    for (const c of size?.component ?? []) {
      expect(c.valueQuantity?.system).toBe(UCUM);
      expect(['mm', 'cm']).toContain(c.valueQuantity?.code);
    }
    expect(size?.valueQuantity ?? size?.valueCodeableConcept ?? size?.valueString).toBeUndefined();
  });
});

describe('mCODE Tumor (mcode-tumor)', () => {
  const bundle = analysisToTransaction(s.analysisResult());
  const tumor = bundle.entry?.map((e) => e.resource).find((r) => r?.resourceType === 'BodyStructure') as BodyStructure;

  it('has identifier[bodyStructureIdentifier] 1..* with use = usual and type BodyStructure', () => {
    const id = tumor.identifier?.find(
      (i) => i.use === 'usual' && i.type?.coding?.some((c) => c.code === 'BodyStructure'),
    );
    expect(id?.value).toBeTruthy();
    expect(id?.type?.coding?.[0]?.system).toBe('http://hl7.org/fhir/resource-types');
  });

  it('has location 1..1 and morphology = SCT 1240414004 malignant neoplasm (or a descendant)', () => {
    expect(tumor.location?.coding?.length).toBeGreaterThan(0);
    expect(has(tumor.morphology, SCT, '1240414004')).toBe(true);
  });

  it('has patient 1..1', () => {
    expect(resolve(bundle, tumor.patient)?.resourceType).toBe('Patient');
  });
});

describe('mCODE CancerDiseaseStatus (mcode-cancer-disease-status)', () => {
  const base = {
    patientUuid: s.PATIENT_UUID,
    baseline: { analysisId: 'a', date: '2026-01-01', enhancingMl: 10 },
  };
  const statusFor = (ml: number): Observation =>
    ranoToCancerDiseaseStatus({ ...base, current: { analysisId: 'b', date: '2026-04-01', enhancingMl: ml } })
      .observation;
  const obs = statusFor(20);

  it('declares the profile and has code = LOINC 97509-4', () => {
    expect(obs.meta?.profile).toContain(PROFILES.cancerDiseaseStatus);
    expect(has(obs.code, LOINC, '97509-4')).toBe(true);
  });

  it('has subject 1..1 (a Patient) and focus on a Condition or a Tumor', () => {
    expect(obs.subject?.type ?? obs.subject?.reference?.split('/')[0]).toBe('Patient');
    expect(['Condition', 'BodyStructure']).toContain(obs.focus?.[0]?.type);
  });

  it('takes value from ConditionStatusTrendVS for every RANO category', () => {
    const trend = ['268910001', '359746009', '271299001', '709137006'];
    for (const ml of [0, 2, 10, 20]) {
      const v = statusFor(ml).valueCodeableConcept;
      expect(v?.coding?.[0]?.system).toBe(SCT);
      expect(trend).toContain(v?.coding?.[0]?.code);
    }
  });

  it('has an evidenceType extension with SCT 363679005 imaging, an effectiveDateTime, and no component, hasMember or specimen', () => {
    const ext = obs.extension?.find((e) => e.url.endsWith('/mcode-evidence-type'));
    expect(has(ext?.valueCodeableConcept, SCT, '363679005')).toBe(true);
    expect(obs.effectiveDateTime).toBe('2026-04-01');
    expect([obs.component, obs.hasMember, obs.specimen]).toEqual([undefined, undefined, undefined]);
  });
});

describe('mCODE PrimaryCancerCondition (mcode-primary-cancer-condition, on US Core Condition)', () => {
  const condition: Condition = problemToCondition(s.openEmrProblemGbm);

  it('declares the profile only for a primary malignant brain tumour', () => {
    expect(condition.meta?.profile).toContain(PROFILES.primaryCancerCondition);
    expect(problemToCondition(s.openEmrProblemOther).meta?.profile ?? []).not.toContain(
      PROFILES.primaryCancerCondition,
    );
  });

  it('codes the cancer from PrimaryCancerDisorderVS (SNOMED CT disorder or ICD-10-CM C71)', () => {
    const list = codes(condition.code);
    expect(list.some((c) => c === `${SCT}|428061005` || c === `${SCT}|393563007` || /icd-10-cm\|C71/.test(c))).toBe(
      true,
    );
  });

  it('meets US Core: category problem-list-item, subject, and clinicalStatus unless entered in error (con-3, con-5)', () => {
    expect(condition.category?.some((c) => c.coding?.some((x) => x.code === 'problem-list-item'))).toBe(true);
    expect(condition.subject).toBeTruthy();
    expect(condition.clinicalStatus).toBeTruthy();
    const wrong = problemToCondition({ ...s.openEmrProblemGbm, verification: 'entered-in-error' });
    expect(wrong.clinicalStatus).toBeUndefined();
  });

  it('keeps con-4: an abated condition is inactive, resolved or in remission', () => {
    const closed = problemToCondition({ ...s.openEmrProblemGbm, enddate: '2026-01-01' });
    expect(closed.abatementDateTime).toBeTruthy();
    expect(['inactive', 'resolved', 'remission']).toContain(closed.clinicalStatus?.coding?.[0]?.code);
  });

  it('has a body site from CancerBodyLocationVS (SCT brain structure)', () => {
    expect(has(condition.bodySite?.[0], SCT, '12738006')).toBe(true);
  });
});
