/**
 * A real study in, results a clinician can check out: the four series onto the model's grid (one frame of
 * reference, resampled onto the T1c grid where they differ, then MONAI `Orientationd` + `Spacingd`), and after
 * inference the labels cleaned (connected components per region), sent back onto the T1c grid (nearest), measured
 * (volumes from the voxel spacing, RANO diameters per enhancing lesion) and checked for plausibility.
 * @packageDocumentation
 */
import { geometryOf, sameGrid, type Vec3, type Volume, type VolumeGeometry } from '@cdss/dicom';
import {
  keepLargestComponents,
  largestOf,
  removeSmallComponents,
  connectedComponents,
  voxelsForVolume,
} from './components.js';
import { enhancingBrainMl, plausibilityFlags, type ResultFlag } from './flags.js';
import type { ModelManifest } from './manifest.js';
import { measureLesions, type LesionMeasurement } from './measure.js';
import { bratsVolumes, largestDiameter, sigmoidThresholdLogit, type BratsVolumes } from './postprocess.js';
import { SegmentationError, requireInput } from './segmentation-errors.js';
import type { SegmentationInput, SegmentationResult } from './segmentation.js';
import {
  labelBlock,
  orientationOf,
  reorderedGeometry,
  resample,
  resampleInto,
  resampleLabelBlock,
  spacingGeometry,
  type AxisReorder,
  type VoxelBlock,
} from './spatial.js';

/** One input series as a volume, with what identifies its frame of reference. */
export interface StudyChannelInput {
  volume: Volume;
  /** DICOM FrameOfReferenceUID; series with different ones cannot be overlaid without registration. */
  frameOfReferenceUid?: string | undefined;
  /** Named in errors. */
  seriesInstanceUid?: string | undefined;
}

/** The model input and the grids it was made on. */
export interface PreparedStudy {
  input: SegmentationInput;
  /** The first channel's (T1c) grid: where the SEG goes. */
  sourceGrid: VolumeGeometry;
  /** The model's grid (oriented to its axcodes, at its spacing). */
  modelGrid: VolumeGeometry;
  /** Channels resampled onto the T1c grid because their grid differed. */
  resampledChannels: string[];
  /** Whether the source grid was interpolated onto the model grid (not just reoriented). */
  interpolated: boolean;
  /** How the source grid's axes were reordered into the model grid's (MONAI `Orientation`). */
  reorder: AxisReorder;
  /** The input is already normalised (pass `inputNormalized` to `segment`). */
  normalized: boolean;
}

/**
 * Builds the model input from a study's series.
 * @param manifest - the model (channels, axcodes, spacing)
 * @param channels - by channel name (case-insensitive), e.g. `{ t1c, t1, t2, flair }`
 * @throws {@link SegmentationError} `INVALID_INPUT` for a missing channel or another frame of reference
 */
export function prepareStudy(
  manifest: Pick<ModelManifest, 'input'>,
  channels: Readonly<Record<string, StudyChannelInput | undefined>>,
): PreparedStudy {
  const byName = new Map(Object.entries(channels).map(([k, v]) => [k.toLowerCase(), v]));
  const names = manifest.input.channels;
  const missing = names.filter((n) => !byName.get(n.toLowerCase()));
  requireInput(
    missing.length === 0,
    `missing input channel(s): ${missing.join(', ')} (the model needs ${names.join(', ')})`,
  );
  const list = names.map((n) => byName.get(n.toLowerCase()) as StudyChannelInput);
  const reference = list[0] as StudyChannelInput;
  list.forEach((c, i) => {
    if (
      c.frameOfReferenceUid &&
      reference.frameOfReferenceUid &&
      c.frameOfReferenceUid !== reference.frameOfReferenceUid
    )
      throw new SegmentationError(
        'INVALID_INPUT',
        `series ${c.seriesInstanceUid ?? names[i]} (${names[i]}) has FrameOfReferenceUID ${c.frameOfReferenceUid}, ` +
          `but ${reference.seriesInstanceUid ?? names[0]} (${names[0]}) has ${reference.frameOfReferenceUid}: ` +
          'the series are not in one patient coordinate system; register them first',
      );
  });
  const sourceGrid = geometryOf(reference.volume);
  const resampledChannels: string[] = [];
  const onSource = list.map((c, i) => {
    if (sameGrid(sourceGrid, c.volume)) return c.volume;
    resampledChannels.push(names[i] as string);
    return resample(c.volume, sourceGrid, 'trilinear');
  });
  const reorder = orientationOf(sourceGrid, manifest.input.axcodes);
  const oriented = reorderedGeometry(sourceGrid, reorder);
  const modelGrid = spacingGeometry(oriented, manifest.input.spacingMm);
  // Orientation alone moves voxels; Spacing interpolates only when the spacing changes (MONAI skips it otherwise).
  const interpolated = !sameGrid(modelGrid, oriented, 1e-6);
  let input: SegmentationInput;
  const norm = manifest.input.normalize;
  // Channel-wise NormalizeIntensity is done in the same pass as the reordering (statistics do not depend on order).
  const normalized = !interpolated && norm !== null && norm.channelWise;
  if (interpolated) {
    // Spacing straight into the model's channel-first C-order array (k fastest): the values `volumesToInput` would
    // stack from the resampled volumes, without those volumes and the transposing pass.
    const [d0, d1, d2] = modelGrid.dims;
    const n = d0 * d1 * d2;
    const data = new Float32Array(names.length * n);
    onSource.forEach((v, c) => resampleInto(v, modelGrid, 'trilinear', data, c * n, [d1 * d2, d2, 1]));
    input = { data, shape: [names.length, d0, d1, d2], spacingMm: [...modelGrid.spacing] };
  } else {
    // A pure reordering: straight from each source volume into the model's channel-first array, in one pass.
    input = {
      data: stackReordered(onSource, reorder, sourceGrid.dims, normalized ? norm.nonzero : undefined),
      shape: [names.length, ...modelGrid.dims],
      spacingMm: [...modelGrid.spacing],
    };
  }
  return {
    reorder,
    normalized,
    input: { ...input, spacingMm: [...modelGrid.spacing] },
    sourceGrid,
    modelGrid,
    resampledChannels,
    interpolated,
  };
}

