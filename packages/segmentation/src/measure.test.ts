import { describe, expect, it } from 'vitest';
import { measureLesions } from './measure.js';
import { largestDiameter } from './postprocess.js';

/** A C-order [d0, d1, d2] mask with filled ellipses (semi-axes in mm) on slices k0..k1. */
function ellipses(
  dims: [number, number, number],
  spacing: [number, number, number],
  shapes: { c: [number, number]; a: number; b: number; k: [number, number] }[],
): Uint8Array {
  const [n0, n1, n2] = dims;
  const m = new Uint8Array(n0 * n1 * n2);
  for (const s of shapes)
    for (let i = 0; i < n0; i++)
      for (let j = 0; j < n1; j++)
        for (let k = s.k[0]; k <= s.k[1]; k++) {
          const x = (i - s.c[0]) * spacing[0];
          const y = (j - s.c[1]) * spacing[1];
          if ((x / s.a) ** 2 + (y / s.b) ** 2 <= 1) m[(i * n1 + j) * n2 + k] = 1;
        }
  return m;
}

describe('RANO lesion measurements', () => {
  it('measures the longest axial diameter and the longest perpendicular to it on the same slice', () => {
    const spacing: [number, number, number] = [0.5, 0.5, 3];
    const mask = ellipses([100, 80, 6], spacing, [{ c: [50, 40], a: 15, b: 8, k: [1, 3] }]);
    const { lesions, sumOfProductsMm2 } = measureLesions(mask, [100, 80, 6], spacing);
    expect(lesions).toHaveLength(1);
    const l = lesions[0]!;
    expect(l.longestDiameterMm).toBeCloseTo(30, 0);
    expect(l.perpendicularDiameterMm).toBeCloseTo(16, 0);
    expect(l.productMm2).toBeCloseTo(l.longestDiameterMm * l.perpendicularDiameterMm, 9);
    expect(l.measurable).toBe(true);
    expect(sumOfProductsMm2).toBe(l.productMm2);
    // volume from the voxel spacing: three slices of an ellipse of area π·15·8 mm², 3 mm thick
    expect(l.volumeMl).toBeCloseTo((Math.PI * 15 * 8 * 3 * 3) / 1000, 1);
  });

  it('measures a rotated lesion along its own axes, not the grid’s', () => {
    const dims: [number, number, number] = [90, 90, 1];
    const mask = new Uint8Array(90 * 90);
    const cos = Math.cos(Math.PI / 6);
    const sin = Math.sin(Math.PI / 6);
    for (let i = 0; i < 90; i++)
      for (let j = 0; j < 90; j++) {
        const x = i - 45;
        const y = j - 45;
        const u = x * cos + y * sin;
        const v = -x * sin + y * cos;
        if ((u / 30) ** 2 + (v / 12) ** 2 <= 1) mask[i * 90 + j] = 1;
      }
    const [l] = measureLesions(mask, dims, [1, 1, 1]).lesions;
    expect(l!.longestDiameterMm).toBeGreaterThan(59);
    expect(l!.longestDiameterMm).toBeLessThanOrEqual(60);
    expect(Math.abs(l!.perpendicularDiameterMm - 24)).toBeLessThan(1.5);
  });

  it('lists lesions largest first and sums only the measurable ones (both diameters ≥ 10 mm)', () => {
    const spacing: [number, number, number] = [1, 1, 1];
    const mask = ellipses([80, 80, 4], spacing, [
      { c: [20, 20], a: 12, b: 9, k: [0, 3] },
      { c: [60, 60], a: 7, b: 3, k: [1, 2] },
    ]);
    const { lesions, sumOfProductsMm2 } = measureLesions(mask, [80, 80, 4], spacing);
    expect(lesions.map((l) => l.measurable)).toEqual([true, false]);
    expect(lesions[0]!.volumeMl).toBeGreaterThan(lesions[1]!.volumeMl);
    expect(sumOfProductsMm2).toBe(lesions[0]!.productMm2);
  });

  it('reports nothing for an empty mask and refuses a bad spacing', () => {
    expect(measureLesions(new Uint8Array(8), [2, 2, 2], [1, 1, 1])).toEqual({ lesions: [], sumOfProductsMm2: 0 });
    expect(() => measureLesions(new Uint8Array(8), [2, 2, 2], [1, 0, 1])).toThrow(/spacing/);
  });
});

describe('a block of the grid at its offset', () => {
  it('measures lesions and the largest diameter exactly as the whole grid does', () => {
    const dims: [number, number, number] = [90, 84, 20];
    const spacing: [number, number, number] = [0.9, 0.9, 3];
    const whole = ellipses(dims, spacing, [
      { c: [40, 38], a: 14, b: 9, k: [4, 9] },
      { c: [62, 55], a: 6, b: 5, k: [11, 13] },
    ]);
    const lo: [number, number, number] = [21, 23, 3];
    const size: [number, number, number] = [50, 44, 12];
    const block = new Uint8Array(size[0] * size[1] * size[2]);
    for (let a = 0, v = 0; a < size[0]; a++)
      for (let b = 0; b < size[1]; b++)
        for (let c = 0; c < size[2]; c++, v++)
          block[v] = whole[((lo[0] + a) * dims[1] + lo[1] + b) * dims[2] + lo[2] + c]!;
    expect(block.reduce((n, x) => n + x, 0)).toBe(whole.reduce((n, x) => n + x, 0)); // the block holds both
    expect(measureLesions(block, size, spacing, { offset: lo })).toEqual(measureLesions(whole, dims, spacing));
    expect(largestDiameter(block, size, spacing, undefined, lo)).toEqual(largestDiameter(whole, dims, spacing));
    expect(measureLesions(block, size, spacing).lesions[0]!.slice).not.toBe(
      measureLesions(whole, dims, spacing).lesions[0]!.slice,
    );
  });
});
