import { describe, expect, it } from 'vitest';
import type { Volume } from '@cdss/dicom';
import { array, spatialReference } from './__fixtures__/monai-spatial/reference.js';
import {
  geometryFromRasAffine,
  orient,
  rasAffine,
  resample,
  spacingGeometry,
  voxelTransform,
  type Affine,
} from './spatial.js';
import { maxAbsDiff } from './__fixtures__/monai/reference.js';

/** MONAI's [1, d0, d1, d2] C-order array as a volume (i fastest) on the grid of a RAS affine. */
function volumeOf<T extends Float32Array | Uint8Array>(name: string, affine: number[][]): Volume<T> {
  const { data, shape } = array(name);
  const [, n0, n1, n2] = shape;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let i = 0, m = 0; i < n0; i++)
    for (let j = 0; j < n1; j++) for (let k = 0; k < n2; k++, m++) out[i + n0 * (j + n1 * k)] = data[m] as number;
  return { ...geometryFromRasAffine(affine as Affine, [n0, n1, n2]), data: out };
}

function closeAffine(a: Affine, b: number[][]): number {
  return Math.max(...a.flatMap((row, r) => row.map((v, c) => Math.abs(v - (b[r]?.[c] as number)))));
}

describe.each(spatialReference.cases.resample.map((c) => [c.name, c] as const))(
  'MONAI parity of the spatial preprocessing: %s',
  (_name, c) => {
    const image = volumeOf<Float32Array>(c.image, c.affine);
    const labels = volumeOf<Uint8Array>(c.labels, c.affine);
    const oriented = orient(image, 'RAS');
    const spaced = spacingGeometry(oriented, c.pixdim as [number, number, number]);

    it('round-trips the affine through the DICOM (LPS) geometry', () => {
      expect(closeAffine(rasAffine(image), c.affine)).toBeLessThan(1e-12);
    });

    it('Orientation(axcodes="RAS"): same voxels in the same order and the same affine (exact)', () => {
      const want = volumeOf<Float32Array>(c.oriented, c.oriented_affine);
      expect(oriented.dims).toEqual(want.dims);
      expect(maxAbsDiff(oriented.data, want.data)).toBe(0);
      expect(closeAffine(rasAffine(oriented), c.oriented_affine)).toBeLessThan(1e-9);
    });

    it('Spacing(pixdim): the output grid (shape and affine) is MONAI’s', () => {
      const want = array(c.spaced).shape.slice(1);
      expect(spaced.dims).toEqual(want);
      expect(closeAffine(rasAffine(spaced), c.spaced_affine)).toBeLessThan(1e-9);
    });

    it('Spacing(mode="bilinear"): trilinear image values within 1e-5', () => {
      const want = volumeOf<Float32Array>(c.spaced, c.spaced_affine);
      const got = resample(oriented, spaced, 'trilinear');
      expect(maxAbsDiff(got.data, want.data)).toBeLessThanOrEqual(1e-5 * 1000);
      // relative to the image's range (~1000), and absolute on the values themselves:
      let worst = 0;
      for (let v = 0; v < want.data.length; v++)
        worst = Math.max(
          worst,
          Math.abs((got.data[v] as number) - (want.data[v] as number)) / Math.max(1, Math.abs(want.data[v] as number)),
        );
      expect(worst).toBeLessThanOrEqual(1e-5);
    });

    it('Spacing(mode="nearest") for labels: identical, except where the sample falls exactly between two voxels', () => {
      const source = orient(labels, 'RAS');
      const got = resample(source, spaced, 'nearest');
      const want = volumeOf<Uint8Array>(c.spaced_labels, c.spaced_affine);
      // At an exact .5 the last bit of MONAI's float64 grid (LAPACK solve, normalised coordinates) picks the
      // neighbour; there either is right. Everywhere else the labels must be identical.
      const { m, t } = voxelTransform(source, spaced);
      const [nx, ny] = spaced.dims;
      let ties = 0;
      for (let v = 0; v < want.data.length; v++) {
        if (got.data[v] === want.data[v]) continue;
        const j = [v % nx, Math.floor(v / nx) % ny, Math.floor(v / (nx * ny))];
        const p = [0, 1, 2].map(
          (a) =>
            (m[a * 3] as number) * (j[0] as number) +
            (m[a * 3 + 1] as number) * (j[1] as number) +
            (m[a * 3 + 2] as number) * (j[2] as number) +
            (t[a] as number),
        );
        expect(
          p.some((x) => Math.abs(Math.abs(x % 1) - 0.5) < 1e-9),
          `voxel ${j.join(',')} at ${p.join(',')}`,
        ).toBe(true);
        ties++;
      }
      expect(ties / want.data.length).toBeLessThan(0.01);
    });

    it('SpatialResample(mode="nearest") of MONAI’s labels back onto the source grid: identical labels', () => {
      const back = resample(volumeOf<Uint8Array>(c.spaced_labels, c.spaced_affine), labels, 'nearest');
      expect(maxAbsDiff(back.data, volumeOf<Uint8Array>(c.back_labels, c.affine).data)).toBe(0);
    });
  },
);
