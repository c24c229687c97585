/**
 * The AI worker's analysis: fetch the study's four MRI series from the PACS (DICOMweb), bring them onto the model's
 * grid (one frame of reference; channels resampled onto the T1c grid where they differ; MONAI `Orientationd` and
 * `Spacingd`), run the segmentation model (MONAI-equivalent pre- and post-processing over ONNX), clean the lesions,
 * send the labels back onto the T1c grid, measure them (volumes, RANO diameters) and check their plausibility, store
 * a DICOM SEG (AUTOMATIC, with the model's name and version) and a TID 1500 SR beside it in the PACS, and report.
 *
 * Real models expect BraTS-preprocessed input: co-registered, skull-stripped. This pipeline resamples and reorients
 * but does not register or skull-strip; pass a `preprocess` hook to do that (e.g. call a registration service).
 */
import { CdssError, HttpError } from '@cdss/core';
import { JobFailure, type AnalysisResult, type JobStage } from '@cdss/ai-jobs';
import {
  BRATS_SEGMENTS,
  DicomParseError,
  SeriesGeometryError,
  StudySeriesError,
  uidFromSeed,
  writeMeasurementReport,
  writeSeg,
  type SegSource,
  type StudyChannel,
  type StudyInput,
  type Volume,
  type VoxelBufferPool,
} from '@cdss/dicom';
import { SegmentationError, prepareStudy, studyFindings, type SegmentationModel } from '@cdss/segmentation';
import { dicomString, retrieveSeriesVolume, segSourceFromMetadata, type DicomWebClient } from '@cdss/orthanc-client';

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
  const frames: Partial<Record<StudyChannel, string>> = {};
  try {
    const channels = Object.entries(series) as Array<[StudyChannel, string]>;
    // The four series straight into volumes (WADO-RS, read from the socket), and their metadata: the T1c's for the
    // SEG and SR, every series' FrameOfReferenceUID to know they share one patient coordinate system.
    const [volumes, metadata] = await Promise.all([
      Promise.all(
        channels.map(async ([channel, uid]) => {
          const volume = await fetchChannel(channel, () =>
            retrieveSeriesVolume(dicomweb, studyInstanceUid, uid, {
              signal,
              ...(options.pool ? { pool: options.pool } : {}),
            }),
          );
          downloaded.push(volume);
          return [channel, volume] as const;
        }),
      ),
      Promise.all(
        channels.map(
          async ([channel, uid]) =>
            [
              channel,
              await fetchChannel(channel, () => dicomweb.retrieveSeriesMetadata(studyInstanceUid, uid, { signal })),
            ] as const,
        ),
      ),
    ]);
    const byChannel = Object.fromEntries(volumes) as Record<StudyChannel, Volume>;
    for (const [channel, datasets] of metadata) {
      const frame = datasets[0] ? dicomString(datasets[0], '00200052') : undefined;
      if (frame) frames[channel] = frame;
    }
    input = {
      channels: [byChannel.t1c, byChannel.t1, byChannel.t2, byChannel.flair],
      seriesInstanceUids: { ...series },
    };
    segSource = segSourceFromMetadata(metadata.find(([c]) => c === 't1c')?.[1] ?? []);
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
  // One frame of reference, channels onto the T1c grid where they differ, then the model's orientation and spacing.
  const prepared = (() => {
    try {
      const [t1c, t1, t2, flair] = input.channels;
      const channel = (c: StudyChannel, volume: Volume) => ({
        volume,
        frameOfReferenceUid: frames[c],
        seriesInstanceUid: input.seriesInstanceUids[c],
      });
      return prepareStudy(model.manifest, {
        t1c: channel('t1c', t1c),
        t1: channel('t1', t1),
        t2: channel('t2', t2),
        flair: channel('flair', flair),
      });
    } catch (error) {
      throw failure('preprocess', error);
    }
  })();
  lap('preprocess');
  await options.progress('inference', 25);

  let segmentation;
  try {
    let lastPercent = 25;
    segmentation = await model.segment(prepared.input, {
      signal,
      keepLogits: true,
      inputNormalized: prepared.normalized,
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

  let findings;
  let seg;
  let sr;
  try {
    findings = studyFindings(segmentation, prepared, model.manifest);
    const algorithm = { name: segmentation.model.name.slice(0, 64), version: segmentation.model.version.slice(0, 64) };
    const segUids = {
      seriesInstanceUid: uidFromSeed(`${options.jobId}/seg/series`),
      sopInstanceUid: uidFromSeed(`${options.jobId}/seg/instance`),
    };
    const segBytes = writeSeg(findings.labels, segSource, {
      ...segUids,
      seriesDescription: `AI segmentation ${segmentation.model.version}`.slice(0, 64),
      algorithm: { type: 'AUTOMATIC', ...algorithm },
    });
    const [ncr, ed, et] = BRATS_SEGMENTS;
    const v = findings.volumes;
    const srUids = {
      seriesInstanceUid: uidFromSeed(`${options.jobId}/sr/series`),
      sopInstanceUid: uidFromSeed(`${options.jobId}/sr/instance`),
    };
    const srBytes = writeMeasurementReport(
      {
        seg: segUids,
        segments: [
          { number: 1, label: ncr!.label, type: ncr!.type, volumeMl: v.ncr.mL },
          { number: 2, label: ed!.label, type: ed!.type, volumeMl: v.ed.mL },
          { number: 3, label: et!.label, type: et!.type, volumeMl: v.et.mL },
        ],
        regions: [
          { label: 'Tumour core', type: et!.type, volumeMl: v.tc.mL },
          { label: 'Whole tumour', type: et!.type, volumeMl: v.wt.mL },
        ],
        lesions: findings.lesions,
        lesionSegmentNumber: 3,
        algorithm,
        ...srUids,
        seriesDescription: `AI measurements ${segmentation.model.version}`.slice(0, 64),
      },
      segSource,
    );
    lap('postprocess');
    await options.progress('store', 92);
    const stored = await dicomweb.storeInstances([segBytes, srBytes], { studyInstanceUid, signal });
    if (!stored.stored.includes(segUids.sopInstanceUid)) throw new Error('the PACS did not store the SEG');
    if (!stored.stored.includes(srUids.sopInstanceUid)) throw new Error('the PACS did not store the SR');
    seg = { studyInstanceUid, ...segUids };
    sr = srUids;
  } catch (error) {
    throw failure('store', error);
  }
  lap('store');
  await options.progress('store', 100);

  const volumes = findings.volumes;
  const round = (x: number, digits: number): number => Number(x.toFixed(digits));
  return {
    regions: [
      { region: 'enhancing-tumour', volumeMl: volumes.et.mL, voxelCount: volumes.et.voxels },
      { region: 'tumour-core', volumeMl: volumes.tc.mL, voxelCount: volumes.tc.voxels },
      { region: 'whole-tumour', volumeMl: volumes.wt.mL, voxelCount: volumes.wt.voxels },
    ],
    segmentation: seg,
    structuredReport: sr,
    model: modelRef(model),
    timingsMs: timings,
    ...(findings.wholeTumourDiameterMm !== undefined ? { largestDiameterMm: findings.wholeTumourDiameterMm } : {}),
    lesions: findings.lesions.slice(0, 1000).map((l) => ({
      volumeMl: round(l.volumeMl, 4),
      longestDiameterMm: round(l.longestDiameterMm, 2),
      perpendicularDiameterMm: round(l.perpendicularDiameterMm, 2),
      productMm2: round(l.productMm2, 2),
      slice: l.slice,
      measurable: l.measurable,
    })),
    sumOfProductsMm2: round(findings.sumOfProductsMm2, 2),
    flags: findings.flags.slice(0, 50),
  };
}
