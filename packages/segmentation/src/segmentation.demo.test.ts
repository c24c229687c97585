import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dice } from './__fixtures__/monai/reference.js';
import { SegmentationModel } from './inference.js';
import { loadMonaiBundle } from './manifest.js';
import { generatePhantom } from '@cdss/dicom';
import { labelsToVolume, volumesToInput } from './segmentation.js';
import { prepareStudy, studyFindings } from './study-pipeline.js';

/** The committed demo model (models/brats-demo, trained by tools/monai-reference/train_demo.py). */
const DEMO = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'models', 'brats-demo');
/** Seeds never used in training (train-*) or validation (val-*). */
const HELD_OUT = ['holdout-1', 'holdout-2', 'holdout-3'];

describe('demo model on held-out phantoms, through the whole pipeline', () => {
  let model: SegmentationModel;
  beforeAll(async () => {
    model = await SegmentationModel.load({ manifestPath: join(DEMO, 'manifest.json') }, { intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    await model?.close();
  });

  it('is marked as trained on synthetic data and not for clinical use', () => {
    expect(model.manifest.notForClinicalUse).toBe(true);
    expect(model.manifest.trainingData).toMatch(/SYNTHETIC DATA ONLY; NOT FOR CLINICAL USE/);
    expect(model.manifest.intendedUse).toMatch(/Not for diagnostic or clinical use/);
  });

  it('its manifest is what the MONAI-bundle loader builds from the bundle configs', async () => {
    const { manifest } = await loadMonaiBundle(DEMO);
    expect(manifest.inference).toEqual(model.manifest.inference);
    expect(manifest.input.channels).toEqual(model.manifest.input.channels);
    expect(manifest.input.spacingMm).toEqual(model.manifest.input.spacingMm);
    expect(manifest.output).toEqual(model.manifest.output);
    expect(manifest.model.sha256).toBe(model.manifest.model.sha256);
  });

  for (const seed of HELD_OUT) {
    it(`segments phantom ${seed} with Dice >= 0.8 for TC, WT and ET`, async () => {
      const m = model.manifest;
      const p = generatePhantom({ seed, dims: [64, 64, 48], spacing: m.input.spacingMm });
      const result = await model.segment(volumesToInput(m, p.modalities));
      const labels = labelsToVolume(result.labels, p.labels);
      const truth = p.labels.data;
      const scores = {
        tc: dice(labels.data, truth, (v) => v === 1 || v === 4),
        wt: dice(labels.data, truth, (v) => v !== 0),
        et: dice(labels.data, truth, (v) => v === 4),
      };
      expect(scores.tc, JSON.stringify(scores)).toBeGreaterThanOrEqual(0.8);
      expect(scores.wt, JSON.stringify(scores)).toBeGreaterThanOrEqual(0.8);
      expect(scores.et, JSON.stringify(scores)).toBeGreaterThanOrEqual(0.8);
      // The reported whole-tumour volume is close to the phantom's ground truth.
      const voxelMl = (m.input.spacingMm[0] * m.input.spacingMm[1] * m.input.spacingMm[2]) / 1000;
      const truthWt = truth.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0) * voxelMl;
      expect(Math.abs(result.volumes.wt.mL - truthWt) / truthWt).toBeLessThan(0.2);
      expect(result.wholeTumourDiameter?.mm).toBeGreaterThan(0);
    });
  }

  // The same 240 × 240 × 180 mm field of view acquired on other grids, including an anisotropic one: the study is
  // resampled onto the model's 3.75 mm grid and the cleaned labels sent back onto the study's own grid.
  for (const [dims, spacing] of [
    [
      [80, 80, 60],
      [3, 3, 3],
    ],
    [
      [60, 60, 45],
      [4, 4, 4],
    ],
    [
      [96, 96, 40],
      [2.5, 2.5, 4.5],
    ],
  ] as const) {
    it(`segments a ${dims.join('×')} study at ${spacing.join('×')} mm through prepareStudy/studyFindings, Dice >= 0.8`, async () => {
      const p = generatePhantom({ seed: 'holdout-grids', dims: [...dims], spacing: [...spacing] });
      const channel = (v: (typeof p.modalities)['t1c']) => ({ volume: { ...v, data: Float32Array.from(v.data) } });
      const prepared = prepareStudy(model.manifest, {
        t1c: channel(p.modalities.t1c),
        t1: channel(p.modalities.t1),
        t2: channel(p.modalities.t2),
        flair: channel(p.modalities.flair),
      });
      expect(prepared.interpolated).toBe(true);
      const findings = studyFindings(
        await model.segment(prepared.input, { keepLogits: true, inputNormalized: prepared.normalized }),
        prepared,
        model.manifest,
      );
      expect(findings.labels.dims).toEqual([...dims]);
      const truth = p.labels.data;
      const scores = {
        tc: dice(findings.labels.data, truth, (v) => v === 1 || v === 4),
        wt: dice(findings.labels.data, truth, (v) => v !== 0),
        et: dice(findings.labels.data, truth, (v) => v === 4),
      };
      for (const score of Object.values(scores)) expect(score, JSON.stringify(scores)).toBeGreaterThanOrEqual(0.8);
      expect(findings.lesions.length).toBeGreaterThan(0);
    });
  }
});
