import { describe, expect, it } from 'vitest';
import { parseModelManifest, type ModelManifestInput } from './manifest.js';
import { generatePhantom } from '@cdss/dicom';
import { SegmentationError } from './segmentation-errors.js';
import { labelsToVolume, runSegmentation, stackChannels, volumesToInput } from './segmentation.js';
import { normalizeIntensity } from './normalize.js';
import { bratsLabelsFromLogits, bratsVolumes, largestDiameter } from './postprocess.js';
import { slidingWindowInference, type WindowBatch } from './sliding-window.js';

const manifest = parseModelManifest({
  schemaVersion: 1,
  name: 'unit',
  version: '1',
  intendedUse: 'tests',
  notForClinicalUse: true,
  model: { file: 'x.onnx', format: 'onnx', inputName: 'image', outputName: 'pred' },
  input: {
    channels: ['T1c', 'T1', 'T2', 'FLAIR'],
    spacingMm: [2, 2, 2],
    normalize: { nonzero: true, channelWise: true },
  },
  inference: { roiSize: [8, 8, 8], swBatchSize: 3, overlap: 0.5, mode: 'constant' },
  output: { activation: 'sigmoid', channels: ['TC', 'WT', 'ET'], threshold: 0.5, regions: { tc: 0, wt: 1, et: 2 } },
  labels: { '1': 'NCR', '2': 'ED', '4': 'ET' },
  etLabel: 4,
} satisfies ModelManifestInput);

function expectCode(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
    expect.unreachable();
  } catch (e) {
    expect(SegmentationError.isInstance(e)).toBe(true);
    expect((e as SegmentationError).code).toBe(code);
    expect((e as Error).message).toMatch(message);
  }
}

describe('volumes <-> model input', () => {
  const p = generatePhantom({ seed: 'unit-1', dims: [12, 10, 9], spacing: [2, 2, 2] });

  it('transposes each channel to MONAI order [C, x, y, z] and back', () => {
    const input = volumesToInput(manifest, p.modalities);
    expect(input.shape).toEqual([4, 12, 10, 9]);
    expect(input.spacingMm).toEqual([2, 2, 2]);
    const at = (c: number, x: number, y: number, z: number): number => input.data[((c * 12 + x) * 10 + y) * 9 + z]!;
    expect(at(0, 5, 4, 3)).toBe(p.modalities.t1c.data[5 + 4 * 12 + 3 * 120]);
    expect(at(3, 11, 9, 8)).toBe(p.modalities.flair.data[11 + 9 * 12 + 8 * 120]);
    // labels laid out like the input come back on the source grid, i fastest
    const lbl = new Uint8Array(12 * 10 * 9);
    for (let x = 0; x < 12; x++)
      for (let y = 0; y < 10; y++)
        for (let z = 0; z < 9; z++) lbl[(x * 10 + y) * 9 + z] = p.labels.data[x + y * 12 + z * 120]!;
    const back = labelsToVolume(lbl, p.labels);
    expect(Array.from(back.data)).toEqual(Array.from(p.labels.data));
    expect(back.dims).toEqual(p.labels.dims);
    expect(back.spacing).toEqual(p.labels.spacing);
  });

  it('names a missing modality', () => {
    const { flair: _flair, ...three } = p.modalities;
    expectCode(() => volumesToInput(manifest, three), 'INVALID_INPUT', /missing input channel\(s\): FLAIR/);
    expectCode(
      () => stackChannels(manifest, { T1c: new Float32Array(8) }, [2, 2, 2]),
      'INVALID_INPUT',
      /missing input channel\(s\): T1, T2, FLAIR/,
    );
  });

  it('refuses channels on different grids', () => {
    const other = generatePhantom({ seed: 'unit-1', dims: [12, 10, 9], spacing: [2, 2, 2.5] });
    expectCode(
      () => volumesToInput(manifest, { ...p.modalities, t2: other.modalities.t2 }),
      'INVALID_INPUT',
      /channel T2 is on another grid than T1c .*co-register and resample first/,
    );
    const moved = { ...p.modalities.t1, origin: [5, 0, 0] as [number, number, number] };
    expectCode(
      () => volumesToInput(manifest, { ...p.modalities, t1: moved }),
      'INVALID_INPUT',
      /channel T1 is on another grid/,
    );
  });
});

