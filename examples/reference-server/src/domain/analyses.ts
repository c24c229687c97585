/**
 * AI analysis routes and the pipeline's server side: requests go through `@cdss/ai-jobs` (job recorded, then
 * published with a broker confirm); progress and results come back as job events (queue or signed webhook), are
 * recorded once, pushed to WebSocket subscribers, and turned into a preliminary FHIR DiagnosticReport that a
 * radiologist then approves or rejects.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from 'pino';
import {
  CancelAnalysis,
  GetAnalysis,
  JobNotFoundError,
  PAGE_CURSOR_PATTERN,
  RequestAnalysis,
  jobEventSchema,
  type JobChange,
  type JobClient,
  type JobRecord,
  type JobStore,
  type JobStoreTransaction,
} from '@cdss/ai-jobs';
import { selectStudySeries, StudySeriesError } from '@cdss/dicom';
import type { Bundle } from 'fhir/r4.js';
import {
  analysisAcceptedSchema,
  analysisListSchema,
  analysisRequestSchema,
  analysisSchema,
  assessmentSchema,
  fhirBundleSchema,
  patientIdSchema,
  reviewRequestSchema,
  type ApiAnalysis,
  type ApiStudy,
  type Assessment,
} from '../api-schemas.js';
import { IdempotencyConflictError } from '@cdss/cache';
import { ApiError, notFound } from '../http/errors.js';
import { IDEMPOTENCY_ERRORS, idempotencyHeaders, idempotencyScope } from '../http/idempotency.js';
import { defineRoute, type AnyRoute } from '../http/route.js';
import type { EventBus } from '../events.js';
import type { ServerMetrics } from '../metrics.js';
import type { Auditor } from './auditor.js';
import type { FhirSync, ImagingArchive, ReadThroughCache, StateTransaction } from './ports.js';
import type { ReviewRecord, ReviewStatus, ReviewStore } from './reviews.js';
import { binaryBodySchema, dicomUidSchema, gridResponse } from './studies.js';

/** Turns results into FHIR and longitudinal assessments (over `@cdss/fhir-mapper`). */
export interface ReportBuilder {
  /**
   * The transaction Bundle of a succeeded analysis, its DiagnosticReport status following the review; with `amends`
   * (an approved analysis of the same study that this approved one corrects) the report is `amended` in place.
   */
  report(analysis: ApiAnalysis, study: ApiStudy | undefined, amends?: ApiAnalysis): Bundle;
  /**
   * The RANO status over a patient's analyses, one timepoint per study in scan-date order (the builder skips
   * unsucceeded and rejected analyses, and lets a re-run supersede earlier runs of its study).
   * @param studies - the analysed studies by StudyInstanceUID, for their StudyDate/StudyTime
   */
  assess(
    patientId: string,
    analyses: readonly ApiAnalysis[],
    studies: ReadonlyMap<string, ApiStudy | undefined>,
  ): Assessment;
}

/** The model the server asks for. */
export interface ModelChoice {
  id: string;
  version: string;
}

/** Dependencies of the analysis routes. */
export interface AnalysisDeps {
  jobs: JobClient;
  /** The job store's queries (by patient, study and state), answered with indexes and cursors. */
  jobStore: Pick<JobStore, 'page' | 'count' | 'getMany'>;
  reviews: ReviewStore;
  /** Idempotent writes (the `Idempotency-Key` of analysis requests). */
  writes: Pick<ReadThroughCache, 'write'>;
  archive: ImagingArchive;
  reports: ReportBuilder;
  fhir: FhirSync;
  bus: EventBus;
  auditor: Auditor;
  metrics: ServerMetrics;
  models: readonly ModelChoice[];
  logger: Logger;
}

const idParams = z.object({ id: z.uuid() });
const PRIORITY = [
  'routine',
  'routine',
  'routine',
  'routine',
  'urgent',
  'urgent',
  'asap',
  'asap',
  'stat',
  'stat',
] as const;

/** A review as the API shows it (its job is the analysis itself). */
function reviewView(review: ReviewRecord | undefined): NonNullable<ApiAnalysis['review']> {
  if (!review) return { status: 'pending' };
  const { jobId: _jobId, ...view } = review;
  return view;
}

/**
 * The study's tumour-protocol series (T1c, T1, T2, FLAIR) by Series Instance UID, as an analysis request names them.
 * @param study - the study with its series
 * @throws `StudySeriesError` (`@cdss/dicom`) when the protocol is incomplete or ambiguous
 */
