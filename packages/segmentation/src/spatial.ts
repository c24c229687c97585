/**
 * Spatial preprocessing equal to MONAI's: `Orientation(axcodes)` (nibabel's `io_orientation`: flips and axis
 * permutations, no interpolation), `Spacing(pixdim)` (the output grid of MONAI's `zoom_affine` and
 * `compute_shape_offset`, trilinear for images and nearest for labels, border padding, float64 sampling positions)
 * and `SpatialResample` onto any grid (labels back onto the source T1c grid).
 *
 * Volumes carry DICOM geometry (LPS patient coordinates, `i` fastest; see `volume.ts`); MONAI's affines are RAS
 * (nibabel). `rasAffine` converts, so a geometry here and a MetaTensor there describe the same voxels. Proven equal
 * to MONAI 1.5 by the vectors in `__fixtures__/monai-spatial/` (tools/monai-reference/make_spatial_vectors.py).
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';
import { voxelCount, type Mat3, type Vec3, type Volume, type VolumeGeometry, type VoxelArray } from '@cdss/dicom';

/** A 4×4 affine, row-major rows (as numpy writes it): world = A · [i, j, k, 1]. */
export type Affine = [Vec4, Vec4, Vec4, Vec4];
type Vec4 = [number, number, number, number];

/** Three axis codes, one letter each from L/R, P/A, I/S: the direction each voxel axis increases towards. */
export type Axcodes = string;

const at = <T>(a: readonly T[], i: number): T => a[i] as T;

/**
 * The RAS affine (nibabel/MONAI) of a DICOM geometry: column `a` is `spacing[a]·direction[a]` with x and y negated.
 * @param g - the grid
 */
export function rasAffine(g: VolumeGeometry): Affine {
  const d = g.direction;
  const row = (r: number, sign: number): Vec4 => [
    sign * at(d, r) * g.spacing[0],
    sign * at(d, 3 + r) * g.spacing[1],
    sign * at(d, 6 + r) * g.spacing[2],
    sign * at(g.origin, r),
  ];
  return [row(0, -1), row(1, -1), row(2, 1), [0, 0, 0, 1]];
}

/**
 * The DICOM geometry of a RAS affine (columns normalised to the spacing and direction).
 * @param affine - RAS affine
 * @param dims - voxel counts
 */
export function geometryFromRasAffine(affine: Affine, dims: Readonly<Vec3>): VolumeGeometry {
  const sign = [-1, -1, 1];
  const spacing: Vec3 = [0, 0, 0];
  const direction: number[] = [];
  for (let c = 0; c < 3; c++) {
    const col = [0, 1, 2].map((r) => at(sign, r) * at(at(affine, r), c));
    const norm = Math.hypot(...col);
    spacing[c] = norm;
    direction.push(...col.map((v) => v / norm));
  }
  return {
    dims: [...dims],
    spacing,
    origin: [0, 1, 2].map((r) => at(sign, r) * at(at(affine, r), 3)) as Vec3,
    direction: direction as Mat3,
  };
}

/** How to reorder a grid's axes: output axis `a` is input axis `axis[a]`, reversed where `flip[a]`. */
export interface AxisReorder {
  axis: Vec3;
  flip: [boolean, boolean, boolean];
}

const LABELS: readonly (readonly [string, string])[] = [
  ['L', 'R'],
  ['P', 'A'],
  ['I', 'S'],
];

