/**
 * Every code the mapper emits, in one checked table: system, code and display. `codes.test.ts` checks
 * each entry (LOINC and SNOMED CT check digits, UCUM syntax, no duplicates) and that every coding in
 * every resource the mapper produces comes from this table (or was passed through from the input).
 * Sources: LOINC, SNOMED CT, mCODE STU4 value sets, FHIR R4 code systems; see
 * `shared/notes/standards-and-peers.md` (b5–b9).
 * @packageDocumentation
 */
import type { CodeableConcept, Coding } from 'fhir/r4.js';
import { CODE_SYSTEMS as S } from './systems.js';

/** One entry of the code table. */
export interface CodeEntry {
  readonly system: string;
  readonly code: string;
  readonly display: string;
}

function c(system: string, code: string, display: string): CodeEntry {
  return { system, code, display };
}

/** The code table. Keys are stable names used in the code; values are the codings. */
export const CODES = {
  // LOINC
  mrBrain: c(S.loinc, '24590-2', 'MR Brain'),
  tumorSize: c(S.loinc, '21889-1', 'Size Tumor'),
  tumorLongestDimension: c(S.loinc, '33728-7', 'Size.maximum dimension in Tumor'),
  tumorOtherDimension: c(S.loinc, '33729-5', 'Size additional dimension in Tumor'),
  cancerDiseaseStatus: c(S.loinc, '97509-4', 'Cancer Disease Progression'),
  bpPanel: c(S.loinc, '85354-9', 'Blood pressure panel with all children optional'),
  systolicBp: c(S.loinc, '8480-6', 'Systolic blood pressure'),
  diastolicBp: c(S.loinc, '8462-4', 'Diastolic blood pressure'),
  bodyWeight: c(S.loinc, '29463-7', 'Body weight'),
  bodyHeight: c(S.loinc, '8302-2', 'Body height'),
  bodyTemperature: c(S.loinc, '8310-5', 'Body temperature'),
  heartRate: c(S.loinc, '8867-4', 'Heart rate'),
  respiratoryRate: c(S.loinc, '9279-1', 'Respiratory rate'),
  bmi: c(S.loinc, '39156-5', 'Body mass index (BMI) [Ratio]'),
  oxygenSaturation: c(S.loinc, '2708-6', 'Oxygen saturation in Arterial blood'),
  pulseOximetry: c(S.loinc, '59408-5', 'Oxygen saturation in Arterial blood by Pulse oximetry'),
  headCircumference: c(S.loinc, '9843-4', 'Head Occipital-frontal circumference'),
  waistCircumference: c(S.loinc, '8280-0', 'Waist Circumference at umbilicus by Tape measure'),
  // SNOMED CT
  volume: c(S.snomed, '118565006', 'Volume'),
  mri: c(S.snomed, '113091000', 'Magnetic resonance imaging'),
  imaging: c(S.snomed, '363679005', 'Imaging'),
  brainStructure: c(S.snomed, '12738006', 'Brain structure'),
  neoplasmMorphology: c(S.snomed, '108369006', 'Neoplasm'),
  malignantNeoplasmMorphology: c(S.snomed, '1240414004', 'Malignant neoplasm'),
  neoplasmOfBrain: c(S.snomed, '126952004', 'Neoplasm of brain'),
  malignantNeoplasmOfBrain: c(S.snomed, '428061005', 'Malignant neoplasm of brain'),
  glioblastoma: c(S.snomed, '393563007', 'Glioblastoma multiforme'),
  secondaryMalignantNeoplasmOfBrain: c(S.snomed, '94225005', 'Secondary malignant neoplasm of brain'),
  conditionImproved: c(S.snomed, '268910001', "Patient's condition improved"),
  conditionStable: c(S.snomed, '359746009', "Patient's condition stable"),
  conditionWorsened: c(S.snomed, '271299001', "Patient's condition worsened"),
  conditionUndetermined: c(S.snomed, '709137006', 'Patient condition undetermined'),
  // NCI Thesaurus (DICOM CID 7169)
  enhancingLesion: c(S.ncit, 'C113842', 'Enhancing Lesion'),
  // CDSS BraTS regions
  regionEnhancingTumor: c(S.cdssBratsRegion, 'ET', 'Enhancing tumor'),
  regionTumorCore: c(S.cdssBratsRegion, 'TC', 'Tumor core'),
  regionWholeTumor: c(S.cdssBratsRegion, 'WT', 'Whole tumor'),
  // DICOM
  modalityMr: c(S.dicomDcm, 'MR', 'Magnetic Resonance'),
  modalitySeg: c(S.dicomDcm, 'SEG', 'Segmentation'),
  // HL7 terminology
  radiology: c(S.v2_0074, 'RAD', 'Radiology'),
  categoryVitalSigns: c(S.observationCategory, 'vital-signs', 'Vital Signs'),
  categoryImaging: c(S.observationCategory, 'imaging', 'Imaging'),
  problemListItem: c(S.conditionCategory, 'problem-list-item', 'Problem List Item'),
  conditionActive: c(S.conditionClinical, 'active', 'Active'),
  conditionInactive: c(S.conditionClinical, 'inactive', 'Inactive'),
  conditionResolved: c(S.conditionClinical, 'resolved', 'Resolved'),
  conditionConfirmed: c(S.conditionVerification, 'confirmed', 'Confirmed'),
  conditionUnconfirmed: c(S.conditionVerification, 'unconfirmed', 'Unconfirmed'),
  conditionRefuted: c(S.conditionVerification, 'refuted', 'Refuted'),
  conditionProvisional: c(S.conditionVerification, 'provisional', 'Provisional'),
  conditionDifferential: c(S.conditionVerification, 'differential', 'Differential'),
  conditionEnteredInError: c(S.conditionVerification, 'entered-in-error', 'Entered in Error'),
  mrn: c(S.v2_0203, 'MR', 'Medical record number'),
  allergyActive: c(S.allergyClinical, 'active', 'Active'),
  allergyInactive: c(S.allergyClinical, 'inactive', 'Inactive'),
  allergyResolved: c(S.allergyClinical, 'resolved', 'Resolved'),
  allergyConfirmed: c(S.allergyVerification, 'confirmed', 'Confirmed'),
  allergyUnconfirmed: c(S.allergyVerification, 'unconfirmed', 'Unconfirmed'),
  allergyRefuted: c(S.allergyVerification, 'refuted', 'Refuted'),
  encounterAmbulatory: c(S.v3ActCode, 'AMB', 'ambulatory'),
  encounterEmergency: c(S.v3ActCode, 'EMER', 'emergency'),
  encounterInpatient: c(S.v3ActCode, 'IMP', 'inpatient encounter'),
  encounterInpatientAcute: c(S.v3ActCode, 'ACUTE', 'inpatient acute'),
  encounterInpatientNonAcute: c(S.v3ActCode, 'NONAC', 'inpatient non-acute'),
  encounterObservation: c(S.v3ActCode, 'OBSENC', 'observation encounter'),
  encounterPreAdmission: c(S.v3ActCode, 'PRENC', 'pre-admission'),
  encounterShortStay: c(S.v3ActCode, 'SS', 'short stay'),
  encounterVirtual: c(S.v3ActCode, 'VR', 'virtual'),
  encounterHomeHealth: c(S.v3ActCode, 'HH', 'home health'),
  encounterField: c(S.v3ActCode, 'FLD', 'field'),
  wadoRs: c(S.endpointConnectionType, 'dicom-wado-rs', 'DICOM WADO-RS'),
  modalitySr: c(S.dicomDcm, 'SR', 'SR Document'),
  interpretationIndeterminate: c(S.observationInterpretation, 'IND', 'Indeterminate'),
  participantVerifier: c(S.provenanceParticipantType, 'verifier', 'Verifier'),
  operationUpdate: c(S.v3DataOperation, 'UPDATE', 'revise'),
  resourceTypeBodyStructure: c(S.resourceTypes, 'BodyStructure', 'BodyStructure'),
  // ICD-10-CM: malignant neoplasms of the brain (C71), the primary brain cancers the mapper recognises
  icdC710: c(S.icd10cm, 'C71.0', 'Malignant neoplasm of cerebrum, except lobes and ventricles'),
  icdC711: c(S.icd10cm, 'C71.1', 'Malignant neoplasm of frontal lobe'),
  icdC712: c(S.icd10cm, 'C71.2', 'Malignant neoplasm of temporal lobe'),
  icdC713: c(S.icd10cm, 'C71.3', 'Malignant neoplasm of parietal lobe'),
  icdC714: c(S.icd10cm, 'C71.4', 'Malignant neoplasm of occipital lobe'),
  icdC715: c(S.icd10cm, 'C71.5', 'Malignant neoplasm of cerebral ventricle'),
  icdC716: c(S.icd10cm, 'C71.6', 'Malignant neoplasm of cerebellum'),
  icdC717: c(S.icd10cm, 'C71.7', 'Malignant neoplasm of brain stem'),
  icdC718: c(S.icd10cm, 'C71.8', 'Malignant neoplasm of overlapping sites of brain'),
  icdC719: c(S.icd10cm, 'C71.9', 'Malignant neoplasm of brain, unspecified'),
  icdC7931: c(S.icd10cm, 'C79.31', 'Secondary malignant neoplasm of brain'),
  icdD332: c(S.icd10cm, 'D33.2', 'Benign neoplasm of brain, unspecified'),
  icdD432: c(S.icd10cm, 'D43.2', 'Neoplasm of uncertain behavior of brain, unspecified'),
} as const satisfies Record<string, CodeEntry>;