describe('runSegmentation', () => {
  const p = generatePhantom({ seed: 'unit-2', dims: [16, 14, 11], spacing: [2, 2, 2] });
  const input = volumesToInput(manifest, p.modalities);

  /** A predictor that "finds" the phantom's tumour from the T1c intensity of the window. */
  function thresholdPredictor(b: WindowBatch): { data: Float32Array; channels: number } {
    const vox = b.roiSize[0] * b.roiSize[1] * b.roiSize[2];
    const out = new Float32Array(b.count * 3 * vox);
    for (let w = 0; w < b.count; w++)
      for (let v = 0; v < vox; v++) {
        const t1c = b.data[w * b.channels * vox + v]!;
        out[(w * 3 + 1) * vox + v] = t1c > 1.5 ? 5 : -5;
        out[(w * 3 + 2) * vox + v] = t1c > 2.5 ? 5 : -5;
      }
    return { data: out, channels: 3 };
  }

  it('reports stages in order, batches windows by swBatchSize and returns consistent measurements', async () => {
    const events: string[] = [];
    const sizes: number[] = [];
    const r = await runSegmentation(
      input,
      manifest,
      (b) => {
        sizes.push(b.count);
        return thresholdPredictor(b);
      },
      { onProgress: (e) => events.push(e.stage === 'inference' ? `inference ${e.windowsDone ?? 0}` : e.stage) },
    );
    expect(events[0]).toBe('normalize');
    expect(events.slice(-2)).toEqual(['postprocess', 'done']);
    expect(sizes.every((n) => n <= 3)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(r.windows);
    const wt = r.labels.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);
    expect(r.volumes.wt.voxels).toBe(wt);
    expect(r.volumes.wt.mL).toBeCloseTo((wt * 8) / 1000, 12);
    expect(r.volumes.tc.voxels).toBe(r.volumes.et.voxels + r.volumes.ncr.voxels);
    expect(r.model).toEqual({ name: 'unit', version: '1', intendedUse: 'tests', notForClinicalUse: true });
    expect(wt).toBeGreaterThan(1);
    expect(r.wholeTumourDiameter!.mm).toBeGreaterThan(0);
  });

  it('measures the raw labels when first read, once, and still serialises them', async () => {
    const r = await runSegmentation(input, manifest, thresholdPredictor);
    const spacing = [...input.spacingMm];
    const volumes = r.volumes;
    expect(volumes).toEqual(bratsVolumes(r.labels, spacing, 4));
    expect(r.volumes).toBe(volumes);
    expect(r.wholeTumourDiameter).toEqual(largestDiameter(r.labels, input.shape.slice(1), spacing));
    const copy = JSON.parse(JSON.stringify({ ...r, labels: undefined, logits: undefined })) as typeof r;
    expect(copy.volumes).toEqual(volumes);
    expect(copy.wholeTumourDiameter?.mm).toBe(r.wholeTumourDiameter?.mm);
  });

  it('checks channels, sizes and spacing before running anything', async () => {
    let calls = 0;
    const predictor = (b: WindowBatch): { data: Float32Array; channels: number } => {
      calls++;
      return thresholdPredictor(b);
    };
    await expect(runSegmentation({ ...input, spacingMm: [1, 1, 1] }, manifest, predictor)).rejects.toThrow(
      /resample first/,
    );
    await expect(runSegmentation({ ...input, shape: [4, 16, 14, 10] }, manifest, predictor)).rejects.toThrow(/needs/);
    await expect(
      runSegmentation(
        { data: input.data.subarray(0, 3 * 16 * 14 * 11), shape: [3, 16, 14, 11], spacingMm: [2, 2, 2] },
        manifest,
        predictor,
      ),
    ).rejects.toThrow(/3 channels; the model needs 4/);
    expect(calls).toBe(0);
  });

  it('fails with INFERENCE_FAILED when the predictor returns a wrong size, and ABORTED on abort', async () => {
    await expect(
      runSegmentation(input, manifest, () => ({ data: new Float32Array(7), channels: 3 })),
    ).rejects.toMatchObject({
      code: 'INFERENCE_FAILED',
    });
    const ctrl = new AbortController();
    const run = runSegmentation(
      input,
      manifest,
      (b) => {
        ctrl.abort();
        return thresholdPredictor(b);
      },
      { signal: ctrl.signal },
    );
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('normalising straight into the padded image', () => {
  // A toy predictor whose output depends on every input value and on the window's position.
  const toy = (b: WindowBatch): { data: Float32Array; channels: number } => {
    const roi = b.roiSize[0] * b.roiSize[1] * b.roiSize[2];
    const out = new Float32Array(b.count * 3 * roi);
    for (let w = 0; w < b.count; w++)
      for (let c = 0; c < 3; c++)
        for (let v = 0; v < roi; v++) {
          const x = b.data[(w * b.channels + (c % b.channels)) * roi + v]!;
          out[(w * 3 + c) * roi + v] = Math.fround(x * (c + 1.5) - 0.25 + (b.starts[w]![2] % 3) * 0.125);
        }
    return { data: out, channels: 3 };
  };
  const cases: { roi: [number, number, number]; mode: 'constant' | 'gaussian'; cval: number }[] = [
    { roi: [12, 8, 12], mode: 'gaussian', cval: 0 }, // padded on two axes, several windows on the others
    { roi: [12, 8, 12], mode: 'constant', cval: 0.75 },
    { roi: [14, 12, 10], mode: 'constant', cval: 0 }, // one window over the padded image: handed over whole
  ];
  for (const { roi, mode, cval } of cases) {
    it(`gives bit for bit the logits of normalise → pad → sliding window (roi ${roi.join('x')}, ${mode}, cval ${cval})`, async () => {
      const p = generatePhantom({ seed: 'unit-pad', dims: [11, 10, 9], spacing: [2, 2, 2] });
      const input = volumesToInput(manifest, p.modalities);
      const original = input.data.slice();
      const m = { ...manifest, inference: { ...manifest.inference, roiSize: roi, mode, cval } };
      const got = await runSegmentation(input, m, toy, { keepLogits: true });
      expect(input.data).toEqual(original); // the caller's array is not modified
      const norm = normalizeIntensity(input.data, input.shape, manifest.input.normalize!);
      const want = await slidingWindowInference(norm.data, input.shape, toy, {
        roiSize: roi,
        swBatchSize: m.inference.swBatchSize,
        overlap: m.inference.overlap,
        mode,
        cval,
      });
      expect(got.windows).toBe(want.windows);
      expect(Buffer.from(got.logits!.buffer)).toEqual(Buffer.from(want.data.buffer));
      // without keepLogits the labels come straight from the padded logits: the same labels
      const lean = await runSegmentation(input, m, toy);
      expect(lean.logits).toBeUndefined();
      expect(Buffer.from(lean.labels)).toEqual(Buffer.from(got.labels));
      const wantLabels = bratsLabelsFromLogits(want.data, want.shape, { tc: 0, wt: 1, et: 2 }, 0.5, 4);
      expect(Buffer.from(lean.labels)).toEqual(Buffer.from(wantLabels));
      expect(new Set(wantLabels).size).toBeGreaterThan(1); // the toy predictor gives more than one label
      expect(lean.volumes).toEqual(got.volumes);
    });
  }
});
