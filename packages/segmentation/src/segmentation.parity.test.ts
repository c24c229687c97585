import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dice, f32, maxAbsDiff, reference, referenceModelPath, u8 } from './__fixtures__/monai/reference.js';
import { SegmentationModel } from './inference.js';
import type { ModelManifestInput } from './manifest.js';
import { OnnxWorkerSession } from './onnx-session.js';
import { bratsLabelsFromChannels, bratsVolumes, largestDiameter, sigmoid, threshold } from './postprocess.js';
import { slidingWindowInference } from './sliding-window.js';

const net = reference.cases.network;
const post = reference.cases.postprocess;
const REGIONS = {
  ncr: (v: number) => v === 1,
  ed: (v: number) => v === 2,
  et: (v: number) => v === 4,
  tc: (v: number) => v === 1 || v === 4,
  wt: (v: number) => v !== 0,
} as const;

/** The manifest of the reference pipeline: the bundle's pre/post-processing with the reference network. */
function referenceManifest(mode: 'constant' | 'gaussian', overlap: number): ModelManifestInput {
  return {
    schemaVersion: 1,
    name: 'monai-reference-f4',
    version: '0.0.0',
    intendedUse: 'parity tests only',
    notForClinicalUse: true,
    model: {
      file: net.onnx,
      format: 'onnx',
      inputName: net.input_name,
      outputName: net.output_name,
      spatialMultiple: 8,
    },
    input: {
      channels: ['T1c', 'T1', 'T2', 'FLAIR'],
      spacingMm: [1.2, 0.9, 1.5],
      normalize: { nonzero: true, channelWise: true },
    },
    inference: { roiSize: [16, 16, 16], swBatchSize: 2, overlap, mode },
    output: { activation: 'sigmoid', channels: ['TC', 'WT', 'ET'], threshold: 0.5, regions: { tc: 0, wt: 1, et: 2 } },
    labels: { '1': 'NCR', '2': 'ED', '4': 'ET' },
    etLabel: 4,
  };
}

describe('post-processing parity with MONAI on identical logits', () => {
  const logits = f32(post.logits);
  const spatial = logits.shape.slice(1) as [number, number, number];
  for (const [et, c] of Object.entries(post.labels)) {
    it(`sigmoid, AsDiscrete(0.5), bundle label rule with ET=${et}: identical labels`, () => {
      const expected = u8(c.output);
      const labels = bratsLabelsFromChannels(
        threshold(sigmoid(logits.data), post.threshold),
        logits.shape,
        { tc: 0, wt: 1, et: 2 },
        Number(et) as 3 | 4,
      );
      let mismatches = 0;
      for (let i = 0; i < labels.length; i++) if (labels[i] !== expected.data[i]) mismatches++;
      expect(mismatches).toBe(0);
      for (const [label, count] of Object.entries(c.counts)) {
        expect(labels.filter((v) => v === Number(label)).length).toBe(count);
      }
    });
  }
  it('volumes in mL within 0.1% and the largest diameter equal to a brute-force search', () => {
    const labels = u8(post.labels['4']!.output).data;
    const v = bratsVolumes(labels, post.spacing, 4);
    for (const k of ['ncr', 'ed', 'et', 'tc', 'wt'] as const) {
      expect(Math.abs(v[k].mL - post.volumes_ml[k])).toBeLessThanOrEqual(post.volumes_ml[k] * 1e-3);
    }
    expect(largestDiameter(labels, spatial, post.spacing)!.mm).toBeCloseTo(post.wt_diameter_mm, 9);
    expect(largestDiameter(labels, spatial, post.spacing, (x) => x === 4)!.mm).toBeCloseTo(post.et_diameter_mm, 9);
  });
});

describe('network parity: onnxruntime-node (worker thread) vs MONAI/torch', () => {
  let session: OnnxWorkerSession;
  beforeAll(async () => {
    session = await OnnxWorkerSession.create(referenceModelPath(), { intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    await session?.close();
  });

  it('one window: logits within 1e-3', async () => {
    const norm = f32(net.window.input);
    const [c, d0, d1, d2] = norm.shape as [number, number, number, number];
    const [a0, a1, a2] = net.window.starts as [number, number, number];
    const [r0, r1, r2] = net.window.size as [number, number, number];
    const win = new Float32Array(c * r0 * r1 * r2);
    let o = 0;
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < r0; i++)
        for (let j = 0; j < r1; j++)
          for (let k = 0; k < r2; k++) win[o++] = norm.data[((ch * d0 + a0 + i) * d1 + a1 + j) * d2 + a2 + k]!;
    const r = await session.run(win, [1, c, r0, r1, r2]);
    const expected = f32(net.window.output);
    expect(r.dims).toEqual([1, ...expected.shape]);
    expect(maxAbsDiff(r.data, expected.data)).toBeLessThanOrEqual(1e-3);
  });

  for (const c of reference.cases.sliding_window_net) {
    it(`${c.output}: stitched logits within 1e-3 (${c.mode}, overlap ${c.overlap}, sw_batch ${c.sw_batch_size})`, async () => {
      const input = f32(c.input);
      const expected = f32(c.output);
      const result = await slidingWindowInference(
        input.data,
        input.shape,
        async (b) => {
          const r = await session.run(b.data, [b.count, b.channels, ...b.roiSize]);
          return { data: r.data, channels: r.dims[1]! };
        },
        {
          roiSize: c.roi_size,
          swBatchSize: c.sw_batch_size,
          overlap: c.overlap,
          mode: c.mode,
          sigmaScale: c.sigma_scale,
        },
      );
      expect(result.shape).toEqual(expected.shape);
      expect(maxAbsDiff(result.data, expected.data)).toBeLessThanOrEqual(1e-3);
    });
  }
});

describe('whole pipeline (SegmentationModel) vs MONAI: labels Dice ≥ 0.999 per region, volumes within 0.1%', () => {
  let model: SegmentationModel;
  beforeAll(async () => {
    model = await SegmentationModel.load(
      { manifest: referenceManifest('gaussian', 0.5), modelPath: referenceModelPath() },
      { intraOpNumThreads: 1 },
    );
  });
  afterAll(async () => {
    await model?.close();
  });

  it('raw volume → labels, volumes and diameter match MONAI', async () => {
    const raw = f32('raw_a');
    const expected = u8(post.labels['4']!.output).data;
    const stages: string[] = [];
    const result = await model.segment(
      {
        data: raw.data,
        shape: raw.shape as [number, number, number, number],
        spacingMm: post.spacing as [number, number, number],
      },
      { onProgress: (e) => stages.push(e.stage), keepLogits: true },
    );
    expect(maxAbsDiff(result.logits!, f32(post.logits).data)).toBeLessThanOrEqual(1e-3);
    for (const [name, inRegion] of Object.entries(REGIONS)) {
      expect(dice(result.labels, expected, inRegion), name).toBeGreaterThanOrEqual(0.999);
    }
    for (const k of ['ncr', 'ed', 'et', 'tc', 'wt'] as const) {
      expect(Math.abs(result.volumes[k].mL - post.volumes_ml[k]), k).toBeLessThanOrEqual(post.volumes_ml[k] * 1e-3);
    }
    expect(result.wholeTumourDiameter!.mm).toBeCloseTo(post.wt_diameter_mm, 6);
    expect(stages[0]).toBe('normalize');
    expect(stages).toContain('inference');
    expect(stages.slice(-2)).toEqual(['postprocess', 'done']);
    expect(result.model.notForClinicalUse).toBe(true);
  });
});
