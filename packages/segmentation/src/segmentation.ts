/**
 * The brain-tumour segmentation pipeline, MONAI-equivalent, over any window predictor:
 * stack channels → NormalizeIntensity → sliding-window inference → activation → threshold → BraTS labels →
 * region volumes and the whole tumour's largest diameter.
 *
 * The ONNX-backed entry point is {@link SegmentationModel} (inference.ts); this module is the runtime-free core,
 * so it can be tested against MONAI with any predictor.
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import type { ModelManifest } from './manifest.js';
import { normalizeIntensity, normalizeIntensityPadded } from './normalize.js';
import {
  argmaxLabels,
  bratsLabelsFromLogits,
  bratsLabelsFromPaddedLogits,
  bratsVolumes,
  largestDiameter,
  softmax,
  type BratsVolumes,
  type LargestDiameter,
} from './postprocess.js';
import { SegmentationError, checkChannelFirst, requireInput, throwIfAborted } from './segmentation-errors.js';
import { cropPadded, planWindows, slidingWindowInference, type WindowPredictor } from './sliding-window.js';
import { geometryOf, sameGrid, type Volume, type VolumeGeometry } from '@cdss/dicom';

/** A multi-channel volume ready for the model: channel-first `[C, d0, d1, d2]`, C-order, float32. */
export interface SegmentationInput {
  /** The voxel values, channels in the manifest's order (see {@link stackChannels}). */
  data: Float32Array;
  /** `[C, d0, d1, d2]`. */
  shape: readonly [number, number, number, number];
  /** Voxel size in mm along d0, d1, d2. */
  spacingMm: readonly [number, number, number];
}

/** The pipeline stages reported through {@link SegmentationOptions.onProgress}. */
export type SegmentationStage = 'normalize' | 'inference' | 'postprocess' | 'done';

/** A progress event. */
export interface SegmentationProgress {
  /** The stage now running (or `done`). */
  stage: SegmentationStage;
  /** Windows finished so far (inference stage). */
  windowsDone?: number;
  /** Windows in total (inference stage). */
  windowsTotal?: number;
}

/** Options of {@link runSegmentation}. */
export interface SegmentationOptions {
  /** Cancels between stages and between window batches. */
  signal?: AbortSignal;
  /** Called at each stage and after each window batch. Exceptions it throws are not caught. */
  onProgress?: (event: SegmentationProgress) => void;
  /** Keep the stitched logits in the result (`[outChannels, d0, d1, d2]`). Default `false`. */
  keepLogits?: boolean;
  /**
   * Largest relative difference allowed between the input spacing and the manifest's before failing with
   * `INVALID_INPUT` (the model only works at the spacing it was trained at). Default 0.01; `Infinity` disables it.
   */
  spacingTolerance?: number;
  /**
   * The input is already normalised as the manifest says (`prepareStudy` does it in the pass that reorders the
   * study): skip the normalisation. Default `false`.
   */
  inputNormalized?: boolean;
}

/** Milliseconds spent per stage. */
export interface SegmentationTimings {
  /** NormalizeIntensity. */
  normalizeMs: number;
  /** Sliding window, including the predictor. */
  inferenceMs: number;
  /** Inside the predictor only (sum over batches), including the hand-over to the onnxruntime worker. */
  predictorMs: number;
  /** Inside onnxruntime's `session.run` only (sum over batches), when the predictor reports it. */
  networkMs: number;
  /** Activation, threshold, labels (not `volumes` and `wholeTumourDiameter`, which are measured when first read). */
  postprocessMs: number;
}