/**
 * Channel-first C-order `[C, d0, d1, d2]` of volumes (i fastest) on one grid, with output axis q reading input axis
 * `reorder.axis[q]` (reversed where `reorder.flip[q]`): MONAI's Orientation and the channel stacking in one pass.
 */
function stackReordered(
  volumes: readonly Volume[],
  reorder: AxisReorder,
  dims: Readonly<Vec3>,
  normalizeNonzero?: boolean,
): Float32Array {
  const { out, start, step } = reorderSteps(reorder, dims);
  const [n0, n1, n2] = out;
  const [s0, s1, s2] = step;
  const n = n0 * n1 * n2;
  const data = new Float32Array(volumes.length * n);
  // A 3-D transpose: per output index b, slabs of K along output axis 2 (the axis written in order) swept along
  // output axis 0 (usually the fastest input axis), so the K input lines read and the rows written stay in L1 (about
  // 1.5× faster here than square 16×16 tiles over axes 0 and 2, on a 240×240×155 study).
  const K = 64;
  volumes.forEach((v, c) => {
    const src = v.data;
    const base = c * n;
    // MONAI NormalizeIntensity(channel_wise) over this channel, as normalize.ts computes it: (v - mean) / std in
    // float32, the background left at 0 in nonzero mode.
    const s = normalizeNonzero === undefined ? undefined : channelStatistics(src, normalizeNonzero);
    const mean = s?.mean ?? 0;
    const std = s?.std ?? 1;
    const keepZero = s?.nonzero === true;
    const f32 = Math.fround;
    for (let b = 0; b < n1; b++)
      for (let k0 = 0; k0 < n2; k0 += K) {
        const k1 = Math.min(k0 + K, n2);
        for (let a = 0; a < n0; a++) {
          let o = base + (a * n1 + b) * n2 + k0;
          let p = start + a * s0 + b * s1 + k0 * s2;
          if (!s) for (let k = k0; k < k1; k++, p += s2) data[o++] = src[p] as number;
          else
            for (let k = k0; k < k1; k++, p += s2) {
              const x = src[p] as number;
              data[o++] = keepZero && x === 0 ? 0 : f32(x - mean) / std;
            }
        }
      }
  });
  return data;
}

const at = <T>(a: readonly T[], i: number): T => a[i] as T;

/** normalize.ts's statistics of one channel (float64 sums; mean and std rounded to float32, a std of 0 is 1). */
function channelStatistics(
  data: ArrayLike<number>,
  nonzero: boolean,
): { mean: number; std: number; nonzero: boolean } | undefined {
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < data.length; i++) {
    const v = Math.fround(data[i] as number);
    if (nonzero && v === 0) continue;
    sum += v;
    sq += v * v;
    n++;
  }
  if (n === 0) return undefined;
  const mean = sum / n;
  const std = Math.fround(Math.sqrt(Math.max(sq / n - mean * mean, 0)));
  return { mean: Math.fround(mean), std: std === 0 ? 1 : std, nonzero };
}