/** Per input axis: the RAS world axis (0 x, 1 y, 2 z) it is closest to, and +1/-1 (nibabel `io_orientation`). */
function ioOrientation(g: VolumeGeometry): [number, number][] {
  const a = rasAffine(g);
  // Directions are orthonormal (assertVolume), so the polar decomposition of nibabel is the direction itself.
  const r = [0, 1, 2].map((row) => [0, 1, 2].map((c) => at(at(a, row), c) / at(g.spacing, c)));
  // strongest axes first, stable on ties: argsort of min over rows of -(R²)
  const order = [0, 1, 2].sort(
    (p, q) =>
      Math.min(...r.map((row) => -(at(row, p) ** 2))) - Math.min(...r.map((row) => -(at(row, q) ** 2))) || p - q,
  );
  const out: [number, number][] = [
    [0, 1],
    [0, 1],
    [0, 1],
  ];
  for (const inAx of order) {
    const col = r.map((row) => at(row, inAx));
    let best = 0;
    for (let k = 1; k < 3; k++) if (Math.abs(at(col, k)) > Math.abs(at(col, best))) best = k;
    out[inAx] = [best, at(col, best) < 0 ? -1 : 1];
    for (let c = 0; c < 3; c++) at(r, best)[c] = 0;
  }
  return out;
}

/**
 * The axis reordering that MONAI's `Orientation(axcodes)` applies to a grid.
 * @param g - the grid
 * @param axcodes - target codes, e.g. `RAS` (MONAI bundles) or `LPS` (DICOM's axial order)
 * @throws {@link ValidationError} on codes that are not one of L/R, P/A, I/S each
 */
export function orientationOf(g: VolumeGeometry, axcodes: Axcodes): AxisReorder {
  const target = axcodesToWorld(axcodes);
  const src = ioOrientation(g);
  const axis: Vec3 = [0, 0, 0];
  const flip: [boolean, boolean, boolean] = [false, false, false];
  for (let inAx = 0; inAx < 3; inAx++) {
    const [world, sign] = at(src, inAx);
    const outAx = target.findIndex(([w]) => w === world);
    axis[outAx] = inAx;
    flip[outAx] = sign !== at(target, outAx)[1];
  }
  return { axis, flip };
}

function axcodesToWorld(axcodes: Axcodes): [number, number][] {
  const codes = axcodes.toUpperCase().split('');
  const mapped = codes.map((c): [number, number] => {
    const world = LABELS.findIndex((pair) => pair.includes(c));
    return [world, world < 0 ? 0 : at(LABELS, world)[1] === c ? 1 : -1];
  });
  if (codes.length !== 3 || mapped.some(([w]) => w < 0) || new Set(mapped.map(([w]) => w)).size !== 3)
    throw new ValidationError(`Invalid axcodes ${JSON.stringify(axcodes)}`, [
      { path: 'axcodes', message: 'three letters, one each of L/R, P/A and I/S', code: 'invalid_axcodes' },
    ]);
  return mapped;
}

/**
 * The grid after an axis reordering (MONAI's `orientation` affine update).
 * @param g - the input grid
 * @param reorder - from {@link orientationOf}
 */
export function reorderedGeometry(g: VolumeGeometry, reorder: AxisReorder): VolumeGeometry {
  const dims = reorder.axis.map((a) => at(g.dims, a)) as Vec3;
  const spacing = reorder.axis.map((a) => at(g.spacing, a)) as Vec3;
  const direction: number[] = [];
  const origin: Vec3 = [...g.origin];
  for (let out = 0; out < 3; out++) {
    const inAx = at(reorder.axis, out);
    const s = reorder.flip[out] ? -1 : 1;
    for (let r = 0; r < 3; r++) direction.push(s * at(g.direction, inAx * 3 + r));
    if (reorder.flip[out]) {
      // the flipped axis starts at the far end of the input axis
      const len = (at(g.dims, inAx) - 1) * at(g.spacing, inAx);
      for (let r = 0; r < 3; r++) origin[r] = at(origin, r) + len * at(g.direction, inAx * 3 + r);
    }
  }
  return { dims, spacing, origin, direction: direction as Mat3 };
}

/**
 * MONAI `Orientation(axcodes)`: the same voxels, reordered so the axes run along `axcodes` (no interpolation).
 * @param volume - the input
 * @param axcodes - e.g. `RAS`
 * @returns a new volume of the same array type
 */
