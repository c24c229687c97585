import { describe, expect, it } from 'vitest';
import { normalizeIntensity, normalizeIntensityPadded } from './normalize.js';
import { SegmentationError } from './segmentation-errors.js';

/** Pads `[C, s]` into `[C, p]` at `before`, `cval` elsewhere: the reference the padded variant must equal. */
function pad(
  data: Float32Array,
  shape: [number, number, number, number],
  p: [number, number, number],
  before: [number, number, number],
  cval: number,
): Float32Array {
  const [c, s0, s1, s2] = shape;
  const out = new Float32Array(c * p[0] * p[1] * p[2]).fill(cval);
  for (let ch = 0; ch < c; ch++)
    for (let i = 0; i < s0; i++)
      for (let j = 0; j < s1; j++)
        for (let k = 0; k < s2; k++)
          out[((ch * p[0] + i + before[0]) * p[1] + j + before[1]) * p[2] + k + before[2]] = data[
            ((ch * s0 + i) * s1 + j) * s2 + k
          ] as number;
  return out;
}

function image(shape: [number, number, number, number], seed: number): Float32Array {
  let x = seed;
  const d = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < d.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    d[i] = x % 3 === 0 ? 0 : (x % 1000) / 7 - 40; // about a third background, some negative values
  }
  return d;
}

describe('normalizeIntensityPadded', () => {
  const shape: [number, number, number, number] = [3, 5, 6, 7];
  const cases = [
    { nonzero: true, channelWise: true, cval: 0 },
    { nonzero: false, channelWise: true, cval: 0 },
    { nonzero: true, channelWise: false, cval: -2.5 },
    { nonzero: false, channelWise: false, cval: 1 },
  ];
  for (const { cval, ...opts } of cases) {
    it(`is bit-identical to padding normalizeIntensity's output (${JSON.stringify({ ...opts, cval })})`, () => {
      const data = image(shape, 7);
      data.fill(0, 2 * 5 * 6 * 7); // an all-background channel: left unchanged
      const copy = data.slice();
      const p: [number, number, number] = [6, 9, 8];
      const before: [number, number, number] = [0, 1, 1];
      const want = normalizeIntensity(data, shape, opts);
      const got = normalizeIntensityPadded(data, shape, opts, p, before, cval);
      expect(Buffer.from(got.data.buffer)).toEqual(Buffer.from(pad(want.data, shape, p, before, cval).buffer));
      expect(got.statistics).toEqual(want.statistics);
      expect(data).toEqual(copy); // the input is not modified
    });
  }

  it('rejects padding that does not fit, with a clear error', () => {
    const data = image(shape, 3);
    expect(() => normalizeIntensityPadded(data, shape, {}, [5, 6, 7], [1, 0, 0])).toThrow(SegmentationError);
    expect(() => normalizeIntensityPadded(data, shape, {}, [4, 6, 7], [0, 0, 0])).toThrow(/does not fit/);
    expect(() => normalizeIntensityPadded(data.subarray(1), shape, {}, [5, 6, 7], [0, 0, 0])).toThrow(
      SegmentationError,
    );
  });
});