/** For a reordering of a grid of `dims` (i fastest): the output dims, and the input index of output (0,0,0) and its steps. */
function reorderSteps(reorder: AxisReorder, dims: Readonly<Vec3>): { out: Vec3; start: number; step: Vec3 } {
  const strides = [1, dims[0], dims[0] * dims[1]];
  const out = reorder.axis.map((a) => at(dims, a)) as Vec3;
  const step = [0, 1, 2].map((q) => (reorder.flip[q] ? -1 : 1) * at(strides, at(reorder.axis, q))) as Vec3;
  const start = [0, 1, 2].reduce(
    (sum, q) => sum + (reorder.flip[q] ? (at(out, q) - 1) * at(strides, at(reorder.axis, q)) : 0),
    0,
  );
  return { out, start, step };
}

/** The bounding box `[lo, hi)` of the non-zero voxels of a C-order array, or undefined when all are zero. */
function boundingBox(labels: Uint8Array, dims: Readonly<Vec3>): VoxelBlock | undefined {
  // a C-order [d0, d1, d2] array is a volume (i fastest) of [d2, d1, d0]
  const { lo, hi } = labelBlock(labels, [dims[2], dims[1], dims[0]]);
  return hi[0] > 0 ? { lo: [lo[2], lo[1], lo[0]], hi: [hi[2], hi[1], hi[0]] } : undefined;
}

/** The block `[lo, hi)` of a C-order array. */
function crop(data: Uint8Array, dims: Readonly<Vec3>, lo: Vec3, hi: Vec3): Uint8Array {
  const [d0, d1, d2] = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
  const out = new Uint8Array(d0 * d1 * d2);
  let o = 0;
  for (let i = 0; i < d0; i++)
    for (let j = 0; j < d1; j++) {
      const from = ((lo[0] + i) * dims[1] + lo[1] + j) * dims[2] + lo[2];
      out.set(data.subarray(from, from + d2), o);
      o += d2;
    }
  return out;
}

/** The measured, cleaned result on the T1c grid. */
export interface StudyFindings {
  /** BraTS labels on the source (T1c) grid, i fastest: what the SEG holds. */
  labels: Volume<Uint8Array>;
  /** Volumes on the source grid, from its voxel spacing. */
  volumes: BratsVolumes;
  /** Largest 3-D diameter of the whole tumour after clean-up, mm. */
  wholeTumourDiameterMm: number | undefined;
  /** Enhancing lesions, largest first. */
  lesions: LesionMeasurement[];
  sumOfProductsMm2: number;
  flags: ResultFlag[];
  /** Components of the network's whole tumour before clean-up. */
  rawComponents: number;
}

/** Labels C-order `[d0, d1, d2]` to measure: a block of a grid. */
interface MeasuredBlock {
  labels: Uint8Array;
  dims: Vec3;
  spacing: Vec3;
  /** Where the block lies in its grid, when positions are to be the grid's (see `measureLesions`' `offset`). */
  at: Vec3 | undefined;
  /** Where the block lies in its grid, for the field-of-view check. */
  offset: Vec3;
  gridDims: Vec3;
}

/**
 * The block of a label volume (i fastest) that holds its labels, reordered to RAS (MONAI `Orientation("RAS")` then
 * C-order, as `orient` and a transpose would give it over the whole grid) with where it lies in the RAS grid.
 */
function rasBlock(labels: Volume<Uint8Array>, block: VoxelBlock): MeasuredBlock {
  const reorder = orientationOf(labels, 'RAS');
  const grid = reorderedGeometry(labels, reorder);
  const { start, step } = reorderSteps(reorder, labels.dims);
  // no labels: one (empty) voxel, as the model-grid box does
  const empty = block.hi.some((h, a) => h <= at(block.lo, a));
  const slo: Vec3 = empty ? [0, 0, 0] : block.lo;
  const shi: Vec3 = empty ? [1, 1, 1] : block.hi;
  const lo = [0, 1, 2].map((q) => {
    const a = at(reorder.axis, q);
    return reorder.flip[q] ? at(labels.dims, a) - at(shi, a) : at(slo, a);
  }) as Vec3;
  const dims = [0, 1, 2].map((q) => at(shi, at(reorder.axis, q)) - at(slo, at(reorder.axis, q))) as Vec3;
  const out = new Uint8Array(dims[0] * dims[1] * dims[2]);
  const src = labels.data;
  for (let a = 0, v = 0; a < dims[0]; a++)
    for (let b = 0; b < dims[1]; b++) {
      let p = start + (lo[0] + a) * step[0] + (lo[1] + b) * step[1] + lo[2] * step[2];
      for (let c = 0; c < dims[2]; c++, v++, p += step[2]) out[v] = src[p] as number;
    }
  return { labels: out, dims, spacing: [...grid.spacing], at: lo, offset: lo, gridDims: [...grid.dims] };
}

