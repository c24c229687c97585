import { describe, expect, it } from 'vitest';
import type { Mat3, Vec3, Volume, VolumeGeometry } from '@cdss/dicom';
import { labelBlock, resample, resampleLabelBlock } from './spatial.js';

/** Deterministic labels in a block of a grid (C-order over the block, k fastest), with zero holes. */
function blockLabels(size: Vec3, seed: number): Uint8Array {
  const out = new Uint8Array(size[0] * size[1] * size[2]);
  let x = seed;
  for (let v = 0; v < out.length; v++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[v] = [0, 1, 2, 4][(x >>> 16) % 4] as number;
  }
  return out;
}

/** The block as a whole volume (i fastest), zero elsewhere. */
function wholeVolume(block: Uint8Array, grid: VolumeGeometry, lo: Vec3, size: Vec3): Volume<Uint8Array> {
  const [nx, ny, nz] = grid.dims;
  const data = new Uint8Array(nx * ny * nz);
  for (let a = 0, v = 0; a < size[0]; a++)
    for (let b = 0; b < size[1]; b++)
      for (let c = 0; c < size[2]; c++, v++) data[lo[0] + a + nx * (lo[1] + b + ny * (lo[2] + c))] = block[v]!;
  return { ...grid, data };
}

const identity: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
const rotated: Mat3 = [
  0.9848077530122081, 0.17364817766693033, 0, -0.17364817766693033, 0.9848077530122081, 0, 0, 0, 1,
];

describe('resampleLabelBlock', () => {
  const model: VolumeGeometry = {
    dims: [30, 34, 26],
    spacing: [2, 2, 2],
    origin: [-30, -34, -20],
    direction: identity,
  };
  it.each([
    [
      'a finer grid (1 mm)',
      { dims: [60, 68, 52], spacing: [1, 1, 1], origin: [-30.5, -34.5, -20.5], direction: identity },
    ],
    [
      'an anisotropic grid, flipped and permuted',
      { dims: [64, 20, 70], spacing: [0.9, 3, 0.9], origin: [28, -20, -34], direction: [-1, 0, 0, 0, 0, 1, 0, 1, 0] },
    ],
    [
      'a coarser grid (3 mm, empty faces possible)',
      { dims: [20, 23, 17], spacing: [3, 3, 3], origin: [-30, -34, -20], direction: identity },
    ],
    [
      'a rotated grid (whole-grid fallback)',
      { dims: [60, 68, 52], spacing: [1, 1, 1], origin: [-30, -34, -20], direction: rotated },
    ],
  ] as [string, VolumeGeometry][])(
    'gives the labels resample(nearest) gives onto %s, and a block holding them',
    (_n, target) => {
      for (const [lo, size] of [
        [
          [5, 7, 3],
          [11, 9, 13],
        ],
        [
          [0, 0, 0],
          [30, 34, 26],
        ], // the whole grid: border clamping
        [
          [29, 0, 12],
          [1, 5, 14],
        ], // at the far face
      ] as [Vec3, Vec3][]) {
        const block = blockLabels(size, lo[0] * 31 + size[2]);
        const got = resampleLabelBlock(
          block,
          model,
          { lo, hi: [lo[0] + size[0], lo[1] + size[1], lo[2] + size[2]] },
          target,
        );
        const want = resample(wholeVolume(block, model, lo, size), target, 'nearest').data as Uint8Array;
        expect(Buffer.from(got.data).equals(Buffer.from(want))).toBe(true);
        const tight = labelBlock(want, target.dims);
        for (let a = 0; a < 3; a++) {
          expect(got.block.lo[a]).toBeLessThanOrEqual(tight.lo[a]!);
          expect(got.block.hi[a]).toBeGreaterThanOrEqual(tight.hi[a]!);
        }
      }
    },
  );

  it('returns an empty block for a block that no target voxel samples', () => {
    const target: VolumeGeometry = {
      dims: [4, 4, 4],
      spacing: [1, 1, 1],
      origin: [-30, -34, -20],
      direction: identity,
    };
    const got = resampleLabelBlock(Uint8Array.of(4), model, { lo: [20, 20, 20], hi: [21, 21, 21] }, target);
    expect(got.block).toEqual({ lo: [0, 0, 0], hi: [0, 0, 0] });
    expect(got.data.every((v) => v === 0)).toBe(true);
  });
});
