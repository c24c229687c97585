/**
 * Test helpers of @cdss/fhir-mapper: synthetic OpenEMR records and an AI analysis result (no real
 * patient data) that every mapper accepts, for tests and benchmarks of code built on this package.
 * @packageDocumentation
 */
export {
  PATIENT_UUID as SAMPLE_PATIENT_UUID,
  openEmrPatient as sampleOpenEmrPatient,
  openEmrEncounter as sampleOpenEmrEncounter,
  openEmrProblemGbm as sampleOpenEmrProblemGbm,
  openEmrProblemOther as sampleOpenEmrProblemOther,
  openEmrAllergy as sampleOpenEmrAllergy,
  openEmrMedication as sampleOpenEmrMedication,
  openEmrPrescription as sampleOpenEmrPrescription,
  openEmrVitals as sampleOpenEmrVitals,
  analysisResult as sampleAnalysisResult,
} from './__fixtures__/samples.js';
