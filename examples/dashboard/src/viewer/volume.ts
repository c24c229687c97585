/**
 * Pure slice rendering: a scalar volume through a window/level into grey, with the segmentation blended on top in
 * one colour per BraTS region. Voxel (i, j, k) is at `i + x*j + x*y*k`; axial slice k is the x-by-y plane.
 */

/** A scalar image volume. */
export interface ScalarVolume {
  dims: readonly [number, number, number];
  spacing: readonly [number, number, number];
  data: Float32Array;
}

/** A label volume (BraTS labels: 0 background, 1 necrotic core, 2 oedema, 3 or 4 enhancing tumour). */
export interface LabelVolume {
  dims: readonly [number, number, number];
  spacing: readonly [number, number, number];
  data: Uint8Array;
}

/** Window/level: grey values from `center - width/2` (black) to `center + width/2` (white). */
export interface WindowLevel {
  center: number;
  width: number;
}

/** The regions drawn on the overlay, with their label values and colours (RGB). */
export const REGIONS = [
  { key: 'necrotic', name: 'Necrotic core', labels: [1], colour: [230, 60, 60] },
  { key: 'oedema', name: 'Oedema', labels: [2], colour: [60, 200, 90] },
  { key: 'enhancing', name: 'Enhancing tumour', labels: [3, 4], colour: [250, 210, 40] },
] as const;

/** Which regions are shown. */
export type RegionKey = (typeof REGIONS)[number]['key'];

const LABEL_COLOUR: Array<readonly [number, number, number] | undefined> = [];
const LABEL_REGION: Array<RegionKey | undefined> = [];
for (const region of REGIONS) {
  for (const label of region.labels) {
    LABEL_COLOUR[label] = region.colour;
    LABEL_REGION[label] = region.key;
  }
}

/**
 * A window that spans the 1st to 99th percentile of the non-zero voxels (a sensible default for MRI, whose intensities
 * have no fixed scale).
 * @param data - the voxels
 */
export function autoWindow(data: Float32Array): WindowLevel {
  const step = Math.max(1, Math.floor(data.length / 50_000));
  const sample: number[] = [];
  for (let i = 0; i < data.length; i += step) {
    const v = data[i] as number;
    if (v !== 0 && Number.isFinite(v)) sample.push(v);
  }
  if (sample.length === 0) return { center: 0.5, width: 1 };
  sample.sort((a, b) => a - b);
  const lo = sample[Math.floor(sample.length * 0.01)] as number;
  const hi = sample[Math.min(sample.length - 1, Math.floor(sample.length * 0.99))] as number;
  const width = Math.max(hi - lo, 1e-6);
  return { center: lo + width / 2, width };
}

/** What {@link renderSlice} drew. */
export interface RenderStats {
  /** Overlay pixels per region on this slice. */
  overlayPixels: number;
}

/**
 * Draws axial slice `k` into an RGBA buffer of x*y pixels.
 * @param volume - the image
 * @param k - the slice index, 0 ≤ k < z
 * @param window - window/level
 * @param out - RGBA output, length 4*x*y
 * @param overlay - the segmentation, its opacity (0..1) and the regions to show
 * @returns how many pixels the overlay coloured
 */
export function renderSlice(
  volume: ScalarVolume,
  k: number,
  window: WindowLevel,
  out: Uint8ClampedArray,
  overlay?: { labels: LabelVolume; opacity: number; visible: ReadonlySet<RegionKey> },
): RenderStats {
  const [x, y, z] = volume.dims;
  if (k < 0 || k >= z) throw new RangeError(`slice ${k} outside 0..${z - 1}`);
  if (out.length !== 4 * x * y) throw new RangeError('output buffer has the wrong size');
  if (overlay && (overlay.labels.dims[0] !== x || overlay.labels.dims[1] !== y || overlay.labels.dims[2] !== z)) {
    throw new RangeError('segmentation and image have different dimensions');
  }
  const low = window.center - window.width / 2;
  const scale = 255 / Math.max(window.width, 1e-6);
  const base = x * y * k;
  const alpha = overlay ? Math.min(1, Math.max(0, overlay.opacity)) : 0;
  let overlayPixels = 0;
  for (let p = 0; p < x * y; p++) {
    const grey = Math.min(255, Math.max(0, ((volume.data[base + p] as number) - low) * scale));
    let r = grey;
    let g = grey;
    let b = grey;
    if (overlay && alpha > 0) {
      const label = overlay.labels.data[base + p] as number;
      const colour = label ? LABEL_COLOUR[label] : undefined;
      const region = label ? LABEL_REGION[label] : undefined;
      if (colour && region && overlay.visible.has(region)) {
        r = grey * (1 - alpha) + colour[0] * alpha;
        g = grey * (1 - alpha) + colour[1] * alpha;
        b = grey * (1 - alpha) + colour[2] * alpha;
        overlayPixels++;
      }
    }
    out[4 * p] = r;
    out[4 * p + 1] = g;
    out[4 * p + 2] = b;
    out[4 * p + 3] = 255;
  }
  return { overlayPixels };
}

/**
 * The axial slice with the most labelled voxels (where a reviewer wants to start), or the middle slice.
 * @param labels - the segmentation
 */
export function busiestSlice(labels: LabelVolume): number {
  const [x, y, z] = labels.dims;
  let best = Math.floor(z / 2);
  let bestCount = 0;
  for (let k = 0; k < z; k++) {
    let count = 0;
    const base = x * y * k;
    for (let p = 0; p < x * y; p++) if (labels.data[base + p]) count++;
    if (count > bestCount) {
      bestCount = count;
      best = k;
    }
  }
  return best;
}
