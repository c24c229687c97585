/**
 * The AI analysis job protocol, version 1: every message that crosses the broker (or a webhook), as zod schemas.
 *
 * Modelled on MONAI Deploy's messaging (task dispatch / update events, a fixed failure-reason list), reduced to
 * what a brain-tumour segmentation job needs. The JSON Schema files in `schema/v1/` are generated from these
 * schemas (`pnpm --filter @cdss/ai-jobs gen:schema`), and `test-vectors/v1/` holds valid and invalid messages
 * so a worker written in another language can prove it speaks the protocol.
 * @packageDocumentation
 */
import { z } from 'zod';

/** The protocol's name, carried in every message. */
export const PROTOCOL_NAME = 'cdss.ai-jobs';
/** The protocol version these schemas describe. A breaking change gets a new major version and new schema files. */
export const PROTOCOL_VERSION = 1;

/** A DICOM UID (PS3.5 §9.1): dot-separated numeric components, at most 64 characters, no leading zeros. */
export const dicomUidSchema = z
  .string()
  .max(64)
  .regex(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/, 'must be a DICOM UID (digits and dots, PS3.5 §9.1)');

/** A job id: a UUID chosen by the requester. */
export const jobIdSchema = z.uuid();

/** An ISO 8601 date-time with an offset (UTC `Z` or `+hh:mm`). */
export const timestampSchema = z.iso.datetime({ offset: true });

/**
 * Request priority, FHIR `ServiceRequest.priority` codes (http://hl7.org/fhir/R4/valueset-request-priority.html).
 * Mapped to AMQP priorities by {@link AMQP_PRIORITY}.
 */
export const jobPrioritySchema = z.enum(['routine', 'urgent', 'asap', 'stat']);
/** Request priority. */
export type JobPriority = z.infer<typeof jobPrioritySchema>;

/** AMQP message priority of each {@link JobPriority} (the work queue is declared with `x-max-priority` 10). */
export const AMQP_PRIORITY: Readonly<Record<JobPriority, number>> = { routine: 1, urgent: 4, asap: 7, stat: 9 };

/** Pipeline stages a worker reports progress for. */
export const jobStageSchema = z.enum(['fetch', 'preprocess', 'inference', 'postprocess', 'store']);
/** A pipeline stage. */
export type JobStage = z.infer<typeof jobStageSchema>;

/**
 * Why a job failed: a fixed list, like MONAI Deploy's `FailureReason`, so that servers can act on it
 * (retry, alert, tell the clinician) without parsing free text.
 */
export const failureReasonSchema = z.enum([
  'invalid-request',
  'study-not-found',
  'series-missing',
  'unsupported-model',
  'input-fetch-failed',
  'preprocessing-failed',
  'inference-failed',
  'output-store-failed',
  'deadline-exceeded',
  'worker-lost',
  'retries-exhausted',
  'internal-error',
]);
/** A failure reason from the fixed list. */
export type FailureReason = z.infer<typeof failureReasonSchema>;

/** The model a job asks for (or that produced a result). */
export const modelRefSchema = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, dot, dash, underscore'),
  version: z.string().min(1).max(64),
});
/** A model reference. */
export type ModelRef = z.infer<typeof modelRefSchema>;

/** The four MRI series the BraTS model reads (T1 post-contrast, T1, T2, T2-FLAIR), by series instance UID. */
export const seriesSetSchema = z.strictObject({
  t1c: dicomUidSchema,
  t1: dicomUidSchema,
  t2: dicomUidSchema,
  flair: dicomUidSchema,
});

const envelope = {
  /** Always {@link PROTOCOL_NAME}. */
  protocol: z.literal(PROTOCOL_NAME),
  /** Always {@link PROTOCOL_VERSION}. */
  version: z.literal(PROTOCOL_VERSION),
  /** Unique per message (a retry of the same message keeps it). */
  messageId: z.uuid(),
  /** The job this message is about. */
  jobId: jobIdSchema,
  /** When the sender created this message. */
  sentAt: timestampSchema,
};

