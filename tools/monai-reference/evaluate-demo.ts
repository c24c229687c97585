/**
 * Measures the demo model's held-out Dice per acquisition grid through the whole TypeScript pipeline (template
 * phantoms from @cdss/dicom, `prepareStudy` → `segment` → `studyFindings`, labels on the study's own grid) and writes
 * the figures into models/brats-demo/manifest.json (`evaluation`), which packages/segmentation's demo test measures
 * again in CI.
 *
 *   node --conditions=@cdss/source --import tsx tools/monai-reference/evaluate-demo.ts [--seeds N] [--bundle DIR]
 *
 * Held-out seeds are `holdout-<grid>-<n>` (training used `train-*`, validation `val-*`); a seed is taken only when
 * its tumour is at least partly in the field of view (some enhancing voxels on that grid), which only the small
 * field of view ever refuses.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SegmentationModel, parseModelManifest, type ModelManifest } from '../../packages/segmentation/src/index.js';
import {
  heldOutDice,
  heldOutStudy,
  meanDice,
  type HeldOutPhantoms,
  type RegionDice,
} from '../../packages/segmentation/src/__fixtures__/held-out.js';

type Vec3 = [number, number, number];
const argument = (name: string): string | undefined =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
const bundleDir = resolve(
  argument('--bundle') ?? resolve(fileURLToPath(import.meta.url), '..', '..', '..', 'models', 'brats-demo'),
);
const manifestPath = join(bundleDir, 'manifest.json');
const GENERATOR = '@cdss/dicom generateTemplatePhantom';
const MIN_ET_VOXELS = 20;

/** The grids: name, tag (in the seeds), dims and spacing along L, P, S, stored axis order, seeds wanted. */
export const HELD_OUT_GRIDS: readonly [string, string, Vec3, Vec3, string, number][] = [
  ['1 mm axial 240×240×155 (BraTS size)', '1mm', [240, 240, 155], [1, 1, 1], 'LPS', 1],
  ['0.9×0.9×3 mm axial 256×256×52 (anisotropic)', 'aniso', [256, 256, 52], [0.9, 0.9, 3], 'LPS', 2],
  ['4×1.2×1.2 mm sagittal 48×200×160 (anisotropic, stored P, I, L)', 'sag', [48, 200, 160], [4, 1.2, 1.2], 'PIL', 2],
  ['2 mm 96×116×94 (the model grid, whole head)', '2mm', [96, 116, 94], [2, 2, 2], 'LPS', 3],
  ['3.75 mm 64×64×48 (coarser than the model)', '3p75', [64, 64, 48], [3.75, 3.75, 3.75], 'LPS', 3],
  ['2 mm 48×56×40 (a field of view smaller than the 64×64×48 window)', 'small', [48, 56, 40], [2, 2, 2], 'LPS', 3],
];

const perGrid = Number(argument('--seeds') ?? 0);
const raw = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
const model = await SegmentationModel.load({ manifestPath }, { intraOpNumThreads: 1 });
const sets: NonNullable<ModelManifest['evaluation']>['sets'] = [];
try {
  for (const [name, tag, dims, spacing, axcodes, wanted] of HELD_OUT_GRIDS) {
    const base: Omit<HeldOutPhantoms, 'seeds'> = { generator: GENERATOR, dims, spacingMm: spacing, axcodes };
    const seeds: string[] = [];
    for (let n = 0; seeds.length < (perGrid || wanted) && n < 50; n++) {
      const seed = `holdout-${tag}-${n}`;
      const { truth } = heldOutStudy({ ...base, seeds: [seed] }, seed);
      if (truth.data.reduce((c, v) => c + (v === 4 ? 1 : 0), 0) >= MIN_ET_VOXELS) seeds.push(seed);
    }
    const cases: RegionDice[] = [];
    for (const seed of seeds) {
      const t = performance.now();
      const d = await heldOutDice(model, { ...base, seeds }, seed);
      cases.push(d);
      process.stdout.write(
        `${name} ${seed}: TC ${d.tc.toFixed(3)} WT ${d.wt.toFixed(3)} ET ${d.et.toFixed(3)} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`,
      );
    }
    const dice = meanDice(cases);
    const round = (x: number) => Math.round(x * 1e4) / 1e4;
    sets.push({
      name,
      phantom: { ...base, seeds },
      dice: { tc: round(dice.tc), wt: round(dice.wt), et: round(dice.et) },
    });
    process.stdout.write(`${name}: mean TC ${dice.tc.toFixed(3)} WT ${dice.wt.toFixed(3)} ET ${dice.et.toFixed(3)}\n`);
  }
} finally {
  await model.close();
}
const evaluation = {
  summary:
    'Held-out Dice per acquisition grid, mean over the listed seeds (seeds never used in training or validation): ' +
    'template phantoms stored on each grid, through prepareStudy (Orientation, Spacing to the model grid), the sliding ' +
    'window and studyFindings (clean-up, labels back onto the study grid, nearest), against the phantom truth on the ' +
    'study grid. Measured by tools/monai-reference/evaluate-demo.ts; checked again in CI by ' +
    'packages/segmentation/src/segmentation.demo.test.ts.',
  sets,
};
// validate before writing
parseModelManifest({ ...raw, evaluation });
writeFileSync(manifestPath, JSON.stringify({ ...raw, evaluation }, null, 2) + '\n');
process.stdout.write(`wrote the evaluation into ${manifestPath}\n`);
