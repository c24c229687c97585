import { describe, expect, it } from 'vitest';
import { f32, maxAbsDiff, reference } from './__fixtures__/monai/reference.js';
import { normalizeIntensity } from './normalize.js';
import { importanceMap, slidingWindowInference, type WindowBatch } from './sliding-window.js';

const fr = Math.fround;

/** TS mirror of make_vectors.py `toy_predictor`, float32 op by op as torch computes it. */
function toyPredictor(batch: WindowBatch): { data: Float32Array; channels: number } {
  const [r0, r1, r2] = batch.roiSize;
  const vox = r0 * r1 * r2;
  const out = new Float32Array(batch.count * 3 * vox);
  const c001 = fr(0.01);
  const c002 = fr(0.02);
  const c003 = fr(0.03);
  for (let b = 0; b < batch.count; b++) {
    const inp = b * batch.channels * vox;
    const o = b * 3 * vox;
    let v = 0;
    for (let i = 0; i < r0; i++) {
      for (let j = 0; j < r1; j++) {
        for (let k = 0; k < r2; k++, v++) {
          const x0 = batch.data[inp + v] as number;
          const x1 = batch.data[inp + vox + v] as number;
          const x2 = batch.data[inp + 2 * vox + v] as number;
          const x3 = batch.data[inp + 3 * vox + v] as number;
          out[o + v] = fr(x0 + fr(i * c001));
          out[o + vox + v] = fr(fr(x1 * 2) - fr(j * c002));
          out[o + 2 * vox + v] = fr(fr(x2 - x3) + fr(k * c003));
        }
      }
    }
  }
  return { data: out, channels: 3 };
}

describe('NormalizeIntensity parity with MONAI (≤ 1e-5)', () => {
  for (const c of reference.cases.normalize) {
    it(`${c.input} nonzero=${c.nonzero} channel_wise=${c.channel_wise}`, () => {
      const input = f32(c.input);
      const expected = f32(c.output);
      const before = new Float32Array(input.data);
      const { data } = normalizeIntensity(input.data, input.shape, { nonzero: c.nonzero, channelWise: c.channel_wise });
      expect(data.length).toBe(expected.data.length);
      expect(maxAbsDiff(data, expected.data)).toBeLessThanOrEqual(1e-5);
      expect(input.data).toEqual(before); // input untouched
      if (c.nonzero) {
        let moved = 0;
        for (let i = 0; i < data.length; i++) if (input.data[i] === 0 && data[i] !== 0) moved++;
        expect(moved).toBe(0);
      }
    });
  }
});

describe('importance map parity with MONAI ≥ 1.1', () => {
  for (const c of reference.cases.importance) {
    it(`gaussian ${c.roi_size.join('x')}`, () => {
      const expected = f32(c.output);
      const map = importanceMap(c.roi_size, 'gaussian', c.sigma_scale);
      expect(maxAbsDiff(map, expected.data)).toBeLessThanOrEqual(1e-6);
      expect(Math.min(...map)).toBeCloseTo(Math.min(...expected.data), 9);
    });
  }
});

describe('sliding-window stitching with batch arrays handed back', () => {
  it('fills the next batch into the array the predictor hands back, with the same result', async () => {
    const c =
      reference.cases.sliding_window_toy.find((x) => x.mode === 'gaussian') ?? reference.cases.sliding_window_toy[0];
    if (!c) throw new Error('no sliding-window case');
    const options = {
      roiSize: c.roi_size,
      swBatchSize: 1,
      overlap: c.overlap,
      mode: c.mode,
      sigmaScale: c.sigma_scale,
      cval: c.cval ?? 0,
    };
    const input = f32(c.input);
    const fresh = await slidingWindowInference(input.data, input.shape, toyPredictor, options);
    const arrays: Float32Array[] = [];
    const handedBack = await slidingWindowInference(
      input.data,
      input.shape,
      (b) => {
        arrays.push(b.data);
        return { ...toyPredictor(b), input: b.data };
      },
      options,
    );
    expect(fresh.windows).toBeGreaterThan(1);
    expect(arrays).toHaveLength(fresh.windows);
    expect(new Set(arrays).size).toBe(1); // one array, refilled for every window
    expect(Array.from(handedBack.data)).toEqual(Array.from(fresh.data));
  });
});

describe('sliding-window stitching parity with MONAI (toy predictor, ≤ 1e-6)', () => {
  for (const c of reference.cases.sliding_window_toy) {
    it(`${c.output}: ${c.mode}, overlap ${c.overlap}, roi ${c.roi_size.join('x')}, sw_batch ${c.sw_batch_size}`, async () => {
      const input = f32(c.input);
      const expected = f32(c.output);
      const batches: number[] = [];
      const result = await slidingWindowInference(
        input.data,
        input.shape,
        (b) => {
          batches.push(b.count);
          return toyPredictor(b);
        },
        {
          roiSize: c.roi_size,
          swBatchSize: c.sw_batch_size,
          overlap: c.overlap,
          mode: c.mode,
          sigmaScale: c.sigma_scale,
          cval: c.cval ?? 0,
        },
      );
      expect(result.shape).toEqual(expected.shape);
      expect(batches.every((n) => n <= c.sw_batch_size)).toBe(true);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(result.windows);
      const diff = maxAbsDiff(result.data, expected.data);
      expect(diff).toBeLessThanOrEqual(1e-6);
      if (c.mode === 'constant') expect(diff).toBe(0); // no transcendental: bit-identical
    });
  }
});