/** The result of a segmentation. */
export interface SegmentationResult {
  /** One BraTS label per voxel (0 background, 1 NCR, 2 ED, `etLabel` ET), C-order `[d0, d1, d2]`. */
  labels: Uint8Array;
  /** `[d0, d1, d2]`. */
  dims: [number, number, number];
  /** Voxel size in mm, as given. */
  spacingMm: [number, number, number];
  /** The enhancing-tumour label used. */
  etLabel: 3 | 4;
  /** Region volumes (NCR, ED, ET, TC = NCR ∪ ET, WT = all non-zero), counted on `labels` when first read. */
  volumes: BratsVolumes;
  /**
   * Largest 3-D diameter of the whole tumour in `labels` (see {@link largestDiameter}), measured when first read;
   * `undefined` when there is none.
   */
  wholeTumourDiameter: LargestDiameter | undefined;
  /** Number of windows the sliding window ran. */
  windows: number;
  /** Stitched logits, when `keepLogits`. */
  logits?: Float32Array;
  /** Stage timings. */
  timings: SegmentationTimings;
  /** Which model produced this, and whether it may be used clinically. */
  model: { name: string; version: string; intendedUse: string; notForClinicalUse: boolean };
}

/**
 * Stacks named single-channel volumes into the model's channel order (e.g. T1c, T1, T2, FLAIR).
 * @param manifest - gives the channel names and order
 * @param channels - one float32 volume per channel name (extra names are ignored)
 * @param dims - `[d0, d1, d2]` of every channel
 * @returns `[C, d0, d1, d2]` float32
 * @throws {@link SegmentationError} `INVALID_INPUT` naming a missing channel or one of the wrong size
 */
export function stackChannels(
  manifest: Pick<ModelManifest, 'input'>,
  channels: Readonly<Record<string, Float32Array | undefined>>,
  dims: readonly [number, number, number],
): Float32Array {
  const names = manifest.input.channels;
  requireInput(
    dims.length === 3 && dims.every((d) => Number.isInteger(d) && d > 0),
    `dims must be three positive integers, got [${dims.join(', ')}]`,
  );
  const n = dims[0] * dims[1] * dims[2];
  const missing = names.filter((name) => !(channels[name] instanceof Float32Array));
  requireInput(
    missing.length === 0,
    `missing input channel(s): ${missing.join(', ')} (the model needs ${names.join(', ')})`,
  );
  const out = new Float32Array(names.length * n);
  names.forEach((name, c) => {
    const v = channels[name] as Float32Array;
    requireInput(v.length === n, `channel ${name} has ${v.length} voxels, expected ${dims.join('x')} = ${n}`);
    out.set(v, c * n);
  });
  return out;
}

/**
 * Runs the whole pipeline of a manifest over one volume with the given window predictor.
 * @param input - the stacked volume and its spacing
 * @param manifest - the model's manifest
 * @param predictor - runs the network on `[n, C, ...roi]` windows and returns logits
 * @param options - abort signal, progress, whether to keep logits, spacing tolerance
 * @returns labels, volumes, diameter, timings
 * @throws {@link SegmentationError} `INVALID_INPUT` for a malformed volume (wrong channel count, size, spacing),
 *   `INFERENCE_FAILED` from the predictor, `ABORTED` on abort
 */