/** A name in {@link CODES}. */
export type CodeName = keyof typeof CODES;

/** UCUM units the mapper emits (`code` is the UCUM expression, `display` the human unit). */
export const UNITS = {
  mL: c(S.ucum, 'mL', 'mL'),
  mm: c(S.ucum, 'mm', 'mm'),
  cm: c(S.ucum, 'cm', 'cm'),
  kg: c(S.ucum, 'kg', 'kg'),
  Cel: c(S.ucum, 'Cel', 'Cel'),
  perMin: c(S.ucum, '/min', '/min'),
  kgPerM2: c(S.ucum, 'kg/m2', 'kg/m2'),
  percent: c(S.ucum, '%', '%'),
  mmHg: c(S.ucum, 'mm[Hg]', 'mm[Hg]'),
} as const satisfies Record<string, CodeEntry>;

/** A name in {@link UNITS}. */
export type UnitName = keyof typeof UNITS;

/**
 * A FHIR Coding for a table entry.
 * @param name - the entry's name in {@link CODES}
 * @returns a fresh `{system, code, display}` object
 */
export function coding(name: CodeName): Coding {
  const entry = CODES[name];
  return { system: entry.system, code: entry.code, display: entry.display };
}

/**
 * A CodeableConcept of one or more table entries.
 * @param names - entries in {@link CODES}, most specific first
 * @param text - optional human text
 */
export function concept(names: CodeName | readonly CodeName[], text?: string): CodeableConcept {
  const list = typeof names === 'string' ? [names] : names;
  const cc: CodeableConcept = { coding: list.map(coding) };
  if (text !== undefined) cc.text = text;
  return cc;
}

/**
 * A UCUM Quantity.
 * @param value - the number
 * @param unit - the unit's name in {@link UNITS}
 */
export function quantity(value: number, unit: UnitName): { value: number; unit: string; system: string; code: string } {
  const u = UNITS[unit];
  return { value, unit: u.display, system: u.system, code: u.code };
}

/** Every table entry, codes and units, for lookups and tests. */
export const ALL_CODE_ENTRIES: readonly CodeEntry[] = [...Object.values(CODES), ...Object.values(UNITS)];

/**
 * Finds a table entry by system and code.
 * @returns the entry, or undefined when the code is not in the table
 */
export function findCode(system: string, code: string): CodeEntry | undefined {
  return ALL_CODE_ENTRIES.find((e) => e.system === system && e.code === code);
}
