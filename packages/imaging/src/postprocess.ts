/**
 * Post-processing of a brain-tumour segmentation network's output, as the MONAI bundle
 * `brats_mri_segmentation` does it, plus the measurements a report needs.
 *
 * - Activation: `sigmoid` (multi-label TC/WT/ET, the bundle) or `softmax` over channels (multi-class models).
 * - Discretisation: `AsDiscrete(threshold=0.5)` is `value >= threshold` (monai/transforms/post/array.py); for
 *   softmax models, `argmax` over channels (first maximum wins, as `torch.argmax`).
 * - Label rule (bundle `Lambdad`): `ET ? et_label : TC ? 1 : WT ? 2 : 0` with `et_label` 4 (BraTS 2018–2021)
 *   or 3 (BraTS 2023). Nesting is not enforced: a TC voxel outside WT is still 1.
 * - Volumes are counted on the final label map: NCR = label 1, ED = label 2, ET = `etLabel`,
 *   TC = NCR ∪ ET, WT = every non-zero label. Voxel volume = product of the spacing (mm³) / 1000 → mL.
 * @packageDocumentation
 */
import { checkChannelFirst, requireInput } from './segmentation-errors.js';

/** Where each region lives in a multi-label (sigmoid) output: channel indices. */
export interface BratsChannelOrder {
  /** Tumour core channel (bundle: 0). */
  tc: number;
  /** Whole tumour channel (bundle: 1). */
  wt: number;
  /** Enhancing tumour channel (bundle: 2). */
  et: number;
}

/** The enhancing-tumour label value: 4 up to BraTS 2021, 3 from BraTS 2023. */
export type EnhancingTumourLabel = 3 | 4;

/**
 * Logistic sigmoid of every value in float32 (`torch.sigmoid`).
 * @param logits - any float32 values
 * @returns a new array, `1 / (1 + exp(-x))`
 */
export function sigmoid(logits: Float32Array): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = 1 / (1 + Math.exp(-(logits[i] as number)));
  return out;
}

/**
 * Softmax over the channel axis of a `[C, ...spatial]` array (`torch.softmax(dim=0)`), in float32.
 * @param logits - C-order `[C, ...spatial]`
 * @param channels - C
 * @returns a new array of probabilities summing to 1 over the channels at each voxel
 * @throws {@link SegmentationError} `INVALID_INPUT` when the length is not a multiple of `channels`
 */
export function softmax(logits: Float32Array, channels: number): Float32Array {
  requireInput(Number.isInteger(channels) && channels >= 1, `channels must be a positive integer`);
  requireInput(logits.length % channels === 0, `softmax: ${logits.length} values is not a multiple of ${channels} channels`);
  const voxels = logits.length / channels;
  const out = new Float32Array(logits.length);
  for (let v = 0; v < voxels; v++) {
    let max = -Infinity;
    for (let c = 0; c < channels; c++) max = Math.max(max, logits[c * voxels + v] as number);
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const e = Math.exp((logits[c * voxels + v] as number) - max);
      out[c * voxels + v] = e;
      sum += e;
    }
    for (let c = 0; c < channels; c++) out[c * voxels + v] = (out[c * voxels + v] as number) / sum;
  }
  return out;
}

/**
 * `AsDiscrete(threshold=t)`: 1 where `value >= t`, else 0.
 * @param values - probabilities (or any values)
 * @param threshold - MONAI's `threshold` (the bundle: 0.5)
 * @returns a new 0/1 mask of the same length
 */
export function threshold(values: Float32Array, threshold: number): Uint8Array {
  requireInput(Number.isFinite(threshold), `threshold must be a finite number`);
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] as number) >= threshold ? 1 : 0;
  return out;
}

/**
 * The bundle's label rule on thresholded TC/WT/ET channels:
 * `ET → etLabel`, else `TC → 1` (necrotic / non-enhancing core), else `WT → 2` (oedema), else 0.
 * @param mask - 0/1 values, C-order `[C, ...spatial]`
 * @param shape - `[C, ...spatial]`
 * @param order - which channel is TC, WT and ET (the bundle: 0, 1, 2)
 * @param etLabel - 4 (BraTS ≤ 2021, default) or 3 (BraTS 2023)
 * @returns one label per voxel
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad shape or channel index
 */
