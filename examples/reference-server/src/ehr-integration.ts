/**
 * Composes what puts the CDSS inside the clinician's EHR: the CDS Hooks service (with its store, caller
 * verification and the cached tumour status its cards read). Kept apart from `compose.ts`, which only calls it.
 */
import type { Router } from 'express';
import { createPool, type Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Cache } from '@cdss/cache';
import type { JobClient, JobStore } from '@cdss/ai-jobs';
import type { ServerConfig } from './config.js';
import type { ApiAnalysis } from './api-schemas.js';
import type { Auditor } from './domain/auditor.js';
import type { ImagingArchive } from './domain/ports.js';
import type { ReportBuilder } from './domain/analyses.js';
import type { ReviewStore } from './domain/reviews.js';
import { createCdsCallerVerifier } from './cds-hooks/caller-auth.js';
import { cdsHooksRouter } from './cds-hooks/router.js';
import { cdsServices } from './cds-hooks/services.js';
import { cachedTumourStatus } from './cds-hooks/status.js';
import { createMemoryCdsStore, createMySqlCdsStore, type CdsStore } from './cds-hooks/store.js';

/** What the EHR integration is built from. */
export interface EhrIntegrationDeps {
  config: ServerConfig;
  logger: Logger;
  cache: Cache;
  jobs: JobClient;
  jobStore: JobStore;
  archive: ImagingArchive;
  reports: ReportBuilder;
  auditor: Auditor;
  /** A patient's analyses with reviews, oldest first. */
  analysesOf(patientId: string): Promise<ApiAnalysis[]>;
}

/** The composed integration. */
export interface EhrIntegration {
  routers: Router[];
  store: CdsStore;
  /** Wraps the review store so that a decision refreshes the patient's CDS status. */
  observeReviews(reviews: ReviewStore): ReviewStore;
  close(): Promise<void>;
}

/**
 * Builds the integration.
 * @param deps - configuration and the server's shared pieces
 */
export async function ehrIntegration(deps: EhrIntegrationDeps): Promise<EhrIntegration> {
  const { config, logger, cache } = deps;
  let pool: Pool | undefined;
  if (config.MYSQL_URL) pool = createPool({ uri: config.MYSQL_URL, connectionLimit: 4 });
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

  const router = cdsHooksRouter({
    ...(config.CDSS_PUBLIC_URL ? { publicUrl: config.CDSS_PUBLIC_URL } : {}),
    services: cdsServices({ status, store }),
    verifier: createCdsCallerVerifier({ clients: config.CDSS_CDS_CLIENTS, replay: store }),
    store,
    auditor: deps.auditor,
    logger: logger.child({ component: 'cds-hooks' }),
  });
  if (config.CDSS_CDS_CLIENTS.length === 0)
    logger.info('CDS Hooks: no trusted CDS clients configured (CDSS_CDS_CLIENTS); every call answers 401');

  return {
    routers: [router],
    store,
    observeReviews(reviews) {
      return {
        get: (jobId) => reviews.get(jobId),
        async decide(record) {
          const decided = await reviews.decide(record);
          const job = await deps.jobStore.get(record.jobId).catch(() => undefined);
          if (job) refresh(patientOf(job));
          return decided;
        },
      };
    },
    async close() {
      unsubscribe();
      await pool?.end();
    },
  };
}
