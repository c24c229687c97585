import { describe, expect, it } from 'vitest';
import { enhancingBrainMl, plausibilityFlags, plausibilitySchema, type PlausibilityInput } from './flags.js';

const dims: [number, number, number] = [10, 10, 10];
const thresholds = plausibilitySchema.parse({});

/** A whole-tumour mask with a cube at [from, to) on every axis. */
function cube(from: number, to: number): Uint8Array {
  const m = new Uint8Array(1000);
  for (let i = from; i < to; i++)
    for (let j = from; j < to; j++) for (let k = from; k < to; k++) m[(i * 10 + j) * 10 + k] = 1;
  return m;
}

const plausible: PlausibilityInput = {
  wholeTumour: cube(3, 7),
  dims,
  wholeTumourMl: 40,
  rawComponents: 2,
  enhancingVoxels: 100,
  enhancingOutsideCore: 1,
};
const codes = (input: Partial<PlausibilityInput>): string[] =>
  plausibilityFlags({ ...plausible, ...input }, thresholds).map((f) => f.code);

describe('plausibility flags', () => {
  it('raises none for a plausible result', () => {
    expect(codes({})).toEqual([]);
  });

  it('flags each implausible feature with its reason', () => {
    expect(codes({ wholeTumour: cube(0, 4) })).toEqual(['fov-edge']);
    expect(codes({ rawComponents: 66 })).toEqual(['many-components']);
    expect(codes({ wholeTumourMl: 900 })).toEqual(['whole-tumour-large']);
    expect(codes({ enhancingOutsideCore: 30 })).toEqual(['et-outside-tc']);
    expect(codes({ wholeTumour: new Uint8Array(1000), wholeTumourMl: 0, enhancingBrainMl: 4 })).toEqual([
      'empty-with-enhancement',
    ]);
    expect(codes({ wholeTumour: new Uint8Array(1000), wholeTumourMl: 0, enhancingBrainMl: 0.2 })).toEqual([]);
    const [edge] = plausibilityFlags({ ...plausible, wholeTumour: cube(6, 10) }, thresholds);
    expect(edge?.message).toMatch(/d0 high.*d1 high.*d2 high/);
  });

  it('takes its thresholds from the manifest', () => {
    const strict = plausibilitySchema.parse({ maxComponents: 1, fovEdgeMarginVoxels: 3 });
    expect(plausibilityFlags(plausible, strict).map((f) => f.code)).toEqual(['fov-edge', 'many-components']);
    expect(() => plausibilitySchema.parse({ maxEtOutsideTcFraction: 2 })).toThrow();
  });

  it('measures how much of the brain enhances after contrast', () => {
    const n = 1000;
    const t1 = new Float32Array(n).fill(100);
    const t1c = new Float32Array(n).fill(100);
    for (let v = 0; v < n; v++) {
      t1[v] = 100 + (v % 7);
      t1c[v] = 100 + (v % 7);
    }
    for (let v = 0; v < 20; v++) t1c[v] = 400; // 20 enhancing voxels
    expect(enhancingBrainMl(t1c, t1, 0.001, 3)).toBeCloseTo(0.02, 6);
    expect(enhancingBrainMl(t1, t1, 0.001, 3)).toBe(0);
  });
});
