/**
 * @cdss/fhir-mapper: pure OpenEMR <-> FHIR R4 mapping, AI results as mCODE-aligned transaction
 * Bundles, RANO disease status, a FHIR server adapter with conditional writes, and a sync outbox.
 * Validation against the R4 definitions is in `@cdss/fhir-mapper/validate` (Medplum's) and the MySQL outbox in
 * `@cdss/fhir-mapper/mysql`, so that pure mapping needs neither Medplum nor `mysql2`.
 * @packageDocumentation
 */
export { CODE_SYSTEMS, PROFILES, EXTENSIONS, DICOM_UID_SYSTEM, identifierSystems } from './systems.js';
export type { IdentifierSystems } from './systems.js';
export { CODES, UNITS, ALL_CODE_ENTRIES, coding, concept, quantity, findCode } from './codes.js';
export type { CodeEntry, CodeName, UnitName } from './codes.js';
export { mapperContext, mapperOptionsSchema, patientLogicalReference } from './context.js';
export type { MapperOptions, MapperContext } from './context.js';
export {
  openEmrPatientSchema,
  openEmrEncounterSchema,
  openEmrProblemSchema,
  openEmrAllergySchema,
  openEmrMedicationSchema,
  openEmrPrescriptionSchema,
  openEmrVitalsSchema,
} from './openemr-schemas.js';
export type {
  OpenEmrPatient,
  OpenEmrPatientWrite,
  OpenEmrEncounter,
  OpenEmrProblem,
  OpenEmrAllergy,
  OpenEmrMedication,
  OpenEmrPrescription,
  OpenEmrVitals,
} from './openemr-schemas.js';
export {
  patientToFhir,
  patientFromFhir,
  encounterToFhir,
  problemToCondition,
  allergyToFhir,
  medicationToFhir,
  prescriptionToFhir,
  parseOpenEmrCodes,
  classifyBrainTumor,
} from './openemr-mapper.js';
export type { ClinicalMapperOptions, BrainTumorKind } from './openemr-mapper.js';
export { vitalsToObservations, observationsToVitals, UNIT_CONVERSIONS } from './vitals.js';
export type { OpenEmrVitalsWrite } from './vitals.js';
export {
  analysisToTransaction,
  analysisIdentifiers,
  analysisResultSchema,
  analysisSeriesSchema,
  dicomUidSchema,
  identifierQuery,
} from './ai-result.js';
export type { AnalysisResult, AnalysisResultInput, AnalysisMapperOptions, AnalysisIdentifiers } from './ai-result.js';
export { assessRano, ranoToCancerDiseaseStatus, ranoInputSchema } from './rano.js';
export type { RanoInput, RanoAssessment, RanoCategory, RanoMapperOptions } from './rano.js';
export { FhirAdapter } from './adapter/fhir-adapter.js';
export type {
  FhirAdapterOptions,
  WriteResult,
  CallOptions,
  BatchOptions,
  FhirSearchParams,
} from './adapter/fhir-adapter.js';
export {
  FhirServerError,
  FhirInvalidResourceError,
  FhirNotFoundError,
  FhirConflictError,
  fhirErrorFor,
} from './adapter/errors.js';
export type { FhirServerErrorOptions } from './adapter/errors.js';
export { KeyedMutex } from './adapter/keyed-mutex.js';
export { fhirWriteSchema, defaultKey } from './outbox/types.js';
export type {
  FhirWrite,
  BatchEntriesText,
  OutboxItem,
  DeadLetter,
  OutboxStats,
  SyncOutbox,
  EnqueueOptions,
  OutboxConnection,
} from './outbox/types.js';
export { MemoryOutbox } from './outbox/memory-outbox.js';
export { OutboxProcessor, isRejection } from './outbox/processor.js';
export type { OutboxProcessorOptions, DrainResult } from './outbox/processor.js';
export { studyFromOrthanc, orthancStudySchema, orthancSeriesSchema } from './orthanc-study.js';
export type { StudyFromOrthancOptions } from './orthanc-study.js';
