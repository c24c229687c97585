/**
 * Composes what puts the CDSS inside the clinician's EHR: the CDS Hooks service (with its store, caller
 * verification and the cached tumour status its cards read) and the analyses that start themselves from the PACS's
 * change feed. Kept apart from `compose.ts`, which only calls it.
 */
import { join, resolve } from 'node:path';
import type { Router } from 'express';
import { Counter, Gauge } from 'prom-client';
import { createPool, type Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Cache } from '@cdss/cache';
import { RequestAnalysis, type JobClient, type JobStore } from '@cdss/ai-jobs';
import type { OrthancClient } from '@cdss/orthanc-client';
import { HttpError, oauth2Auth } from '@cdss/core';
import {
  BackendServicesKeys,
  createBackendServicesTokenProvider,
  createOpenEmrClient,
  OpenEmrOAuth,
  type OpenEmrClient,
} from '@cdss/openemr-client';
import type { Condition } from 'fhir/r4.js';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';
import type { ApiAnalysis } from './api-schemas.js';
import type { Auditor } from './domain/auditor.js';
import type { ImagingArchive, PatientRecords } from './domain/ports.js';
import type { ModelChoice, ReportBuilder } from './domain/analyses.js';
import { isBrainTumourCondition, isBrainTumourProblem } from './domain/brain-tumour.js';
import {
  createFileCheckpoints,
  createMySqlCheckpoints,
  mySqlFollowerLease,
  soleFollower,
} from './auto-analysis/checkpoint.js';
import { autoAnalysisFollower, type AutoAnalysisReason } from './auto-analysis/follower.js';
import { toApiAnalysis } from './domain/analyses.js';
import { chartDelivery, type ChartDocuments } from './chart/delivery.js';
import { keyImages } from './chart/key-images.js';
import { createMemoryChartOutbox, createMySqlChartOutbox, type ChartOutbox } from './chart/outbox.js';
import type { ReportDocumentInput } from './chart/pdf-report.js';
import type { AnyRoute } from './http/route.js';
import type { TokenVerifier } from './auth/tokens.js';
import type { ServerKeys } from './smart/server-keys.js';
import { jwksRoute, smartRoutes, withSmartSessions } from './smart/session.js';
import type { ReviewStore } from './domain/reviews.js';
import { createCdsCallerVerifier } from './cds-hooks/caller-auth.js';
import { cdsHooksRouter } from './cds-hooks/router.js';
import { cdsServices } from './cds-hooks/services.js';
import { cachedTumourStatus } from './cds-hooks/status.js';
import { createMemoryCdsStore, createMySqlCdsStore, type CdsStore } from './cds-hooks/store.js';
import { sandboxCdsRoutes, type SandboxCdsClient } from './cds-hooks/sandbox-client.js';
import { MAX_PREPARED_STATEMENTS } from './state/mysql.js';

/** What the EHR integration is built from. */
export interface EhrIntegrationDeps {
  config: ServerConfig;
  logger: Logger;
  /** The server's metrics: the integration adds its own to the same registry. */
  metrics: ServerMetrics;
  cache: Cache;
  jobs: JobClient;
  jobStore: JobStore;
  archive: ImagingArchive;
  /** The PACS's REST API (the change feed). */
  orthanc: OrthancClient;
  /** The EMR (problems of the patient). */
  records: PatientRecords;
  reports: ReportBuilder;
  auditor: Auditor;
  /** The model automatic analyses ask for (the first). */
  models: readonly ModelChoice[];
  /** OpenEMR's patient documents; without it approved reports are queued but not filed. */
  documents?: ChartDocuments;
  /** The server's signing keys (`configuredServerKeys`): its JWKS, SMART sessions, backend-services assertions. */
  keys: ServerKeys | undefined;
  /** OpenEMR's base URL (the emulator's in sandbox mode): the SMART issuer and FHIR base derive from it. */
  openemrUrl: string;
  /** A patient's analyses with reviews, oldest first. */
  analysesOf(patientId: string): Promise<ApiAnalysis[]>;
  /** Sandbox only: the demo CDS Client, trusted like an allow-listed EHR, and its route preparing a signed call. */
  sandboxCdsClient?: SandboxCdsClient | undefined;
}