/**
 * Cleans, maps back, measures and checks a segmentation (see the module comment).
 * @param result - the model's result on `prepared.modelGrid` (with `logits` when the ET-outside-TC check should run)
 * @param prepared - from {@link prepareStudy}
 * @param manifest - postprocessing thresholds, label values
 */
export function studyFindings(
  result: SegmentationResult,
  prepared: PreparedStudy,
  manifest: Pick<ModelManifest, 'postprocessing' | 'etLabel' | 'output' | 'input'>,
): StudyFindings {
  const post = manifest.postprocessing;
  const et = manifest.etLabel;
  const gridDims = result.dims;
  const spacing = result.spacingMm;
  // Everything below works on the box around the tumour: outside it every label is 0.
  const box = boundingBox(result.labels, gridDims) ?? { lo: [0, 0, 0] as Vec3, hi: [1, 1, 1] as Vec3 };
  const dims: Vec3 = [box.hi[0] - box.lo[0], box.hi[1] - box.lo[1], box.hi[2] - box.lo[2]];
  const labels = crop(result.labels, gridDims, box.lo, box.hi);
  const n = labels.length;
  const masks = { wt: new Uint8Array(n), tc: new Uint8Array(n), et: new Uint8Array(n) };
  for (let v = 0; v < n; v++) {
    const l = labels[v] as number;
    if (l === 0) continue;
    masks.wt[v] = 1;
    if (l === 1 || l === et) masks.tc[v] = 1;
    if (l === et) masks.et[v] = 1;
  }
  const wtComponents = connectedComponents(masks.wt, dims, post.components.connectivity);
  const rawComponents = wtComponents.sizes.length;
  const clean = (region: 'wt' | 'tc' | 'et'): Uint8Array => {
    let m: Uint8Array = masks[region];
    const min = post.components.minSizeMm3[region];
    const removeSmall = min !== undefined && min > 0;
    if (removeSmall) m = removeSmallComponents(m, dims, voxelsForVolume(min, spacing), post.components.connectivity);
    if (post.components.keepLargest.includes(region))
      // the raw whole tumour is labelled already (for the component count): keep its largest without labelling again
      m =
        region === 'wt' && !removeSmall
          ? largestOf(wtComponents)
          : keepLargestComponents(m, dims, post.components.connectivity);
    return m;
  };
  const wt = clean('wt');
  const tc = clean('tc');
  const etMask = clean('et');
  const cleaned = new Uint8Array(n);
  for (let v = 0; v < n; v++) {
    if (!wt[v]) continue;
    cleaned[v] = tc[v] ? (etMask[v] ? et : 1) : 2;
  }
  // Back onto the T1c grid: the SEG must overlay the series it references. Without interpolation the model grid is
  // the source grid reordered, so each voxel of the box goes straight back to its source voxel; otherwise nearest
  // resampling of the box, computed only for the source voxels that sample inside it.
  let labelsOnSource: Volume<Uint8Array>;
  let sourceBlock: VoxelBlock | undefined;
  if (!prepared.interpolated) {
    const { start, step } = reorderSteps(prepared.reorder, prepared.sourceGrid.dims);
    const data = new Uint8Array(result.labels.length);
    for (let i = 0, v = 0; i < dims[0]; i++)
      for (let j = 0; j < dims[1]; j++) {
        let p = start + (box.lo[0] + i) * step[0] + (box.lo[1] + j) * step[1] + box.lo[2] * step[2];
        for (let k = 0; k < dims[2]; k++, v++, p += step[2]) data[p] = cleaned[v] as number;
      }
    labelsOnSource = { ...geometryOf(prepared.sourceGrid), data };
  } else {
    const back = resampleLabelBlock(cleaned, prepared.modelGrid, box, prepared.sourceGrid);
    labelsOnSource = { ...geometryOf(prepared.sourceGrid), data: back.data };
    sourceBlock = back.block;
  }
  // Measure on the source voxels. Without interpolation the model grid holds exactly them (reordered): measure the
  // box there; its d2-planes are axial when the model's third axis runs I-S (RAS, LPS). Otherwise the block of the
  // source labels in RAS order (d2 superior), again a reordering, not an interpolation; positions, slices and the
  // field-of-view check are the whole grid's.
  const axialModel = !prepared.interpolated && /[IS]$/.test(manifest.input.axcodes);
  const measured: MeasuredBlock = axialModel
    ? { labels: cleaned, dims, spacing: [...spacing], at: undefined, offset: box.lo, gridDims }
    : rasBlock(labelsOnSource, sourceBlock ?? labelBlock(labelsOnSource.data, prepared.sourceGrid.dims));
  const measureC = measured.labels;
  const measureDims = measured.dims;
  const measureSpacing = measured.spacing;
  // (the box on the model grid predates block measuring: its lesion slices are shifted afterwards, as before)
  const sliceOffset = measured.at ? 0 : box.lo[2];
  const volumes = bratsVolumes(measureC, measureSpacing, et);
  const diameter = largestDiameter(measureC, measureDims, measureSpacing, undefined, measured.at);
  const etAxial = new Uint8Array(measureC.length);
  for (let v = 0; v < measureC.length; v++) etAxial[v] = measureC[v] === et ? 1 : 0;
  const lesionReport = measureLesions(etAxial, measureDims, measureSpacing, {
    connectivity: post.components.connectivity,
    minMeasurableMm: post.minMeasurableMm,
    ...(measured.at ? { offset: measured.at } : {}),
  });
  const lesions = lesionReport.lesions.map((l) => ({ ...l, slice: l.slice + sliceOffset }));
  const etOutside = etOutsideCore(result, manifest, box);
  const voxelMl = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  const wtMeasured = new Uint8Array(measureC.length);
  for (let v = 0; v < measureC.length; v++) wtMeasured[v] = measureC[v] ? 1 : 0;
  const flags = plausibilityFlags(
    {
      wholeTumour: wtMeasured,
      dims: measureDims,
      offset: measured.offset,
      gridDims: measured.gridDims,
      wholeTumourMl: volumes.wt.mL,
      rawComponents,
      enhancingVoxels: etOutside.enhancing,
      enhancingOutsideCore: etOutside.outside,
      ...(volumes.wt.voxels === 0 ? { enhancingBrainMl: enhancementOf(prepared.input, manifest, voxelMl) } : {}),
    },
    post.plausibility,
  );
  return {
    labels: labelsOnSource,
    volumes,
    wholeTumourDiameterMm: diameter?.mm,
    lesions,
    sumOfProductsMm2: lesionReport.sumOfProductsMm2,
    flags,
    rawComponents,
  };
}

