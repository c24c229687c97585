import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heldOutDice, meanDice, type RegionDice } from './__fixtures__/held-out.js';
import { SegmentationModel } from './inference.js';
import { loadMonaiBundle, parseModelManifest } from './manifest.js';
import { spacingGeometry } from './spatial.js';
import { IDENTITY_DIRECTION } from '@cdss/dicom';

/** The committed demo model (models/brats-demo, trained by tools/monai-reference/train_demo.py). */
const DEMO = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'models', 'brats-demo');
/** Read without the loader, so the test can name the sets before the model is loaded. */
const manifest = parseModelManifest(JSON.parse(readFileSync(join(DEMO, 'manifest.json'), 'utf8')));
const sets = manifest.evaluation?.sets ?? [];
/** The bar (#18): held-out Dice per region on every grid. */
const MIN_DICE = 0.85;
/** onnxruntime on another CPU may flip a few voxels near the threshold. */
const RECORDED_TOLERANCE = 0.01;

describe('demo model on held-out template phantoms, through the whole pipeline', () => {
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

  it('its manifest is what the MONAI-bundle loader builds from the bundle configs, and the file is under 20 MB', async () => {
    const { manifest: fromBundle, modelPath } = await loadMonaiBundle(DEMO);
    expect(fromBundle.inference).toEqual(model.manifest.inference);
    expect(fromBundle.input.channels).toEqual(model.manifest.input.channels);
    expect(fromBundle.input.spacingMm).toEqual(model.manifest.input.spacingMm);
    expect(fromBundle.input.axcodes).toEqual(model.manifest.input.axcodes);
    expect(fromBundle.output).toEqual(model.manifest.output);
    expect(fromBundle.model.sha256).toBe(model.manifest.model.sha256);
    expect(statSync(modelPath).size).toBeLessThan(20 * 1024 * 1024);
  });

  it('records held-out Dice on at least five grid sizes, one smaller than the window and one anisotropic', () => {
    const grids = sets.map((s) => s.phantom).filter((p) => p !== undefined);
    expect(new Set(grids.map((p) => p.dims.join('x'))).size).toBeGreaterThanOrEqual(5);
    const roi = manifest.inference.roiSize;
    // smaller than the window once on the model's grid (what the sliding window sees)
    const onModelGrid = (p: (typeof grids)[number]) =>
      spacingGeometry(
        { dims: p.dims, spacing: p.spacingMm, origin: [0, 0, 0], direction: [...IDENTITY_DIRECTION] },
        manifest.input.spacingMm,
      ).dims;
    expect(grids.some((p) => onModelGrid(p).every((d, a) => d < (roi[a] as number)))).toBe(true);
    expect(grids.some((p) => Math.max(...p.spacingMm) / Math.min(...p.spacingMm) >= 2)).toBe(true);
    for (const s of sets) for (const v of Object.values(s.dice)) expect(v, s.name).toBeGreaterThanOrEqual(MIN_DICE);
  });

  for (const set of sets) {
    const phantom = set.phantom;
    if (!phantom) continue;
    it(`${set.name}: Dice >= ${MIN_DICE} for TC, WT and ET on fresh phantoms, as recorded`, async () => {
      const cases: RegionDice[] = [];
      for (const seed of phantom.seeds) cases.push(await heldOutDice(model, phantom, seed));
      const measured = meanDice(cases);
      const detail = JSON.stringify({ measured, recorded: set.dice, cases });
      for (const region of ['tc', 'wt', 'et'] as const) {
        expect(measured[region], detail).toBeGreaterThanOrEqual(MIN_DICE);
        expect(Math.abs(measured[region] - set.dice[region]), detail).toBeLessThanOrEqual(RECORDED_TOLERANCE);
      }
    }, 600_000);
  }
});
