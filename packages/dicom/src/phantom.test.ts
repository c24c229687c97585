import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { generatePhantom, PHANTOM_MODALITIES, PHANTOM_TISSUES } from './phantom.js';
import { assertVolume } from './volume.js';

function mean(
  data: Uint16Array,
  labels: Uint8Array,
  tissues: Uint8Array,
  want: (label: number, tissue: number) => boolean,
): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < data.length; i++) {
    if (want(labels[i] as number, tissues[i] as number)) {
      s += data[i] as number;
      c++;
    }
  }
  return c === 0 ? Number.NaN : s / c;
}

describe('generatePhantom', () => {
  const p = generatePhantom({ seed: 42, dims: [64, 64, 48] });

  it('is deterministic for a seed and differs between seeds', () => {
    const again = generatePhantom({ seed: 42, dims: [64, 64, 48] });
    for (const m of PHANTOM_MODALITIES)
      expect(Buffer.from(again.modalities[m].data.buffer).equals(Buffer.from(p.modalities[m].data.buffer))).toBe(true);
    expect(Buffer.from(again.labels.data).equals(Buffer.from(p.labels.data))).toBe(true);
    const other = generatePhantom({ seed: 43, dims: [64, 64, 48] });
    expect(Buffer.from(other.labels.data).equals(Buffer.from(p.labels.data))).toBe(false);
    expect(generatePhantom({ seed: 'abc', dims: [16, 16, 8] }).labels.data).toEqual(
      generatePhantom({ seed: 'abc', dims: [16, 16, 8] }).labels.data,
    );
  });

  it('produces well-formed volumes on one grid with BraTS labels 0/1/2/4, each present', () => {
    for (const m of PHANTOM_MODALITIES) {
      assertVolume(p.modalities[m]);
      expect(p.modalities[m].dims).toEqual([64, 64, 48]);
      expect(p.modalities[m].origin).toEqual(p.labels.origin);
    }
    assertVolume(p.labels);
    const values = new Set(p.labels.data);
    expect([...values].sort()).toEqual([0, 1, 2, 4]);
    expect(p.tumour?.voxels.necrosis).toBeGreaterThan(0);
    expect(p.tumour?.voxels.enhancing).toBeGreaterThan(0);
    expect(p.tumour?.voxels.edema).toBeGreaterThan(0);
    expect(p.labels.origin).toEqual([-31.5, -31.5, -23.5]);
  });

  it('gives each tumour region its usual contrast behaviour', () => {
    const { labels, tissues } = p;
    const wm = (l: number, t: number): boolean => t === PHANTOM_TISSUES.whiteMatter && l === 0;
    const m = (mod: (typeof PHANTOM_MODALITIES)[number], f: (l: number, t: number) => boolean): number =>
      mean(p.modalities[mod].data, labels.data, tissues.data, f);
    // enhancing rim: much brighter on T1c than T1 and than white matter on T1c
    expect(m('t1c', (l) => l === 4)).toBeGreaterThan(1.5 * m('t1', (l) => l === 4));
    expect(m('t1c', (l) => l === 4)).toBeGreaterThan(m('t1c', wm));
    // necrosis: dark on T1c, bright on T2
    expect(m('t1c', (l) => l === 1)).toBeLessThan(m('t1c', wm));
    expect(m('t2', (l) => l === 1)).toBeGreaterThan(m('t2', wm));
    // oedema: bright on FLAIR and T2
    expect(m('flair', (l) => l === 2)).toBeGreaterThan(1.5 * m('flair', wm));
    expect(m('t2', (l) => l === 2)).toBeGreaterThan(m('t2', wm));
    // CSF: bright on T2, dark on FLAIR
    const csf = (l: number, t: number): boolean => t === PHANTOM_TISSUES.csf && l === 0;
    expect(m('t2', csf)).toBeGreaterThan(m('t2', wm));
    expect(m('flair', csf)).toBeLessThan(m('flair', wm));
  });

  it('keeps the spacing given and can leave the tumour out', () => {
    const q = generatePhantom({ seed: 1, dims: [16, 20, 8], spacing: [0.5, 0.75, 2], tumour: false });
    expect(q.labels.spacing).toEqual([0.5, 0.75, 2]);
    expect(q.tumour).toBeNull();
    expect(q.labels.data.every((v) => v === 0)).toBe(true);
    expect(q.modalities.t1.data.length).toBe(16 * 20 * 8);
  });

  it('grows or shrinks the same lesion in the same place with tumourScale (follow-up visits)', () => {
    const base = generatePhantom({ seed: 'visits', dims: [48, 48, 40] });
    const later = generatePhantom({ seed: 'visits', dims: [48, 48, 40], tumourScale: 1.3 });
    expect(later.tumour?.centre).toEqual(base.tumour?.centre);
    later.tumour!.radii.forEach((r, i) => expect(r).toBeCloseTo(1.3 * base.tumour!.radii[i]!, 9));
    const enhancing = (p: typeof base): number => p.tumour!.voxels.enhancing + p.tumour!.voxels.necrosis;
    expect(enhancing(later) / enhancing(base)).toBeGreaterThan(1.8);
    // the head is the same: outside the tumour and its oedema nothing moved
    let same = 0;
    let outside = 0;
    for (let v = 0; v < base.tissues.data.length; v++) {
      if (base.labels.data[v] !== 0 || later.labels.data[v] !== 0) continue;
      outside++;
      if (base.modalities.t1.data[v] === later.modalities.t1.data[v]) same++;
    }
    expect(same / outside).toBeGreaterThan(0.99);
  });

  it('rejects bad options with a ValidationError naming the field', () => {
    expect(() => generatePhantom({ seed: 1, dims: [0, 64, 48] })).toThrow(ValidationError);
    expect(() => generatePhantom({ seed: 1, dims: [64, 64, 48], spacing: [1, -1, 1] })).toThrow(/spacing/);
  });
});
