/**
 * The REST API's resource shapes (JSON): the contract between the reference server and its clients. They are
 * deliberately simpler than OpenEMR's and FHIR's; FHIR consumers use the FHIR server. The server builds its OpenAPI
 * document from these schemas (the `id` in `.meta()` names the component).
 * @packageDocumentation
 */
import { z } from 'zod';
import { EARLIEST_BIRTH_DATE, birthDatePattern, latestBirthDate } from './birth-date.js';

const isoDate = z.iso.date();

/**
 * An email address, as zod's `z.email()` (and so `@cdss/openemr-client`) accepts it, written without lookarounds so
 * that the pattern in the OpenAPI document means the same in every regex dialect: dot-separated local-part segments
 * (letters, digits, `_'+-`, not ending in `'`), then host labels and a top-level domain of two or more letters.
 */
const emailPattern = /^([A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$/;

/** A postal address. */
export const addressSchema = z
  .strictObject({
    line: z.string().max(200).optional(),
    city: z.string().max(100).optional(),
    state: z.string().max(100).optional(),
    postalCode: z.string().max(20).optional(),
    country: z.string().max(100).optional(),
  })
  .meta({ id: 'Address' });

/** A birth date a client may send: a real calendar date, not before 1900, not in the future (see `birth-date.ts`). */
export const birthDateInputSchema = isoDate
  .refine((date) => date >= EARLIEST_BIRTH_DATE, { message: `must not be before ${EARLIEST_BIRTH_DATE}` })
  .refine((date) => date <= latestBirthDate(), { message: 'must not be in the future' })
  .meta({
    description: `A calendar date (YYYY-MM-DD) from ${EARLIEST_BIRTH_DATE} to today (in the latest time zone, UTC+14)`,
    // A getter: a document generated on another day carries that day's bound (see the server's /openapi.json).
    get pattern() {
      return birthDatePattern();
    },
  });

// Trimmed first; the patterns say the same (at least one, or two, characters that are not spaces).
const demographics = {
  givenName: z.string().trim().min(1).max(100).regex(/\S/),
  familyName: z
    .string()
    .trim()
    .min(2, 'at least 2 characters (OpenEMR requires it)')
    .max(100)
    .regex(/\S[\s\S]*\S/),
  birthDate: isoDate,
  sex: z.enum(['female', 'male', 'other', 'unknown']),
  phone: z.string().max(40).optional(),
  email: z.string().max(200).regex(emailPattern, 'an email address').optional(),
  address: addressSchema.optional(),
};

/** What a client sends to create or replace a patient's demographics. */
export const patientInputSchema = z
  .strictObject({ ...demographics, birthDate: birthDateInputSchema })
  .meta({ id: 'PatientInput' });
/** What a client sends to create or replace a patient's demographics. */
export type PatientInput = z.infer<typeof patientInputSchema>;

/**
 * A patient as the API returns it. The birth date is any calendar date here: records made elsewhere (in OpenEMR
 * directly) are shown as they are.
 */
export const patientSchema = z
  .strictObject({
    ...demographics,
    id: z.string().describe('OpenEMR uuid'),
    pid: z.string().optional().describe('OpenEMR numeric pid'),
  })
  .meta({ id: 'Patient' });
/** A patient as the API returns it. */
export type ApiPatient = z.infer<typeof patientSchema>;

/** Wraps data served from the cache with its freshness. */
function cached<T extends z.ZodType>(schema: T, name: string) {
  return z
    .object({
      data: schema,
      stale: z.boolean().describe('true when OpenEMR could not be reached and the data may be out of date'),
    })
    .meta({ id: name });
}

/** A page of results. */
function page<T extends z.ZodType>(schema: T, name: string) {
  return z
    .object({ items: z.array(schema), nextCursor: z.string().optional(), stale: z.boolean().optional() })
    .meta({ id: name });
}

/** An encounter. */
export const encounterSchema = z
  .object({
    id: z.string(),
    date: z.string(),
    reason: z.string().optional(),
    class: z.string().optional(),
    provider: z.string().optional(),
  })
  .meta({ id: 'Encounter' });
/** A medical problem. */
export const problemSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    code: z.string().optional(),
    onset: z.string().optional(),
    active: z.boolean(),
  })
  .meta({ id: 'Problem' });
/** An allergy. */
export const allergySchema = z
  .object({
    id: z.string(),
    substance: z.string(),
    reaction: z.string().optional(),
    severity: z.string().optional(),
    active: z.boolean(),
  })
  .meta({ id: 'Allergy' });
