import { describe, expect, it } from 'vitest';
import type { Coding, Resource } from 'fhir/r4.js';
import { ALL_CODE_ENTRIES, CODES, UNITS, findCode } from './codes.js';
import { CODE_SYSTEMS } from './systems.js';
import {
  allergyToFhir,
  analysisToTransaction,
  encounterToFhir,
  medicationToFhir,
  patientToFhir,
  prescriptionToFhir,
  problemToCondition,
  ranoToCancerDiseaseStatus,
  vitalsToObservations,
} from './index.js';
import * as s from './__fixtures__/samples.js';

/** LOINC check digit: mod-10 over the code number (LOINC Users' Guide, appendix). */
function loincValid(code: string): boolean {
  const m = /^(\d{1,7})-(\d)$/.exec(code);
  if (!m) return false;
  const digits = (m[1] as string).split('').map(Number);
  // Luhn variant: double every other digit from the right, starting with the rightmost.
  let sum = 0;
  digits.reverse().forEach((d, i) => {
    if (i % 2 === 0) {
      const x = d * 2;
      sum += x > 9 ? x - 9 : x;
    } else sum += d;
  });
  return (10 - (sum % 10)) % 10 === Number(m[2]);
}

// SNOMED CT identifiers end in a Verhoeff check digit (SNOMED CT Technical Implementation Guide).
const D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
  [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
  [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
  [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
  [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
  [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
  [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
  [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
  [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
  [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
  [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
  [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];
function verhoeffValid(num: string): boolean {
  let c = 0;
  num
    .split('')
    .reverse()
    .map(Number)
    .forEach((d, i) => {
      c = (D[c] as number[])[(P[i % 8] as number[])[d] as number] as number;
    });
  return c === 0;
}

function allCodings(value: unknown, out: Coding[] = []): Coding[] {
  if (Array.isArray(value)) value.forEach((v) => allCodings(v, out));
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o['system'] === 'string' && typeof o['code'] === 'string') out.push(o as Coding);
    Object.values(o).forEach((v) => allCodings(v, out));
  }
  return out;
}

describe('code table', () => {
  it('has valid LOINC check digits', () => {
    const loinc = ALL_CODE_ENTRIES.filter((e) => e.system === CODE_SYSTEMS.loinc);
    expect(loinc.length).toBeGreaterThan(15);
    for (const e of loinc) expect({ code: e.code, valid: loincValid(e.code) }).toEqual({ code: e.code, valid: true });
    expect(loincValid('8480-7')).toBe(false);
  });

  it('has valid SNOMED CT identifiers (Verhoeff check digit, concept partition)', () => {
    const sct = ALL_CODE_ENTRIES.filter((e) => e.system === CODE_SYSTEMS.snomed);
    expect(sct.length).toBeGreaterThan(10);
    for (const e of sct) {
      expect({ code: e.code, valid: /^\d{6,18}$/.test(e.code) && verhoeffValid(e.code) }).toEqual({
        code: e.code,
        valid: true,
      });
      // partition identifier 00 or 10 = concept
      expect(['00', '10']).toContain(e.code.slice(-3, -1));
    }
    expect(verhoeffValid('118565007')).toBe(false);
  });

  it('has ICD-10-CM, UCUM and other codes of the right shape, no duplicates, and displays', () => {
    for (const e of ALL_CODE_ENTRIES) {
      expect(e.display.length).toBeGreaterThan(0);
      if (e.system === CODE_SYSTEMS.icd10cm) expect(e.code).toMatch(/^[A-TV-Z]\d{2}(\.[0-9A-Z]{1,4})?$/);
      if (e.system === CODE_SYSTEMS.ncit) expect(e.code).toMatch(/^C\d+$/);
    }
    for (const u of Object.values(UNITS)) expect(u.code).toMatch(/^[A-Za-z/%[\]0-9]+$/);
    const keys = ALL_CODE_ENTRIES.map((e) => `${e.system}|${e.code}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(findCode(CODES.volume.system, '118565006')?.display).toBe('Volume');
  });

  it('every coding the mappers produce comes from the table (or from the input record)', () => {
    const produced: Resource[] = [
      patientToFhir(s.openEmrPatient),
      encounterToFhir(s.openEmrEncounter),
      problemToCondition(s.openEmrProblemGbm),
      problemToCondition(s.openEmrProblemOther),
      allergyToFhir(s.openEmrAllergy),
      medicationToFhir(s.openEmrMedication),
      prescriptionToFhir(s.openEmrPrescription),
      ...vitalsToObservations(s.openEmrVitals),
      ...(analysisToTransaction(s.analysisResult()).entry ?? []).map((e) => e.resource as Resource),
      ...(['CR', 'PD'] as const).map(
        (_c, i) =>
          ranoToCancerDiseaseStatus({
            patientUuid: s.PATIENT_UUID,
            baseline: { analysisId: 'a0', date: '2025-10-01', enhancingMl: 10 },
            current: { analysisId: 'a1', date: '2026-01-05', enhancingMl: i === 0 ? 0 : 20 },
          }).observation,
      ),
    ];
    // Codes passed through from the input: OpenEMR's own diagnosis codes and RxNorm drug codes, and the
    // DICOM SOP class UIDs of the study's instances.
    const fromInput = new Set([
      'http://hl7.org/fhir/sid/icd-10-cm|I10',
      `${CODE_SYSTEMS.rxnorm}|7980`,
      `${CODE_SYSTEMS.rxnorm}|1114523`,
    ]);
    let checked = 0;
    for (const r of produced) {
      for (const c of allCodings(r)) {
        if (c.system === 'urn:ietf:rfc:3986') continue;
        const key = `${c.system}|${c.code}`;
        if (fromInput.has(key)) continue;
        const entry = findCode(c.system as string, c.code as string);
        expect({ key, inTable: entry !== undefined }).toEqual({ key, inTable: true });
        if (c.display !== undefined) expect(c.display).toBe(entry?.display);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(60);
  });
});
