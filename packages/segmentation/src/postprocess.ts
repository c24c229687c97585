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
  requireInput(
    logits.length % channels === 0,
    `softmax: ${logits.length} values is not a multiple of ${channels} channels`,
  );
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

/** The channel indices must exist and the ET label be 3 or 4 (shared by the label conversions). */
function checkLabelArguments(order: BratsChannelOrder, channels: number, etLabel: EnhancingTumourLabel): void {
  for (const k of ['tc', 'wt', 'et'] as const) {
    requireInput(
      Number.isInteger(order[k]) && order[k] >= 0 && order[k] < channels,
      `channel ${k}=${order[k]} is outside 0..${channels - 1}`,
    );
  }
  requireInput(etLabel === 3 || etLabel === 4, `etLabel must be 3 or 4, got ${String(etLabel)}`);
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
  checkLabelArguments(order, c, etLabel);
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
 * The smallest float32 logit `x` with `fround(sigmoid(x)) >= threshold`. Because float32 sigmoid is monotonic,
 * `fround(sigmoid(x)) >= threshold` is exactly `x >= sigmoidThresholdLogit(threshold)` for every float32 `x`,
 * which saves one `exp` per voxel and channel without changing a single decision.
 * @param threshold - in (0, 1)
 * @returns the float32 logit cut
 */
export function sigmoidThresholdLogit(threshold: number): number {
  requireInput(
    Number.isFinite(threshold) && threshold > 0 && threshold < 1,
    `threshold must be in (0, 1), got ${threshold}`,
  );
  const on = (x: number): boolean => Math.fround(1 / (1 + Math.exp(-x))) >= threshold;
  // Bisection over the ordered float32 bit patterns between -100 and 100 (sigmoid saturates well inside).
  const bits = new Float32Array(1);
  const ints = new Int32Array(bits.buffer);
  const key = (x: number): number => {
    bits[0] = x;
    const i = ints[0] as number;
    return i < 0 ? -(i & 0x7fffffff) : i; // monotonic integer key of a float32
  };
  const fromKey = (k: number): number => {
    ints[0] = k < 0 ? -k | 0x80000000 : k;
    return bits[0] as number;
  };
  let lo = key(-100); // off
  let hi = key(100); // on
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (on(fromKey(mid))) hi = mid;
    else lo = mid;
  }
  return fromKey(hi);
}

/**
 * Sigmoid, `>= threshold` and the BraTS label rule in one pass over the logits, with the same decisions as
 * {@link sigmoid} → {@link threshold} → {@link bratsLabelsFromChannels} (see {@link sigmoidThresholdLogit}).
 * @param logits - C-order `[C, ...spatial]` float32 logits
 * @param shape - `[C, ...spatial]`
 * @param order - TC/WT/ET channel indices
 * @param thresholdValue - probability threshold (the bundle: 0.5)
 * @param etLabel - 4 or 3
 * @returns one label per voxel
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad shape, channel index or threshold
 */
export function bratsLabelsFromLogits(
  logits: Float32Array,
  shape: readonly number[],
  order: BratsChannelOrder,
  thresholdValue: number,
  etLabel: EnhancingTumourLabel = 4,
): Uint8Array {
  const voxels = checkChannelFirst(logits, shape, 'label conversion input');
  const c = shape[0] as number;
  checkLabelArguments(order, c, etLabel);
  const cut = sigmoidThresholdLogit(thresholdValue);
  const tc = logits.subarray(order.tc * voxels, (order.tc + 1) * voxels);
  const wt = logits.subarray(order.wt * voxels, (order.wt + 1) * voxels);
  const et = logits.subarray(order.et * voxels, (order.et + 1) * voxels);
  const out = new Uint8Array(voxels);
  for (let v = 0; v < voxels; v++) {
    out[v] = (et[v] as number) >= cut ? etLabel : (tc[v] as number) >= cut ? 1 : (wt[v] as number) >= cut ? 2 : 0;
  }
  return out;
}

/**
 * {@link bratsLabelsFromLogits} over the part of padded logits that holds the image, without cropping them first:
 * the labels of `[C, ...paddedSize]` logits at `padBefore`, size `size` (what the sliding window gives on a padded
 * image), equal to cropping and then calling {@link bratsLabelsFromLogits}, with one large copy fewer.
 * @param logits - C-order `[C, p0, p1, p2]` float32 logits
 * @param paddedShape - `[C, p0, p1, p2]`
 * @param padBefore - where the image starts in each spatial axis
 * @param size - the image's size `[s0, s1, s2]`
 * @param order - TC/WT/ET channel indices
 * @param thresholdValue - probability threshold (the bundle: 0.5)
 * @param etLabel - 4 or 3
 * @returns one label per image voxel, `[s0, s1, s2]` C-order
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad shape, region, channel index or threshold
 */
