import { describe, expect, it } from 'vitest';
import {
  argmaxLabels,
  bratsLabelsFromChannels,
  bratsLabelsFromLogits,
  bratsLabelsFromPaddedLogits,
  sigmoidThresholdLogit,
  bratsVolumes,
  largestDiameter,
  sigmoid,
  softmax,
  threshold,
} from './postprocess.js';
import { SegmentationError } from './segmentation-errors.js';

function bruteDiameter(mask: Uint8Array, dims: number[], spacing: number[]): number {
  const pts: number[][] = [];
  const [n0, n1, n2] = dims as [number, number, number];
  for (let i = 0; i < n0; i++)
    for (let j = 0; j < n1; j++)
      for (let k = 0; k < n2; k++)
        if (mask[(i * n1 + j) * n2 + k]) pts.push([i * spacing[0]!, j * spacing[1]!, k * spacing[2]!]);
  let best = 0;
  for (let a = 0; a < pts.length; a++)
    for (let b = a + 1; b < pts.length; b++)
      best = Math.max(
        best,
        Math.hypot(pts[a]![0]! - pts[b]![0]!, pts[a]![1]! - pts[b]![1]!, pts[a]![2]! - pts[b]![2]!),
      );
  return best;
}

describe('activation and thresholds', () => {
  it('sigmoid (float32, as torch) then >= threshold: on from 0.5; a logit of -1e-9 rounds to 0.5 and is on, as in MONAI', () => {
    const p = sigmoid(new Float32Array([-10, -1e-7, -1e-9, 0, 10]));
    expect(p[3]).toBe(0.5);
    expect(p[2]).toBe(0.5);
    expect(Array.from(threshold(p, 0.5))).toEqual([0, 0, 1, 1, 1]);
  });
  it('softmax sums to 1 per voxel and argmax picks the first maximum', () => {
    const logits = new Float32Array([1, 5, 2, /* c1 */ 3, 5, 0, /* c2 */ 0, 1, 2]);
    const p = softmax(logits, 3);
    for (let v = 0; v < 3; v++) expect(p[v]! + p[3 + v]! + p[6 + v]!).toBeCloseTo(1, 6);
    expect(Array.from(argmaxLabels(p, [3, 3, 1, 1], [0, 2, 4]))).toEqual([2, 0, 0]);
  });
});

describe('fused logits -> labels', () => {
  it('makes exactly the decisions of sigmoid -> threshold -> label rule, including float32 values at the cut', () => {
    for (const t of [0.5, 0.3, 0.9]) {
      const cut = sigmoidThresholdLogit(t);
      const around: number[] = [];
      const f = new Float32Array(1);
      const u = new Int32Array(f.buffer);
      f[0] = cut;
      const base = u[0]!;
      for (let d = -3; d <= 3; d++) {
        u[0] = base + d;
        around.push(f[0]!);
      }
      let seed = 7;
      const rand = (): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 20;
      const n = 3000;
      const logits = new Float32Array(3 * n).map((_, i) => (i % 10 < 7 ? around[i % 7]! : rand()));
      const expected = bratsLabelsFromChannels(threshold(sigmoid(logits), t), [3, n, 1, 1], { tc: 0, wt: 1, et: 2 }, 4);
      expect(Array.from(bratsLabelsFromLogits(logits, [3, n, 1, 1], { tc: 0, wt: 1, et: 2 }, t, 4))).toEqual(
        Array.from(expected),
      );
      // the cut is the boundary: on at the cut, off one float32 step below
      const below = Math.max(...around.filter((x) => x < cut));
      expect(threshold(sigmoid(new Float32Array([cut, below])), t)).toEqual(new Uint8Array([1, 0]));
    }
  });
});

describe('labels from padded logits', () => {
  it('equal cropping first and then bratsLabelsFromLogits, for every channel order and ET label', () => {
    const [p0, p1, p2] = [6, 7, 9];
    const before: [number, number, number] = [1, 0, 2];
    const size: [number, number, number] = [4, 7, 5];
    let seed = 11;
    const rand = (): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 6;
    const logits = new Float32Array(3 * p0 * p1 * p2).map(rand);
    const cropped = new Float32Array(3 * size[0] * size[1] * size[2]);
    let o = 0;
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < size[0]; i++)
        for (let j = 0; j < size[1]; j++)
          for (let k = 0; k < size[2]; k++)
            cropped[o++] = logits[((c * p0 + i + before[0]) * p1 + j + before[1]) * p2 + k + before[2]]!;
    for (const [order, et] of [
      [{ tc: 0, wt: 1, et: 2 }, 4],
      [{ tc: 2, wt: 0, et: 1 }, 3],
    ] as const) {
      const want = bratsLabelsFromLogits(cropped, [3, ...size], order, 0.4, et);
      const got = bratsLabelsFromPaddedLogits(logits, [3, p0, p1, p2], before, size, order, 0.4, et);
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(new Set(want).size).toBe(4);
    }
  });
  it('rejects a region outside the padded image', () => {
    const logits = new Float32Array(3 * 4 * 4 * 4);
    expect(() =>
      bratsLabelsFromPaddedLogits(logits, [3, 4, 4, 4], [1, 0, 0], [4, 4, 4], { tc: 0, wt: 1, et: 2 }, 0.5),
    ).toThrow(SegmentationError);
  });
});

