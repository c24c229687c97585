/**
 * The `Volume` type: a 3-D image on a physical grid, as DICOM and ITK describe it.
 *
 * Voxel `(i, j, k)` sits at `origin + i·spacing[0]·dirX + j·spacing[1]·dirY + k·spacing[2]·dirZ` (patient
 * coordinates, LPS, millimetres), where `dirX`, `dirY`, `dirZ` are the three columns of `direction`.
 * For a DICOM series `dirX` is the row direction (first half of ImageOrientationPatient), `dirY` the column
 * direction and `dirZ` the slice normal; `i` counts columns, `j` rows and `k` slices.
 * The voxels are stored with `i` fastest: `index = i + j·dims[0] + k·dims[0]·dims[1]`.
 * @packageDocumentation
 */
import { z } from 'zod';
import { ValidationError } from '@cdss/core';

/** The typed arrays a volume may hold. */
export type VoxelArray =
  Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** Three numbers: x, y, z (or i, j, k). */
export type Vec3 = [number, number, number];

/** A 3×3 direction matrix, column-major: `[dirX..., dirY..., dirZ...]`. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

/** Where a volume sits in patient space, without its voxels. */
export interface VolumeGeometry {
  /** Voxel counts along i (columns), j (rows) and k (slices). */
  dims: Vec3;
  /** Voxel size in mm along i, j and k. */
  spacing: Vec3;
  /** Patient position (mm, LPS) of the centre of voxel (0, 0, 0). */
  origin: Vec3;
  /** Unit direction vectors of i, j and k, column-major (identity for an axial LPS grid). */
  direction: Mat3;
}

/** A 3-D image: voxels plus geometry. See the module comment for the layout. */
export interface Volume<T extends VoxelArray = VoxelArray> extends VolumeGeometry {
  /** Voxels, `i` fastest; length `dims[0]·dims[1]·dims[2]`. */
  data: T;
}

/** The identity direction (axial slices, rows along +x, columns along +y, slices along +z). */
export const IDENTITY_DIRECTION: Readonly<Mat3> = [1, 0, 0, 0, 1, 0, 0, 0, 1];

const finite = z.number().finite();
const vec3Schema = z.tuple([finite, finite, finite]);
/** zod schema of {@link VolumeGeometry}. */
export const volumeGeometrySchema = z.object({
  dims: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  spacing: z.tuple([finite.positive(), finite.positive(), finite.positive()]),
  origin: vec3Schema,
  direction: z.tuple([finite, finite, finite, finite, finite, finite, finite, finite, finite]),
});

/**
 * Number of voxels of a grid.
 * @param dims - the grid's dimensions
 * @returns `dims[0]·dims[1]·dims[2]`
 */
export function voxelCount(dims: Readonly<Vec3>): number {
  return dims[0] * dims[1] * dims[2];
}

/**
 * Checks that a geometry is well formed (positive integer dims, positive spacing, unit orthogonal
 * directions) and, when given, that `data` has one value per voxel.
 * @param volume - the geometry or volume to check
 * @returns the same object
 * @throws {@link ValidationError} naming each problem
 */
export function assertVolume<V extends VolumeGeometry & { data?: VoxelArray }>(volume: V): V {
  const parsed = volumeGeometrySchema.safeParse(volume);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid volume geometry');
  const d = volume.direction;
  const cols = [d.slice(0, 3), d.slice(3, 6), d.slice(6, 9)];
  const issues = [];
  for (let a = 0; a < 3; a++) {
    const n = Math.hypot(...(cols[a] as number[]));
    if (Math.abs(n - 1) > 1e-4)
      issues.push({ path: `direction.${a}`, message: 'direction vector is not unit length', code: 'not_unit' });
    for (let b = a + 1; b < 3; b++) {
      const dot = (cols[a] as number[]).reduce((s, v, idx) => s + v * ((cols[b] as number[])[idx] as number), 0);
      if (Math.abs(dot) > 1e-4)
        issues.push({
          path: `direction.${a}`,
          message: `direction vectors ${a} and ${b} are not orthogonal`,
          code: 'not_orthogonal',
        });
    }
  }
  if (volume.data !== undefined && volume.data.length !== voxelCount(volume.dims)) {
    issues.push({
      path: 'data',
      message: `expected ${voxelCount(volume.dims)} voxels for dims ${volume.dims.join('×')}, got ${volume.data.length}`,
      code: 'length_mismatch',
    });
  }
  if (issues.length > 0) throw new ValidationError('Invalid volume', issues);
  return volume;
}

/**
 * Patient-space position (mm) of a voxel index.
 * @param geometry - the grid
 * @param ijk - voxel index (may be fractional)
 * @returns the LPS position
 */
export function indexToPatient(geometry: VolumeGeometry, ijk: Readonly<Vec3>): Vec3 {
  const { origin: o, spacing: s, direction: d } = geometry;
  const a = ijk[0] * s[0];
  const b = ijk[1] * s[1];
  const c = ijk[2] * s[2];
  return [
    o[0] + a * d[0] + b * d[3] + c * d[6],
    o[1] + a * d[1] + b * d[4] + c * d[7],
    o[2] + a * d[2] + b * d[5] + c * d[8],
  ];
}

/**
 * Copies a volume's geometry (no voxels).
 * @param geometry - the source grid
 * @returns a fresh geometry object with copied arrays
 */
export function geometryOf(geometry: VolumeGeometry): VolumeGeometry {
  return {
    dims: [...geometry.dims],
    spacing: [...geometry.spacing],
    origin: [...geometry.origin],
    direction: [...geometry.direction],
  };
}

/**
 * True when two grids are the same within `toleranceMm` (positions) and 1e-4 (directions).
 * @param a - first grid
 * @param b - second grid
 * @param toleranceMm - allowed difference of origins and spacings
 * @returns whether voxel (i, j, k) of one is voxel (i, j, k) of the other
 */
export function sameGrid(a: VolumeGeometry, b: VolumeGeometry, toleranceMm = 1e-3): boolean {
  for (let n = 0; n < 3; n++) {
    if (a.dims[n] !== b.dims[n]) return false;
    if (Math.abs((a.spacing[n] as number) - (b.spacing[n] as number)) > toleranceMm) return false;
    if (Math.abs((a.origin[n] as number) - (b.origin[n] as number)) > toleranceMm) return false;
  }
  return a.direction.every((v, n) => Math.abs(v - (b.direction[n] as number)) < 1e-4);
}
