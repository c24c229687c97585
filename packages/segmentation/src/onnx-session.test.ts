import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { referenceModelPath } from './__fixtures__/monai/reference.js';
import { SegmentationModel, manifestModelMismatches } from './inference.js';
import { parseModelManifest, type ModelManifestInput } from './manifest.js';
import { OnnxWorkerSession } from './onnx-session.js';
import { SegmentationError } from './segmentation-errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'cdss-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const manifestInput: ModelManifestInput = {
  schemaVersion: 1,
  name: 'ref',
  version: '1',
  intendedUse: 'tests',
  notForClinicalUse: true,
  model: { file: 'm.onnx', format: 'onnx', inputName: 'image', outputName: 'pred', spatialMultiple: 8 },
  input: {
    channels: ['T1c', 'T1', 'T2', 'FLAIR'],
    spacingMm: [1, 1, 1],
    normalize: { nonzero: true, channelWise: true },
  },
  inference: { roiSize: [16, 16, 16], swBatchSize: 1, overlap: 0.5, mode: 'gaussian' },
  output: { activation: 'sigmoid', channels: ['TC', 'WT', 'ET'], threshold: 0.5, regions: { tc: 0, wt: 1, et: 2 } },
  labels: { '1': 'NCR', '2': 'ED', '4': 'ET' },
  etLabel: 4,
};

function errorOf(p: Promise<unknown>): Promise<SegmentationError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => {
      expect(SegmentationError.isInstance(e)).toBe(true);
      return e as SegmentationError;
    },
  );
}

describe('OnnxWorkerSession', () => {
  let session: OnnxWorkerSession;
  beforeAll(async () => {
    session = await OnnxWorkerSession.create(readFileSync(referenceModelPath()), {
      intraOpNumThreads: 1,
      enableCpuMemArena: false,
    });
  });
  afterAll(() => session?.close());

  it('reports the graph inputs and outputs and the options used', () => {
    expect(session.inputs).toEqual([{ name: 'image', type: 'float32', shape: ['N', 4, 'D', 'H', 'W'] }]);
    expect(session.outputs[0]?.name).toBe('pred');
    expect(session.options).toMatchObject({ intraOpNumThreads: 1, interOpNumThreads: 1, enableCpuMemArena: false });
  });

  it('keeps the event loop free while a window runs in the worker', async () => {
    const input = new Float32Array(2 * 4 * 48 * 48 * 48).fill(0.25);
    let settled = false;
    const run = session.run(input, [2, 4, 48, 48, 48]).then((r) => {
      settled = true;
      return r;
    });
    // onnxruntime in the main thread would run the whole window before any of these callbacks.
    let turns = 0;
    while (!settled && turns < 3) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turns++;
    }
    expect(turns).toBe(3);
    expect(settled).toBe(false);
    const r = await run;
    expect(r.dims).toEqual([2, 3, 48, 48, 48]);
    expect(input.length).toBe(0); // transferred, not copied
  });

  it('hands the input back with the result, as it was sent', async () => {
    const input = new Float32Array(4 * 16 * 16 * 16).map((_, i) => i % 7);
    const sent = Float32Array.from(input);
    const r = await session.run(input, [1, 4, 16, 16, 16]);
    expect(input.length).toBe(0);
    expect(r.input).toBeInstanceOf(Float32Array);
    expect(r.input?.length).toBe(sent.length);
    expect(Buffer.from((r.input as Float32Array).buffer).equals(Buffer.from(sent.buffer))).toBe(true);
  });

  it('keeps the caller data with transfer: false', async () => {
    const input = new Float32Array(4 * 16 * 16 * 16).fill(1);
    const a = await session.run(input, [1, 4, 16, 16, 16], { transfer: false });
    expect(input.length).toBe(4 * 16 * 16 * 16);
    const b = await session.run(input, [1, 4, 16, 16, 16]);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
  });

  it('rejects a size mismatch before running, and a wrong channel count from onnxruntime, then keeps serving', async () => {
    expect((await errorOf(session.run(new Float32Array(10), [1, 4, 8, 8, 8]))).code).toBe('INVALID_INPUT');
    const e = await errorOf(session.run(new Float32Array(3 * 8 * 8 * 8), [1, 3, 8, 8, 8]));
    expect(e.code).toBe('INFERENCE_FAILED');
    expect(e.message).toMatch(/onnxruntime run failed/);
    const ok = await session.run(new Float32Array(4 * 8 * 8 * 8), [1, 4, 8, 8, 8]);
    expect(ok.dims).toEqual([1, 3, 8, 8, 8]);
  });

  it('rejects at once on abort and drops the late result', async () => {
    const ctrl = new AbortController();
    const p = session.run(new Float32Array(4 * 32 * 32 * 32), [1, 4, 32, 32, 32], { signal: ctrl.signal });
    ctrl.abort(new Error('job cancelled'));
    expect((await errorOf(p)).code).toBe('ABORTED');
    expect((await session.run(new Float32Array(4 * 8 * 8 * 8), [1, 4, 8, 8, 8])).dims[1]).toBe(3);
  });

  it('rejects pending and later runs with SESSION_CLOSED once closed', async () => {
    const s = await OnnxWorkerSession.create(referenceModelPath(), { intraOpNumThreads: 1 });
    const pending = errorOf(s.run(new Float32Array(4 * 32 * 32 * 32), [1, 4, 32, 32, 32]));
    await s.close();
    expect((await pending).code).toBe('SESSION_CLOSED');
    expect((await errorOf(s.run(new Float32Array(4 * 8 * 8 * 8), [1, 4, 8, 8, 8]))).code).toBe('SESSION_CLOSED');
    expect(s.closed).toBe(true);
    await s.close(); // idempotent
  });
});