export function bratsLabelsFromChannels(
  mask: Uint8Array,
  shape: readonly number[],
  order: BratsChannelOrder = { tc: 0, wt: 1, et: 2 },
  etLabel: EnhancingTumourLabel = 4,
): Uint8Array {
  const voxels = checkChannelFirst(mask, shape, 'label conversion input');
  const c = shape[0] as number;
  for (const k of ['tc', 'wt', 'et'] as const) {
    requireInput(Number.isInteger(order[k]) && order[k] >= 0 && order[k] < c, `channel ${k}=${order[k]} is outside 0..${c - 1}`);
  }
  requireInput(etLabel === 3 || etLabel === 4, `etLabel must be 3 or 4, got ${String(etLabel)}`);
  const tc = order.tc * voxels;
  const wt = order.wt * voxels;
  const et = order.et * voxels;
  const out = new Uint8Array(voxels);
  for (let v = 0; v < voxels; v++) {
    out[v] = mask[et + v] ? etLabel : mask[tc + v] ? 1 : mask[wt + v] ? 2 : 0;
  }
  return out;
}

/**
 * `argmax` over channels mapped through a class → label table (multi-class softmax models).
 * Ties go to the lowest channel, as `torch.argmax`.
 * @param values - C-order `[C, ...spatial]`
 * @param shape - `[C, ...spatial]`
 * @param labels - the label of each class (length C)
 * @returns one label per voxel
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad shape or table
 */
export function argmaxLabels(values: Float32Array, shape: readonly number[], labels: readonly number[]): Uint8Array {
  const voxels = checkChannelFirst(values, shape, 'argmax input');
  const c = shape[0] as number;
  requireInput(labels.length === c, `label table has ${labels.length} entries for ${c} channels`);
  for (const l of labels) requireInput(Number.isInteger(l) && l >= 0 && l <= 255, `labels must be integers 0..255`);
  const out = new Uint8Array(voxels);
  for (let v = 0; v < voxels; v++) {
    let best = 0;
    let bestValue = values[v] as number;
    for (let k = 1; k < c; k++) {
      const x = values[k * voxels + v] as number;
      if (x > bestValue) {
        bestValue = x;
        best = k;
      }
    }
    out[v] = labels[best] as number;
  }
  return out;
}

/** Voxel count and volume of one region. */
export interface RegionVolume {
  /** Number of voxels. */
  voxels: number;
  /** Volume in millilitres (cm³). */
  mL: number;
}

/** Per-region volumes of a BraTS label map. */
export interface BratsVolumes {
  /** Necrotic / non-enhancing tumour core: label 1. */
  ncr: RegionVolume;
  /** Peritumoral oedema: label 2. */
  ed: RegionVolume;
  /** Enhancing tumour: label `etLabel`. */
  et: RegionVolume;
  /** Tumour core: NCR ∪ ET. */
  tc: RegionVolume;
  /** Whole tumour: every non-zero label. */
  wt: RegionVolume;
  /** Volume of one voxel in mm³. */
  voxelVolumeMm3: number;
}

function checkSpacing(spacing: readonly number[]): number {
  requireInput(spacing.length === 3, `spacing must have 3 values (mm), got ${spacing.length}`);
  for (const s of spacing) requireInput(Number.isFinite(s) && s > 0, `spacing must be positive finite millimetres, got [${spacing.join(', ')}]`);
  return (spacing[0] as number) * (spacing[1] as number) * (spacing[2] as number);
}

/**
 * Region volumes from a BraTS label map (see the module notes for the region definitions).
 * @param labels - one label per voxel
 * @param spacing - voxel size in mm along the three axes of the label map
 * @param etLabel - 4 (default) or 3
 * @returns voxel counts and mL per region
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad spacing
 */
export function bratsVolumes(labels: Uint8Array, spacing: readonly number[], etLabel: EnhancingTumourLabel = 4): BratsVolumes {
  const voxelMm3 = checkSpacing(spacing);
  let ncr = 0;
  let ed = 0;
  let et = 0;
  let other = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (l === 0) continue;
    if (l === 1) ncr++;
    else if (l === 2) ed++;
    else if (l === etLabel) et++;
    else other++;
  }
  const v = (n: number): RegionVolume => ({ voxels: n, mL: (n * voxelMm3) / 1000 });
  return { ncr: v(ncr), ed: v(ed), et: v(et), tc: v(ncr + et), wt: v(ncr + ed + et + other), voxelVolumeMm3: voxelMm3 };
}

