/**
 * Sandbox: every synthetic study of the demo patients has its analysis, so the dashboard shows each patient's
 * timeline right after `npm start`. The request is the one the PACS follower makes for a new study (same idempotency
 * key), so a study is never analysed twice; in the sandbox the job store lives in memory, so this runs at every start.
 */
import { RequestAnalysis, type JobClient, type JobStore } from '@cdss/ai-jobs';
import type { Logger } from 'pino';
import type { ImagingArchive } from './domain/ports.js';
import { protocolSeries, type ModelChoice } from './domain/analyses.js';

/** What it needs. */
export interface DemoAnalysesDeps {
  archive: ImagingArchive;
  /** The demo patients' ids (OpenEMR uuids). */
  patientIds: readonly string[];
  jobs: JobClient;
  jobStore: JobStore;
  model: ModelChoice | undefined;
  logger: Logger;
}

/**
 * Requests the missing analyses, oldest scan first.
 * @returns how many were requested
 */
export async function analyseDemoStudies(deps: DemoAnalysesDeps): Promise<number> {
  if (!deps.model) return 0;
  let requested = 0;
  for (const patientId of deps.patientIds) {
    const studies = (await deps.archive.studiesOfPatient(patientId)).sort((a, b) =>
      `${a.date ?? ''}${a.time ?? ''}`.localeCompare(`${b.date ?? ''}${b.time ?? ''}`),
    );
    for (const study of studies) {
      const key = `auto-analysis:${study.uid}`;
      if (await deps.jobStore.findByIdempotencyKey(key)) continue;
      let series;
      try {
        series = protocolSeries(study);
      } catch {
        continue; // not a complete tumour protocol
      }
      await deps.jobs.send(
        new RequestAnalysis({
          idempotencyKey: key,
          patientRef: `Patient/${patientId}`,
          studyInstanceUid: study.uid,
          series,
          model: deps.model,
          priority: 'routine',
          requestedBy: 'cdss-auto-analysis',
        }),
      );
      requested++;
    }
  }
  if (requested > 0) deps.logger.info({ requested }, 'sandbox: analysing the demo studies');
  return requested;
}
