/**
 * A real study in, results a clinician can check out: the four series onto the model's grid (one frame of
 * reference, resampled onto the T1c grid where they differ, then MONAI `Orientationd` + `Spacingd`), and after
 * inference the labels cleaned (connected components per region), sent back onto the T1c grid (nearest), measured
 * (volumes from the voxel spacing, RANO diameters per enhancing lesion) and checked for plausibility.
 * @packageDocumentation
 */
import { geometryOf, sameGrid, type Vec3, type Volume, type VolumeGeometry } from '@cdss/dicom';
import { keepLargestComponents, removeSmallComponents, connectedComponents, voxelsForVolume } from './components.js';
import { enhancingBrainMl, plausibilityFlags, type ResultFlag } from './flags.js';
import type { ModelManifest } from './manifest.js';
import { measureLesions, type LesionMeasurement } from './measure.js';
import { bratsVolumes, largestDiameter, sigmoidThresholdLogit, type BratsVolumes } from './postprocess.js';
import { SegmentationError, requireInput } from './segmentation-errors.js';
import { labelsToVolume, volumesToInput, type SegmentationInput, type SegmentationResult } from './segmentation.js';
import { orient, orientationOf, reorderedGeometry, resample, spacingGeometry, type AxisReorder } from './spatial.js';

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
  if (interpolated) {
    const onModel = onSource.map((v) => resample(v, modelGrid, 'trilinear'));
    input = volumesToInput(manifest, Object.fromEntries(names.map((n, i) => [n, onModel[i] as Volume])));
  } else {
    // A pure reordering: straight from each source volume into the model's channel-first array, in one pass.
    input = {
      data: stackReordered(onSource, reorder, sourceGrid.dims),
      shape: [names.length, ...modelGrid.dims],
      spacingMm: [...modelGrid.spacing],
    };
  }
  return {
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
function stackReordered(volumes: readonly Volume[], reorder: AxisReorder, dims: Readonly<Vec3>): Float32Array {
  const strides = [1, dims[0], dims[0] * dims[1]];
  const out = reorder.axis.map((a) => at(dims, a));
  const [n0, n1, n2] = out as [number, number, number];
  const step = [0, 1, 2].map((q) => (reorder.flip[q] ? -1 : 1) * at(strides, at(reorder.axis, q)));
  const start = [0, 1, 2].reduce(
    (sum, q) => sum + (reorder.flip[q] ? (at(out, q) - 1) * at(strides, at(reorder.axis, q)) : 0),
    0,
  );
  const [s0, s1, s2] = step as [number, number, number];
  const n = n0 * n1 * n2;
  const data = new Float32Array(volumes.length * n);
  volumes.forEach((v, c) => {
    const src = v.data;
    let o = c * n;
    for (let a = 0; a < n0; a++)
      for (let b = 0; b < n1; b++) {
        let p = start + a * s0 + b * s1;
        for (let k = 0; k < n2; k++, p += s2) data[o++] = src[p] as number;
      }
  });
  return data;
}

const at = <T>(a: readonly T[], i: number): T => a[i] as T;

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

/** A volume (i fastest) as C-order `[d0, d1, d2]` data. */
function channelFirst(v: Volume<Uint8Array>): Uint8Array {
  const [nx, ny, nz] = v.dims;
  const out = new Uint8Array(v.data.length);
  for (let i = 0, o = 0; i < nx; i++)
    for (let j = 0; j < ny; j++) for (let k = 0; k < nz; k++, o++) out[o] = v.data[i + nx * (j + ny * k)] as number;
  return out;
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
  const dims = result.dims;
  const spacing = result.spacingMm;
  const labels = result.labels;
  const n = labels.length;
  const masks = { wt: new Uint8Array(n), tc: new Uint8Array(n), et: new Uint8Array(n) };
  for (let v = 0; v < n; v++) {
    const l = labels[v] as number;
    if (l === 0) continue;
    masks.wt[v] = 1;
    if (l === 1 || l === et) masks.tc[v] = 1;
    if (l === et) masks.et[v] = 1;
  }
  const rawComponents = connectedComponents(masks.wt, dims, post.components.connectivity).sizes.length;
  const clean = (region: 'wt' | 'tc' | 'et'): Uint8Array => {
    let m: Uint8Array = masks[region];
    const min = post.components.minSizeMm3[region];
    if (min !== undefined && min > 0)
      m = removeSmallComponents(m, dims, voxelsForVolume(min, spacing), post.components.connectivity);
    if (post.components.keepLargest.includes(region)) m = keepLargestComponents(m, dims, post.components.connectivity);
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
  // Back onto the T1c grid: the SEG must overlay the series it references.
  const onModel = labelsToVolume(cleaned, prepared.modelGrid);
  // (without interpolation this is the exact inverse reordering)
  const labelsOnSource = resample(onModel, prepared.sourceGrid, 'nearest') as Volume<Uint8Array>;
  // Measure on the source voxels. Without interpolation the model grid holds exactly them (reordered), so measure
  // there; its d2-planes are axial when the model's third axis runs I-S (RAS, LPS). Otherwise the source labels in
  // RAS order (d2 superior), which is again a reordering, not an interpolation.
  const axialModel = !prepared.interpolated && /[IS]$/.test(manifest.input.axcodes);
  const measureGrid = axialModel ? prepared.modelGrid : orient(labelsOnSource, 'RAS');
  const sourceC = axialModel ? cleaned : channelFirst(measureGrid as Volume<Uint8Array>);
  const volumes = bratsVolumes(sourceC, measureGrid.spacing, et);
  const diameter = largestDiameter(sourceC, measureGrid.dims, measureGrid.spacing);
  const etAxial = new Uint8Array(sourceC.length);
  for (let v = 0; v < sourceC.length; v++) etAxial[v] = sourceC[v] === et ? 1 : 0;
  const measured = measureLesions(etAxial, measureGrid.dims, measureGrid.spacing, {
    connectivity: post.components.connectivity,
    minMeasurableMm: post.minMeasurableMm,
  });
  const etOutside = etOutsideCore(result, manifest);
  const voxelMl = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  const wtSource = new Uint8Array(sourceC.length);
  for (let v = 0; v < sourceC.length; v++) wtSource[v] = sourceC[v] ? 1 : 0;
  const flags = plausibilityFlags(
    {
      wholeTumour: wtSource,
      dims: measureGrid.dims,
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
    lesions: measured.lesions,
    sumOfProductsMm2: measured.sumOfProductsMm2,
    flags,
    rawComponents,
  };
}

/** Enhancing voxels of the network output and those outside its tumour-core channel (needs the logits). */
function etOutsideCore(
  result: SegmentationResult,
  manifest: Pick<ModelManifest, 'output'>,
): { enhancing: number; outside: number } {
  const out = manifest.output;
  if (!result.logits || out.activation !== 'sigmoid') return { enhancing: 0, outside: 0 };
  const n = result.labels.length;
  const cut = sigmoidThresholdLogit(out.threshold);
  const et = result.logits.subarray(out.regions.et * n, (out.regions.et + 1) * n);
  const tc = result.logits.subarray(out.regions.tc * n, (out.regions.tc + 1) * n);
  let enhancing = 0;
  let outside = 0;
  for (let v = 0; v < n; v++) {
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
