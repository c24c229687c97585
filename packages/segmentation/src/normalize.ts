/**
 * MONAI `NormalizeIntensity` (z-score), reproduced in float32.
 *
 * Source: `monai/transforms/intensity/array.py` (`NormalizeIntensity._normalize`, MONAI 1.0–1.5, unchanged):
 * - `nonzero`: statistics over the voxels `!= 0` only, and only those voxels are changed (background stays exactly 0);
 *   if no voxel is non-zero the image is returned unchanged.
 * - `channel_wise`: each channel (the first axis) gets its own statistics; otherwise one mean/std for the whole image.
 * - mean = `torch.mean`, std = `torch.std(unbiased=False)` (population std) of the float32 values; a std of 0 becomes 1.
 * - `out = (x - mean) / std` in float32.
 *
 * The statistics are accumulated in float64 and rounded to float32 (torch returns them as float32 scalars);
 * the subtraction and division are each rounded to float32 as torch does. Measured against MONAI 1.5.2: ≤ 1e-6.
 * @packageDocumentation
 */
import { checkChannelFirst, requireInput } from './segmentation-errors.js';

/** Options of {@link normalizeIntensity}; the names and defaults are MONAI's. */
export interface NormalizeIntensityOptions {
  /** Only non-zero voxels take part and are changed (MONAI `nonzero`). Default `false`, as in MONAI. */
  nonzero?: boolean;
  /** Separate statistics per channel (MONAI `channel_wise`). Default `false`, as in MONAI. */
  channelWise?: boolean;
}

/** Mean and population standard deviation of one normalised block, as float32 values. */
export interface IntensityStatistics {
  /** float32 mean of the voxels that took part. */
  mean: number;
  /** float32 population std actually used as divisor (0 replaced by 1). */
  std: number;
  /** How many voxels took part. */
  count: number;
}

const f32 = Math.fround;

function stats(data: Float32Array, start: number, end: number, nonzero: boolean): IntensityStatistics | undefined {
  // One pass: count, sum and sum of squares in float64 (float32 inputs: no meaningful cancellation).
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (let i = start; i < end; i++) {
    const v = data[i] as number;
    if (nonzero && v === 0) continue;
    sum += v;
    sq += v * v;
    n++;
  }
  if (n === 0) return undefined;
  const mean = sum / n;
  const variance = Math.max(sq / n - mean * mean, 0);
  const std = f32(Math.sqrt(variance));
  return { mean: f32(mean), std: std === 0 ? 1 : std, count: n };
}

function apply(
  src: Float32Array,
  dst: Float32Array,
  start: number,
  end: number,
  s: IntensityStatistics,
  nonzero: boolean,
): void {
  const { mean, std } = s;
  for (let i = start; i < end; i++) {
    const v = src[i] as number;
    if (nonzero && v === 0) continue;
    dst[i] = f32(v - mean) / std; // the store into a Float32Array rounds the quotient
  }
}

/**
 * Z-score normalisation exactly as MONAI's `NormalizeIntensity(nonzero, channel_wise)` (no subtrahend/divisor).
 * The bundle `brats_mri_segmentation` uses `nonzero: true, channelWise: true`.
 * @param data - channel-first float32 values, C-order `[C, ...spatial]`; not modified
 * @param shape - `[C, ...spatial]`
 * @param options - `nonzero`, `channelWise` (both default `false`, as in MONAI)
 * @returns a new array with the normalised values, and the statistics used per block (one per channel when
 *   `channelWise`, otherwise one; `undefined` for a block left unchanged because it had no non-zero voxel)
 * @throws {@link SegmentationError} `INVALID_INPUT` when `data.length` does not match `shape`
 */
