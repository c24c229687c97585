/**
 * The REST API's resource shapes come from `@cdss/client`, the contract the server and its clients share; this module
 * re-exports them for the routes.
 */
import { z } from 'zod';

/** A patient is addressed by its OpenEMR uuid (path parameters, filters, analysis requests). */
export const patientIdSchema = z.uuid();

export {
  addressSchema,
  allergyListSchema,
  analysisAcceptedSchema,
  analysisListSchema,
  analysisRequestSchema,
  analysisSchema,
  assessmentSchema,
  auditListSchema,
  cachedPatientSchema,
  demoUserSchema,
  encounterListSchema,
  fhirBundleSchema,
  medicationListSchema,
  patientInputSchema,
  patientPageSchema,
  patientSchema,
  problemListSchema,
  reviewRequestSchema,
  serverEventSchema,
  studyListSchema,
  studySchema,
  tokenResponseSchema,
  vitalsListSchema,
  allergySchema,
  encounterSchema,
  medicationSchema,
  problemSchema,
  vitalsSchema,
} from '@cdss/client';
export type { ApiAnalysis, ApiPatient, ApiStudy, PatientInput, ServerEvent, Assessment } from '@cdss/client';
