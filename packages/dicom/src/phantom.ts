/**
 * Deterministic synthetic brain MRI: a head with a glioma-like tumour in four MR contrasts
 * (T1 with contrast, T1, T2, FLAIR) and its BraTS label map. Used by tests, the sandbox's demo studies,
 * the benchmarks and training of the demo model, so the output for a given seed never changes.
 *
 * The anatomy is laid out in normalised field-of-view coordinates, so any grid size gives the same head:
 * scalp fat, skull, grey matter (with a gyral ripple), white matter, two lateral ventricles and a tumour
 * of three sub-regions: necrotic core (BraTS label 1), enhancing rim (4) and surrounding oedema (2).
 * Intensities follow each region's usual behaviour: the rim enhances on T1c, necrosis is dark on T1/T1c and
 * bright on T2, oedema is bright on T2 and brightest on FLAIR, CSF is bright on T2 and dark on FLAIR.
 * @packageDocumentation
 */
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { IDENTITY_DIRECTION, type Mat3, type Vec3, type Volume } from './volume.js';

/** BraTS label values. */
export const BRATS_LABELS = { background: 0, necrosis: 1, edema: 2, enhancing: 4 } as const;

/** The four MR contrasts of a BraTS study, in model channel order. */
export const PHANTOM_MODALITIES = ['t1c', 't1', 't2', 'flair'] as const;
/** One of {@link PHANTOM_MODALITIES}. */
export type PhantomModality = (typeof PHANTOM_MODALITIES)[number];

/** Tissue classes of the phantom (values of {@link Phantom.tissues}). */
export const PHANTOM_TISSUES = {
  background: 0,
  fat: 1,
  skull: 2,
  csf: 3,
  greyMatter: 4,
  whiteMatter: 5,
  necrosis: 6,
  enhancing: 7,
  edema: 8,
} as const;

/** Mean intensity of each tissue class (index = tissue value) per modality. */
const INTENSITY: Record<PhantomModality, readonly number[]> = {
  t1: [0, 1400, 80, 350, 800, 1100, 380, 900, 650],
  t1c: [0, 1400, 80, 380, 820, 1120, 360, 1900, 680],
  t2: [0, 900, 60, 2200, 1100, 750, 1900, 1300, 1600],
  flair: [0, 1000, 60, 250, 1100, 850, 900, 1400, 1900],
};

const TISSUE_LABEL = [0, 0, 0, 0, 0, 0, 1, 4, 2] as const;

const MAX_VOXELS = 512 * 512 * 512;

/** zod schema of {@link PhantomOptions}. */
export const phantomOptionsSchema = z.object({
  seed: z.union([z.number().int(), z.string().min(1)]),
  dims: z.tuple([
    z.number().int().min(8).max(1024),
    z.number().int().min(8).max(1024),
    z.number().int().min(4).max(1024),
  ]),
  spacing: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).optional(),
  noise: z.number().min(0).max(0.5).optional(),
  tumour: z.boolean().optional(),
  tumourScale: z.number().positive().max(2).optional(),
});

/** Options of {@link generatePhantom}. */
export interface PhantomOptions {
  /** Seed: the same seed (and options) always gives the same voxels. */
  seed: number | string;
  /** Grid size [x (columns), y (rows), z (slices)], e.g. `[64, 64, 48]` for tests or `[240, 240, 155]` as BraTS. */
  dims: Vec3;
  /** Voxel size in mm; default `[1, 1, 1]`. */
  spacing?: Vec3;
  /** Noise standard deviation as a fraction of 1000 intensity units; default 0.02. */
  noise?: number;
  /** Whether to grow a tumour; default true. */
  tumour?: boolean;
  /**
   * Scales the tumour's radii (default 1): the same seed with another scale is the same head with the same lesion,
   * in the same place, grown or shrunk (follow-up visits of one patient).
   */
  tumourScale?: number;
}

/** Where the tumour is, in voxel units. */
export interface PhantomTumour {
  /** Centre of the tumour (voxel index, fractional). */
  centre: Vec3;
  /** Semi-axes of the enhancing boundary, in voxels. */
  radii: Vec3;
  /** Voxel counts per BraTS label. */
  voxels: { necrosis: number; edema: number; enhancing: number };
}

/** What {@link generatePhantom} returns. All volumes share one grid. */
export interface Phantom {
  /** The seed used. */
  seed: number | string;
  /** The four contrasts, unsigned 16-bit. */
  modalities: Record<PhantomModality, Volume<Uint16Array>>;
  /** Ground truth, BraTS labels 0 (background), 1 (necrotic core), 2 (oedema), 4 (enhancing tumour). */
  labels: Volume<Uint8Array>;
  /** Tissue class per voxel (see {@link PHANTOM_TISSUES}). */
  tissues: Volume<Uint8Array>;
  /** The tumour's placement, or null when `tumour: false`. */
  tumour: PhantomTumour | null;
}