/** The composed integration. */
export interface EhrIntegration {
  routers: Router[];
  /** Routes of the route table: the server's JWKS and the dashboard's SMART session exchange. */
  routes: AnyRoute[];
  /** The server's signing keys, when configured (sandbox: always). */
  keys?: ServerKeys;
  /** The EHR origins a SMART-launched dashboard connects to (for the CSP). */
  connectSources: string[];
  /** Wraps the server's token verifier so that SMART session tokens are accepted too. */
  verifier(primary: TokenVerifier): TokenVerifier;
  store: CdsStore;
  /** Approved reports waiting to be filed in OpenEMR. */
  chart: ChartOutbox;
  /** Wraps the review store so that a decision refreshes the patient's CDS status. */
  observeReviews(reviews: ReviewStore): ReviewStore;
  /** Starts following the PACS (when automatic analyses are on); call once the analysis listener runs. */
  start(): void;
  close(): Promise<void>;
}

/**
 * Builds the integration.
 * @param deps - configuration and the server's shared pieces
 */
export async function ehrIntegration(deps: EhrIntegrationDeps): Promise<EhrIntegration> {
  const { config, logger, cache } = deps;
  let pool: Pool | undefined;
  if (config.MYSQL_URL)
    pool = createPool({ uri: config.MYSQL_URL, connectionLimit: 4, maxPreparedStatements: MAX_PREPARED_STATEMENTS });
  const store = pool ? await createMySqlCdsStore(pool) : createMemoryCdsStore();

  const status = cachedTumourStatus(
    {
      analysesOf: deps.analysesOf,
      assess: async (patientId, analyses) => {
        const uids = [...new Set(analyses.filter((a) => a.status === 'succeeded').map((a) => a.studyUid))];
        const studies = new Map(
          await Promise.all(uids.map(async (uid) => [uid, await deps.archive.study(uid)] as const)),
        );
        return deps.reports.assess(patientId, analyses, studies);
      },
      studyDate: async (studyUid) =>
        (
          await cache.getOrLoad(
            `cds:study-date:${studyUid}`,
            async () => (await deps.archive.study(studyUid))?.date ?? '',
          )
        ).value || undefined,
    },
    cache,
  );
  const patientOf = (job: { request: { patientRef: string } }): string =>
    job.request.patientRef.slice('Patient/'.length);
  const refresh = (patientId: string): void => {
    status
      .invalidate(patientId)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not refresh a CDS status'));
  };
  const unsubscribe = deps.jobs.subscribe((change) => refresh(patientOf(change.job)));

  const cdsClients = [...config.CDSS_CDS_CLIENTS, ...(deps.sandboxCdsClient ? [deps.sandboxCdsClient.trusted] : [])];
  const router = cdsHooksRouter({
    ...(config.CDSS_PUBLIC_URL ? { publicUrl: config.CDSS_PUBLIC_URL } : {}),
    services: cdsServices({ status, store }),
    verifier: createCdsCallerVerifier({ clients: cdsClients, replay: store }),
    store,
    auditor: deps.auditor,
    logger: logger.child({ component: 'cds-hooks' }),
  });
  // --- Metrics (names are a contract with deploy/'s alert rules)
  const registers = [deps.metrics.registry];
  const autoOutcomes = new Counter({
    name: 'cdss_auto_analysis_studies_total',
    help: 'Stable studies the automatic-analysis follower handled, by outcome (queued, already-queued, skipped, error)',
    labelNames: ['outcome'],
    registers,
  });

  // --- Analyses that start themselves
  const autoPrincipal = { id: 'cdss-auto-analysis', name: 'Automatic analysis (PACS StableStudy)', roles: [] };
  /** OpenEMR's FHIR API with the server's own system token (SMART Backend Services), when configured. */
  let openemrFhir: OpenEmrClient | undefined;
  const reasonFor = async (patientId: string): Promise<AutoAnalysisReason | undefined> => {
    if ((await store.autoAnalysisRequests(patientId, Date.now() - 180 * 86_400_000)).length > 0) return 'order';
    if (openemrFhir) {
      // OpenEMR's patient ids are UUIDs: another system's PatientID is not ours to analyse.
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(patientId)) return undefined;
      // The problem list as FHIR Conditions (coded, with clinical status), read with a system token.
      const bundle = await openemrFhir.fhir
        .search('Condition', { patient: patientId, category: 'problem-list-item' })
        .catch((error: unknown) => {
          // A refusal of this patient (4xx) means no reason; anything else is retried from the checkpoint.
          if (HttpError.isInstance(error) && error.status !== undefined && error.status < 500) return undefined;
          throw error;
        });
      if (!bundle) return undefined;
      const conditions = (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource as Condition] : []));
      return conditions.some(isBrainTumourCondition) ? 'brain-tumour-problem' : undefined;
    }
    // A study of a patient the EMR does not know (another system's PatientID) is not ours to analyse.
    if (!(await deps.records.get(patientId).catch(() => undefined))) return undefined;
    const problems = await deps.records.list(patientId, 'problems');
    return problems.some((p) => p.active && isBrainTumourProblem({ text: `${p.title} ${p.code ?? ''}` }))
      ? 'brain-tumour-problem'
      : undefined;
  };
  const follower = config.CDSS_AUTO_ANALYSIS
    ? autoAnalysisFollower({
        feed: deps.orthanc,
        archive: deps.archive,
        checkpoints: pool
          ? await createMySqlCheckpoints(pool)
          : createFileCheckpoints(join(resolve(config.CDSS_DATA_DIR), 'checkpoints.json')),
        lease: pool ? mySqlFollowerLease(pool, 'cdss.auto-analysis') : soleFollower,
        reasonFor,
        request: ({ patientId, studyUid, series }) =>
          deps.auditor.around(
            {
              principal: autoPrincipal,
              requestId: `auto-analysis:${studyUid}`,
              action: 'request',
              resource: `ImagingStudy/${studyUid}`,
              patientId,
            },
            async (audit) => {
              const model = deps.models[0];
              if (!model) throw new Error('no model is configured');
              const before = await deps.jobStore.findByIdempotencyKey(`auto-analysis:${studyUid}`);
              const job =
                before ??
                (await deps.jobs.send(
                  new RequestAnalysis({
                    idempotencyKey: `auto-analysis:${studyUid}`,
                    patientRef: `Patient/${patientId}`,
                    studyInstanceUid: studyUid,
                    series,
                    model,
                    priority: 'routine',
                    requestedBy: autoPrincipal.id,
                  }),
                ));
              audit.resource = `Analysis/${job.jobId}`;
              return { jobId: job.jobId, created: !before };
            },
          ),
        logger: logger.child({ component: 'auto-analysis' }),
        onOutcome: (outcome) => autoOutcomes.inc({ outcome }),
      })
    : undefined;

  // --- Results back in the chart: approved reports filed in OpenEMR as PDF documents, through the chart outbox.
  const chart = pool ? await createMySqlChartOutbox(pool) : createMemoryChartOutbox();
  let reviewsOf: ReviewStore | undefined;
  const reportInput = async (analysisId: string): Promise<ReportDocumentInput | 'not-approved'> => {
    const job = await deps.jobStore.get(analysisId);
    if (!job || !reviewsOf) throw new Error('the analysis is not known yet');
    const analysis = toApiAnalysis(job, await reviewsOf.get(analysisId));
    const result = analysis.result;
    if (analysis.review?.status !== 'approved' || !result?.segSeriesUid || !result.segInstanceUid)
      return 'not-approved';
    const patient = await deps.records.get(analysis.patientId);
    if (!patient) throw new Error('the patient is not in the EMR');
    const [study, image, labels, history] = await Promise.all([
      deps.archive.study(analysis.studyUid),
      deps.archive.seriesVolume(analysis.studyUid, job.request.series.t1c),
      deps.archive.segmentation(
        analysis.studyUid,
        { seriesUid: result.segSeriesUid, instanceUid: result.segInstanceUid },
        job.request.series.t1c,
      ),
      deps.analysesOf(analysis.patientId),
    ]);
    const uids = [...new Set(history.filter((a) => a.status === 'succeeded').map((a) => a.studyUid))];
    const studies = new Map(await Promise.all(uids.map(async (uid) => [uid, await deps.archive.study(uid)] as const)));
    const assessment = deps.reports.assess(analysis.patientId, history, studies);
    const intendedUse = 'Research and demonstration; not for clinical use';
    return {
      reportId: analysis.id,
      patient: {
        id: patient.id,
        name: `${patient.familyName}, ${patient.givenName}`,
        birthDate: patient.birthDate,
        sex: patient.sex,
        ...(patient.pid ? { mrn: patient.pid } : {}),
      },
      analysis,
      study: {
        uid: analysis.studyUid,
        ...(study?.date ? { date: study.date } : {}),
        ...(study?.description ? { description: study.description } : {}),
      },
      ...(assessment.currentAnalysisId === analysis.id || assessment.baselineAnalysisId === analysis.id
        ? {
            assessment: {
              status: assessment.status,
              ...(assessment.changePercent !== undefined ? { changePercent: assessment.changePercent } : {}),
              ...(assessment.criteria ? { criteria: assessment.criteria } : {}),
            },
          }
        : {}),
      keyImages: keyImages(image, labels),
      model: { name: analysis.model.id, version: analysis.model.version, intendedUse, notForClinicalUse: true },
      ...(analysis.review.reviewerName ? { reviewerName: analysis.review.reviewerName } : {}),
    };
  };
  for (const [state, help] of [
    ['pending', 'Approved reports waiting to be filed in OpenEMR'],
    ['dead', 'Reports set aside (review no longer an approval)'],
  ] as const)
    new Gauge({
      name: `cdss_chart_outbox_${state}`,
      help,
      registers,
      async collect() {
        this.set((await chart.stats())[state]);
      },
    });
  const delivery = deps.documents
    ? chartDelivery({
        outbox: chart,
        documents: deps.documents,
        category: config.OPENEMR_DOCUMENT_CATEGORY,
        reportInput,
        auditor: deps.auditor,
        logger: logger.child({ component: 'chart' }),
      })
    : undefined;
  if (!delivery) logger.warn('approved reports are queued for the chart but no OpenEMR document API is configured');

  // --- SMART: the server's keys (JWKS), and the dashboard's session after a SMART launch.
  const { keys } = deps;
  if (!keys)
    logger.warn('no server keys (CDSS_SERVER_JWKS_FILE): no JWKS, SMART sessions or backend-services assertions');
  // SMART Backend Services: system tokens for OpenEMR's FHIR API, signed with the server's RS384 keys.
  // OpenEMR accepts RS384 only (recorded-8.0.0 files 92–96).
  const backendKeys = keys?.all.filter((k) => k.alg === 'RS384') ?? [];
  if (config.OPENEMR_BACKEND_CLIENT_ID && backendKeys.length === 0)
    logger.warn('OPENEMR_BACKEND_CLIENT_ID is set but the server JWKS has no RS384 key: OpenEMR is read without it');
  if (config.OPENEMR_BACKEND_CLIENT_ID && backendKeys.length > 0)
    openemrFhir = createOpenEmrClient({
      baseUrl: deps.openemrUrl,
      site: config.OPENEMR_SITE,
      version: config.OPENEMR_VERSION,
      auth: oauth2Auth(
        createBackendServicesTokenProvider({
          oauth: new OpenEmrOAuth({
            baseUrl: deps.openemrUrl,
            site: config.OPENEMR_SITE,
            clientId: config.OPENEMR_BACKEND_CLIENT_ID,
            logger,
          }),
          keys: new BackendServicesKeys(
            backendKeys.map((k) => ({ kid: k.kid, privateKey: k.privateKey, publicJwk: k.publicJwk })),
          ),
          scope: config.OPENEMR_BACKEND_SCOPE,
        }),
      ),
      timeoutMs: 10_000,
      logger,
    });
  const tokenSettings = { audience: config.CDSS_AUTH_AUDIENCE, roleClaim: config.CDSS_AUTH_ROLE_CLAIM };
  const openemrBase = deps.openemrUrl.replace(/\/+$/, '');
  const routes: AnyRoute[] = [];
  const smartIssuer = config.CDSS_SMART_ISSUER ?? `${openemrBase}/oauth2/${config.OPENEMR_SITE}`;
  const smartFhir = config.CDSS_SMART_FHIR_URL ?? `${openemrBase}/apis/${config.OPENEMR_SITE}/fhir`;
  const connectSources = config.CDSS_SMART_CLIENT_ID
    ? [...new Set([new URL(smartIssuer).origin, new URL(smartFhir).origin])]
    : [];
  if (keys) routes.push(jwksRoute(keys));
  if (keys && config.CDSS_SMART_CLIENT_ID)
    routes.push(
      ...smartRoutes(
        {
          clientId: config.CDSS_SMART_CLIENT_ID,
          issuer: smartIssuer,
          fhirBaseUrl: smartFhir,
          ehrScope: config.CDSS_SMART_EHR_SCOPE,
          standaloneScope: config.CDSS_SMART_STANDALONE_SCOPE,
          redirectPath: '/smart/callback',
          defaultRole: config.CDSS_SMART_DEFAULT_ROLE,
          userRoles: config.CDSS_SMART_USER_ROLES,
          ...tokenSettings,
        },
        keys,
        store,
      ),
    );

  if (deps.sandboxCdsClient) {
    const fhirClient = openemrFhir;
    routes.push(
      ...sandboxCdsRoutes({
        client: deps.sandboxCdsClient,
        publicUrl: config.CDSS_PUBLIC_URL,
        fhirServer: smartFhir,
        // Read with the server's system token, as the EHR's prefetch would be.
        prefetch: fhirClient
          ? async (patientId) => {
              const [patient, conditions] = await Promise.all([
                fhirClient.fhir.read('Patient', patientId),
                fhirClient.fhir.search('Condition', { patient: patientId, category: 'problem-list-item' }),
              ]);
              return { ...(patient ? { patient } : {}), conditions };
            }
          : undefined,
        latestAnalysedPatient: async () =>
          (await deps.jobStore.list({ states: ['succeeded'], limit: 100_000 })).at(-1)?.request.patientRef.slice(8),
      }),
    );
  }
  if (cdsClients.length === 0)
    logger.info('CDS Hooks: no trusted CDS clients configured (CDSS_CDS_CLIENTS); every call answers 401');

  return {
    routers: [router],
    routes,
    connectSources,
    ...(keys ? { keys } : {}),
    verifier: (primary) => (keys ? withSmartSessions(primary, keys, tokenSettings) : primary),
    store,
    chart,
    observeReviews(reviews) {
      reviewsOf = reviews;
      return {
        ...reviews,
        async decide(record, within) {
          // OpenEMR is the source of truth: an approved report goes into the chart through the chart outbox, whose
          // entry commits in the decision's transaction (with its final report), so neither is kept without the other.
          const decided = await reviews.decide(record, async (transaction) => {
            await within?.(transaction);
            if (record.status === 'approved')
              await chart.enqueue({ analysisId: record.jobId, patientId: record.patientId }, undefined, transaction);
          });
          refresh(record.patientId);
          return decided;
        },
      };
    },
    start() {
      follower?.start();
      delivery?.start();
    },
    async close() {
      unsubscribe();
      await follower?.stop();
      await delivery?.stop();
      await pool?.end();
    },
  };
}
