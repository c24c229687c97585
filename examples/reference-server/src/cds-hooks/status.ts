/**
 * The patient's tumour status for the CDS cards, computed from the analyses, their reviews and the RANO-style
 * assessment, and kept in the cache so a `patient-view` call is answered without reading the job store or the PACS.
 * A job change or a review invalidates the patient's entry on every server instance (the cache's bus).
 */
import type { ApiAnalysis, Assessment } from '../api-schemas.js';
import type { TumourStatus, TumourStatusSource } from './services.js';

/** What the status is computed from. */
export interface TumourStatusDeps {
  /** The patient's analyses, oldest first. */
  analysesOf(patientId: string): Promise<ApiAnalysis[]>;
  /** The assessment (by scan date: the server's builder reads the studies' dates from the PACS). */
  assess(patientId: string, analyses: readonly ApiAnalysis[]): Assessment | Promise<Assessment>;
  /** The scan date (YYYY-MM-DD) of a study, when the PACS knows it. */
  studyDate(studyUid: string): Promise<string | undefined>;
}

/**
 * Computes the status.
 * @param deps - analyses, the assessment, study dates
 * @param patientId - the patient (OpenEMR uuid)
 */
export async function computeTumourStatus(deps: TumourStatusDeps, patientId: string): Promise<TumourStatus> {
  const analyses = await deps.analysesOf(patientId);
  const latest = [...analyses].sort((a, b) => a.requestedAt.localeCompare(b.requestedAt)).at(-1);
  if (!latest) return { patientId };
  const assessment = await deps.assess(patientId, analyses);
  const current = analyses.find((a) => a.id === (assessment.currentAnalysisId ?? assessment.baselineAnalysisId));
  const [latestDate, currentDate] = await Promise.all([
    deps.studyDate(latest.studyUid).catch(() => undefined),
    current ? deps.studyDate(current.studyUid).catch(() => undefined) : undefined,
  ]);
  return {
    patientId,
    latest: {
      id: latest.id,
      status: latest.status,
      studyUid: latest.studyUid,
      ...(latestDate ? { studyDate: latestDate } : {}),
      requestedAt: latest.requestedAt,
      ...(latest.review ? { review: latest.review } : {}),
      ...(latest.result ? { volumesMl: latest.result.volumes } : {}),
      ...(latest.result?.flags.length ? { flags: latest.result.flags.map((f) => f.message) } : {}),
      ...(latest.failure ? { failure: latest.failure.reason } : {}),
      model: latest.model,
    },
    ...(current
      ? {
          assessment: {
            category: assessment.status,
            ...(assessment.changePercent !== undefined ? { changePercent: assessment.changePercent } : {}),
            ...(currentDate ? { date: currentDate } : {}),
          },
        }
      : {}),
  };
}

/** The cache operations the source needs (`@cdss/cache`'s `Cache` has them). */
export interface StatusCache {
  getOrLoad(key: string, load: () => Promise<TumourStatus>): Promise<{ value: unknown }>;
  invalidate(key: string): Promise<unknown>;
}

/**
 * A cached source.
 * @param deps - what the status is computed from
 * @param cache - the server's cache (L1, L2 and the invalidation bus)
 * @returns the source, and `invalidate(patientId)` for job changes and reviews
 */
export function cachedTumourStatus(
  deps: TumourStatusDeps,
  cache: StatusCache,
): TumourStatusSource & { invalidate(patientId: string): Promise<void> } {
  const key = (patientId: string): string => `cds:tumour-status:${patientId}`;
  return {
    async status(patientId) {
      return (await cache.getOrLoad(key(patientId), () => computeTumourStatus(deps, patientId))).value as TumourStatus;
    },
    async invalidate(patientId) {
      await cache.invalidate(key(patientId));
    },
  };
}