export function orient<T extends VoxelArray>(volume: Volume<T>, axcodes: Axcodes): Volume<T> {
  const reorder = orientationOf(volume, axcodes);
  const geometry = reorderedGeometry(volume, reorder);
  const [nx, ny, nz] = geometry.dims;
  const src = volume.data;
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const strides = [1, volume.dims[0], volume.dims[0] * volume.dims[1]];
  // output step along each output axis, in input index units
  const step = [0, 1, 2].map((o) => (reorder.flip[o] ? -1 : 1) * at(strides, at(reorder.axis, o)));
  const start = [0, 1, 2].reduce(
    (s, o) => s + (reorder.flip[o] ? (at(geometry.dims, o) - 1) * at(strides, at(reorder.axis, o)) : 0),
    0,
  );
  const [sx, sy, sz] = step as Vec3;
  let n = 0;
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      let p = start + j * sy + k * sz;
      for (let i = 0; i < nx; i++, p += sx) out[n++] = src[p] as number;
    }
  return { ...geometry, data: out };
}

/** Round half to even, as numpy's `round` and PyTorch's `nearbyint`. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The grid MONAI's `Spacing(pixdim)` (diagonal False, scale_extent False) resamples to: the same directions, the
 * new spacing, `round((n - 1)·spacing / pixdim) + 1` voxels (half to even) and, for grids whose voxel (0,0,0) is the
 * minimum corner in the new axes (always, since the directions are kept), the same origin.
 * @param g - the input grid (already oriented)
 * @param pixdim - output spacing, mm
 */
export function spacingGeometry(g: VolumeGeometry, pixdim: Readonly<Vec3>): VolumeGeometry {
  const dims = [0, 1, 2].map((a) =>
    roundHalfEven(((at(g.dims, a) - 1) * at(g.spacing, a)) / at(pixdim, a) + 1),
  ) as Vec3;
  return { dims, spacing: [...pixdim], origin: [...g.origin], direction: [...g.direction] };
}

/** Interpolation: trilinear for images, nearest for labels. */
export type ResampleMode = 'trilinear' | 'nearest';

/**
 * MONAI `SpatialResample` (align_corners False, border padding): each output voxel samples the input at the same
 * patient position; positions outside the input are clamped to its border.
 * @param volume - the input
 * @param target - the output grid
 * @param mode - `trilinear` (Float32Array out) or `nearest` (same array type as the input)
 */
export function resample<T extends VoxelArray>(
  volume: Volume<T>,
  target: VolumeGeometry,
  mode: ResampleMode,
): Volume<T | Float32Array> {
  const src = volume.data;
  const out =
    mode === 'trilinear'
      ? new Float32Array(voxelCount(target.dims))
      : new (src.constructor as new (n: number) => T)(voxelCount(target.dims));
  resampleInto(volume, target, mode, out, 0, [1, target.dims[0], target.dims[0] * target.dims[1]]);
  return { ...target, dims: [...target.dims], data: out };
}

/**
 * {@link resample}'s values written into `out`: target voxel (i, j, k) at `offset + i·strides[0] + j·strides[1] +
 * k·strides[2]`, e.g. straight into a channel of the model's channel-first C-order input (k fastest), without a
 * volume in between.
 * @param volume - the input
 * @param target - the output grid
 * @param mode - `trilinear` or `nearest`
 * @param out - receives the values (stored as the array's type: float32 for a Float32Array)
 * @param offset - where target voxel (0, 0, 0) goes
 * @param strides - the steps in `out` of i, j and k
 */
