/**
 * Plausibility checks of a segmentation: a result that looks wrong is flagged with its reasons, never shown as if it
 * were sound. The thresholds come from the model manifest (`postprocessing.plausibility`).
 * @packageDocumentation
 */
import { z } from 'zod';

/** Thresholds of the plausibility checks (manifest `postprocessing.plausibility`). */
export const plausibilitySchema = z.strictObject({
  /** Flag when the whole tumour touches the field of view's edge within this many voxels (`fov-edge`). */
  fovEdgeMarginVoxels: z.int().min(0).default(0),
  /** Flag when the network's whole tumour has more connected components than this (`many-components`). */
  maxComponents: z.int().min(1).default(10),
  /** Flag a whole tumour larger than this, mL (`whole-tumour-large`). */
  maxWholeTumourMl: z.number().positive().default(400),
  /** Flag when more than this fraction of the enhancing tumour lies outside the tumour core (`et-outside-tc`). */
  maxEtOutsideTcFraction: z.number().min(0).max(1).default(0.05),
  /**
   * Flag an empty segmentation when at least this many mL of the brain enhance (`empty-with-enhancement`): T1c minus
   * T1, both normalised, above `enhancementZ`.
   */
  minEnhancingMl: z.number().positive().default(1),
  /** The enhancement threshold in standard deviations of the normalised difference. */
  enhancementZ: z.number().positive().default(3),
});
/** Plausibility thresholds. */
export type PlausibilityThresholds = z.output<typeof plausibilitySchema>;

/** A reason to doubt a result. */
export interface ResultFlag {
  /** `fov-edge`, `many-components`, `whole-tumour-large`, `et-outside-tc` or `empty-with-enhancement`. */
  code: string;
  /** For the reviewer. */
  message: string;
}

/** What the checks look at. */
export interface PlausibilityInput {
  /** Whole-tumour mask after clean-up, C-order `[d0, d1, d2]`: the whole grid, or a block of it at `offset`. */
  wholeTumour: Uint8Array;
  dims: readonly [number, number, number];
  /** Where the block starts in the grid (default the origin). */
  offset?: readonly [number, number, number];
  /** The grid's dims when the mask is a block of it (default `dims`). */
  gridDims?: readonly [number, number, number];
  wholeTumourMl: number;
  /** Components of the network's whole tumour before clean-up. */
  rawComponents: number;
  /** Enhancing voxels of the network output, and how many of them lie outside its tumour-core channel. */
  enhancingVoxels: number;
  enhancingOutsideCore: number;
  /** mL of brain that enhances (T1c vs T1), for the empty-segmentation check; omit when T1 is not at hand. */
  enhancingBrainMl?: number;
}

const fmt = (x: number, digits = 1): string => x.toFixed(digits);

/**
 * Runs the checks.
 * @param input - masks and counts of one result
 * @param thresholds - from the manifest
 * @returns the flags, empty when the result looks plausible
 */
export function plausibilityFlags(input: PlausibilityInput, thresholds: PlausibilityThresholds): ResultFlag[] {
  const flags: ResultFlag[] = [];
  const edge = touchesEdge(
    input.wholeTumour,
    input.dims,
    thresholds.fovEdgeMarginVoxels,
    input.offset ?? [0, 0, 0],
    input.gridDims ?? input.dims,
  );
  if (edge)
    flags.push({ code: 'fov-edge', message: `the whole tumour reaches the edge of the field of view (${edge})` });
  if (input.rawComponents > thresholds.maxComponents)
    flags.push({
      code: 'many-components',
      message: `the network found ${input.rawComponents} separate tumour regions (more than ${thresholds.maxComponents})`,
    });
  if (input.wholeTumourMl > thresholds.maxWholeTumourMl)
    flags.push({
      code: 'whole-tumour-large',
      message: `whole tumour ${fmt(input.wholeTumourMl)} mL is above the plausible ${fmt(thresholds.maxWholeTumourMl)} mL`,
    });
  if (input.enhancingVoxels > 0) {
    const fraction = input.enhancingOutsideCore / input.enhancingVoxels;
    if (fraction > thresholds.maxEtOutsideTcFraction)
      flags.push({
        code: 'et-outside-tc',
        message: `${fmt(fraction * 100)} % of the enhancing tumour lies outside the tumour core`,
      });
  }
  if (
    input.wholeTumourMl === 0 &&
    input.enhancingBrainMl !== undefined &&
    input.enhancingBrainMl >= thresholds.minEnhancingMl
  )
    flags.push({
      code: 'empty-with-enhancement',
      message: `no tumour segmented, but ${fmt(input.enhancingBrainMl)} mL of the brain enhance after contrast`,
    });
  return flags;
}

/** Which faces of the grid a mask reaches within `margin` voxels, e.g. `d0 low, d2 high`; undefined when none. */
function touchesEdge(
  mask: Uint8Array,
  dims: readonly [number, number, number],
  margin: number,
  offset: readonly [number, number, number],
  grid: readonly [number, number, number],
): string | undefined {
  const [n0, n1, n2] = grid;
  const hit = new Set<string>();
  for (let a = 0, v = 0; a < dims[0]; a++)
    for (let b = 0; b < dims[1]; b++)
      for (let c = 0; c < dims[2]; c++, v++) {
        if (!mask[v]) continue;
        const i = a + offset[0];
        const j = b + offset[1];
        const k = c + offset[2];
        if (i <= margin) hit.add('d0 low');
        if (i >= n0 - 1 - margin) hit.add('d0 high');
        if (j <= margin) hit.add('d1 low');
        if (j >= n1 - 1 - margin) hit.add('d1 high');
        if (k <= margin) hit.add('d2 low');
        if (k >= n2 - 1 - margin) hit.add('d2 high');
      }
  const order = ['d0 low', 'd0 high', 'd1 low', 'd1 high', 'd2 low', 'd2 high'];
  return hit.size > 0 ? order.filter((f) => hit.has(f)).join(', ') : undefined;
}

/** Mean and standard deviation of the non-zero voxels (MONAI `NormalizeIntensity(nonzero=True)`'s statistics). */
function nonzeroStats(x: Float32Array): { mean: number; sd: number } {
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (let v = 0; v < x.length; v++) {
    const a = x[v] as number;
    if (a === 0) continue;
    n++;
    sum += a;
    sq += a * a;
  }
  const mean = n > 0 ? sum / n : 0;
  return { mean, sd: Math.sqrt(Math.max(n > 0 ? sq / n - mean * mean : 0, 0)) || 1 };
}

/**
 * How much of the brain enhances: voxels where T1c − T1, each normalised over its non-zero voxels, exceeds `z`
 * standard deviations of that difference over the brain, in mL.
 * @param t1c - T1c intensities
 * @param t1 - T1 intensities on the same grid
 * @param voxelMl - one voxel's volume, mL
 * @param z - threshold in standard deviations
 */
export function enhancingBrainMl(t1c: Float32Array, t1: Float32Array, voxelMl: number, z: number): number {
  const a = nonzeroStats(t1c);
  const b = nonzeroStats(t1);
  const diff = new Float32Array(t1c.length);
  for (let v = 0; v < t1c.length; v++) {
    if (t1c[v] === 0 || t1[v] === 0) continue;
    diff[v] = ((t1c[v] as number) - a.mean) / a.sd - ((t1[v] as number) - b.mean) / b.sd;
  }
  const d = nonzeroStats(diff);
  let count = 0;
  for (let v = 0; v < diff.length; v++) if (diff[v] !== 0 && ((diff[v] as number) - d.mean) / d.sd > z) count++;
  return count * voxelMl;
}
