/**
 * The AI worker's analysis: fetch the study's four MRI series from the PACS (DICOMweb), build the 4-channel input,
 * run the segmentation model (MONAI-equivalent pre- and post-processing over ONNX), store the result as a DICOM SEG
 * in the PACS, and report per-region volumes.
 *
 * Real models expect BraTS-preprocessed input: co-registered to one grid, skull-stripped, resampled to 1 mm. This
 * pipeline checks the grid and the spacing but does not register or skull-strip; pass a `preprocess` hook to do that
 * (e.g. call a registration service) before inference.
 */
import { CdssError, HttpError } from '@cdss/core';
import { JobFailure, type AnalysisResult, type JobStage } from '@cdss/ai-jobs';
import {
  DicomParseError,
  SeriesGeometryError,
  StudySeriesError,
  buildStudyInput,
  uidFromSeed,
  writeSeg,
  type SegSource,
  type StudyChannel,
  type StudyInput,
  type Volume,
  type VoxelBufferPool,
} from '@cdss/dicom';
import { SegmentationError, labelsToVolume, volumesToInput, type SegmentationModel } from '@cdss/segmentation';
import { retrieveSeriesVolume, segSourceFromMetadata, type DicomWebClient } from '@cdss/orthanc-client';

/**
 * The protocol's model reference of a loaded model (its manifest name, lower-cased to the protocol's id alphabet).
 * @param model - the loaded model
 */
export function modelRef(model: Pick<SegmentationModel, 'manifest'>): { id: string; version: string } {
  const id = model.manifest.name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return { id: id || 'model', version: model.manifest.version };
}

/** A step run on the study input before inference (registration, skull stripping, resampling). */
export type PreprocessHook = (input: StudyInput, signal: AbortSignal) => Promise<StudyInput>;

/** What an analysis needs. */
export interface AnalyseStudyOptions {
  dicomweb: DicomWebClient;
  model: SegmentationModel;
  studyInstanceUid: string;
  /** The job; SEG UIDs derive from it, so a retried job overwrites its own SEG instead of adding another. */
  jobId: string;
  /** The four series (T1c, T1, T2, FLAIR) by Series Instance UID. */
  series: Readonly<Record<StudyChannel, string>>;
  signal: AbortSignal;
  /** Overall progress, 0–100, by stage. */
  progress(stage: JobStage, percent: number): Promise<void>;
  preprocess?: PreprocessHook;
  /** Refuse inputs larger than this many voxels per channel (memory bound). Default 240×240×160. */
  maxVoxels?: number;
  /**
   * Where the downloaded volumes' memory comes from and goes back to once the analysis ends (a worker keeps one
   * for all its jobs, so each study reuses the memory of the last). A `preprocess` hook must not keep the input
   * volumes past the analysis.
   */
  pool?: VoxelBufferPool;
}

/** The analysis result, with the whole tumour's largest diameter. */
export type AnalysisOutcome = AnalysisResult & { largestDiameterMm?: number };

/**
 * Runs one download of a channel's series; a series the PACS does not have, or one without instances, is reported
 * as that channel missing.
 */
async function fetchChannel<T>(channel: StudyChannel, download: () => Promise<T>): Promise<T> {
  try {
    return await download();
  } catch (error) {
    if (
      (HttpError.isInstance(error) && error.status === 404) ||
      (error instanceof SeriesGeometryError && error.problem === 'empty')
    ) {
      throw new StudySeriesError(`the ${channel.toUpperCase()} series is not in the study or has no instances`, [
        channel,
      ]);
    }
    throw error;
  }
}

/** Maps errors of each stage to the protocol's failure reasons; retryable only where asking again could help. */
function failure(stage: 'fetch' | 'preprocess' | 'inference' | 'store', error: unknown): JobFailure {
  if (error instanceof JobFailure) return error;
  const detail = error instanceof Error ? error.message : String(error);
  // A channel with no series is a missing series; series on different grids need registration first.
  if (error instanceof StudySeriesError)
    return new JobFailure(error.missing.length > 0 ? 'series-missing' : 'preprocessing-failed', detail, {
      cause: error,
    });
  if (error instanceof SeriesGeometryError || error instanceof DicomParseError)
    return new JobFailure('preprocessing-failed', detail, { cause: error });
  // The PACS does not have a requested series: asking again will not help.
  if (HttpError.isInstance(error) && error.status === 404) {
    const reason = stage === 'fetch' ? 'series-missing' : 'output-store-failed';
    return new JobFailure(reason, stage === 'fetch' ? 'a requested series is not in the PACS' : detail, {
      cause: error,
    });
  }
  if (error instanceof SegmentationError) {
    if (error.code === 'ABORTED') return new JobFailure('deadline-exceeded', detail, { cause: error });
    return new JobFailure(error.code === 'INVALID_INPUT' ? 'preprocessing-failed' : 'inference-failed', detail, {
      cause: error,
    });
  }
  const reasons = {
    fetch: 'input-fetch-failed',
    preprocess: 'preprocessing-failed',
    inference: 'inference-failed',
    store: 'output-store-failed',
  } as const;
  // Network and PACS errors may pass; our own validation errors will not.
  const retryable =
    (stage === 'fetch' || stage === 'store') && !(CdssError.isInstance(error) && error.code === 'VALIDATION_ERROR');
  return new JobFailure(reasons[stage], detail, { retryable, cause: error });
}

