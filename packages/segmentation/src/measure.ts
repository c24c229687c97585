/**
 * Lesion measurements as RANO reads an MRI: per enhancing lesion (a connected component of the enhancing tumour) its
 * volume, the longest diameter on an axial slice and the longest diameter perpendicular to it on the same slice,
 * and their product; over the lesions, the sum of products (SPD) of the measurable ones (both diameters ≥ 10 mm;
 * Wen et al., J Clin Oncol 2010). Volumes come from the voxel spacing, never from voxel counts alone.
 *
 * Masks are C-order `[d0, d1, d2]` with d2 the slice axis (the model grid after `Orientation(RAS)`: d0 runs to the
 * right, d1 anteriorly, d2 superiorly, so a d2-plane is axial). Distances are between voxel centres.
 * @packageDocumentation
 */
import { connectedComponents, type Connectivity } from './components.js';
import { checkChannelFirst, requireInput } from './segmentation-errors.js';

/** One measured lesion. */
export interface LesionMeasurement {
  /** Millilitres. */
  volumeMl: number;
  /** Longest in-plane diameter over the lesion's axial slices, mm. */
  longestDiameterMm: number;
  /** Longest diameter perpendicular to it on the same slice, mm. */
  perpendicularDiameterMm: number;
  /** longest × perpendicular, mm². */
  productMm2: number;
  /** The d2 index of the slice measured. */
  slice: number;
  /** Both diameters ≥ the measurable minimum (10 mm). */
  measurable: boolean;
  /** Voxels in the lesion. */
  voxels: number;
}

/** Lesions, largest first, and their sum of products. */
export interface LesionReport {
  lesions: LesionMeasurement[];
  /** Sum of the products of the measurable lesions, mm². */
  sumOfProductsMm2: number;
}

/** Options of {@link measureLesions}. */
export interface MeasureOptions {
  /** Component connectivity (default 3, 26-neighbourhood). */
  connectivity?: Connectivity;
  /** Smallest diameter of a measurable lesion, mm (RANO: 10). */
  minMeasurableMm?: number;
  /**
   * Where the mask lies in a larger grid (the index there of its voxel `[0, 0, 0]`; default the origin): positions
   * and `slice` are that grid's, so a mask cropped around its lesions measures exactly as the whole grid does.
   */
  offset?: readonly [number, number, number];
}

/**
 * Measures each connected component of a mask (see the module comment).
 * @param mask - non-zero = lesion, C-order `[d0, d1, d2]`
 * @param dims - `[d0, d1, d2]`
 * @param spacing - mm along d0, d1, d2
 */
export function measureLesions(
  mask: ArrayLike<number>,
  dims: readonly [number, number, number],
  spacing: readonly [number, number, number],
  options: MeasureOptions = {},
): LesionReport {
  checkChannelFirst(mask, [1, ...dims], 'measureLesions mask', 3);
  for (const s of spacing)
    requireInput(Number.isFinite(s) && s > 0, `spacing must be positive, got ${spacing.join(', ')}`);
  const minMm = options.minMeasurableMm ?? 10;
  const { labels, sizes } = connectedComponents(mask, dims, options.connectivity ?? 3);
  const [n0, n1, n2] = dims;
  const [s0, s1, s2] = spacing;
  const offset = options.offset ?? [0, 0, 0];
  requireInput(
    offset.length === 3 && offset.every((o) => Number.isInteger(o)),
    `offset must be three integers, got ${offset.join(', ')}`,
  );
  const [o0, o1, o2] = offset;
  // points per lesion per slice: x, y in mm
  const perLesion = sizes.map(() => new Map<number, number[]>());
  for (let i = 0, v = 0; i < n0; i++)
    for (let j = 0; j < n1; j++)
      for (let k = 0; k < n2; k++, v++) {
        const l = labels[v] as number;
        if (l === 0) continue;
        const slices = perLesion[l - 1] as Map<number, number[]>;
        let pts = slices.get(k + o2);
        if (!pts) slices.set(k + o2, (pts = []));
        pts.push((i + o0) * s0, (j + o1) * s1);
      }
  const voxelMl = (s0 * s1 * s2) / 1000;
  const lesions = perLesion.map((slices, c): LesionMeasurement => {
    let best = { longest: 0, perpendicular: 0, slice: -1 };
    for (const [slice, pts] of [...slices.entries()].sort((a, b) => a[0] - b[0])) {
      const m = bidimensional(pts, Math.min(s0, s1));
      if (m.longest > best.longest || best.slice < 0) best = { ...m, slice };
    }
    const voxels = sizes[c] as number;
    return {
      volumeMl: voxels * voxelMl,
      longestDiameterMm: best.longest,
      perpendicularDiameterMm: best.perpendicular,
      productMm2: best.longest * best.perpendicular,
      slice: best.slice,
      measurable: best.longest >= minMm && best.perpendicular >= minMm,
      voxels,
    };
  });
  lesions.sort((a, b) => b.volumeMl - a.volumeMl || a.slice - b.slice);
  const sumOfProductsMm2 = lesions.filter((l) => l.measurable).reduce((sum, l) => sum + l.productMm2, 0);
  return { lesions, sumOfProductsMm2 };
}