/** The largest diameter of a region and where it lies. */
export interface LargestDiameter {
  /** Length in mm between the centres of the two farthest voxels; 0 for a single voxel. */
  mm: number;
  /** Voxel index `[i, j, k]` of one end. */
  from: [number, number, number];
  /** Voxel index `[i, j, k]` of the other end. */
  to: [number, number, number];
}

/**
 * The largest 3-D diameter of a region: the greatest Euclidean distance, in millimetres, between the **centres**
 * of any two voxels of the region (its maximum Feret diameter over voxel centres), with anisotropic spacing.
 * A single voxel has diameter 0. This is not RANO's bidimensional product (longest axial diameter and its
 * perpendicular); it is the 3-D extent, and it is exact, not a bounding-box or ellipsoid estimate.
 *
 * Method: only points that are extreme along every axis-parallel line through them can be vertices of the
 * convex hull (any other point lies between two region points), and the farthest pair is a pair of hull vertices,
 * so the exhaustive pair search runs over those candidates only.
 * @param mask - one value per voxel, C-order `[d0, d1, d2]`; a voxel belongs to the region when `include(value)`
 * @param dims - `[d0, d1, d2]`
 * @param spacing - voxel size in mm along d0, d1, d2
 * @param include - which values are in the region; default: any non-zero value (whole tumour of a label map)
 * @returns the diameter and its end points, or `undefined` for an empty region
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad size or spacing
 */
export function largestDiameter(
  mask: Uint8Array,
  dims: readonly number[],
  spacing: readonly number[],
  include: (value: number) => boolean = (v) => v !== 0,
): LargestDiameter | undefined {
  checkChannelFirst(mask, [1, ...dims], 'largestDiameter mask', 3);
  checkSpacing(spacing);
  const [n0, n1, n2] = dims as [number, number, number];
  const [h0, h1, h2] = spacing as [number, number, number];
  const inside = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) inside[i] = include(mask[i] as number) ? 1 : 0;
  const at = (i: number, j: number, k: number): number => inside[(i * n1 + j) * n2 + k] as number;
  // A voxel is a candidate when, along each axis, no region voxel lies on both sides of it on that line.
  // Per line, only the first and last region voxel qualify; mark them with one bit per axis.
  const extreme = new Uint8Array(mask.length);
  const markLines = (
    outer: number,
    inner: number,
    len: number,
    index: (a: number, b: number, t: number) => number,
    bit: number,
  ): void => {
    for (let a = 0; a < outer; a++) {
      for (let b = 0; b < inner; b++) {
        let first = -1;
        let last = -1;
        for (let t = 0; t < len; t++) {
          if (inside[index(a, b, t)]) {
            if (first < 0) first = t;
            last = t;
          }
        }
        if (first >= 0) {
          const f = index(a, b, first);
          const l = index(a, b, last);
          extreme[f] = (extreme[f] as number) | bit;
          extreme[l] = (extreme[l] as number) | bit;
        }
      }
    }
  };
  markLines(n0, n1, n2, (i, j, k) => (i * n1 + j) * n2 + k, 1);
  markLines(n0, n2, n1, (i, k, j) => (i * n1 + j) * n2 + k, 2);
  markLines(n1, n2, n0, (j, k, i) => (i * n1 + j) * n2 + k, 4);
  const pts: number[] = [];
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      for (let k = 0; k < n2; k++) {
        if (at(i, j, k) && extreme[(i * n1 + j) * n2 + k] === 7) pts.push(i * h0, j * h1, k * h2, i, j, k);
      }
    }
  }
  if (pts.length === 0) return undefined;
  let best = 0;
  let bi = 0;
  let bj = 0;
  for (let a = 0; a < pts.length; a += 6) {
    const x = pts[a] as number;
    const y = pts[a + 1] as number;
    const z = pts[a + 2] as number;
    for (let b = a + 6; b < pts.length; b += 6) {
      const dx = x - (pts[b] as number);
      const dy = y - (pts[b + 1] as number);
      const dz = z - (pts[b + 2] as number);
      const d = dx * dx + dy * dy + dz * dz;
      if (d > best) {
        best = d;
        bi = a;
        bj = b;
      }
    }
  }
  const idx = (o: number): [number, number, number] => [pts[o + 3] as number, pts[o + 4] as number, pts[o + 5] as number];
  return { mm: Math.sqrt(best), from: idx(bi), to: idx(bj) };
}