/**
 * Runs one analysis end to end.
 * @param options - PACS client, model, study and series, signal, progress callback
 * @returns volumes per region, the stored SEG's UIDs, timings
 * @throws {@link JobFailure} with the reason from the protocol's fixed list
 */
export async function analyseStudy(options: AnalyseStudyOptions): Promise<AnalysisOutcome> {
  const timings: Partial<Record<JobStage, number>> = {};
  let started = performance.now();
  const lap = (stage: JobStage): void => {
    const now = performance.now();
    timings[stage] = Math.round(now - started);
    started = now;
  };

  await options.progress('fetch', 2);
  // The downloaded volumes go back to the pool when the analysis ends, whatever its outcome.
  const downloaded: Volume[] = [];
  try {
    return await analyse(options, downloaded, timings, lap);
  } finally {
    if (options.pool) for (const volume of downloaded) options.pool.release(volume);
  }
}

/** The stages of {@link analyseStudy}; downloaded volumes are added to `downloaded` as they arrive. */
async function analyse(
  options: AnalyseStudyOptions,
  downloaded: Volume[],
  timings: Partial<Record<JobStage, number>>,
  lap: (stage: JobStage) => void,
): Promise<AnalysisOutcome> {
  const { dicomweb, model, studyInstanceUid, series, signal } = options;
  let input: StudyInput;
  let segSource: SegSource;
  try {
    const channels = Object.entries(series) as Array<[StudyChannel, string]>;
    // The four series straight into volumes (WADO-RS, read from the socket), and the T1c metadata for the SEG.
    const [volumes, t1cMetadata] = await Promise.all([
      Promise.all(
        channels.map(async ([channel, uid]) => {
          const volume = await fetchChannel(channel, () =>
            retrieveSeriesVolume(dicomweb, studyInstanceUid, uid, {
              signal,
              ...(options.pool ? { pool: options.pool } : {}),
            }),
          );
          downloaded.push(volume);
          return [channel, { volume, seriesInstanceUid: uid }] as const;
        }),
      ),
      fetchChannel('t1c', () => dicomweb.retrieveSeriesMetadata(studyInstanceUid, series.t1c, { signal })),
    ]);
    input = buildStudyInput(
      Object.fromEntries(volumes) as Record<StudyChannel, { volume: Volume; seriesInstanceUid: string }>,
    );
    segSource = segSourceFromMetadata(t1cMetadata);
  } catch (error) {
    throw failure('fetch', error);
  }
  const [nx, ny, nz] = input.channels[0].dims;
  if (nx * ny * nz > (options.maxVoxels ?? 240 * 240 * 160)) {
    throw new JobFailure('invalid-request', `study grid ${nx}x${ny}x${nz} exceeds the worker's limit`);
  }
  lap('fetch');
  await options.progress('preprocess', 20);

  try {
    if (options.preprocess) input = await options.preprocess(input, signal);
  } catch (error) {
    throw failure('preprocess', error);
  }
  const modelInput = (() => {
    try {
      const [t1c, t1, t2, flair] = input.channels;
      return volumesToInput(model.manifest, { t1c, t1, t2, flair });
    } catch (error) {
      throw failure('preprocess', error);
    }
  })();
  lap('preprocess');
  await options.progress('inference', 25);

  let segmentation;
  try {
    let lastPercent = 25;
    segmentation = await model.segment(modelInput, {
      signal,
      onProgress: (event) => {
        if (event.windowsDone === undefined || !event.windowsTotal) return;
        const percent = 25 + Math.floor((event.windowsDone / event.windowsTotal) * 60);
        if (percent >= lastPercent + 5) {
          lastPercent = percent;
          void options.progress('inference', percent).catch(() => undefined);
        }
      },
    });
  } catch (error) {
    throw failure('inference', error);
  }
  lap('inference');
  await options.progress('postprocess', 88);

  let seg;
  try {
    const labels = labelsToVolume(segmentation.labels, input.channels[0]);
    const seriesInstanceUid = uidFromSeed(`${options.jobId}/seg/series`);
    const bytes = writeSeg(labels, segSource, {
      seriesInstanceUid,
      sopInstanceUid: uidFromSeed(`${options.jobId}/seg/instance`),
      seriesDescription: `AI segmentation ${segmentation.model.version}`.slice(0, 64),
    });
    lap('postprocess');
    await options.progress('store', 92);
    const stored = await dicomweb.storeInstances([bytes], { studyInstanceUid, signal });
    const sopInstanceUid = stored.stored[0];
    if (!sopInstanceUid) throw new Error('the PACS stored no instance');
    seg = { studyInstanceUid, seriesInstanceUid, sopInstanceUid };
  } catch (error) {
    throw failure('store', error);
  }
  lap('store');
  await options.progress('store', 100);

  const volumes = segmentation.volumes;
  return {
    regions: [
      { region: 'enhancing-tumour', volumeMl: volumes.et.mL, voxelCount: volumes.et.voxels },
      { region: 'tumour-core', volumeMl: volumes.tc.mL, voxelCount: volumes.tc.voxels },
      { region: 'whole-tumour', volumeMl: volumes.wt.mL, voxelCount: volumes.wt.voxels },
    ],
    segmentation: seg,
    model: modelRef(model),
    timingsMs: timings,
    ...(segmentation.wholeTumourDiameter ? { largestDiameterMm: segmentation.wholeTumourDiameter.mm } : {}),
  };
}
