/**
 * Writes models/brats-demo/manifest.json from the demo bundle (configs/inference.json + metadata.json + the ONNX
 * export) with @cdss/segmentation's own MONAI-bundle loader, so the committed manifest is exactly what the loader builds.
 *
 *   node --conditions=@cdss/source --import tsx tools/monai-reference/write-demo-manifest.ts
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMonaiBundle } from '../../packages/segmentation/src/index.js';

const bundleDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'brats-demo');
const { manifest } = await loadMonaiBundle(bundleDir, {
  name: 'brats-segresnet-demo',
  notForClinicalUse: true,
  postprocessing: {
    components: { connectivity: 3, keepLargest: ['wt'], minSizeMm3: { tc: 100, et: 100 } },
    minMeasurableMm: 10,
    plausibility: {
      fovEdgeMarginVoxels: 0,
      maxComponents: 20,
      maxWholeTumourMl: 400,
      maxEtOutsideTcFraction: 0.05,
      minEnhancingMl: 1,
      enhancementZ: 3,
    },
  },
  trainingData:
    'Synthetic brain-MRI phantoms from @cdss/imaging generatePhantom (64x64x48 voxels of 3.75 mm), seeds train-0..train-239. ' +
    'TRAINED ON SYNTHETIC DATA ONLY; NOT FOR CLINICAL USE.',
});
const out = {
  ...manifest,
  input: {
    ...manifest.input,
    requires:
      'Synthetic phantoms (or images preprocessed like them): 4 co-registered channels T1c, T1, T2, FLAIR on one grid of ' +
      `${manifest.input.spacingMm.join('x')} mm, background exactly 0. Real BraTS models expect SRI24-registered, ` +
      'skull-stripped, 1 mm isotropic input.',
  },
};
writeFileSync(join(bundleDir, 'manifest.json'), JSON.stringify(out, null, 2) + '\n');
process.stdout.write(`wrote ${join(bundleDir, 'manifest.json')}\n`);