export function protocolSeries(study: ApiStudy): Record<'t1c' | 't1' | 't2' | 'flair', string> {
  const series = selectStudySeries(
    study.series.map((s) => ({ seriesInstanceUid: s.uid, description: s.description ?? '', modality: s.modality })),
  );
  return {
    t1c: series.t1c.seriesInstanceUid,
    t1: series.t1.seriesInstanceUid,
    t2: series.t2.seriesInstanceUid,
    flair: series.flair.seriesInstanceUid,
  };
}

/**
 * The API view of a job and its review.
 * @param job - the job record
 * @param review - its review, if any
 */
export function toApiAnalysis(job: JobRecord, review: ReviewRecord | undefined): ApiAnalysis {
  const terminal = job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled';
  const volume = (region: string): number => job.result?.regions.find((r) => r.region === region)?.volumeMl ?? 0;
  return {
    id: job.jobId,
    patientId: job.request.patientRef.slice('Patient/'.length),
    studyUid: job.request.studyInstanceUid,
    status: job.state,
    ...(job.progress ? { stage: job.progress.stage, percent: job.progress.percent } : {}),
    ...(job.state === 'succeeded' ? { percent: 100 } : {}),
    requestedBy: job.request.requestedBy,
    requestedAt: job.createdAt,
    ...(terminal ? { finishedAt: job.updatedAt } : {}),
    model: job.request.model,
    ...(job.result
      ? {
          result: {
            volumes: {
              enhancingTumor: volume('enhancing-tumour'),
              tumorCore: volume('tumour-core'),
              wholeTumor: volume('whole-tumour'),
            },
            segSeriesUid: job.result.segmentation.seriesInstanceUid,
            segInstanceUid: job.result.segmentation.sopInstanceUid,
            ...(job.result.structuredReport
              ? {
                  srSeriesUid: job.result.structuredReport.seriesInstanceUid,
                  srInstanceUid: job.result.structuredReport.sopInstanceUid,
                }
              : {}),
            ...(job.result.largestDiameterMm !== undefined ? { largestDiameterMm: job.result.largestDiameterMm } : {}),
            ...(job.result.lesions ? { lesions: job.result.lesions } : {}),
            ...(job.result.sumOfProductsMm2 !== undefined ? { sumOfProductsMm2: job.result.sumOfProductsMm2 } : {}),
            flags: job.result.flags ?? [],
          },
        }
      : {}),
    ...(job.failure ? { failure: { reason: job.failure.reason, detail: job.failure.detail } } : {}),
    ...(job.state === 'succeeded' ? { review: reviewView(review) } : {}),
  };
}

/**
 * The analysis routes, and the listener that turns job changes into events, metrics and FHIR writes.
 * @param deps - job client, stores, archive, report builder, FHIR sync, bus, auditor, metrics
 * @returns the routes and `start()`, which subscribes to job changes (returns an unsubscribe)
 */
