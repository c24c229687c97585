import { describe, expect, it } from 'vitest';
import { slidingWindowInference, type WindowBatch } from './sliding-window.js';

const shape = [2, 40, 36, 30] as const;
const input = Float32Array.from({ length: 2 * 40 * 36 * 30 }, (_, v) => ((v * 7919) % 1000) / 1000);
const options = { roiSize: [16, 16, 16], overlap: 0.5, mode: 'gaussian', swBatchSize: 2 } as const;

/** A predictor whose output depends on the window's values and position. */
function predict(b: WindowBatch): { data: Float32Array; channels: number } {
  const roi = b.roiSize[0] * b.roiSize[1] * b.roiSize[2];
  const out = new Float32Array(b.count * 3 * roi);
  for (let w = 0; w < b.count; w++)
    for (let c = 0; c < 3; c++)
      for (let v = 0; v < roi; v++)
        out[(w * 3 + c) * roi + v] = Math.fround(b.data[(w * 2 + (c % 2)) * roi + v]! * (c + 1) + b.starts[w]![0] / 7);
  return { data: out, channels: 3 };
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('slidingWindowInference with a slow predictor', () => {
  it('blends one batch while the next is with the predictor: one call in flight, the same result as in step', async () => {
    const inStep = await slidingWindowInference(input, shape, predict, options);
    let inFlight = 0;
    let most = 0;
    const order: string[] = [];
    const overlapped = await slidingWindowInference(
      input,
      shape,
      async (b) => {
        inFlight++;
        most = Math.max(most, inFlight);
        order.push(b.starts.map((s) => s.join(',')).join(' '));
        await tick(2);
        inFlight--;
        return predict(b);
      },
      options,
    );
    expect(most).toBe(1);
    expect(order).toHaveLength(Math.ceil(inStep.windows / 2));
    expect(Buffer.from(overlapped.data.buffer).equals(Buffer.from(inStep.data.buffer))).toBe(true);
  });

  it('stops on an abort from a progress callback (at most the batch already handed over runs) and rejects ABORTED', async () => {
    const ctrl = new AbortController();
    let calls = 0;
    const run = slidingWindowInference(
      input,
      shape,
      async (b) => {
        calls++;
        await tick(1);
        return predict(b);
      },
      { ...options, signal: ctrl.signal, onProgress: () => ctrl.abort() },
    );
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(calls).toBeLessThanOrEqual(2);
  });

  it('rejects with the error of a batch handed over ahead, leaving no unhandled rejection', async () => {
    let calls = 0;
    const run = slidingWindowInference(
      input,
      shape,
      async (b) => {
        calls++;
        if (calls === 3) throw new Error('network failed on batch 3');
        await tick(1);
        return predict(b);
      },
      options,
    );
    await expect(run).rejects.toThrow('network failed on batch 3');
    expect(calls).toBe(3);
  });
});
