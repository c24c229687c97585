import { describe, expect, it } from 'vitest';
import {
  edgeLetters,
  mrPresets,
  orientationLetters,
  rangePresets,
  slicePosition,
  voiRange,
  windowLevel,
} from './geometry';

describe('orientation markers', () => {
  it('names LPS directions', () => {
    expect(orientationLetters([1, 0, 0])).toBe('L');
    expect(orientationLetters([0, -1, 0])).toBe('A');
    expect(orientationLetters([0, 0, 1])).toBe('S');
    expect(orientationLetters([0.9, -0.4, 0])).toBe('LA');
  });

  it('puts anterior up and the patient’s right on the left in the axial view (radiological convention)', () => {
    // Cornerstone3D's axial camera: looking from the feet, up = anterior.
    expect(edgeLetters([0, -1, 0], [0, 0, -1])).toEqual({ top: 'A', bottom: 'P', left: 'R', right: 'L' });
  });

  it('puts superior up in the sagittal and coronal views', () => {
    expect(edgeLetters([0, 0, 1], [1, 0, 0])).toMatchObject({ top: 'S', bottom: 'I', left: 'A', right: 'P' });
    expect(edgeLetters([0, 0, 1], [0, -1, 0])).toMatchObject({ top: 'S', bottom: 'I', left: 'R', right: 'L' });
  });
});

describe('window/level', () => {
  it('converts between a VOI range and width/centre', () => {
    expect(windowLevel({ lower: 100, upper: 500 })).toEqual({ width: 400, center: 300 });
    expect(voiRange(400, 300)).toEqual({ lower: 100, upper: 500 });
  });

  it('derives presets from the intensities', () => {
    const values = Float32Array.from({ length: 10_000 }, (_, i) => (i < 5_000 ? 0 : 100 + (i % 1000)));
    const presets = mrPresets(values);
    expect(presets.map((p) => p.id)).toEqual(['full', 'body', 'contrast']);
    expect(presets[0]).toMatchObject({ width: 1099, center: 549.5 });
    expect(presets[2]!.width).toBeLessThan(presets[1]!.width);
    expect(rangePresets({ lower: 0, upper: 1000 }).map((p) => [p.label, p.width, p.center])).toEqual([
      ['Full range', 1000, 500],
      ['Soft tissue', 700, 500],
      ['High contrast', 350, 500],
    ]);
  });
});

describe('slice position', () => {
  it('reads the coordinate along the axis the view looks along', () => {
    expect(slicePosition([10, 20, -12.5], [0, 0, -1])).toEqual({ axis: 'z', mm: -12.5 });
    expect(slicePosition([10, 20, -12.5], [1, 0, 0])).toEqual({ axis: 'x', mm: 10 });
    expect(slicePosition([10, 20, -12.5], [0, 0.9, 0.1])).toEqual({ axis: 'y', mm: 20 });
  });
});