/**
 * The longest diameter of a set of 2-D points (exact, over their convex hull) and the longest chord perpendicular
 * to it: the greatest extent across the direction of the longest diameter among the points lying within half a
 * pixel of one line perpendicular to it.
 */
function bidimensional(pts: number[], pixel: number): { longest: number; perpendicular: number } {
  const hull = convexHull(pts);
  let longest = 0;
  let ux = 1;
  let uy = 0;
  for (let a = 0; a < hull.length; a += 2)
    for (let b = a + 2; b < hull.length; b += 2) {
      const dx = (hull[b] as number) - (hull[a] as number);
      const dy = (hull[b + 1] as number) - (hull[a + 1] as number);
      const d = Math.hypot(dx, dy);
      if (d > longest) {
        longest = d;
        ux = dx / d;
        uy = dy / d;
      }
    }
  if (longest === 0) return { longest: 0, perpendicular: 0 };
  // bucket points by their position along u; within each bucket the chord runs along v = (-uy, ux)
  const half = pixel / 2;
  const along: { t: number; s: number }[] = [];
  for (let p = 0; p < pts.length; p += 2) {
    const x = pts[p] as number;
    const y = pts[p + 1] as number;
    along.push({ t: x * ux + y * uy, s: -x * uy + y * ux });
  }
  along.sort((a, b) => a.t - b.t);
  let perpendicular = 0;
  let lo = 0;
  for (let c = 0; c < along.length; c++) {
    const t = (along[c] as { t: number }).t;
    while ((along[lo] as { t: number }).t < t - half) lo++;
    let min = Infinity;
    let max = -Infinity;
    for (let q = lo; q < along.length && (along[q] as { t: number }).t <= t + half; q++) {
      const s = (along[q] as { s: number }).s;
      if (s < min) min = s;
      if (s > max) max = s;
    }
    if (max - min > perpendicular) perpendicular = max - min;
  }
  return { longest, perpendicular };
}

/** Convex hull (Andrew's monotone chain) of flat `[x0, y0, x1, y1, ...]`, as a flat array. */
function convexHull(pts: number[]): number[] {
  const idx = Array.from({ length: pts.length / 2 }, (_, n) => n).sort(
    (a, b) =>
      (pts[2 * a] as number) - (pts[2 * b] as number) || (pts[2 * a + 1] as number) - (pts[2 * b + 1] as number),
  );
  if (idx.length <= 2) return idx.flatMap((n) => [pts[2 * n] as number, pts[2 * n + 1] as number]);
  const cross = (o: number, a: number, b: number): number =>
    ((pts[2 * a] as number) - (pts[2 * o] as number)) * ((pts[2 * b + 1] as number) - (pts[2 * o + 1] as number)) -
    ((pts[2 * a + 1] as number) - (pts[2 * o + 1] as number)) * ((pts[2 * b] as number) - (pts[2 * o] as number));
  const lower: number[] = [];
  for (const n of idx) {
    while (lower.length >= 2 && cross(lower.at(-2) as number, lower.at(-1) as number, n) <= 0) lower.pop();
    lower.push(n);
  }
  const upper: number[] = [];
  for (const n of [...idx].reverse()) {
    while (upper.length >= 2 && cross(upper.at(-2) as number, upper.at(-1) as number, n) <= 0) upper.pop();
    upper.push(n);
  }
  const hull = [...lower.slice(0, -1), ...upper.slice(0, -1)];
  return hull.flatMap((n) => [pts[2 * n] as number, pts[2 * n + 1] as number]);
}