export function bratsLabelsFromPaddedLogits(
  logits: Float32Array,
  paddedShape: readonly number[],
  padBefore: readonly [number, number, number],
  size: readonly [number, number, number],
  order: BratsChannelOrder,
  thresholdValue: number,
  etLabel: EnhancingTumourLabel = 4,
): Uint8Array {
  const voxels = checkChannelFirst(logits, paddedShape, 'label conversion input', 3);
  const c = paddedShape[0] as number;
  const [, , p1, p2] = paddedShape as [number, number, number, number];
  requireInput(
    [0, 1, 2].every((i) => {
      const b = padBefore[i] as number;
      const s = size[i] as number;
      return Number.isInteger(b) && Number.isInteger(s) && b >= 0 && s > 0 && b + s <= (paddedShape[i + 1] as number);
    }),
    `region at [${padBefore.join(', ')}] of size ${size.join('x')} does not fit in ${paddedShape.slice(1).join('x')}`,
  );
  checkLabelArguments(order, c, etLabel);
  const cut = sigmoidThresholdLogit(thresholdValue);
  const tc = logits.subarray(order.tc * voxels, (order.tc + 1) * voxels);
  const wt = logits.subarray(order.wt * voxels, (order.wt + 1) * voxels);
  const et = logits.subarray(order.et * voxels, (order.et + 1) * voxels);
  const [s0, s1, s2] = size;
  const [b0, b1, b2] = padBefore;
  const out = new Uint8Array(s0 * s1 * s2);
  let o = 0;
  for (let i = 0; i < s0; i++) {
    for (let j = 0; j < s1; j++) {
      let v = ((i + b0) * p1 + j + b1) * p2 + b2;
      for (let k = 0; k < s2; k++, v++, o++) {
        out[o] = (et[v] as number) >= cut ? etLabel : (tc[v] as number) >= cut ? 1 : (wt[v] as number) >= cut ? 2 : 0;
      }
    }
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
  for (const s of spacing)
    requireInput(
      Number.isFinite(s) && s > 0,
      `spacing must be positive finite millimetres, got [${spacing.join(', ')}]`,
    );
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
export function bratsVolumes(
  labels: Uint8Array,
  spacing: readonly number[],
  etLabel: EnhancingTumourLabel = 4,
): BratsVolumes {
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

const anyNonZero = (v: number): boolean => v !== 0;

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
 * @param offset - where the mask lies in a larger grid (the index there of its voxel `[0, 0, 0]`; default the
 *   origin): positions and end points are that grid's, so a mask cropped around the region measures exactly as the
 *   whole grid does
 * @returns the diameter and its end points, or `undefined` for an empty region
 * @throws {@link SegmentationError} `INVALID_INPUT` for a bad size or spacing
 */
export function largestDiameter(
  mask: Uint8Array,
  dims: readonly number[],
  spacing: readonly number[],
  include: (value: number) => boolean = anyNonZero,
  offset: readonly number[] = [0, 0, 0],
): LargestDiameter | undefined {
  checkChannelFirst(mask, [1, ...dims], 'largestDiameter mask', 3);
  checkSpacing(spacing);
  const [n0, n1, n2] = dims as [number, number, number];
  const [h0, h1, h2] = spacing as [number, number, number];
  // With the default rule the mask itself says which voxels are in (non-zero); otherwise a 0/1 copy is made.
  let inside = mask;
  if (include !== anyNonZero) {
    inside = new Uint8Array(mask.length);
    let any = false;
    for (let i = 0; i < mask.length; i++) {
      if (include(mask[i] as number)) {
        inside[i] = 1;
        any = true;
      }
    }
    if (!any) return undefined;
  }
  // A voxel can only be a vertex of the region's convex hull if, along each axis, no region voxel lies on both
  // sides of it on that line: it must be the first or last region voxel of its line along d0, d1 and d2.
  // One pass in memory order records, per line, the first and last index along each axis.
  const plane = n1 * n2;
  const firstI = new Int32Array(plane).fill(-1);
  const lastI = new Int32Array(plane).fill(-1);
  const firstJ = new Int32Array(n0 * n2).fill(-1);
  const lastJ = new Int32Array(n0 * n2).fill(-1);
  const firstK = new Int32Array(n0 * n1).fill(-1);
  const lastK = new Int32Array(n0 * n1).fill(-1);
  for (let i = 0, o = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      const line = i * n1 + j;
      for (let k = 0; k < n2; k++, o++) {
        if (inside[o] === 0) continue;
        const jk = j * n2 + k;
        const ik = i * n2 + k;
        if (firstI[jk] === -1) firstI[jk] = i;
        lastI[jk] = i;
        if (firstJ[ik] === -1) firstJ[ik] = j;
        lastJ[ik] = j;
        if (firstK[line] === -1) firstK[line] = k;
        lastK[line] = k;
      }
    }
  }
  const pts: number[] = [];
  requireInput(
    offset.length === 3 && offset.every((o) => Number.isInteger(o)),
    `offset must be three integers, got ${offset.join(', ')}`,
  );
  const [o0, o1, o2] = offset as [number, number, number];
  const consider = (i: number, j: number, k: number): void => {
    const jk = j * n2 + k;
    const ik = i * n2 + k;
    if ((firstI[jk] === i || lastI[jk] === i) && (firstJ[ik] === j || lastJ[ik] === j))
      pts.push((i + o0) * h0, (j + o1) * h1, (k + o2) * h2, i + o0, j + o1, k + o2);
  };
  for (let i = 0; i < n0; i++) {
    for (let j = 0; j < n1; j++) {
      const line = i * n1 + j;
      const f = firstK[line] as number;
      if (f < 0) continue;
      consider(i, j, f);
      const l = lastK[line] as number;
      if (l !== f) consider(i, j, l);
    }
  }
  if (pts.length === 0) return undefined;
  const [bi, bj, best] = farthestPair(pts);
  const idx = (o: number): [number, number, number] => [
    pts[o + 3] as number,
    pts[o + 4] as number,
    pts[o + 5] as number,
  ];
  return { mm: Math.sqrt(best), from: idx(bi), to: idx(bj) };
}

/**
 * Exact farthest pair of points (`pts` holds `x, y, z, i, j, k` per point; returns offsets and squared distance).
 * Points are bucketed in a coarse grid; cell pairs are visited in decreasing order of the largest distance their
 * bounding boxes allow, and the search stops once no remaining pair of cells can beat the best pair found.
 */
function farthestPair(pts: number[]): [number, number, number] {
  const n = pts.length / 6;
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let a = 0; a < pts.length; a += 6) {
    for (let d = 0; d < 3; d++) {
      const v = pts[a + d] as number;
      if (v < (lo[d] as number)) lo[d] = v;
      if (v > (hi[d] as number)) hi[d] = v;
    }
  }
  const g = n < 64 ? 1 : 8;
  const cellOf = (a: number): number => {
    let c = 0;
    for (let d = 0; d < 3; d++) {
      const span = (hi[d] as number) - (lo[d] as number);
      const q = span > 0 ? Math.min(g - 1, Math.floor((((pts[a + d] as number) - (lo[d] as number)) / span) * g)) : 0;
      c = c * g + q;
    }
    return c;
  };
  const members = new Map<number, number[]>();
  const boxes = new Map<number, number[]>();
  for (let a = 0; a < pts.length; a += 6) {
    const c = cellOf(a);
    let m = members.get(c);
    let b = boxes.get(c);
    if (!m || !b) {
      m = [];
      b = [Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity];
      members.set(c, m);
      boxes.set(c, b);
    }
    m.push(a);
    for (let d = 0; d < 3; d++) {
      const v = pts[a + d] as number;
      if (v < (b[d] as number)) b[d] = v;
      if (v > (b[d + 3] as number)) b[d + 3] = v;
    }
  }
  const cells = [...members.keys()];
  const pairs: { a: number; b: number; bound: number }[] = [];
  for (let x = 0; x < cells.length; x++) {
    const bx = boxes.get(cells[x] as number) as number[];
    for (let y = x; y < cells.length; y++) {
      const by = boxes.get(cells[y] as number) as number[];
      let bound = 0;
      for (let d = 0; d < 3; d++) {
        const e = Math.max((by[d + 3] as number) - (bx[d] as number), (bx[d + 3] as number) - (by[d] as number));
        bound += e * e;
      }
      pairs.push({ a: cells[x] as number, b: cells[y] as number, bound });
    }
  }
  pairs.sort((p, q) => q.bound - p.bound);
  let best = 0;
  let bi = 0;
  let bj = 0;
  for (const pair of pairs) {
    if (pair.bound <= best) break;
    const ma = members.get(pair.a) as number[];
    const mb = members.get(pair.b) as number[];
    for (const a of ma) {
      const x = pts[a] as number;
      const y = pts[a + 1] as number;
      const z = pts[a + 2] as number;
      for (const b of mb) {
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
  }
  return [bi, bj, best];
}