/** A medication. */
export const medicationSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    dosage: z.string().optional(),
    start: z.string().optional(),
    active: z.boolean(),
  })
  .meta({ id: 'Medication' });
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
  .meta({ id: 'Vitals' });

/** A patient read through the cache. */
export const cachedPatientSchema = cached(patientSchema, 'CachedPatient');
/** A page of patients. */
export const patientPageSchema = page(patientSchema, 'PatientPage');
/** A patient's encounters, read through the cache. */
export const encounterListSchema = cached(z.array(encounterSchema), 'EncounterList');
/** A patient's problems, read through the cache. */
export const problemListSchema = cached(z.array(problemSchema), 'ProblemList');
/** A patient's allergies, read through the cache. */
export const allergyListSchema = cached(z.array(allergySchema), 'AllergyList');
/** A patient's medications, read through the cache. */
export const medicationListSchema = cached(z.array(medicationSchema), 'MedicationList');
/** A patient's vital signs, read through the cache. */
export const vitalsListSchema = cached(z.array(vitalsSchema), 'VitalsList');

/** An imaging series. */
export const seriesSchema = z
  .object({
    uid: z.string(),
    modality: z.string().optional(),
    description: z.string().optional(),
    instances: z.number().int().optional(),
    number: z.number().int().optional(),
  })
  .meta({ id: 'Series' });
/** An imaging study. */
export const studySchema = z
  .object({
    uid: z.string(),
    patientId: z.string().optional(),
    /** DICOM StudyDate as an ISO date (YYYY-MM-DD). */
    date: z.string().optional(),
    /** DICOM StudyTime as HH:MM:SS (local time of the scanner), when the study has one. */
    time: z.string().optional(),
    description: z.string().optional(),
    modalities: z.array(z.string()),
    series: z.array(seriesSchema),
  })
  .meta({ id: 'Study' });
/** An imaging study. */
export type ApiStudy = z.infer<typeof studySchema>;
/** A list of studies. */
export const studyListSchema = z.object({ items: z.array(studySchema) }).meta({ id: 'StudyList' });

/** The stages an analysis goes through, in order. */
export const analysisStatusSchema = z.enum(['queued', 'accepted', 'running', 'succeeded', 'failed', 'cancelled']);

/** Per-region tumour volumes, mL. */
export const regionVolumesSchema = z
  .object({
    enhancingTumor: z.number().nonnegative(),
    tumorCore: z.number().nonnegative(),
    wholeTumor: z.number().nonnegative(),
  })
  .meta({ id: 'RegionVolumes' });

/** One enhancing lesion, measured as bidimensional RANO does. */
export const lesionSchema = z
  .object({
    volumeMl: z.number().nonnegative(),
    longestDiameterMm: z.number().nonnegative(),
    perpendicularDiameterMm: z.number().nonnegative(),
    productMm2: z.number().nonnegative(),
    /** Axial slice index on the T1c grid. */
    slice: z.number().int().nonnegative(),
    /** Both diameters ≥ 10 mm. */
    measurable: z.boolean(),
  })
  .meta({ id: 'Lesion' });

/** A reason to doubt an AI result (e.g. `fov-edge`, `many-components`, `whole-tumour-large`, `et-outside-tc`). */
export const resultFlagSchema = z.object({ code: z.string(), message: z.string() }).meta({ id: 'ResultFlag' });

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
        segInstanceUid: z.string().optional(),
        /** The DICOM SR (TID 1500 Measurement Report) beside the SEG. */
        srSeriesUid: z.string().optional(),
        srInstanceUid: z.string().optional(),
        conclusion: z.string().optional(),
        /** The enhancing lesions, largest first: volume and the bidimensional RANO diameters. */
        lesions: z.array(lesionSchema).optional(),
        /** Sum of the products of the perpendicular diameters of the measurable enhancing lesions, mm². */
        sumOfProductsMm2: z.number().nonnegative().optional(),
        /** Plausibility flags; empty when none. A flagged result is approved only with a comment. */
        flags: z.array(resultFlagSchema),
      })
      .optional(),
    failure: z.object({ reason: z.string(), detail: z.string().optional() }).optional(),
    review: z
      .object({
        status: z.enum(['pending', 'approved', 'rejected']),
        /** The reviewer's user id. */
        reviewer: z.string().optional(),
        /** The reviewer's display name, as their token named them when they decided. */
        reviewerName: z.string().optional(),
        comment: z.string().optional(),
        reviewedAt: z.string().optional(),
      })
      .optional(),
  })
  .meta({ id: 'Analysis' });