/** Server → worker: please analyse this study. */
export const analysisRequestedSchema = z.strictObject({
  ...envelope,
  type: z.literal('analysis.requested'),
  /** The requester's key: the same key twice is one job. */
  idempotencyKey: z.string().min(1).max(128),
  /** A FHIR reference to the patient, e.g. `Patient/123` (an identifier, never a name). */
  patientRef: z.string().regex(/^Patient\/[A-Za-z0-9\-.]{1,64}$/, 'must be a FHIR reference Patient/<id>'),
  studyInstanceUid: dicomUidSchema,
  series: seriesSetSchema,
  model: modelRefSchema,
  priority: jobPrioritySchema,
  /** Who asked: a user or service id (not a name). */
  requestedBy: z.string().min(1).max(128),
  createdAt: timestampSchema,
  /** Results after this moment are useless: the worker fails the job with `deadline-exceeded`. */
  deadline: timestampSchema.optional(),
  /** Where the worker may also POST signed webhooks (see the README's header format). */
  callbackUrl: z.url({ protocol: /^https?$/ }).optional(),
});

/** 1 for the first try; grows with each retry the worker saw. */
const attemptSchema = z.int().min(1);

/**
 * Worker → server: I have taken the job. Optional since a worker may skip it for a job that ends quickly: its final
 * event then carries the `attempt` instead (the TypeScript worker publishes it only for jobs still running after
 * `acceptedAfterMs`).
 */
export const analysisAcceptedSchema = z.strictObject({
  ...envelope,
  type: z.literal('analysis.accepted'),
  workerId: z.string().min(1).max(128),
  /** 1 for the first try; grows with each retry or redelivery the worker saw. */
  attempt: attemptSchema,
});

/** Worker → server: the job is running; also a heartbeat. */
export const analysisProgressSchema = z.strictObject({
  ...envelope,
  type: z.literal('analysis.progress'),
  workerId: z.string().min(1).max(128),
  stage: jobStageSchema,
  /** Overall progress, 0–100. */
  percent: z.number().min(0).max(100),
});

/** Volume of one tumour sub-region (BraTS labels: enhancing tumour, tumour core, whole tumour). */
export const regionVolumeSchema = z.strictObject({
  region: z.enum(['enhancing-tumour', 'tumour-core', 'whole-tumour']),
  /** Millilitres (cm³). */
  volumeMl: z.number().min(0),
  voxelCount: z.int().min(0),
});

/**
 * One enhancing lesion (a connected component of the enhancing tumour), measured as RANO does: the longest diameter
 * on an axial slice and the longest diameter perpendicular to it on the same slice.
 */
export const lesionMeasurementSchema = z.strictObject({
  /** Millilitres, from the voxel spacing. */
  volumeMl: z.number().min(0),
  longestDiameterMm: z.number().min(0),
  perpendicularDiameterMm: z.number().min(0),
  /** longest × perpendicular, mm². */
  productMm2: z.number().min(0),
  /** The axial slice (0-based index on the source T1c grid) where the diameters were measured. */
  slice: z.int().min(0),
  /** RANO: measurable when both diameters are at least 10 mm. */
  measurable: z.boolean(),
});
/** One measured enhancing lesion. */
export type LesionMeasurement = z.infer<typeof lesionMeasurementSchema>;

/**
 * A reason to doubt a result (a plausibility check failed). The codes the TypeScript worker uses: `fov-edge`,
 * `many-components`, `whole-tumour-large`, `et-outside-tc`, `empty-with-enhancement`; other workers may add their own.
 */
export const resultFlagSchema = z.strictObject({
  code: z
    .string()
    .max(64)
    .regex(/^[a-z][a-z0-9-]*$/),
  /** Why, for the reviewer (free of PHI). */
  message: z.string().min(1).max(500),
});
/** A plausibility flag. */
export type ResultFlag = z.infer<typeof resultFlagSchema>;