export function resampleInto(
  volume: Volume,
  target: VolumeGeometry,
  mode: ResampleMode,
  out: VoxelArray,
  offset: number,
  strides: Readonly<Vec3>,
): void {
  // xform = inverse(src) · dst in voxel units: p_src = M · j + t
  const { m, t } = voxelTransform(volume, target);
  const aligned = alignedAxes(m);
  if (aligned) return resampleAligned(volume, target, mode, m, t, aligned, out, offset, strides);
  const [nx, ny, nz] = target.dims;
  const [ix, iy, iz] = volume.dims;
  const src = volume.data;
  const [oi, oj, ok] = strides;
  const sxy = ix * iy;
  const clamp = (v: number, hi: number): number => (v < 0 ? 0 : v > hi ? hi : v);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      const bx = at(m, 1) * j + at(m, 2) * k + at(t, 0);
      const by = at(m, 4) * j + at(m, 5) * k + at(t, 1);
      const bz = at(m, 7) * j + at(m, 8) * k + at(t, 2);
      for (let i = 0, n = offset + j * oj + k * ok; i < nx; i++, n += oi) {
        const x = clamp(at(m, 0) * i + bx, ix - 1);
        const y = clamp(at(m, 3) * i + by, iy - 1);
        const z = clamp(at(m, 6) * i + bz, iz - 1);
        if (mode === 'nearest') {
          out[n] = src[roundHalfEven(x) + roundHalfEven(y) * ix + roundHalfEven(z) * sxy] as number;
          continue;
        }
        const x0 = Math.floor(x);
        const y0 = Math.floor(y);
        const z0 = Math.floor(z);
        const fx = x - x0;
        const fy = y - y0;
        const fz = z - z0;
        // corners past the last voxel have weight 0 (x = n - 1 exactly)
        const x1 = x0 + 1 < ix ? 1 : 0;
        const y1 = y0 + 1 < iy ? ix : 0;
        const z1 = z0 + 1 < iz ? sxy : 0;
        const p = x0 + y0 * ix + z0 * sxy;
        // the eight reads inline: a helper closure made per voxel costs more than the arithmetic
        const c00 = (src[p] as number) * (1 - fx) + (src[p + x1] as number) * fx;
        const c10 = (src[p + y1] as number) * (1 - fx) + (src[p + y1 + x1] as number) * fx;
        const c01 = (src[p + z1] as number) * (1 - fx) + (src[p + z1 + x1] as number) * fx;
        const c11 = (src[p + y1 + z1] as number) * (1 - fx) + (src[p + y1 + z1 + x1] as number) * fx;
        out[n] = (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
      }
    }
}

/** For a transform without rotation (each source axis follows one target axis), that source axis per target axis. */
function alignedAxes(m: readonly number[]): Vec3 | undefined {
  const axis: number[] = [-1, -1, -1];
  for (let a = 0; a < 3; a++) {
    const nonzero = [0, 1, 2].filter((b) => Math.abs(at(m, a * 3 + b)) > 1e-12);
    if (nonzero.length !== 1) return undefined;
    const b = nonzero[0] as number;
    if (at(axis, b) !== -1) return undefined;
    axis[b] = a;
  }
  return axis as Vec3;
}

/**
 * {@link resample} when the grids differ by spacing, offset, flips and axis order only (no rotation), the common case:
 * each output axis samples one input axis, so positions, weights and offsets are computed once per axis.
 */