export function normalizeIntensity(
  data: Float32Array,
  shape: readonly number[],
  options: NormalizeIntensityOptions = {},
): { data: Float32Array; statistics: (IntensityStatistics | undefined)[] } {
  const voxels = checkChannelFirst(data, shape, 'normalizeIntensity input');
  const nonzero = options.nonzero ?? false;
  // Zero-filled: every voxel that changes is written below, and every other one is 0 (nonzero mode) — except
  // a block left unchanged, which is copied.
  const out = new Float32Array(data.length);
  const blocks = options.channelWise ? (shape[0] as number) : 1;
  const blockLen = options.channelWise ? voxels : data.length;
  const statistics: (IntensityStatistics | undefined)[] = [];
  for (let b = 0; b < blocks; b++) {
    const start = b * blockLen;
    const end = start + blockLen;
    const s = stats(data, start, end, nonzero);
    statistics.push(s);
    if (s) {
      apply(data, out, start, end, s, nonzero);
    } else {
      out.set(data.subarray(start, end), start); // nothing to normalise: keep the values (all zero)
    }
  }
  return { data: out, statistics };
}

/**
 * {@link normalizeIntensity} written straight into a padded image: the result is the normalised `[C, ...spatial]`
 * image placed at `padBefore` inside a fresh `[C, ...paddedSize]` array filled with `cval` elsewhere, bit for bit
 * what padding the output of {@link normalizeIntensity} with `cval` gives, with one allocation and one pass fewer.
 * Used by the segmentation pipeline before the sliding window (which pads where the image is smaller than a window).
 * @param data - channel-first float32 values, C-order `[C, d0, d1, d2]`; not modified
 * @param shape - `[C, d0, d1, d2]`
 * @param options - `nonzero`, `channelWise` (both default `false`, as in MONAI)
 * @param paddedSize - spatial size of the output, each ≥ the image's
 * @param padBefore - padding before each spatial axis
 * @param cval - value of the padding voxels (default 0)
 * @returns the padded normalised array and the statistics per block, as {@link normalizeIntensity}
 * @throws {@link SegmentationError} `INVALID_INPUT` when `data.length` does not match `shape` or the padding does not fit
 */
export function normalizeIntensityPadded(
  data: Float32Array,
  shape: readonly number[],
  options: NormalizeIntensityOptions,
  paddedSize: readonly [number, number, number],
  padBefore: readonly [number, number, number],
  cval = 0,
): { data: Float32Array; statistics: (IntensityStatistics | undefined)[] } {
  const voxels = checkChannelFirst(data, shape, 'normalizeIntensity input', 3);
  const [c, s0, s1, s2] = shape as [number, number, number, number];
  const [p0, p1, p2] = paddedSize;
  const [b0, b1, b2] = padBefore;
  requireInput(
    [0, 1, 2].every((i) => {
      const b = padBefore[i] as number;
      return Number.isInteger(b) && b >= 0 && b + (shape[i + 1] as number) <= (paddedSize[i] as number);
    }),
    `padding [${padBefore.join(', ')}] of a ${shape.slice(1).join('x')} image does not fit in ${paddedSize.join('x')}`,
  );
  const nonzero = options.nonzero ?? false;
  const pv = p0 * p1 * p2;
  const out = new Float32Array(c * pv);
  if (cval !== 0) out.fill(cval);
  const blocks = options.channelWise ? c : 1;
  const blockLen = options.channelWise ? voxels : data.length;
  const statistics: (IntensityStatistics | undefined)[] = [];
  for (let b = 0; b < blocks; b++) statistics.push(stats(data, b * blockLen, (b + 1) * blockLen, nonzero));
  for (let ch = 0; ch < c; ch++) {
    const s = statistics[options.channelWise ? ch : 0];
    for (let i = 0; i < s0; i++) {
      for (let j = 0; j < s1; j++) {
        const from = ((ch * s0 + i) * s1 + j) * s2;
        const to = ((ch * p0 + i + b0) * p1 + j + b1) * p2 + b2;
        if (!s) {
          out.set(data.subarray(from, from + s2), to); // nothing to normalise: keep the values
          continue;
        }
        const { mean, std } = s;
        if (nonzero) {
          for (let k = 0; k < s2; k++) {
            const v = data[from + k] as number;
            // background stays exactly +0, as in the zero-filled output of normalizeIntensity
            if (v !== 0) out[to + k] = f32(v - mean) / std;
            else if (cval !== 0) out[to + k] = 0; // over the padding value the array was filled with
          }
        } else {
          for (let k = 0; k < s2; k++) out[to + k] = f32((data[from + k] as number) - mean) / std;
        }
      }
    }
  }
  return { data: out, statistics };
}