/** The result of a successful analysis. */
export const analysisResultSchema = z.strictObject({
  regions: z.array(regionVolumeSchema).min(1),
  /** The DICOM SEG the worker stored. */
  segmentation: z.strictObject({
    studyInstanceUid: dicomUidSchema,
    seriesInstanceUid: dicomUidSchema,
    sopInstanceUid: dicomUidSchema,
  }),
  model: modelRefSchema,
  /** Milliseconds spent in each stage. */
  timingsMs: z.partialRecord(jobStageSchema, z.number().min(0)),
  /** Largest diameter of the whole tumour in millimetres (mCODE TumorSize); absent when no tumour was found. */
  largestDiameterMm: z.number().min(0).optional(),
  /** The enhancing lesions, largest first (bidimensional RANO). */
  lesions: z.array(lesionMeasurementSchema).max(1000).optional(),
  /** Sum of the products of the perpendicular diameters of the measurable enhancing lesions, mm². */
  sumOfProductsMm2: z.number().min(0).optional(),
  /** Plausibility flags: a flagged result needs a reviewer's comment to be approved. */
  flags: z.array(resultFlagSchema).max(50).optional(),
  /** The DICOM SR (TID 1500 Measurement Report) the worker stored beside the SEG. */
  structuredReport: z.strictObject({ seriesInstanceUid: dicomUidSchema, sopInstanceUid: dicomUidSchema }).optional(),
});
/** The result of a successful analysis. */
export type AnalysisResult = z.infer<typeof analysisResultSchema>;

/** Worker → server: done. */
export const analysisSucceededSchema = z.strictObject({
  ...envelope,
  type: z.literal('analysis.succeeded'),
  workerId: z.string().min(1).max(128),
  /** The attempt that produced the result (optional: workers that always send `accepted` may leave it out). */
  attempt: attemptSchema.optional(),
  result: analysisResultSchema,
});

/** Worker → server: the job failed for good (retries, if any, are behind it). */
export const analysisFailedSchema = z.strictObject({
  ...envelope,
  type: z.literal('analysis.failed'),
  workerId: z.string().min(1).max(128).optional(),
  /** The attempt that failed (optional: workers that always send `accepted` may leave it out). */
  attempt: attemptSchema.optional(),
  reason: failureReasonSchema,
  /** Whether asking again could succeed (e.g. the PACS was down), as opposed to a bad request. */
  retryable: z.boolean(),
  /** Human-readable detail, free of PHI. */
  detail: z.string().max(2000),
});

/** Server ↔ worker: the job was cancelled (by the server) or has stopped because of a cancellation (worker). */
export const analysisCancelledSchema = z.strictObject({
  ...envelope,
  type: z.literal('analysis.cancelled'),
  /** Who cancelled: a user or service id. */
  cancelledBy: z.string().min(1).max(128),
  reason: z.string().max(500).optional(),
});

/** Any message of the protocol, discriminated by `type`. */
export const jobMessageSchema = z.discriminatedUnion('type', [
  analysisRequestedSchema,
  analysisAcceptedSchema,
  analysisProgressSchema,
  analysisSucceededSchema,
  analysisFailedSchema,
  analysisCancelledSchema,
]);

/** Messages that report on a job (everything but the request). */
export const jobEventSchema = z.discriminatedUnion('type', [
  analysisAcceptedSchema,
  analysisProgressSchema,
  analysisSucceededSchema,
  analysisFailedSchema,
  analysisCancelledSchema,
]);

/** Server → worker: please analyse this study. */
export type AnalysisRequested = z.infer<typeof analysisRequestedSchema>;
/** Worker → server: job taken. */
export type AnalysisAccepted = z.infer<typeof analysisAcceptedSchema>;
/** Worker → server: progress and heartbeat. */
export type AnalysisProgress = z.infer<typeof analysisProgressSchema>;
/** Worker → server: result. */
export type AnalysisSucceeded = z.infer<typeof analysisSucceededSchema>;
/** Worker → server: final failure. */
export type AnalysisFailed = z.infer<typeof analysisFailedSchema>;
/** Cancellation. */
export type AnalysisCancelled = z.infer<typeof analysisCancelledSchema>;
/** Any protocol message. */
export type JobMessage = z.infer<typeof jobMessageSchema>;
/** A message that reports on a job. */
export type JobEvent = z.infer<typeof jobEventSchema>;
/** The `type` of a protocol message. */
export type JobMessageType = JobMessage['type'];

/** Every message schema by its `type`, the names the JSON Schema files carry. */
export const MESSAGE_SCHEMAS = {
  'analysis.requested': analysisRequestedSchema,
  'analysis.accepted': analysisAcceptedSchema,
  'analysis.progress': analysisProgressSchema,
  'analysis.succeeded': analysisSucceededSchema,
  'analysis.failed': analysisFailedSchema,
  'analysis.cancelled': analysisCancelledSchema,
} as const;