/** An AI analysis. */
export type ApiAnalysis = z.infer<typeof analysisSchema>;

/** Request body of POST /api/studies/{studyUid}/analyses. */
export const analysisRequestSchema = z
  .strictObject({
    patientId: z.string().min(1),
    priority: z.number().int().min(0).max(9).default(5),
    modelId: z.string().min(1).optional(),
  })
  .meta({ id: 'AnalysisRequest' });

const reviewComment = z.string().trim().max(2000);
/** Request body of POST /api/analyses/{id}/review. */
export const reviewRequestSchema = z
  // A union on `decision` (rather than a refinement) so the OpenAPI document says that a rejection needs a comment.
  .discriminatedUnion('decision', [
    /** A comment is required to approve a flagged result (409 otherwise). */
    z.strictObject({ decision: z.literal('approve'), comment: reviewComment.optional() }),
    z.strictObject({
      decision: z.literal('reject'),
      comment: z
        .string({ error: 'a rejection needs a comment' })
        .trim()
        .min(1, 'a rejection needs a comment')
        .max(2000)
        .regex(/\S/),
    }),
  ])
  .meta({ id: 'ReviewRequest' });

/** One timepoint of the assessment: a study, represented by its latest non-rejected analysis. */
export const timepointSchema = z
  .object({
    analysisId: z.string(),
    studyUid: z.string(),
    /** The scan's date (DICOM StudyDate), with its StudyTime when known: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS. */
    date: z.string(),
    wholeTumorMl: z.number(),
    enhancingTumorMl: z.number(),
    /** Sum of the products of the perpendicular diameters of the enhancing lesions, mm² (bidimensional RANO). */
    sumOfProductsMm2: z.number().optional(),
    /** Earlier analyses of the same study that this one supersedes. */
    supersedes: z.array(z.string()).optional(),
  })
  .meta({ id: 'Timepoint' });

/** The longitudinal RANO status over the patient's studies in scan-date order. */
export const assessmentSchema = z
  .object({
    patientId: z.string(),
    status: z.enum(['complete-response', 'partial-response', 'stable', 'progression', 'not-evaluable']),
    /** The criteria that produced the status: bidimensional RANO when every timepoint has an SPD, else volumetric. */
    criteria: z.enum(['bidimensional', 'volumetric']).optional(),
    /** Whether a CR/PR is confirmed by a scan at least 4 weeks earlier (PD and SD need no confirmation). */
    confirmed: z.boolean().optional(),
    baselineAnalysisId: z.string().optional(),
    currentAnalysisId: z.string().optional(),
    /** Enhancing-tumour volume change from baseline, percent. */
    changePercent: z.number().optional(),
    /** Enhancing-tumour volume change from the nadir, percent. */
    changeFromNadirPercent: z.number().optional(),
    /** SPD change from baseline, percent (bidimensional criteria). */
    sumOfProductsChangePercent: z.number().optional(),
    /** Why, in words. */
    reasons: z.array(z.string()).optional(),
    /** The timepoints, oldest scan first. */
    timeline: z.array(timepointSchema),
  })
  .meta({ id: 'Assessment' });

/** Event names delivered over the WebSocket. */
export const eventTypeSchema = z.enum([
  'analysis.progress',
  'analysis.completed',
  'analysis.failed',
  'patient.updated',
  'patient.alert',
]);
/** An event name. */
export type EventType = z.infer<typeof eventTypeSchema>;

/** An event. `patientId` decides who may see it; `analysisId` routes analysis events to their subscribers. */
export const serverEventSchema = z
  .object({
    type: eventTypeSchema,
    patientId: z.string(),
    analysisId: z.string().optional(),
    data: z.record(z.string(), z.unknown()),
    time: z.string(),
    /** Unique per event; set by the server's replay log. */
    id: z.string().optional(),
    /** The event's number in each of its topics (`patient:<id>`, `analysis:<id>`), consecutive per topic. */
    seqs: z.record(z.string(), z.number().int().positive()).optional(),
  })
  .meta({ id: 'ServerEvent' });
/** An event. */
export type ServerEvent = z.infer<typeof serverEventSchema>;

/** A demo user of the sandbox's token endpoint. */
export const demoUserSchema = z.object({ id: z.string(), name: z.string(), role: z.string() }).meta({ id: 'DemoUser' });
/** A demo user. */
export type DemoUser = z.infer<typeof demoUserSchema>;