describe('loading models', () => {
  it('a corrupt or truncated model fails with MODEL_LOAD_FAILED and onnxruntime reason', async () => {
    const garbage = join(tmp, 'garbage.onnx');
    writeFileSync(garbage, Buffer.from('this is not an onnx model'));
    const e = await errorOf(OnnxWorkerSession.create(garbage));
    expect(e.code).toBe('MODEL_LOAD_FAILED');
    expect(e.message).toContain(garbage);
    const truncated = join(tmp, 'truncated.onnx');
    writeFileSync(truncated, readFileSync(referenceModelPath()).subarray(0, 50_000));
    expect((await errorOf(OnnxWorkerSession.create(truncated))).code).toBe('MODEL_LOAD_FAILED');
    expect((await errorOf(OnnxWorkerSession.create(join(tmp, 'missing.onnx')))).code).toBe('MODEL_LOAD_FAILED');
  });

  it('bad session options are a ValidationError', async () => {
    await expect(OnnxWorkerSession.create(referenceModelPath(), { intraOpNumThreads: 0 })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it('a manifest that does not match the model input fails with MODEL_MISMATCH', async () => {
    const threeChannels = { ...manifestInput, input: { ...manifestInput.input, channels: ['T1c', 'T2', 'FLAIR'] } };
    const e = await errorOf(
      SegmentationModel.load({ manifest: threeChannels, modelPath: referenceModelPath() }, { intraOpNumThreads: 1 }),
    );
    expect(e.code).toBe('MODEL_MISMATCH');
    expect(e.message).toMatch(/model input has 4 channels; the manifest lists 3/);
    const wrongName = { ...manifestInput, model: { ...manifestInput.model, inputName: 'x' } };
    expect(
      (await errorOf(SegmentationModel.load({ manifest: wrongName, modelPath: referenceModelPath() }))).message,
    ).toMatch(/no input 'x'/);
  });

  it('manifestModelMismatches checks fixed window, batch and output channels', () => {
    const m = parseModelManifest({ ...manifestInput, inference: { ...manifestInput.inference, swBatchSize: 2 } });
    const problems = manifestModelMismatches(
      m,
      [{ name: 'image', type: 'float32', shape: [1, 4, 240, 240, 160] }],
      [{ name: 'pred', type: 'float32', shape: [1, 2, 240, 240, 160] }],
    );
    expect(problems).toEqual([
      "model input is fixed to 240x240x160; the manifest's window is 16x16x16",
      "model input batch is fixed to 1; the manifest's swBatchSize is 2",
      'model output has 2 channels; the manifest lists 3',
    ]);
    expect(
      manifestModelMismatches(
        m,
        [{ name: 'image', type: 'float32', shape: ['N', 4, 'D', 'H', 'W'] }],
        [{ name: 'pred', type: 'float32', shape: [] }],
      ),
    ).toEqual([]);
  });

  it('a copied model loads from a manifest and segments; bad volumes are rejected without running', async () => {
    copyFileSync(referenceModelPath(), join(tmp, 'm.onnx'));
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifestInput));
    const model = await SegmentationModel.load({ manifestPath: join(tmp, 'manifest.json') }, { intraOpNumThreads: 1 });
    try {
      const data = new Float32Array(4 * 20 * 18 * 17).map((_, i) => (i % 7 === 0 ? 0 : (i % 13) + 1));
      const r = await model.segment({ data, shape: [4, 20, 18, 17], spacingMm: [1, 1, 1] });
      expect(r.labels.length).toBe(20 * 18 * 17);
      expect(r.windows).toBe(8);
      const missing = await errorOf(
        model.segment({ data: data.subarray(0, 3 * 20 * 18 * 17), shape: [3, 20, 18, 17], spacingMm: [1, 1, 1] }),
      );
      expect(missing.message).toMatch(/3 channels; the model needs 4/);
      const spacing = await errorOf(model.segment({ data, shape: [4, 20, 18, 17], spacingMm: [1, 1, 3] }));
      expect(spacing.message).toMatch(/differs from the model's \[1, 1, 1\] mm; resample first/);
      const r2 = await model.segment({ data, shape: [4, 20, 18, 17], spacingMm: [1, 1, 1] });
      expect(Array.from(r2.labels)).toEqual(Array.from(r.labels)); // still serving, deterministic
    } finally {
      await model.close();
    }
  });
});