function resampleAligned(
  volume: Volume,
  target: VolumeGeometry,
  mode: ResampleMode,
  m: readonly number[],
  t: readonly number[],
  sourceAxis: Vec3,
  out: VoxelArray,
  offset: number,
  outStrides: Readonly<Vec3>,
): void {
  const src = volume.data;
  const strides = [1, volume.dims[0], volume.dims[0] * volume.dims[1]];
  // per output axis b: the input offset of the lower neighbour, the step to the upper one, the upper's weight
  const tables = [0, 1, 2].map((b) => {
    const a = at(sourceAxis, b);
    const n = at(target.dims, b);
    const last = at(volume.dims, a) - 1;
    const stride = at(strides, a);
    const lo = new Float64Array(n);
    const step = new Float64Array(n);
    const frac = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const raw = at(m, a * 3 + b) * j + at(t, a);
      const x = raw < 0 ? 0 : raw > last ? last : raw;
      if (mode === 'nearest') {
        lo[j] = roundHalfEven(x) * stride;
        continue;
      }
      const x0 = Math.floor(x);
      lo[j] = x0 * stride;
      step[j] = x0 + 1 <= last ? stride : 0;
      frac[j] = x - x0;
    }
    return { lo, step, frac };
  });
  const [nx, ny, nz] = target.dims;
  const [X, Y, Z] = tables as [(typeof tables)[0], (typeof tables)[0], (typeof tables)[0]];
  const [oi, oj, ok] = outStrides;
  if (mode === 'nearest') {
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++) {
        const base = (Z.lo[k] as number) + (Y.lo[j] as number);
        for (let i = 0, n = offset + j * oj + k * ok; i < nx; i++, n += oi)
          out[n] = src[base + (X.lo[i] as number)] as number;
      }
    return;
  }
  for (let k = 0; k < nz; k++) {
    const fz = Z.frac[k] as number;
    const sz = Z.step[k] as number;
    for (let j = 0; j < ny; j++) {
      const fy = Y.frac[j] as number;
      const sy = Y.step[j] as number;
      const base = (Z.lo[k] as number) + (Y.lo[j] as number);
      for (let i = 0, n = offset + j * oj + k * ok; i < nx; i++, n += oi) {
        const fx = X.frac[i] as number;
        const sx = X.step[i] as number;
        const p = base + (X.lo[i] as number);
        const c00 = (src[p] as number) * (1 - fx) + (src[p + sx] as number) * fx;
        const c10 = (src[p + sy] as number) * (1 - fx) + (src[p + sy + sx] as number) * fx;
        const c01 = (src[p + sz] as number) * (1 - fx) + (src[p + sz + sx] as number) * fx;
        const c11 = (src[p + sy + sz] as number) * (1 - fx) + (src[p + sy + sz + sx] as number) * fx;
        out[n] = (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
      }
    }
  }
}

/** A block `[lo, hi)` of voxel indices (i, j, k) of a grid. */
export interface VoxelBlock {
  lo: Vec3;
  hi: Vec3;
}

/**
 * `resample(labels, target, 'nearest')` of a label map that is 0 outside one block of its grid, given as that block:
 * the same labels (the same sampling positions and rounding as {@link resample}), but when the grids differ by
 * spacing, offset, flips and axis order only, computed for the target voxels that sample inside the block alone
 * (the rest are 0). Used to put a segmentation's labels back onto the study grid without a pass over the whole grid.
 * @param block - the block's labels, C-order over the source's voxel axes (i, j, k; k fastest)
 * @param source - the labels' grid
 * @param where - where the block lies in `source`
 * @param target - the output grid
 * @returns the labels on `target` (i fastest) and a block of `target` that holds every non-zero label (it may
 *   have empty faces; `lo` = `hi` = 0 when there is none)
 */