describe('BraTS label rule and volumes', () => {
  it('ET wins over TC, TC over WT; nesting is not enforced', () => {
    // channels TC, WT, ET over 5 voxels
    const mask = new Uint8Array([/* TC */ 1, 1, 0, 0, 1, /* WT */ 1, 1, 1, 0, 0, /* ET */ 1, 0, 0, 0, 0]);
    expect(Array.from(bratsLabelsFromChannels(mask, [3, 5, 1, 1]))).toEqual([4, 1, 2, 0, 1]);
    expect(Array.from(bratsLabelsFromChannels(mask, [3, 5, 1, 1], { tc: 0, wt: 1, et: 2 }, 3))).toEqual([
      3, 1, 2, 0, 1,
    ]);
  });
  it('volumes count NCR, ED, ET, TC = NCR+ET, WT = all non-zero, in mL', () => {
    const labels = new Uint8Array([0, 1, 1, 2, 2, 2, 4, 0]);
    const v = bratsVolumes(labels, [2, 1, 0.5]);
    expect(v.voxelVolumeMm3).toBe(1);
    expect([v.ncr.voxels, v.ed.voxels, v.et.voxels, v.tc.voxels, v.wt.voxels]).toEqual([2, 3, 1, 3, 6]);
    expect(v.wt.mL).toBeCloseTo(0.006, 12);
    expect(bratsVolumes(new Uint8Array([3, 3]), [1, 1, 1], 3).et.voxels).toBe(2);
  });
  it('rejects a bad spacing, shape or channel order', () => {
    expect(() => bratsVolumes(new Uint8Array(2), [1, 0, 1])).toThrow(SegmentationError);
    expect(() => bratsLabelsFromChannels(new Uint8Array(5), [3, 5, 1, 1])).toThrow(/needs 15/);
    expect(() => bratsLabelsFromChannels(new Uint8Array(15), [3, 5, 1, 1], { tc: 0, wt: 1, et: 3 })).toThrow(/et=3/);
  });
});

describe('largestDiameter', () => {
  it('equals a brute-force search over all voxel pairs on random anisotropic blobs', () => {
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 5; trial++) {
      const dims = [9 + trial, 7, 8 + (trial % 3)];
      const spacing = [1 + rand(), 0.5 + rand(), 2 * rand() + 0.3];
      const mask = new Uint8Array(dims[0]! * dims[1]! * dims[2]!);
      for (let i = 0; i < mask.length; i++) mask[i] = rand() < 0.15 ? 2 : 0;
      const d = largestDiameter(mask, dims, spacing)!;
      expect(d.mm).toBeCloseTo(bruteDiameter(mask, dims, spacing), 9);
      const [a, b] = [d.from, d.to];
      expect(
        Math.hypot((a[0] - b[0]) * spacing[0]!, (a[1] - b[1]) * spacing[1]!, (a[2] - b[2]) * spacing[2]!),
      ).toBeCloseTo(d.mm, 9);
    }
  });
  it('equals brute force on a large tilted ellipsoid (many hull candidates, grid-pruned search)', () => {
    const dims = [26, 22, 20];
    const mask = new Uint8Array(26 * 22 * 20);
    for (let i = 0; i < 26; i++)
      for (let j = 0; j < 22; j++)
        for (let k = 0; k < 20; k++) {
          const u = (i - 12 + 0.6 * (j - 11)) / 11;
          const v = (j - 11) / 8;
          const w = (k - 9 + 0.3 * (i - 12)) / 7;
          if (u * u + v * v + w * w < 1) mask[(i * 22 + j) * 20 + k] = 1;
        }
    expect(largestDiameter(mask, dims, [0.9, 1.1, 1.7])!.mm).toBeCloseTo(bruteDiameter(mask, dims, [0.9, 1.1, 1.7]), 9);
  });
  it('is 0 for one voxel and undefined for an empty region', () => {
    const m = new Uint8Array(27);
    expect(largestDiameter(m, [3, 3, 3], [1, 1, 1])).toBeUndefined();
    m[13] = 1;
    expect(largestDiameter(m, [3, 3, 3], [1, 1, 1])).toEqual({ mm: 0, from: [1, 1, 1], to: [1, 1, 1] });
  });
  it('measures a solid box corner to corner', () => {
    const m = new Uint8Array(4 * 5 * 6).fill(1);
    expect(largestDiameter(m, [4, 5, 6], [1, 2, 3])!.mm).toBeCloseTo(Math.hypot(3, 8, 15), 12);
  });
});