export async function runSegmentation(
  input: SegmentationInput,
  manifest: ModelManifest,
  predictor: WindowPredictor,
  options: SegmentationOptions = {},
): Promise<SegmentationResult> {
  checkChannelFirst(input.data, input.shape, 'segmentation input', 3);
  const [c, d0, d1, d2] = input.shape;
  const names = manifest.input.channels;
  requireInput(c === names.length, `input has ${c} channels; the model needs ${names.length} (${names.join(', ')})`);
  requireInput(Array.isArray(input.spacingMm) && input.spacingMm.length === 3, 'spacingMm must have 3 values');
  for (const s of input.spacingMm)
    requireInput(Number.isFinite(s) && s > 0, `spacingMm must be positive, got [${input.spacingMm.join(', ')}]`);
  const tol = options.spacingTolerance ?? 0.01;
  input.spacingMm.forEach((s, i) => {
    const want = manifest.input.spacingMm[i] as number;
    requireInput(
      Math.abs(s - want) <= tol * want,
      `input spacing [${input.spacingMm.join(', ')}] mm differs from the model's [${manifest.input.spacingMm.join(', ')}] mm; resample first`,
    );
  });
  const notify = options.onProgress ?? (() => undefined);
  throwIfAborted(options.signal, 'segmentation');

  notify({ stage: 'normalize' });
  let t = performance.now();
  const norm = options.inputNormalized ? null : manifest.input.normalize;
  const inf = manifest.inference;
  // Where the image is smaller than a window, normalise straight into the padded image the sliding window would
  // build (one fresh array and one pass fewer); the sliding window then runs on it unpadded (same window layout:
  // a padded axis holds one window at 0 either way) and its output is cropped back below.
  const plan = planWindows([d0, d1, d2], inf.roiSize, inf.overlap);
  const prePad = norm != null && plan.padBefore.some((v, i) => v > 0 || plan.paddedSize[i] !== input.shape[i + 1]);
  const x = !norm
    ? input.data
    : prePad
      ? normalizeIntensityPadded(input.data, input.shape, norm, plan.paddedSize, plan.padBefore, inf.cval).data
      : normalizeIntensity(input.data, input.shape, norm).data;
  const xShape: [number, number, number, number] = prePad ? [c, ...plan.paddedSize] : [c, d0, d1, d2];
  const normalizeMs = performance.now() - t;
  throwIfAborted(options.signal, 'segmentation');

  notify({ stage: 'inference', windowsDone: 0 });
  t = performance.now();
  let predictorMs = 0;
  let networkMs = 0;
  const timedPredictor: WindowPredictor = async (batch) => {
    const p0 = performance.now();
    const r = await predictor(batch);
    predictorMs += performance.now() - p0;
    networkMs += r.networkMs ?? 0;
    return r;
  };
  const swRaw = await slidingWindowInference(x, xShape, timedPredictor, {
    ...inf, // the manifest's window layout: exactly the sliding window's roiSize … cval
    transferInput: x !== input.data, // the normalised copy is ours to give away
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (done, total) => notify({ stage: 'inference', windowsDone: done, windowsTotal: total }),
  });
  // Labels straight from the padded logits when nothing else needs them cropped.
  const labelsFromPadded = prePad && manifest.output.activation === 'sigmoid' && options.keepLogits !== true;
  const sw =
    prePad && !labelsFromPadded
      ? {
          data: cropPadded(swRaw.data, swRaw.shape[0], plan.paddedSize, plan.padBefore, [d0, d1, d2]),
          shape: [swRaw.shape[0], d0, d1, d2] as [number, number, number, number],
          windows: swRaw.windows,
        }
      : swRaw;
  const inferenceMs = performance.now() - t;
  const out = manifest.output;
  if (sw.shape[0] !== out.channels.length) {
    throw new SegmentationError(
      'INFERENCE_FAILED',
      `the model returned ${sw.shape[0]} output channels; the manifest describes ${out.channels.length} (${out.channels.join(', ')})`,
    );
  }
  throwIfAborted(options.signal, 'segmentation');

  notify({ stage: 'postprocess' });
  t = performance.now();
  const labels =
    labelsFromPadded && out.activation === 'sigmoid'
      ? bratsLabelsFromPaddedLogits(
          sw.data,
          sw.shape,
          plan.padBefore,
          [d0, d1, d2],
          out.regions,
          out.threshold,
          manifest.etLabel,
        )
      : out.activation === 'sigmoid'
        ? bratsLabelsFromLogits(sw.data, sw.shape, out.regions, out.threshold, manifest.etLabel)
        : argmaxLabels(softmax(sw.data, sw.shape[0]), sw.shape, out.classLabels);
  const spacing: [number, number, number] = [input.spacingMm[0], input.spacingMm[1], input.spacingMm[2]];
  const postprocessMs = performance.now() - t;
  notify({ stage: 'done' });
  // The raw labels' volumes and diameter are computed when first read: the study pipeline (studyFindings) measures
  // the cleaned labels instead, and a whole-volume diameter costs as much as the labelling.
  const measures = {
    volumes: once(() => bratsVolumes(labels, spacing, manifest.etLabel)),
    wholeTumourDiameter: once(() => largestDiameter(labels, [d0, d1, d2], spacing)),
  };
  return {
    labels,
    dims: [d0, d1, d2],
    spacingMm: spacing,
    etLabel: manifest.etLabel,
    get volumes() {
      return measures.volumes();
    },
    get wholeTumourDiameter() {
      return measures.wholeTumourDiameter();
    },
    windows: sw.windows,
    ...(options.keepLogits ? { logits: sw.data } : {}),
    timings: { normalizeMs, inferenceMs, predictorMs, networkMs, postprocessMs },
    model: {
      name: manifest.name,
      version: manifest.version,
      intendedUse: manifest.intendedUse,
      notForClinicalUse: manifest.notForClinicalUse,
    },
  };
}

