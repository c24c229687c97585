/**
 * Mapping throughput (FHIR resources/s) of @cdss/fhir-mapper, with Medplum's R4 validation of the same resources as a side figure (no ratio).
 *
 * One "record set" is a patient, an encounter, two problems (one a glioblastoma -> mCODE), an allergy, a
 * medication, a prescription, a vitals row (8 Observations) and an AI analysis result (a 9-entry
 * transaction Bundle): 24 resources, each input parsed with zod and mapped. No other library does the same work
 * (OpenEMR rows to mCODE-aligned FHIR), so there is no baseline and no ratio: the JSON line reports the throughput
 * alone (`baseline` and `ratio` null). For scale, `fhirIssues` (Medplum's structural R4 validation, the step a
 * careful sync runs on every resource anyway) is timed over the same 24 output resources, interleaved with the
 * mapping, and printed beside it. Timed rounds after a warm-up; medians reported.
 *
 * Settings (environment): BENCH_ROUND_MS (default 1000, max 5000), BENCH_ROUNDS (default 5, max 8).
 */
import type { Resource } from 'fhir/r4.js';
import {
  allergyToFhir,
  analysisToTransaction,
  encounterToFhir,
  medicationToFhir,
  patientToFhir,
  prescriptionToFhir,
  problemToCondition,
  vitalsToObservations,
} from '@cdss/fhir-mapper';
import { fhirIssues, loadR4Definitions } from '@cdss/fhir-mapper/validate';
import * as s from '@cdss/fhir-mapper/testing';
import { intEnv, median } from './_lib.js';

const ROUND_MS = intEnv('BENCH_ROUND_MS', 1000, 5000);
const ROUNDS = intEnv('BENCH_ROUNDS', 5, 8);

function mapRecordSet(): Resource[] {
  return [
    patientToFhir(s.sampleOpenEmrPatient),
    encounterToFhir(s.sampleOpenEmrEncounter),
    problemToCondition(s.sampleOpenEmrProblemGbm),
    problemToCondition(s.sampleOpenEmrProblemOther),
    allergyToFhir(s.sampleOpenEmrAllergy),
    medicationToFhir(s.sampleOpenEmrMedication),
    prescriptionToFhir(s.sampleOpenEmrPrescription),
    ...vitalsToObservations(s.sampleOpenEmrVitals),
    ...(analysisToTransaction(s.sampleAnalysisResult()).entry ?? []).map((e) => e.resource as Resource),
  ];
}

const sample = mapRecordSet();
const PER_SET = sample.length;

function validateSet(): number {
  let issues = 0;
  for (const r of sample) issues += fhirIssues(r).length;
  return issues;
}

/** Resources per second doing `fn` (which handles PER_SET resources) for ROUND_MS. */
function round(fn: () => unknown): number {
  const t0 = performance.now();
  let sets = 0;
  while (performance.now() - t0 < ROUND_MS) {
    fn();
    sets++;
  }
  return (sets * PER_SET) / ((performance.now() - t0) / 1000);
}

loadR4Definitions();
if (validateSet() !== 0) throw new Error('the sample resources do not validate');
round(mapRecordSet);
round(validateSet);
const mapped: number[] = [];
const validated: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 === 0 ? ([mapRecordSet, validateSet] as const) : ([validateSet, mapRecordSet] as const);
  for (const fn of order) (fn === mapRecordSet ? mapped : validated).push(round(fn));
  process.stdout.write(
    `round ${i + 1}: map ${Math.round(mapped[i] as number)} res/s, validate ${Math.round(validated[i] as number)} res/s\n`,
  );
}
const value = Math.round(median(mapped));
const validation = Math.round(median(validated));
process.stdout.write(
  `median of ${ROUNDS} rounds: mapping ${value} resources/s; for scale, Medplum R4 validation of the same resources ${validation} resources/s\n`,
);
process.stdout.write(
  `${JSON.stringify({ bench: 'fhir-mapper', unit: 'resources/s', value, baseline: null, baseline_name: null, ratio: null, side_figure: { name: 'Medplum R4 validation of the same resources', value: validation } })}\n`,
);
