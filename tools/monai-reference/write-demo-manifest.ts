/**
 * Writes models/brats-demo/manifest.json from the demo bundle (configs/inference.json + metadata.json + the ONNX
 * export) with @cdss/segmentation's own MONAI-bundle loader, so the committed manifest is exactly what the loader builds.
 *
 *   node --conditions=@cdss/source --import tsx tools/monai-reference/write-demo-manifest.ts [--bundle DIR]
 *
 * Then tools/monai-reference/evaluate-demo.ts adds the held-out figures (`evaluation`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMonaiBundle } from '../../packages/segmentation/src/index.js';

const bundleDir = process.argv.includes('--bundle')
  ? resolve(process.argv[process.argv.indexOf('--bundle') + 1]!)
  : resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'brats-demo');
/** What train_demo.py --export recorded about the training data. */
const training = JSON.parse(readFileSync(join(bundleDir, 'training.json'), 'utf8')) as {
  data: { train_studies: number; train_seeds: string };
};
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
    `${training.data.train_studies} synthetic brain-MRI studies on the MNI ICBM152 2009a template ` +
    '(tools/monai-reference/template_phantom.py, the numpy twin of @cdss/dicom generateTemplatePhantom), acquired on ' +
    'many grids, orientations and spacings (make_training_set.py) and put on the model grid by MONAI Orientation + ' +
    `Spacing, seeds ${training.data.train_seeds}. TRAINED ON SYNTHETIC DATA ONLY; NOT FOR CLINICAL USE.`,
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
