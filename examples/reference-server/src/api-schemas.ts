/**
 * The REST API's own resource shapes (JSON). They are deliberately simpler than OpenEMR's and FHIR's: the dashboard
 * and mobile clients use them; FHIR consumers use the FHIR server.
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);

const isoDate = z.iso.date();

/** A postal address. */
export const addressSchema = z
  .strictObject({
    line: z.string().max(200).optional(),
    city: z.string().max(100).optional(),
    state: z.string().max(100).optional(),
    postalCode: z.string().max(20).optional(),
    country: z.string().max(100).optional(),
  })
  .openapi('Address');

/** What a client sends to create or replace a patient's demographics. */
export const patientInputSchema = z
  .strictObject({
    givenName: z.string().trim().min(1).max(100),
    familyName: z.string().trim().min(2, 'at least 2 characters (OpenEMR requires it)').max(100),
    birthDate: isoDate,
    sex: z.enum(['female', 'male', 'other', 'unknown']),
    phone: z.string().max(40).optional(),
    email: z.email().max(200).optional(),
    address: addressSchema.optional(),
  })
  .openapi('PatientInput');
/** What a client sends to create or replace a patient's demographics. */
export type PatientInput = z.infer<typeof patientInputSchema>;

/** A patient as the API returns it. */
export const patientSchema = patientInputSchema
  .extend({
    id: z.string().openapi({ description: 'OpenEMR uuid' }),
    pid: z.string().optional().openapi({ description: 'OpenEMR numeric pid' }),
  })
  .openapi('Patient');
/** A patient as the API returns it. */
export type ApiPatient = z.infer<typeof patientSchema>;

/** Wraps data served from the cache with its freshness. */
export function cached<T extends z.ZodType>(schema: T, name: string) {
  return z
    .object({
      data: schema,
      stale: z.boolean().openapi({ description: 'true when OpenEMR could not be reached and the data may be out of date' }),
    })
    .openapi(name);
}

/** A page of results. */
export function page<T extends z.ZodType>(schema: T, name: string) {
  return z
    .object({ items: z.array(schema), nextCursor: z.string().optional(), stale: z.boolean().optional() })
    .openapi(name);
}

/** An encounter. */
export const encounterSchema = z
  .object({ id: z.string(), date: z.string(), reason: z.string().optional(), class: z.string().optional(), provider: z.string().optional() })
  .openapi('Encounter');
/** A medical problem. */
export const problemSchema = z
  .object({ id: z.string(), title: z.string(), code: z.string().optional(), onset: z.string().optional(), active: z.boolean() })
  .openapi('Problem');
/** An allergy. */
export const allergySchema = z
  .object({ id: z.string(), substance: z.string(), reaction: z.string().optional(), severity: z.string().optional(), active: z.boolean() })
  .openapi('Allergy');
/** A medication. */
export const medicationSchema = z
  .object({ id: z.string(), name: z.string(), dosage: z.string().optional(), start: z.string().optional(), active: z.boolean() })
  .openapi('Medication');
/** One set of vital signs. */
export const vitalsSchema = z
  .object({
    id: z.string(),
    date: z.string(),
    bpSystolic: z.number().optional(),
    bpDiastolic: z.number().optional(),
    pulse: z.number().optional(),
    temperatureC: z.number().optional(),
    weightKg: z.number().optional(),
    heightCm: z.number().optional(),
    oxygenSaturation: z.number().optional(),
  })
  .openapi('Vitals');

/** An imaging series. */
export const seriesSchema = z
  .object({ uid: z.string(), modality: z.string().optional(), description: z.string().optional(), instances: z.number().int().optional(), number: z.number().int().optional() })
  .openapi('Series');
/** An imaging study. */
export const studySchema = z
  .object({
    uid: z.string(),
    patientId: z.string().optional(),
    date: z.string().optional(),
    description: z.string().optional(),
    modalities: z.array(z.string()),
    series: z.array(seriesSchema),
  })
  .openapi('Study');
/** An imaging study. */
export type ApiStudy = z.infer<typeof studySchema>;

/** The stages an analysis goes through, in order. */
export const analysisStatusSchema = z.enum(['queued', 'accepted', 'running', 'succeeded', 'failed', 'cancelled']);

/** Per-region tumour volumes, mL. */
export const regionVolumesSchema = z
  .object({ enhancingTumor: z.number().nonnegative(), tumorCore: z.number().nonnegative(), wholeTumor: z.number().nonnegative() })
  .openapi('RegionVolumes');

/** An AI analysis. */
export const analysisSchema = z
  .object({
    id: z.string(),
    patientId: z.string(),
    studyUid: z.string(),
    status: analysisStatusSchema,
    stage: z.string().optional(),
    percent: z.number().min(0).max(100).optional(),
    requestedBy: z.string(),
    requestedAt: z.string(),
    finishedAt: z.string().optional(),
    model: z.object({ id: z.string(), version: z.string() }),
    result: z
      .object({
        volumes: regionVolumesSchema,
        largestDiameterMm: z.number().nonnegative().optional(),
        segSeriesUid: z.string().optional(),
        conclusion: z.string().optional(),
      })
      .optional(),
    failure: z.object({ reason: z.string(), detail: z.string().optional() }).optional(),
    review: z
      .object({
        status: z.enum(['pending', 'approved', 'rejected']),
        reviewer: z.string().optional(),
        comment: z.string().optional(),
        reviewedAt: z.string().optional(),
      })
      .optional(),
  })
  .openapi('Analysis');
/** An AI analysis. */
export type ApiAnalysis = z.infer<typeof analysisSchema>;

/** Request body of POST /api/studies/{studyUid}/analyses. */
export const analysisRequestSchema = z
  .strictObject({
    patientId: z.string().min(1),
    priority: z.number().int().min(0).max(9).default(5),
    modelId: z.string().min(1).optional(),
  })
  .openapi('AnalysisRequest');

/** Request body of POST /api/analyses/{id}/review. */
export const reviewRequestSchema = z
  .strictObject({
    decision: z.enum(['approve', 'reject']),
    comment: z.string().trim().max(2000).optional(),
  })
  .refine((review) => review.decision === 'approve' || (review.comment && review.comment.length > 0), {
    message: 'a rejection needs a comment',
    path: ['comment'],
  })
  .openapi('ReviewRequest');

/** The longitudinal RANO-style status. */
export const assessmentSchema = z
  .object({
    patientId: z.string(),
    status: z.enum(['complete-response', 'partial-response', 'stable', 'progression', 'not-evaluable']),
    baselineAnalysisId: z.string().optional(),
    currentAnalysisId: z.string().optional(),
    changePercent: z.number().optional(),
    timeline: z.array(z.object({ analysisId: z.string(), date: z.string(), wholeTumorMl: z.number(), enhancingTumorMl: z.number() })),
  })
  .openapi('Assessment');
