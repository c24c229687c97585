import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { generateTemplatePhantom } from './template-phantom.js';
import { PHANTOM_MODALITIES } from './phantom.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '__fixtures__', 'template-phantom');
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as {
  cases: {
    name: string;
    seed: number | string;
    dims: [number, number, number];
    spacing: [number, number, number];
    tumourScale: number;
  }[];
  arrays: Record<string, { file: string; dtype: 'float32' | 'uint8'; sha256: string }>;
};

/** A fixture array (sha256 checked), in the generator's own order (i fastest). */
function fixture(name: string): ArrayLike<number> {
  const a = manifest.arrays[name]!;
  const buf = readFileSync(join(DIR, a.file));
  expect(createHash('sha256').update(buf).digest('hex')).toBe(a.sha256);
  return a.dtype === 'uint8'
    ? new Uint8Array(buf)
    : new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

describe('phantoms on the MNI ICBM152 template', () => {
  it.each(manifest.cases.map((c) => [c.name, c] as const))(
    '%s: the TypeScript generator and the Python tooling produce the same volumes from the same seed',
    (_name, c) => {
      const p = generateTemplatePhantom({ seed: c.seed, dims: c.dims, spacing: c.spacing, tumourScale: c.tumourScale });
      expect(Buffer.from(p.labels.data).equals(Buffer.from(fixture(`${c.name}_labels`) as Uint8Array))).toBe(true);
      for (const m of PHANTOM_MODALITIES) {
        const want = fixture(`${c.name}_${m}`);
        let worst = 0;
        for (let v = 0; v < want.length; v++)
          worst = Math.max(worst, Math.abs((p.modalities[m].data[v] as number) - (want[v] as number)));
        expect(worst, m).toBeLessThanOrEqual(1);
      }
    },
  );

  it('puts the same lesion in the same place on every grid, grows it with tumourScale, and keeps the air at 0', () => {
    const mm = (p: ReturnType<typeof generateTemplatePhantom>) =>
      p.tumour!.centre.map((c, a) => p.labels.origin[a]! + c * p.labels.spacing[a]!);
    const fine = generateTemplatePhantom({ seed: 'visits', dims: [96, 112, 90], spacing: [2, 2, 2] });
    const coarse = generateTemplatePhantom({ seed: 'visits', dims: [48, 56, 30], spacing: [4, 4, 6] });
    const later = generateTemplatePhantom({ seed: 'visits', dims: [48, 56, 30], spacing: [4, 4, 6], tumourScale: 1.3 });
    mm(coarse).forEach((c, a) => expect(c).toBeCloseTo(mm(fine)[a]!, 6));
    mm(later).forEach((c, a) => expect(c).toBeCloseTo(mm(coarse)[a]!, 6));
    const core = (p: typeof fine) => p.tumour!.voxels.enhancing + p.tumour!.voxels.necrosis;
    expect(core(later) / core(coarse)).toBeGreaterThan(1.8);
    expect(fine.tumour!.voxels.edema).toBeGreaterThan(0);
    expect(fine.modalities.t1c.data[0]).toBe(0);
    // the enhancing rim is bright on T1c and the oedema on FLAIR
    const mean = (m: 't1c' | 'flair', label: number) => {
      let s = 0;
      let n = 0;
      fine.labels.data.forEach((l, v) => {
        if (l === label) {
          s += fine.modalities[m].data[v]!;
          n++;
        }
      });
      return s / n;
    };
    expect(mean('t1c', 4)).toBeGreaterThan(1300);
    expect(mean('flair', 2)).toBeGreaterThan(1000);
  });

  it('refuses bad options', () => {
    expect(() => generateTemplatePhantom({ seed: 1, dims: [2, 64, 64] })).toThrow(ValidationError);
  });
});