/** Answer of the sandbox token endpoint. */
export const tokenResponseSchema = z
  .object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number(), user: demoUserSchema })
  .meta({ id: 'TokenResponse' });
/** Answer of the sandbox token endpoint. */
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** A page of analyses, newest first; `nextCursor` asks for the next page. */
export const analysisListSchema = z
  .object({ items: z.array(analysisSchema), nextCursor: z.string().optional() })
  .meta({ id: 'AnalysisList' });
/** Answer of POST /api/studies/{studyUid}/analyses. */
export const analysisAcceptedSchema = z
  .object({ id: z.string(), status: analysisStatusSchema })
  .meta({ id: 'AnalysisAccepted' });
/** A review decision. */
export interface ReviewRequest {
  decision: 'approve' | 'reject';
  /** Required (not only spaces) to reject, and to approve a flagged result. */
  comment?: string;
}
/** Options of an analysis request. */
export type AnalysisRequest = z.input<typeof analysisRequestSchema>;
/** The longitudinal RANO-style status. */
export type Assessment = z.infer<typeof assessmentSchema>;
/** One audit record, as `GET /api/audit` returns it. */
export const auditRecordSchema = z
  .object({
    id: z.string(),
    time: z.string(),
    userId: z.string(),
    userName: z.string(),
    roles: z.array(z.string()),
    patientId: z.string().optional(),
    action: z.enum(['read', 'search', 'create', 'update', 'request', 'cancel', 'review', 'report-result']),
    resource: z.string(),
    outcome: z.enum(['success', 'failure', 'denied']),
    requestId: z.string(),
  })
  .meta({ id: 'AuditRecord' });
/** One audit record. */
export type AuditRecord = z.infer<typeof auditRecordSchema>;
/** A page of audit records, newest first; `nextCursor` (when present) fetches the next, older page. */
export const auditListSchema = z
  .object({ items: z.array(auditRecordSchema), nextCursor: z.string().optional() })
  .meta({ id: 'AuditList' });

/** A FHIR Bundle, checked only for its shape: the FHIR server is the place to validate FHIR. */
export const fhirBundleSchema = z
  .looseObject({
    resourceType: z.literal('Bundle'),
    type: z.string(),
    entry: z.array(z.looseObject({ resource: z.looseObject({ resourceType: z.string() }).optional() })).optional(),
  })
  .meta({ id: 'FhirBundle' });

/** One measurement made in the viewer (length, or RANO bidirectional), saved with its analysis. */
export const measurementSchema = z
  .strictObject({
    id: z.string().min(1).max(100),
    tool: z.enum(['Length', 'Bidirectional']),
    /** The length, or the longest diameter, mm. */
    lengthMm: z.number().nonnegative().max(2000),
    /** The perpendicular diameter (bidirectional), mm. */
    widthMm: z.number().nonnegative().max(2000).optional(),
    /** The viewer's annotation (Cornerstone3D), so it is shown again where it was drawn. */
    annotation: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'Measurement' });
/** One measurement. */
export type Measurement = z.infer<typeof measurementSchema>;
/** The measurements of an analysis. */
export const measurementListSchema = z
  .strictObject({ items: z.array(measurementSchema).max(100) })
  .meta({ id: 'MeasurementList' });

/** Who claimed an analysis for review, and when. */
export const claimSchema = z.object({ userId: z.string(), userName: z.string(), at: z.string() }).meta({ id: 'Claim' });
/** A claim. */
export type Claim = z.infer<typeof claimSchema>;

/** One row of the radiologist's worklist. */
export const worklistItemSchema = z
  .object({
    analysisId: z.string(),
    patient: z.object({
      id: z.string(),
      name: z.string(),
      pid: z.string().optional(),
      birthDate: z.string().optional(),
      sex: z.string().optional(),
    }),
    study: z.object({ uid: z.string(), date: z.string().optional(), description: z.string().optional() }),
    model: z.object({ id: z.string(), version: z.string() }),
    /** When the result was ready: waiting for review since then. */
    waitingSince: z.string(),
    /** The result's plausibility flags (empty when none). */
    flags: z.array(resultFlagSchema),
    claim: claimSchema.optional(),
  })
  .meta({ id: 'WorklistItem' });
/** One worklist row. */
export type WorklistItem = z.infer<typeof worklistItemSchema>;
/** The worklist. */
export const worklistSchema = z.object({ items: z.array(worklistItemSchema) }).meta({ id: 'Worklist' });
