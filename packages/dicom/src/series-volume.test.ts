import { describe, expect, it } from 'vitest';
import { SeriesGeometryError } from './dicom-errors.js';
import { uidFromSeed, writeDicomSeries } from './dicom-write.js';
import { sliceFromPart10, volumeFromPart10, volumeFromSlices, type DicomSlice } from './series-volume.js';
import type { Mat3, Vec3 } from './volume.js';

const I: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

function slices(
  n: number,
  opts: { step?: number; cols?: number; rows?: number; slope?: number; intercept?: number } = {},
): DicomSlice[] {
  const cols = opts.cols ?? 4;
  const rows = opts.rows ?? 3;
  return Array.from({ length: n }, (_, k) => {
    const px = new Uint16Array(cols * rows).map((_, p) => k * 100 + p);
    return {
      sopInstanceUid: `1.2.3.${k + 1}`,
      seriesInstanceUid: '1.2.3',
      frameOfReferenceUid: '1.2.4',
      instanceNumber: k + 1,
      rows,
      columns: cols,
      pixelSpacing: [0.5, 0.25],
      imagePositionPatient: [10, 20, 30 + k * (opts.step ?? 2)] as Vec3,
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      bitsAllocated: 16,
      bitsStored: 16,
      pixelRepresentation: 0,
      rescaleSlope: opts.slope ?? 1,
      rescaleIntercept: opts.intercept ?? 0,
      pixels: new Uint8Array(px.buffer),
    };
  });
}

function expectProblem(fn: () => unknown, problem: string, message: RegExp): SeriesGeometryError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SeriesGeometryError);
    const e = error as SeriesGeometryError;
    expect(e.problem).toBe(problem);
    expect(e.message).toMatch(message);
    return e;
  }
  throw new Error('expected a SeriesGeometryError');
}

describe('volumeFromSlices', () => {
  it('sorts slices along the normal whatever their order, with spacing and origin from the geometry', () => {
    const input = slices(5);
    const v = volumeFromSlices([input[3]!, input[0]!, input[4]!, input[2]!, input[1]!]);
    expect(v.dims).toEqual([4, 3, 5]);
    expect(v.spacing).toEqual([0.25, 0.5, 2]);
    expect(v.origin).toEqual([10, 20, 30]);
    expect(v.direction).toEqual(I);
    expect(v.data).toBeInstanceOf(Uint16Array);
    expect(v.data[0]).toBe(0);
    expect(v.data[12 * 4 + 5]).toBe(405);
  });

  it('sorts by position, not InstanceNumber, and follows a reversed normal', () => {
    const input = slices(3).map((s, k) => ({
      ...s,
      instanceNumber: 3 - k,
      imageOrientationPatient: [1, 0, 0, 0, -1, 0] as DicomSlice['imageOrientationPatient'],
    }));
    const v = volumeFromSlices(input);
    // normal = x × (-y) = -z, so k grows as z decreases: the slice at z = 34 comes first
    expect(v.origin).toEqual([10, 20, 34]);
    expect(v.direction).toEqual([1, 0, 0, 0, -1, 0, 0, 0, -1]);
    expect(v.data[0]).toBe(200);
  });

  it('applies rescale slope and intercept as float32', () => {
    const v = volumeFromSlices(slices(2, { slope: 0.5, intercept: -10 }));
    expect(v.data).toBeInstanceOf(Float32Array);
    expect(v.data[1]).toBe(-9.5);
    expect(v.data[12 + 2]).toBe(0.5 * 102 - 10);
  });

  it('reports a missing slice with its position', () => {
    const input = slices(6);
    input.splice(3, 1);
    const e = expectProblem(
      () => volumeFromSlices(input),
      'missing-slice',
      /missing 1 slice.*between 34\.000 and 38\.000/,
    );
    expect(e.gaps).toEqual([{ after: 34, before: 38, missing: 1 }]);
  });

  it('reports several missing slices', () => {
    const input = slices(10);
    const kept = [input[0]!, input[1]!, input[4]!, input[5]!, input[6]!, input[9]!];
    const e = expectProblem(() => volumeFromSlices(kept), 'missing-slice', /missing 4 slice/);
    expect(e.gaps.map((g) => g.missing)).toEqual([2, 2]);
  });

  it('reports uneven spacing, duplicates, inconsistent slices and shear', () => {
    const uneven = slices(4);
    uneven[2] = { ...uneven[2]!, imagePositionPatient: [10, 20, 30 + 2 * 2 + 0.7] };
    expectProblem(() => volumeFromSlices(uneven), 'uneven-spacing', /uneven slice spacing/);
    const dup = slices(3);
    dup.push({ ...dup[1]!, sopInstanceUid: '9.9' });
    expectProblem(() => volumeFromSlices(dup), 'duplicate-position', /same position/);
    const mixed = slices(3);
    mixed[1] = { ...mixed[1]!, rows: 4, pixels: new Uint8Array(32) };
    expectProblem(() => volumeFromSlices(mixed), 'inconsistent', /Rows\/Columns/);
    const other = slices(3);
    other[2] = { ...other[2]!, seriesInstanceUid: '7.7' };
    expectProblem(() => volumeFromSlices(other), 'inconsistent', /SeriesInstanceUID/);
    const sheared = slices(3).map((s, k) => ({ ...s, imagePositionPatient: [10 + k, 20, 30 + 2 * k] as Vec3 }));
    expectProblem(() => volumeFromSlices(sheared), 'not-stacked', /off the slice normal/);
    expectProblem(() => volumeFromSlices([]), 'empty', /no slices/);
  });

  it('builds a one-slice volume using SpacingBetweenSlices', () => {
    const one = slices(1).map((s) => ({ ...s, spacingBetweenSlices: 3 }));
    expect(volumeFromSlices(one).spacing).toEqual([0.25, 0.5, 3]);
  });

  it('reports a missing slice in a written Part-10 series', () => {
    const data = new Uint16Array(8 * 8 * 6).map((_, i) => i);
    const files = writeDicomSeries(
      { dims: [8, 8, 6], spacing: [1, 1, 2.5], origin: [0, 0, 0], direction: I, data },
      {
        patient: { id: 'M', name: 'M^M' },
        study: { instanceUid: uidFromSeed('m/study') },
        series: {
          instanceUid: uidFromSeed('m/series'),
          number: 1,
          description: 'm',
          frameOfReferenceUid: uidFromSeed('m/for'),
        },
      },
    );
    expect(Buffer.from(volumeFromPart10(files).data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
    const missing = files.filter((_, k) => k !== 2);
    expectProblem(
      () => volumeFromPart10(missing),
      'missing-slice',
      /missing 1 slice\(s\): 1 between 2\.500 and 7\.500 mm/,
    );
    expect(sliceFromPart10(files[0]!).pixels.length).toBe(128);
  });
});