export function analysisFeature(deps: AnalysisDeps): {
  routes: AnyRoute[];
  start(): () => void;
  /** A patient's analyses with their reviews, oldest first. */
  patientAnalyses(patientId: string): Promise<ApiAnalysis[]>;
  /** Succeeded analyses whose review is pending (paged through the review store's status index). */
  pendingReview(): Promise<ApiAnalysis[]>;
  /** One analysis with its review (404 when unknown). */
  view(jobId: string): Promise<ApiAnalysis>;
  /** Pass as `JobClientOptions.onChange`: what must commit with a job's change. */
  onJobChange(change: JobChange, transaction: JobStoreTransaction): Promise<void>;
} {
  const { jobs, reviews, archive, reports, fhir, bus, auditor, metrics } = deps;

  async function getJob(jobId: string): Promise<JobRecord> {
    try {
      return await jobs.send(new GetAnalysis({ jobId }));
    } catch (error) {
      if (error instanceof JobNotFoundError) throw notFound('Analysis');
      throw error;
    }
  }

  async function view(jobId: string): Promise<ApiAnalysis> {
    return toApiAnalysis(await getJob(jobId), await reviews.get(jobId));
  }

  async function withReviews(list: readonly JobRecord[]): Promise<ApiAnalysis[]> {
    const byJob = await reviews.getMany(list.filter((job) => job.state === 'succeeded').map((job) => job.jobId));
    return list.map((job) => toApiAnalysis(job, byJob.get(job.jobId)));
  }

  /** Every analysis of a patient, oldest first (paged through the store's patient index). */
  async function patientAnalyses(patientId: string): Promise<ApiAnalysis[]> {
    const all: JobRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await deps.jobStore.page({
        patientRef: `Patient/${patientId}`,
        order: 'oldest',
        limit: 500,
        ...(cursor ? { cursor } : {}),
      });
      all.push(...page.jobs);
      cursor = page.nextCursor;
    } while (cursor);
    return withReviews(all);
  }

  /**
   * A page of analyses: by review status (most recently succeeded first), else a patient's or everyone's (newest
   * first).
   */
  async function listPage(query: {
    patient?: string | undefined;
    review?: ReviewStatus | undefined;
    limit: number;
    cursor?: string | undefined;
  }): Promise<{ items: ApiAnalysis[]; nextCursor?: string }> {
    const paging = { limit: query.limit, ...(query.cursor ? { cursor: query.cursor } : {}) };
    if (query.review) {
      const page = await reviews.page({
        status: query.review,
        ...(query.patient ? { patientId: query.patient } : {}),
        ...paging,
      });
      const items = await withReviews(await deps.jobStore.getMany(page.jobIds));
      return { items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    }
    // a patient's analyses, or everyone's (newest first, a page at a time)
    const page = await deps.jobStore.page({
      ...(query.patient ? { patientRef: `Patient/${query.patient}` } : {}),
      ...paging,
    });
    return { items: await withReviews(page.jobs), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  }

  /** The patient's assessment; the scan dates come from the PACS. */
  async function assessPatient(patientId: string): Promise<Assessment> {
    const analyses = await patientAnalyses(patientId);
    const uids = [...new Set(analyses.filter((a) => a.status === 'succeeded').map((a) => a.studyUid))];
    const studies = new Map(await Promise.all(uids.map(async (uid) => [uid, await archive.study(uid)] as const)));
    return reports.assess(patientId, analyses, studies);
  }

  /** The first approved analysis of the study other than `analysis`: the report a correction amends. */
  async function approvedBefore(analysis: ApiAnalysis): Promise<ApiAnalysis | undefined> {
    return (await patientAnalyses(analysis.patientId)).find(
      (a) => a.studyUid === analysis.studyUid && a.id !== analysis.id && a.review?.status === 'approved',
    );
  }

  /** The FHIR Bundle of a succeeded analysis; the study's series are added when the PACS answers. */
  async function reportOf(analysis: ApiAnalysis): Promise<Bundle> {
    const study = await archive.study(analysis.studyUid).catch(() => undefined);
    const prior = analysis.review?.status === 'approved' ? await approvedBefore(analysis) : undefined;
    return reports.report(analysis, study, prior);
  }

  /**
   * Queues the analysis's report for FHIR, in the caller's transaction. Once a study has an approved report, a re-run
   * does not add a second one: it is written only when approved, as an amendment of the approved report (`amended`,
   * in place).
   */
  async function publishReport(analysis: ApiAnalysis, transaction: StateTransaction): Promise<void> {
    if (analysis.review?.status !== 'approved' && (await approvedBefore(analysis))) return;
    await fhir.enqueue('analysis-report', await reportOf(analysis), transaction);
  }

  /**
   * Inside the job store's transaction that records a change (see `JobClientOptions.onChange`): a succeeded
   * analysis opens its review and queues its preliminary report, committed with the result or not at all.
   */
  async function recordWithChange(change: JobChange, transaction: JobStoreTransaction): Promise<void> {
    if (change.event.type !== 'analysis.succeeded' || change.transition?.to !== 'succeeded') return;
    const analysis = toApiAnalysis(change.job, { jobId: change.job.jobId, status: 'pending' });
    await reviews.open(
      { jobId: analysis.id, patientId: analysis.patientId, openedAt: change.job.updatedAt },
      transaction,
    );
    await publishReport(analysis, transaction);
  }

  async function onChange(change: JobChange): Promise<void> {
    const analysis = toApiAnalysis(
      change.job,
      change.job.state === 'succeeded' ? await reviews.get(change.job.jobId) : undefined,
    );
    const base = { patientId: analysis.patientId, analysisId: analysis.id, time: new Date().toISOString() };
    switch (change.event.type) {
      case 'analysis.accepted':
      case 'analysis.progress':
        await bus.publish({
          ...base,
          type: 'analysis.progress',
          data: { status: analysis.status, stage: analysis.stage, percent: analysis.percent ?? 0 },
        });
        break;
      case 'analysis.succeeded':
        metrics.jobsFinished.inc({ status: 'succeeded' });
        for (const [stage, ms] of Object.entries(change.event.result.timingsMs))
          metrics.jobStageDuration.observe({ stage }, ms / 1000);
        await bus.publish({
          ...base,
          type: 'analysis.completed',
          data: { status: analysis.status, percent: 100, volumes: analysis.result?.volumes },
        });
        break;
      case 'analysis.failed':
      case 'analysis.cancelled':
        metrics.jobsFinished.inc({ status: analysis.status });
        await bus.publish({
          ...base,
          type: 'analysis.failed',
          data: { status: analysis.status, reason: analysis.failure?.reason ?? 'cancelled' },
        });
        break;
    }
  }

  const routes: AnyRoute[] = [
    defineRoute({
      method: 'post',
      path: '/api/studies/{studyUid}/analyses',
      operationId: 'requestAnalysis',
      summary: 'Ask the AI worker to segment a study (202 with the job id)',
      tags: ['analyses'],
      access: { permission: 'analysis:request' },
      params: z.object({ studyUid: dicomUidSchema }),
      // The models this server runs, by id: the document lists exactly the ones it accepts.
      body: analysisRequestSchema.extend({
        patientId: patientIdSchema,
        modelId: z.enum(deps.models.map((m) => m.id) as [string, ...string[]]).optional(),
      }),
      response: { status: 202, description: 'The analysis was queued', schema: analysisAcceptedSchema },
      headers: idempotencyHeaders,
      errors: [404, 409, 503, ...IDEMPOTENCY_ERRORS],
      handler: ({ params, body, principal, requestId, req }) =>
        auditor.around(
          {
            principal,
            requestId,
            action: 'request',
            resource: `ImagingStudy/${params.studyUid}`,
            patientId: body.patientId,
          },
          async (audit) => {
            const study = await archive.study(params.studyUid);
            if (!study) throw notFound('Study');
            if (study.patientId && study.patientId !== body.patientId)
              throw new ApiError(422, 'business-rule', 'The study belongs to another patient', ['patientId']);
            let series;
            try {
              series = protocolSeries(study);
            } catch (error) {
              if (error instanceof StudySeriesError) throw new ApiError(409, 'business-rule', error.message);
              throw error;
            }
            const model = deps.models.find((m) => m.id === (body.modelId ?? deps.models[0]?.id));
            if (!model) throw new ApiError(400, 'invalid', `Unknown model ${body.modelId ?? ''}`.trim(), ['modelId']);
            const scope = idempotencyScope(req, principal, body);
            const input = {
              // the job store keeps one job per key: the scoped key (a digest, never truncated) or a fresh one
              idempotencyKey: scope?.key ?? randomUUID(),
              patientRef: `Patient/${body.patientId}`,
              studyInstanceUid: params.studyUid,
              series,
              model,
              priority: PRIORITY[body.priority],
              requestedBy: principal.id,
            };
            const request = async (): Promise<z.infer<typeof analysisAcceptedSchema>> => {
              const job = await jobs.send(new RequestAnalysis(input));
              // A key the job store still holds after its idempotency record expired: never another request's job.
              const first = job.request;
              if (
                first.patientRef !== input.patientRef ||
                first.studyInstanceUid !== input.studyInstanceUid ||
                first.model.id !== input.model.id ||
                first.priority !== input.priority
              )
                throw new IdempotencyConflictError();
              return { id: job.jobId, status: job.state };
            };
            const { value: accepted } = await deps.writes.write(request, {
              schema: analysisAcceptedSchema,
              // RequestAnalysis is itself idempotent by key: an attempt with an unknown outcome simply runs again
              ...(scope ? { idempotency: { ...scope, readBack: async () => undefined } } : {}),
            });
            audit.resource = `Analysis/${accepted.id}`;
            return {
              status: 202,
              body: accepted,
              headers: { Location: `/api/analyses/${accepted.id}` },
            };
          },
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/analyses',
      operationId: 'listAnalyses',
      summary: 'Analyses by review status, of a patient, or everyone’s: newest first, a page at a time',
      tags: ['analyses'],
      access: { permission: 'analysis:read' },
      query: z.strictObject({
        patient: patientIdSchema.optional(),
        review: z.enum(['pending', 'approved', 'rejected']).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: z.string().regex(PAGE_CURSOR_PATTERN).optional(),
      }),
      response: { status: 200, description: 'A page of analyses, newest first', schema: analysisListSchema },
      handler: ({ query, principal, requestId }) =>
        auditor.around(
          {
            principal,
            requestId,
            action: 'search',
            resource: 'Analysis',
            ...(query.patient ? { patientId: query.patient } : {}),
          },
          async () => ({ body: await listPage(query) }),
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/analyses/{id}',
      operationId: 'getAnalysis',
      summary: 'One analysis: status, progress, result, review',
      tags: ['analyses'],
      access: { permission: 'analysis:read' },
      params: idParams,
      response: { status: 200, description: 'The analysis', schema: analysisSchema },
      errors: [404],
      handler: ({ params, principal, requestId }) =>
        auditor.around({ principal, requestId, action: 'read', resource: `Analysis/${params.id}` }, async (audit) => {
          const analysis = await view(params.id);
          audit.patientId = analysis.patientId;
          return { body: analysis };
        }),
    }),
    defineRoute({
      method: 'post',
      path: '/api/analyses/{id}/cancel',
      operationId: 'cancelAnalysis',
      summary: 'Cancel a queued or running analysis',
      tags: ['analyses'],
      access: { permission: 'analysis:cancel' },
      params: idParams,
      response: { status: 200, description: 'The analysis after cancellation', schema: analysisSchema },
      errors: [404],
      handler: ({ params, principal, requestId }) =>
        auditor.around({ principal, requestId, action: 'cancel', resource: `Analysis/${params.id}` }, async (audit) => {
          const before = await view(params.id);
          audit.patientId = before.patientId;
          const job = await jobs.send(new CancelAnalysis({ jobId: params.id, cancelledBy: principal.id }));
          return { body: toApiAnalysis(job, await reviews.get(params.id)) };
        }),
    }),
    defineRoute({
      method: 'get',
      path: '/api/analyses/{id}/report',
      operationId: 'getAnalysisReport',
      summary: 'The FHIR transaction Bundle of the result (DiagnosticReport, Observations, ImagingStudy)',
      tags: ['analyses'],
      access: { permission: 'analysis:read' },
      params: idParams,
      response: {
        status: 200,
        description: 'A FHIR Bundle',
        schema: fhirBundleSchema,
        contentType: 'application/fhir+json',
      },
      errors: [404, 409],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `DiagnosticReport/${params.id}` },
          async (audit) => {
            const analysis = await view(params.id);
            audit.patientId = analysis.patientId;
            if (analysis.status !== 'succeeded')
              throw new ApiError(
                409,
                'business-rule',
                `The analysis is ${analysis.status}; a report exists only for succeeded analyses`,
              );
            return { body: (await reportOf(analysis)) as z.infer<typeof fhirBundleSchema> };
          },
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/analyses/{id}/segmentation',
      operationId: 'getAnalysisSegmentation',
      summary: 'The AI segmentation as raw uint8 BraTS labels on the T1c grid (dims and spacing in X-Volume-* headers)',
      tags: ['analyses'],
      access: { permission: 'analysis:read' },
      params: idParams,
      response: {
        status: 200,
        description: 'Uint8 labels, i fastest',
        schema: binaryBodySchema,
        contentType: 'application/octet-stream',
      },
      errors: [404, 409],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `Analysis/${params.id}/segmentation` },
          async (audit) => {
            const job = await getJob(params.id);
            audit.patientId = job.request.patientRef.slice('Patient/'.length);
            if (!job.result)
              throw new ApiError(409, 'business-rule', `The analysis is ${job.state}; it has no segmentation`);
            const grid = await archive.segmentation(
              job.request.studyInstanceUid,
              {
                seriesUid: job.result.segmentation.seriesInstanceUid,
                instanceUid: job.result.segmentation.sopInstanceUid,
              },
              job.request.series.t1c,
            );
            return gridResponse(grid);
          },
        ),
    }),
    defineRoute({
      method: 'post',
      path: '/api/analyses/{id}/review',
      operationId: 'reviewAnalysis',
      summary: 'Approve (final) or reject (entered-in-error, with a comment) an AI result',
      tags: ['analyses'],
      access: { permission: 'analysis:review' },
      params: idParams,
      body: reviewRequestSchema,
      response: { status: 200, description: 'The reviewed analysis', schema: analysisSchema },
      errors: [404, 409],
      handler: ({ params, body, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'review', resource: `DiagnosticReport/${params.id}` },
          async (audit) => {
            const job = await getJob(params.id);
            const before = toApiAnalysis(job, undefined);
            audit.patientId = before.patientId;
            if (before.status !== 'succeeded')
              throw new ApiError(
                409,
                'business-rule',
                `Only succeeded analyses can be reviewed; this one is ${before.status}`,
              );
            const flags = before.result?.flags ?? [];
            if (body.decision === 'approve' && flags.length > 0 && !body.comment)
              throw new ApiError(
                409,
                'business-rule',
                `The result is flagged (${flags.map((f) => f.code).join(', ')}); approving it needs a comment`,
                ['comment'],
              );
            const reviewed = {
              jobId: params.id,
              status: body.decision === 'approve' ? ('approved' as const) : ('rejected' as const),
              reviewer: principal.id,
              reviewerName: principal.name,
              ...(body.comment ? { comment: body.comment } : {}),
              reviewedAt: new Date().toISOString(),
            };
            // A succeeded job is final: only its review changes. The report that says so is queued in the
            // transaction that records the decision: both are kept, or neither (and the retry decides again).
            const after = toApiAnalysis(job, reviewed);
            const decision = await reviews.decide({ ...reviewed, patientId: after.patientId }, (transaction) =>
              publishReport(after, transaction),
            );
            if (!decision.changed) throw new ApiError(409, 'conflict', `Already ${decision.record.status}`);
            if (after.review?.status === 'approved') {
              const assessment = await assessPatient(after.patientId);
              // Only a progression at this analysis's own timepoint is news: approving an older scan raises nothing.
              if (assessment.status === 'progression' && assessment.currentAnalysisId === after.id) {
                await bus.publish({
                  type: 'patient.alert',
                  patientId: after.patientId,
                  analysisId: after.id,
                  data: { status: assessment.status, changePercent: assessment.changePercent },
                  time: new Date().toISOString(),
                });
              }
            }
            return { body: after };
          },
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/patients/{id}/assessment',
      operationId: 'getAssessment',
      summary: 'The patient’s longitudinal RANO status, one timepoint per study in scan-date order',
      tags: ['analyses'],
      access: { permission: 'analysis:read' },
      params: z.object({
        id: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[\w-]+$/),
      }),
      response: {
        status: 200,
        description: 'The assessment and the timeline of tumour volumes',
        schema: assessmentSchema,
      },
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `Patient/${params.id}/assessment`, patientId: params.id },
          async () => ({ body: await assessPatient(params.id) }),
        ),
    }),
    defineRoute({
      method: 'post',
      path: '/api/webhooks/ai',
      operationId: 'aiWebhook',
      summary: 'Signed job events from AI workers (HMAC-SHA256, see @cdss/ai-jobs)',
      tags: ['analyses'],
      access: 'webhook-signature',
      bodyContentType: 'application/json',
      // Documents the body; the webhook verifier checks the raw bytes against it after the signature.
      body: jobEventSchema,
      response: { status: 204, description: 'Recorded', schema: z.null() },
      // 404 no such job, 409 a replay or an event the job no longer accepts, 503 the store could not record it
      errors: [404, 409, 503],
      // The signature was checked and the event recorded by the job client before the handler runs (see compose.ts).
      handler: async () => ({ status: 204, body: null }),
    }),
  ];

  return {
    routes,
    patientAnalyses,
    async pendingReview() {
      const pending: ApiAnalysis[] = [];
      let cursor: string | undefined;
      do {
        const page = await listPage({ review: 'pending', limit: 500, ...(cursor ? { cursor } : {}) });
        pending.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return pending;
    },
    view,
    onJobChange: recordWithChange,
    start() {
      const unsubscribe = jobs.subscribe((change) => {
        onChange(change).catch((error: unknown) =>
          deps.logger.error({ err: error, jobId: change.job.jobId }, 'could not process a job change'),
        );
      });
      // Queue depth for the backlog alert: jobs not yet finished.
      const refresh = async (): Promise<void> => {
        metrics.jobsQueueDepth.set(await deps.jobStore.count({ states: ['queued', 'accepted', 'running'] }));
      };
      const timer = setInterval(() => void refresh().catch(() => undefined), 15_000);
      timer.unref();
      void refresh().catch(() => undefined);
      return () => {
        clearInterval(timer);
        unsubscribe();
      };
    },
  };
}
