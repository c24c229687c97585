/**
 * Analyses that start themselves: follows Orthanc's change feed (`/changes`), and for each `StableStudy` (all its
 * instances arrived, Orthanc's StableAge passed) that has the four tumour sequences and belongs to a patient with a
 * brain-tumour problem, or whose order asked for it (accepted CDS Hooks suggestion), queues one analysis.
 *
 * Nothing is missed or repeated across restarts: the place in the feed is a checkpoint in the store, saved only
 * after a study was handled, and the analysis request is idempotent per study (`auto-analysis:<StudyInstanceUID>`),
 * so a study handled again after a crash finds its job instead of making another. A failure (PACS, EMR or job store
 * unreachable) is retried from the checkpoint until it succeeds; only one server instance follows at a time.
 */
import { selectStudySeries, StudySeriesError, type StudyChannel } from '@cdss/dicom';
import type { Logger } from 'pino';
import type { ApiStudy } from '../api-schemas.js';
import type { CheckpointStore, FollowerLease } from './checkpoint.js';

/** The part of the Orthanc client the follower uses. */
export interface ChangeFeed {
  changes(options: {
    since: number;
    pollIntervalMs?: number;
    signal?: AbortSignal;
  }): AsyncIterable<{ Seq: number; ChangeType: string; ID: string }>;
  getLastChangeSeq(): Promise<number>;
  getStudy(id: string): Promise<{ MainDicomTags: Record<string, unknown> }>;
}

/** Why a patient's tumour-protocol studies are analysed automatically. */
export type AutoAnalysisReason = 'brain-tumour-problem' | 'order';

/** What became of one stable study. */
export type StudyOutcome =
  | { outcome: 'queued' | 'already-queued'; jobId: string; reason: AutoAnalysisReason }
  | {
      outcome: 'skipped';
      why: 'not-found' | 'no-patient' | 'already-analysed' | 'not-tumour-protocol' | 'not-requested';
    };

/**
 * The SEG series our worker stores into the analysed study (`AI segmentation <model version>`, see
 * `worker/analysis.ts`). Storing it makes the study unstable and stable again, so its second `StableStudy` is ours.
 */
const OUR_SEG = /^AI segmentation\b/;

/** What the follower needs. */
export interface AutoAnalysisDeps {
  feed: ChangeFeed;
  archive: { study(studyUid: string): Promise<ApiStudy | undefined> };
  checkpoints: CheckpointStore;
  lease: FollowerLease;
  /** Why this patient's studies should be analysed, or undefined when they should not. */
  reasonFor(patientId: string): Promise<AutoAnalysisReason | undefined>;
  /** Queues the analysis; idempotent per study. */
  request(input: {
    patientId: string;
    studyUid: string;
    series: Record<StudyChannel, string>;
    reason: AutoAnalysisReason;
  }): Promise<{ jobId: string; created: boolean }>;
  logger: Logger;
  /** Counts outcomes (a metric). */
  onOutcome?(outcome: StudyOutcome['outcome'] | 'error'): void;
  /** Checkpoint name (one per PACS). Default `orthanc-changes:auto-analysis`. */
  name?: string;
  pollIntervalMs?: number;
  /** First wait after a failure; doubles up to 30 s. Default 1000. */
  retryDelayMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/**
 * The follower.
 * @param deps - feed, archive, stores, policy and the request function
 */
export function autoAnalysisFollower(deps: AutoAnalysisDeps): {
  start(): void;
  stop(): Promise<void>;
  /** Handles one stable study (also for tests). */
  handleStudy(orthancStudyId: string): Promise<StudyOutcome>;
} {
  const name = deps.name ?? 'orthanc-changes:auto-analysis';
  const sleep = deps.sleep ?? defaultSleep;
  const controller = new AbortController();
  let running: Promise<void> | undefined;

  async function handleStudy(orthancStudyId: string): Promise<StudyOutcome> {
    const tags = (await deps.feed.getStudy(orthancStudyId)).MainDicomTags;
    const studyUid = typeof tags['StudyInstanceUID'] === 'string' ? tags['StudyInstanceUID'] : undefined;
    const study = studyUid ? await deps.archive.study(studyUid) : undefined;
    if (!studyUid || !study) return { outcome: 'skipped', why: 'not-found' };
    if (!study.patientId) return { outcome: 'skipped', why: 'no-patient' };
    if (study.series.some((s) => s.modality === 'SEG' && OUR_SEG.test(s.description ?? '')))
      return { outcome: 'skipped', why: 'already-analysed' };
    let chosen;
    try {
      chosen = selectStudySeries(
        study.series.map((s) => ({ seriesInstanceUid: s.uid, description: s.description ?? '', modality: s.modality })),
      );
    } catch (error) {
      if (error instanceof StudySeriesError) return { outcome: 'skipped', why: 'not-tumour-protocol' };
      throw error;
    }
    const reason = await deps.reasonFor(study.patientId);
    if (!reason) return { outcome: 'skipped', why: 'not-requested' };
    const { jobId, created } = await deps.request({
      patientId: study.patientId,
      studyUid,
      series: {
        t1c: chosen.t1c.seriesInstanceUid,
        t1: chosen.t1.seriesInstanceUid,
        t2: chosen.t2.seriesInstanceUid,
        flair: chosen.flair.seriesInstanceUid,
      },
      reason,
    });
    return { outcome: created ? 'queued' : 'already-queued', jobId, reason };
  }

  async function follow(signal: AbortSignal): Promise<void> {
    let delay = deps.retryDelayMs ?? 1_000;
    while (!signal.aborted) {
      try {
        if (!(await deps.lease.acquire())) {
          await sleep(10_000, signal);
          continue;
        }
        let since = await deps.checkpoints.load(name);
        if (since === undefined) {
          // A first start follows from now: the PACS's history is not analysed retroactively.
          since = await deps.feed.getLastChangeSeq();
          await deps.checkpoints.save(name, since);
          deps.logger.info({ seq: since }, 'automatic analyses: following the PACS change feed from now');
        }
        let unsaved = 0;
        for await (const change of deps.feed.changes({
          since,
          signal,
          ...(deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {}),
        })) {
          if (change.ChangeType === 'StableStudy') {
            if (!(await deps.lease.acquire())) break;
            const result = await handleStudy(change.ID);
            deps.onOutcome?.(result.outcome);
            deps.logger.info(
              result.outcome === 'skipped'
                ? { seq: change.Seq, outcome: result.outcome, why: result.why }
                : { seq: change.Seq, outcome: result.outcome, jobId: result.jobId, reason: result.reason },
              'automatic analyses: stable study handled',
            );
          }
          // Saved after every study, and every 100 other changes (a crash re-reads at most those, harmlessly).
          if (change.ChangeType === 'StableStudy' || ++unsaved >= 100) {
            await deps.checkpoints.save(name, change.Seq);
            unsaved = 0;
          }
          since = change.Seq;
          delay = deps.retryDelayMs ?? 1_000;
        }
        if (unsaved > 0) await deps.checkpoints.save(name, since);
      } catch (error) {
        if (signal.aborted) return;
        deps.onOutcome?.('error');
        deps.logger.warn(
          { err: { name: (error as Error).name, message: (error as Error).message }, retryInMs: delay },
          'automatic analyses: the change feed failed; resuming from the checkpoint',
        );
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  return {
    handleStudy,
    start() {
      running ??= follow(controller.signal);
    },
    async stop() {
      controller.abort();
      await running;
      await deps.lease.release().catch(() => undefined);
    },
  };
}