/** xmur3-style string hash to a 32-bit seed. */
export function hashSeed(seed: number | string): number {
  const s = typeof seed === 'number' ? `n:${seed}` : `s:${seed}`;
  let h = 1779033703 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  h = Math.imul(h ^ (h >>> 16), 2246822507);
  h = Math.imul(h ^ (h >>> 13), 3266489909);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A small seeded PRNG (mulberry32). Returns 32-bit unsigned integers.
 * @param seed - 32-bit seed
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const GAUSS_BITS = 16;
let gaussTable: Float32Array | undefined;
/** 65536 standard normal quantiles, so that noise is one table lookup per voxel. */
function gaussianTable(): Float32Array {
  if (gaussTable) return gaussTable;
  const n = 1 << GAUSS_BITS;
  const t = new Float32Array(n);
  // Inverse normal CDF at (k + 0.5) / n (Acklam's rational approximation): deterministic, no RNG state.
  for (let k = 0; k < n; k++) t[k] = inverseNormal((k + 0.5) / n);
  gaussTable = t;
  return t;
}

function inverseNormal(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  if (p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/**
 * Generates a synthetic brain MRI study. Deterministic: the same options give identical voxels.
 *
 * The grid is axial LPS with identity direction, centred on the patient origin.
 * Runs in about a second for 240×240×155 on one core.
 *
 * @example
 * ```ts
 * const p = generatePhantom({ seed: 7, dims: [64, 64, 48] });
 * p.modalities.flair.data; // Uint16Array(196608)
 * p.labels.data;           // Uint8Array of 0/1/2/4
 * ```
 * @param options - seed, grid size, optional spacing, noise level and whether to grow a tumour
 * @returns the four contrasts, labels, tissue map and tumour placement
 * @throws {@link ValidationError} when the options are out of range
 */
export function generatePhantom(options: PhantomOptions): Phantom {
  const parsed = phantomOptionsSchema.safeParse(options);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid phantom options');
  const { seed, dims } = options;
  const spacing: Vec3 = options.spacing ? [...options.spacing] : [1, 1, 1];
  const noise = options.noise ?? 0.02;
  const withTumour = options.tumour ?? true;
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  if (n > MAX_VOXELS) {
    throw new ValidationError('Invalid phantom options', [
      { path: 'dims', message: `at most ${MAX_VOXELS} voxels`, code: 'too_big' },
    ]);
  }
  const rand = mulberry32(hashSeed(seed));
  const uniform = (lo: number, hi: number): number => lo + ((rand() >>> 8) / 16777216) * (hi - lo);

  // Anatomy parameters (normalised coordinates, the field of view spans -0.5..0.5 on each axis).
  const head: Vec3 = [uniform(0.42, 0.45), uniform(0.45, 0.48), uniform(0.43, 0.46)];
  const ripple = { f: uniform(35, 50), p: uniform(0, Math.PI * 2) };
  const ventricles: Array<{ c: Vec3; r: Vec3 }> = [-1, 1].map((side) => ({
    c: [side * uniform(0.045, 0.06), uniform(-0.06, 0.0), uniform(0.0, 0.05)] as Vec3,
    r: [uniform(0.025, 0.035), uniform(0.1, 0.13), uniform(0.05, 0.07)] as Vec3,
  }));
  const side = rand() % 2 === 0 ? -1 : 1;
  const base = uniform(0.075, 0.11);
  const tc: Vec3 = [side * uniform(0.12, 0.18), uniform(-0.12, 0.12), uniform(-0.12, 0.1)];
  const scale = options.tumourScale ?? 1;
  const tr: Vec3 = [
    scale * base * uniform(0.85, 1.15),
    scale * base * uniform(0.85, 1.15),
    scale * base * uniform(0.85, 1.15),
  ];
  const coreFrac = uniform(0.4, 0.6);
  const edemaFrac = uniform(1.5, 2.0);
  const waves = Array.from({ length: 3 }, () => ({
    k: [uniform(-30, 30), uniform(-30, 30), uniform(-30, 30)] as Vec3,
    p: uniform(0, Math.PI * 2),
    a: uniform(0.04, 0.09),
  }));
  const bias: Vec3 = [uniform(-0.08, 0.08), uniform(-0.08, 0.08), uniform(-0.08, 0.08)];

  const tissues = new Uint8Array(n);
  const labels = new Uint8Array(n);
  const counts = { necrosis: 0, edema: 0, enhancing: 0 };
  const brainE = 0.85 * 0.85;
  const gmE = 0.72 * 0.72;
  const skullE = 0.92 * 0.92;
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    const uz = (k + 0.5) / nz - 0.5;
    for (let j = 0; j < ny; j++) {
      const uy = (j + 0.5) / ny - 0.5;
      for (let i = 0; i < nx; i++, idx++) {
        const ux = (i + 0.5) / nx - 0.5;
        const ex = ux / head[0];
        const ey = uy / head[1];
        const ez = uz / head[2];
        const e = ex * ex + ey * ey + ez * ez;
        if (e > 1) continue;
        let t: number;
        if (e > skullE) t = PHANTOM_TISSUES.fat;
        else if (e > brainE) t = PHANTOM_TISSUES.skull;
        else {
          const gyri = 0.03 * Math.sin(ripple.f * ux + ripple.p) * Math.sin(ripple.f * uy) * Math.cos(ripple.f * uz);
          t = e + gyri > gmE ? PHANTOM_TISSUES.greyMatter : PHANTOM_TISSUES.whiteMatter;
          for (const v of ventricles) {
            const vx = (ux - v.c[0]) / v.r[0];
            const vy = (uy - v.c[1]) / v.r[1];
            const vz = (uz - v.c[2]) / v.r[2];
            if (vx * vx + vy * vy + vz * vz <= 1) t = PHANTOM_TISSUES.csf;
          }
          if (withTumour) {
            const dx = (ux - tc[0]) / tr[0];
            const dy = (uy - tc[1]) / tr[1];
            const dz = (uz - tc[2]) / tr[2];
            const r2 = dx * dx + dy * dy + dz * dz;
            if (r2 < edemaFrac * edemaFrac * 1.6) {
              let wobble = 1;
              for (const w of waves) wobble += w.a * Math.sin(w.k[0] * ux + w.k[1] * uy + w.k[2] * uz + w.p);
              const d = Math.sqrt(r2) * wobble;
              if (d < coreFrac) t = PHANTOM_TISSUES.necrosis;
              else if (d < 1) t = PHANTOM_TISSUES.enhancing;
              else if (d < edemaFrac && t !== PHANTOM_TISSUES.csf) t = PHANTOM_TISSUES.edema;
            }
          }
        }
        tissues[idx] = t;
        const label = TISSUE_LABEL[t as 0] as number;
        labels[idx] = label;
        if (label === 1) counts.necrosis++;
        else if (label === 2) counts.edema++;
        else if (label === 4) counts.enhancing++;
      }
    }
  }

  const gauss = gaussianTable();
  const sigma = noise * 1000;
  const modalities = {} as Record<PhantomModality, Volume<Uint16Array>>;
  const origin: Vec3 = [-((nx - 1) / 2) * spacing[0], -((ny - 1) / 2) * spacing[1], -((nz - 1) / 2) * spacing[2]];
  const geometry = (): { dims: Vec3; spacing: Vec3; origin: Vec3; direction: Mat3 } => ({
    dims: [nx, ny, nz],
    spacing: [...spacing],
    origin: [...origin],
    direction: [...IDENTITY_DIRECTION],
  });
  for (const m of PHANTOM_MODALITIES) {
    const table = INTENSITY[m];
    const out = new Uint16Array(n);
    let p = 0;
    for (let k = 0; k < nz; k++) {
      const bz = 1 + bias[2] * ((k + 0.5) / nz - 0.5) * 2;
      for (let j = 0; j < ny; j++) {
        const byz = bz + bias[1] * ((j + 0.5) / ny - 0.5) * 2;
        for (let i = 0; i < nx; i++, p++) {
          const t = tissues[p] as number;
          const g = gauss[rand() >>> (32 - GAUSS_BITS)] as number;
          let v: number;
          if (t === 0) v = Math.abs(g) * sigma * 0.5;
          else {
            const b = byz + bias[0] * ((i + 0.5) / nx - 0.5) * 2;
            // Texture: tumour tissue is more heterogeneous than normal tissue.
            const s = t >= PHANTOM_TISSUES.necrosis ? sigma * 2.5 : sigma;
            v = (table[t] as number) * b + g * s;
          }
          out[p] = v <= 0 ? 0 : v >= 65535 ? 65535 : Math.round(v);
        }
      }
    }
    modalities[m] = { ...geometry(), data: out };
  }
  const centre: Vec3 = [(tc[0] + 0.5) * nx - 0.5, (tc[1] + 0.5) * ny - 0.5, (tc[2] + 0.5) * nz - 0.5];
  return {
    seed,
    modalities,
    labels: { ...geometry(), data: labels },
    tissues: { ...geometry(), data: tissues },
    tumour: withTumour ? { centre, radii: [tr[0] * nx, tr[1] * ny, tr[2] * nz], voxels: counts } : null,
  };
}
