/**
 * Exports synthetic brain-MRI phantoms (from @cdss/dicom's generator) for training the demo model in Python.
 *
 *   node --conditions=@cdss/source --import tsx tools/monai-reference/export-phantoms.ts [outDir] [train] [val]
 *
 * Each case is written in the model's axis convention (volumesToInput: C-order [C, nx, ny, nz], channels
 * T1c, T1, T2, FLAIR): `<name>.img.bin` uint16 little-endian [4, nx, ny, nz] and `<name>.lbl.bin` uint8 [nx, ny, nz]
 * with BraTS labels 0/1/2/4, plus `index.json`. Seeds `train-<n>` and `val-<n>`; the TypeScript tests use other seeds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePhantom } from '../../packages/dicom/src/index.js';
import { volumesToInput, type ModelManifest } from '../../packages/segmentation/src/index.js';

/** The demo model's grid: 64×64×48 voxels of 3.75 mm (a 240×240×180 mm field of view). */
export const DEMO_DIMS: [number, number, number] = [64, 64, 48];
export const DEMO_SPACING: [number, number, number] = [3.75, 3.75, 3.75];

const CHANNELS: Pick<ModelManifest, 'input'> = {
  input: { channels: ['T1c', 'T1', 'T2', 'FLAIR'], spacingMm: DEMO_SPACING, requires: '', normalize: null },
};

function exportSet(outDir: string, prefix: string, count: number): { name: string; seed: string }[] {
  const dir = join(outDir, prefix);
  mkdirSync(dir, { recursive: true });
  const cases: { name: string; seed: string }[] = [];
  for (let n = 0; n < count; n++) {
    const seed = `${prefix}-${n}`;
    const p = generatePhantom({ seed, dims: DEMO_DIMS, spacing: DEMO_SPACING });
    const input = volumesToInput(CHANNELS, p.modalities);
    const img = Uint16Array.from(input.data);
    // labels in the same [nx, ny, nz] C-order layout
    const [nx, ny, nz] = DEMO_DIMS;
    const lbl = new Uint8Array(nx * ny * nz);
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) lbl[(i * ny + j) * nz + k] = p.labels.data[(k * ny + j) * nx + i] as number;
    writeFileSync(join(dir, `${seed}.img.bin`), Buffer.from(img.buffer));
    writeFileSync(join(dir, `${seed}.lbl.bin`), Buffer.from(lbl.buffer));
    cases.push({ name: `${prefix}/${seed}`, seed });
  }
  return cases;
}

const outDir = process.argv[2] ?? '/tmp/cdss-phantoms';
const train = Number(process.argv[3] ?? 240);
const val = Number(process.argv[4] ?? 16);
const index = {
  dims: DEMO_DIMS,
  spacing: DEMO_SPACING,
  channels: CHANNELS.input.channels,
  layout: 'C-order [C, nx, ny, nz] uint16 (img), [nx, ny, nz] uint8 (lbl), BraTS labels 0/1/2/4',
  train: exportSet(outDir, 'train', train),
  val: exportSet(outDir, 'val', val),
};
writeFileSync(join(outDir, 'index.json'), JSON.stringify(index, null, 2));
process.stdout.write(`wrote ${index.train.length} training and ${index.val.length} validation phantoms to ${outDir}\n`);