/** `compute`, run on the first call only. */
function once<T>(compute: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}

/**
 * Builds the model input from one {@link Volume} per channel, in MONAI's axis convention.
 *
 * A `Volume` stores `i` fastest (`i + j·nx + k·nx·ny`). MONAI loads a NIfTI as a C-order `[i][j][k]` array
 * (`k` fastest), and the BraTS bundle's window `240×240×160` is in that order. So the channels are transposed to
 * `[C, nx, ny, nz]` C-order, with spacing `[sx, sy, sz]`. Values are converted to float32.
 * Channel names match the manifest's case-insensitively (`t1c` fills `T1c`).
 * @param manifest - gives the channel order
 * @param volumes - one volume per channel name; all must share one grid
 * @returns the input for {@link runSegmentation} / `SegmentationModel.segment`
 * @throws {@link SegmentationError} `INVALID_INPUT` naming a missing channel or a channel on another grid
 */
export function volumesToInput(
  manifest: Pick<ModelManifest, 'input'>,
  volumes: Readonly<Record<string, Volume | undefined>>,
): SegmentationInput {
  const byName = new Map(Object.entries(volumes).map(([k, v]) => [k.toLowerCase(), v]));
  const names = manifest.input.channels;
  const missing = names.filter((n) => !byName.get(n.toLowerCase()));
  requireInput(
    missing.length === 0,
    `missing input channel(s): ${missing.join(', ')} (the model needs ${names.join(', ')})`,
  );
  const vols = names.map((n) => byName.get(n.toLowerCase()) as Volume);
  const first = vols[0] as Volume;
  vols.forEach((v, c) => {
    requireInput(
      sameGrid(first, v),
      `channel ${names[c]} is on another grid than ${names[0]} (dims ${v.dims.join('x')} vs ${first.dims.join('x')}, ` +
        `spacing ${v.spacing.join('x')} vs ${first.spacing.join('x')}); co-register and resample first`,
    );
    requireInput(
      v.data.length === v.dims[0] * v.dims[1] * v.dims[2],
      `channel ${names[c]} has ${v.data.length} voxels for dims ${v.dims.join('x')}`,
    );
  });
  const [nx, ny, nz] = first.dims;
  const n = nx * ny * nz;
  const data = new Float32Array(names.length * n);
  vols.forEach((v, c) => {
    const src = v.data;
    const base = c * n;
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        let from = (k * ny + j) * nx;
        let to = base + j * nz + k;
        for (let i = 0; i < nx; i++, from++, to += ny * nz) data[to] = src[from] as number;
      }
    }
  });
  return { data, shape: [names.length, nx, ny, nz], spacingMm: [first.spacing[0], first.spacing[1], first.spacing[2]] };
}

/**
 * Turns a result's label map (`[nx, ny, nz]` C-order, as {@link volumesToInput} lays it out) back into a
 * {@link Volume} on the source grid (`i` fastest), e.g. to write a DICOM SEG.
 * @param labels - the result's labels
 * @param geometry - the grid of the input volumes
 * @returns a `Uint8Array` volume with BraTS labels
 * @throws {@link SegmentationError} `INVALID_INPUT` when the sizes differ
 */
export function labelsToVolume(labels: Uint8Array, geometry: VolumeGeometry): Volume<Uint8Array> {
  const [nx, ny, nz] = geometry.dims;
  requireInput(labels.length === nx * ny * nz, `labels have ${labels.length} voxels; the grid has ${nx}x${ny}x${nz}`);
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      let from = (i * ny + j) * nz;
      let to = j * nx + i;
      for (let k = 0; k < nz; k++, from++, to += nx * ny) out[to] = labels[from] as number;
    }
  }
  return { ...geometryOf(geometry), data: out };
}