/** Enhancing voxels of the network output and those outside its tumour-core channel (needs the logits). */
function etOutsideCore(
  result: SegmentationResult,
  manifest: Pick<ModelManifest, 'output'>,
  box: { lo: Vec3; hi: Vec3 },
): { enhancing: number; outside: number } {
  const out = manifest.output;
  if (!result.logits || out.activation !== 'sigmoid') return { enhancing: 0, outside: 0 };
  const n = result.labels.length;
  const [, n1, n2] = result.dims;
  const cut = sigmoidThresholdLogit(out.threshold);
  const et = result.logits.subarray(out.regions.et * n, (out.regions.et + 1) * n);
  const tc = result.logits.subarray(out.regions.tc * n, (out.regions.tc + 1) * n);
  let enhancing = 0;
  let outside = 0;
  // An enhancing voxel is labelled (ET takes precedence), so all of them lie in the labels' box.
  for (let i = box.lo[0]; i < box.hi[0]; i++)
    for (let j = box.lo[1]; j < box.hi[1]; j++)
      for (let v = (i * n1 + j) * n2 + box.lo[2], end = v + box.hi[2] - box.lo[2]; v < end; v++) {
        if ((et[v] as number) < cut) continue;
        enhancing++;
        if ((tc[v] as number) < cut) outside++;
      }
  return { enhancing, outside };
}

/** mL of the brain that enhances (T1c vs T1), from the model input's first two channels when they are T1c and T1. */
function enhancementOf(
  input: SegmentationInput,
  manifest: Pick<ModelManifest, 'input' | 'postprocessing'>,
  voxelMl: number,
): number | undefined {
  const names = manifest.input.channels.map((c) => c.toLowerCase());
  const c1 = names.indexOf('t1c');
  const c0 = names.indexOf('t1');
  if (c1 < 0 || c0 < 0) return undefined;
  const n = input.shape[1] * input.shape[2] * input.shape[3];
  return enhancingBrainMl(
    input.data.subarray(c1 * n, (c1 + 1) * n),
    input.data.subarray(c0 * n, (c0 + 1) * n),
    voxelMl,
    manifest.postprocessing.plausibility.enhancementZ,
  );
}