export function resampleLabelBlock(
  block: Uint8Array,
  source: VolumeGeometry,
  where: VoxelBlock,
  target: VolumeGeometry,
): { data: Uint8Array; block: VoxelBlock } {
  const size = [0, 1, 2].map((a) => at(where.hi, a) - at(where.lo, a)) as Vec3;
  const { m, t } = voxelTransform(source, target);
  const sourceAxis = alignedAxes(m);
  const [nx, ny, nz] = target.dims;
  if (!sourceAxis) {
    // A rotation: resample the whole grid, then find the labels' block.
    const full = new Uint8Array(voxelCount(source.dims));
    const [sx, sy] = source.dims;
    for (let a = 0, v = 0; a < size[0]; a++)
      for (let b = 0; b < size[1]; b++)
        for (let c = 0; c < size[2]; c++, v++) {
          const i = where.lo[0] + a;
          const j = where.lo[1] + b;
          const k = where.lo[2] + c;
          full[i + sx * (j + sy * k)] = block[v] as number;
        }
    const data = resample({ ...source, data: full }, target, 'nearest').data as Uint8Array;
    return { data, block: labelBlock(data, target.dims) };
  }
  // Per target axis b: the source index it samples (resampleAligned's nearest table), kept where it is in the block.
  const blockStrides = [size[1] * size[2], size[2], 1];
  const lo: Vec3 = [0, 0, 0];
  const hi: Vec3 = [0, 0, 0];
  const offsets = [0, 1, 2].map((b) => {
    const a = at(sourceAxis, b);
    const last = at(source.dims, a) - 1;
    const n = at(target.dims, b);
    const off = new Int32Array(n).fill(-1);
    let first = -1;
    let end = -1;
    for (let j = 0; j < n; j++) {
      const raw = at(m, a * 3 + b) * j + at(t, a);
      const r = roundHalfEven(raw < 0 ? 0 : raw > last ? last : raw) - at(where.lo, a);
      if (r < 0 || r >= at(size, a)) continue;
      off[j] = r * at(blockStrides, a);
      if (first < 0) first = j;
      end = j + 1;
    }
    lo[b] = Math.max(first, 0);
    hi[b] = Math.max(end, 0);
    return off;
  }) as [Int32Array, Int32Array, Int32Array];
  const data = new Uint8Array(nx * ny * nz);
  if (hi.some((h, b) => h <= at(lo, b))) return { data, block: { lo: [0, 0, 0], hi: [0, 0, 0] } };
  const [X, Y, Z] = offsets;
  for (let k = lo[2]; k < hi[2]; k++) {
    const oz = Z[k] as number;
    if (oz < 0) continue;
    for (let j = lo[1]; j < hi[1]; j++) {
      const oy = Y[j] as number;
      if (oy < 0) continue;
      let n = lo[0] + nx * (j + ny * k);
      for (let i = lo[0]; i < hi[0]; i++, n++) {
        const ox = X[i] as number;
        if (ox >= 0) data[n] = block[ox + oy + oz] as number;
      }
    }
  }
  return { data, block: { lo, hi } };
}

/**
 * The smallest block holding every non-zero voxel of a volume's data (i fastest), or `lo` = `hi` = 0 when all are 0.
 * @param data - the voxels
 * @param dims - the grid's size
 */
export function labelBlock(data: ArrayLike<number>, dims: Readonly<Vec3>): VoxelBlock {
  const [nx, ny, nz] = dims;
  const lo: Vec3 = [nx, ny, nz];
  const hi: Vec3 = [0, 0, 0];
  for (let k = 0, v = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, v++) {
        if (data[v] === 0) continue;
        if (i < lo[0]) lo[0] = i;
        if (i >= hi[0]) hi[0] = i + 1;
        if (j < lo[1]) lo[1] = j;
        if (j >= hi[1]) hi[1] = j + 1;
        if (k < lo[2]) lo[2] = k;
        if (k >= hi[2]) hi[2] = k + 1;
      }
  return hi[0] > 0 ? { lo, hi } : { lo: [0, 0, 0], hi: [0, 0, 0] };
}

/**
 * The voxel-to-voxel map of a resampling: output index j of `target` samples `source` at p = m·j + t.
 * @param source - the grid sampled
 * @param target - the output grid
 * @returns `m` (3×3, row-major) and `t`
 */
export function voxelTransform(source: VolumeGeometry, target: VolumeGeometry): { m: number[]; t: number[] } {
  // source index = S⁻¹ Dᵀ (world - o_s), world = o_t + D_t S_t j  (D orthonormal, so D⁻¹ = Dᵀ)
  const ds = source.direction;
  const dt = target.direction;
  const m: number[] = [];
  const t: number[] = [];
  const delta = [0, 1, 2].map((r) => at(target.origin, r) - at(source.origin, r));
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 3; b++) {
      let dot = 0;
      for (let r = 0; r < 3; r++) dot += at(ds, a * 3 + r) * at(dt, b * 3 + r);
      m.push((dot * at(target.spacing, b)) / at(source.spacing, a));
    }
    let off = 0;
    for (let r = 0; r < 3; r++) off += at(ds, a * 3 + r) * at(delta, r);
    t.push(off / at(source.spacing, a));
  }
  return { m, t };
}
