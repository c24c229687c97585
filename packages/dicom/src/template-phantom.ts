/**
 * Synthetic brain-MRI studies on a real anatomical template: the MNI ICBM152 2009a T1 average and its grey- and
 * white-matter maps (as the nilearn package ships them; licence in `assets/LICENSE-MNI152.txt`), sampled onto any
 * grid, with T1c, T2 and FLAIR contrasts synthesised from the tissue maps and a tumour (necrotic core, enhancing
 * rim, oedema that follows the white matter) at a seeded place and size. The lesion is placed in the template's own
 * coordinates, so one seed gives the same head and the same lesion on every grid (1 mm, coarser, anisotropic), and
 * `tumourScale` grows or shrinks it in place (follow-up visits).
 *
 * `tools/monai-reference/template_phantom.py` computes the same volumes from the same seed in numpy (the tests
 * compare them), so the demo model can be trained in Python on exactly what the TypeScript side generates.
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { hashSeed, mulberry32, PHANTOM_TISSUES, type Phantom, type PhantomModality } from './phantom.js';
import { IDENTITY_DIRECTION, type Vec3, type Volume } from './volume.js';

/** Where the template is: `assets/` beside `src/` and `dist/` (`__filename` in the CJS build, the URL in ESM). */
function assets(): string {
  const base = typeof __filename === 'string' ? __filename : import.meta.url;
  const here = base.startsWith('file:') ? fileURLToPath(base) : base;
  return join(dirname(here), '..', 'assets');
}

interface Template {
  dims: Vec3;
  spacing: Vec3;
  origin: Vec3;
  t1: Uint8Array;
  gm: Uint8Array;
  wm: Uint8Array;
}

let cached: Template | undefined;

/** The template (read once per process). */
function template(): Template {
  if (cached) return cached;
  const meta = z
    .object({
      dims: z.tuple([z.int(), z.int(), z.int()]),
      spacing: z.tuple([z.number(), z.number(), z.number()]),
      origin: z.tuple([z.number(), z.number(), z.number()]),
    })
    .parse(JSON.parse(readFileSync(join(assets(), 'mni152-2009a-2mm.json'), 'utf8')));
  const raw = gunzipSync(readFileSync(join(assets(), 'mni152-2009a-2mm.bin.gz')));
  const n = meta.dims[0] * meta.dims[1] * meta.dims[2];
  if (raw.length !== 3 * n) throw new Error(`the MNI template asset has ${raw.length} bytes, expected ${3 * n}`);
  const view = (k: number): Uint8Array => new Uint8Array(raw.buffer, raw.byteOffset + k * n, n);
  cached = { ...meta, t1: view(0), gm: view(1), wm: view(2) };
  return cached;
}

/** zod schema of {@link TemplatePhantomOptions}. */
export const templatePhantomOptionsSchema = z.object({
  seed: z.union([z.int(), z.string().min(1)]),
  dims: z.tuple([z.int().min(4).max(512), z.int().min(4).max(512), z.int().min(4).max(512)]),
  spacing: z.tuple([z.number().min(0.5).max(10), z.number().min(0.5).max(10), z.number().min(0.5).max(10)]).optional(),
  tumourScale: z.number().positive().max(2).optional(),
  noise: z.number().min(0).max(0.2).optional(),
});

/** Options of {@link generateTemplatePhantom}. */
export type TemplatePhantomOptions = z.input<typeof templatePhantomOptionsSchema>;

/** Trilinear sample of a template map at a continuous template index (clamped to the volume). */
function sample(map: Uint8Array, t: Template, x: number, y: number, z: number): number {
  const [nx, ny, nz] = t.dims;
  const cx = x < 0 ? 0 : x > nx - 1 ? nx - 1 : x;
  const cy = y < 0 ? 0 : y > ny - 1 ? ny - 1 : y;
  const cz = z < 0 ? 0 : z > nz - 1 ? nz - 1 : z;
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const z0 = Math.floor(cz);
  const fx = cx - x0;
  const fy = cy - y0;
  const fz = cz - z0;
  const x1 = x0 + 1 < nx ? 1 : 0;
  const y1 = y0 + 1 < ny ? nx : 0;
  const z1 = z0 + 1 < nz ? nx * ny : 0;
  const p = x0 + y0 * nx + z0 * nx * ny;
  // the eight reads inline: a helper closure made per sample costs more than the arithmetic
  const c00 = (map[p] as number) * (1 - fx) + (map[p + x1] as number) * fx;
  const c10 = (map[p + y1] as number) * (1 - fx) + (map[p + y1 + x1] as number) * fx;
  const c01 = (map[p + z1] as number) * (1 - fx) + (map[p + z1 + x1] as number) * fx;
  const c11 = (map[p + y1 + z1] as number) * (1 - fx) + (map[p + y1 + z1 + x1] as number) * fx;
  return (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
}

/** Contrast of each tumour class: [T1, T1c, T2, FLAIR]. */
const NECROSIS = [300, 320, 1300, 700];
const ENHANCING = [500, 1500, 900, 900];

/**
 * Generates a phantom on the MNI template (see the module comment). Deterministic in its options.
 * @param options - seed, grid (dims, spacing in mm; default 1 mm), tumour scale, noise (fraction of 1000, default 0.02)
 * @returns the same shape as `generatePhantom`'s result (four contrasts, BraTS labels, tissue classes, tumour)
 * @throws {@link ValidationError} for bad options
 */
export function generateTemplatePhantom(options: TemplatePhantomOptions): Phantom {
  const parsed = templatePhantomOptionsSchema.safeParse(options);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid template phantom options');
  const o = parsed.data;
  const t = template();
  const spacing: Vec3 = o.spacing ? [...o.spacing] : [1, 1, 1];
  const dims: Vec3 = [...o.dims];
  const scale = o.tumourScale ?? 1;
  const sigma = (o.noise ?? 0.02) * 1000;
  const rand = mulberry32(hashSeed(o.seed));
  const uniform = (lo: number, hi: number): number => lo + ((rand() >>> 8) / 16777216) * (hi - lo);
  // The grid is centred on the template; the tumour lives in template (patient) coordinates.
  const centre = [0, 1, 2].map(
    (a) => (t.origin[a] as number) + (((t.dims[a] as number) - 1) * (t.spacing[a] as number)) / 2,
  );
  const origin = [0, 1, 2].map(
    (a) => (centre[a] as number) - (((dims[a] as number) - 1) * (spacing[a] as number)) / 2,
  ) as Vec3;
  const toTemplate = (p: readonly number[], a: number): number =>
    ((p[a] as number) - (t.origin[a] as number)) / (t.spacing[a] as number);
  let tc: Vec3 = [0, 0, 0];
  for (let tries = 0; tries < 200; tries++) {
    tc = [uniform(-55, 55), uniform(-60, 40), uniform(-10, 45)];
    const wm = sample(t.wm, t, toTemplate(tc, 0), toTemplate(tc, 1), toTemplate(tc, 2));
    if (wm > 0.6 * 255) break;
  }
  const base = uniform(12, 20) * scale;
  const radii: Vec3 = [base * uniform(0.85, 1.15), base * uniform(0.85, 1.15), base * uniform(0.85, 1.15)];
  const coreFrac = uniform(0.35, 0.55);
  const edemaFrac = uniform(1.6, 2.1);

  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  const out = { t1: new Uint16Array(n), t1c: new Uint16Array(n), t2: new Uint16Array(n), flair: new Uint16Array(n) };
  const labels = new Uint8Array(n);
  const tissues = new Uint8Array(n);
  const counts = { necrosis: 0, edema: 0, enhancing: 0 };
  const noisy = (v: number): number => {
    const u =
      (rand() >>> 8) / 16777216 + (rand() >>> 8) / 16777216 + (rand() >>> 8) / 16777216 + (rand() >>> 8) / 16777216;
    const x = v + (u - 2) * Math.sqrt(3) * sigma;
    return x <= 0 ? 0 : x >= 65535 ? 65535 : Math.floor(x + 0.5);
  };
  let idx = 0;
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, idx++) {
        const p = [origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2]];
        const x = toTemplate(p, 0);
        const y = toTemplate(p, 1);
        const z = toTemplate(p, 2);
        const t1t = sample(t.t1, t, x, y, z);
        if (t1t < 8) continue; // outside the head: air, exactly 0 (the model's non-zero mask)
        const g = sample(t.gm, t, x, y, z) / 255;
        const w = sample(t.wm, t, x, y, z) / 255;
        const r = Math.max(0, 1 - g - w);
        const fluid = t1t < 60;
        let v = [
          4 * t1t,
          4 * t1t,
          w * 350 + g * 550 + r * (fluid ? 1200 : 300),
          w * 450 + g * 600 + r * (fluid ? 120 : 250),
        ];
        let tissue: number =
          g > 0.5
            ? PHANTOM_TISSUES.greyMatter
            : w > 0.5
              ? PHANTOM_TISSUES.whiteMatter
              : fluid
                ? PHANTOM_TISSUES.csf
                : PHANTOM_TISSUES.fat;
        let label = 0;
        const dx = ((p[0] as number) - tc[0]) / radii[0];
        const dy = ((p[1] as number) - tc[1]) / radii[1];
        const dz = ((p[2] as number) - tc[2]) / radii[2];
        const d = Math.sqrt(dx * dx + dy * dy + dz * dz);
        if (d < coreFrac) {
          label = 1;
          v = NECROSIS;
          tissue = PHANTOM_TISSUES.necrosis;
        } else if (d < 1) {
          label = 4;
          v = ENHANCING;
          tissue = PHANTOM_TISSUES.enhancing;
        } else if (d < edemaFrac && w > 0.25) {
          label = 2;
          v = [v[0]! * 0.8, v[1]! * 0.8, 1200, 1100];
          tissue = PHANTOM_TISSUES.edema;
        }
        out.t1[idx] = noisy(v[0]!);
        out.t1c[idx] = noisy(v[1]!);
        out.t2[idx] = noisy(v[2]!);
        out.flair[idx] = noisy(v[3]!);
        labels[idx] = label;
        tissues[idx] = tissue;
        if (label === 1) counts.necrosis++;
        else if (label === 2) counts.edema++;
        else if (label === 4) counts.enhancing++;
      }
  const geometry = () => ({
    dims: [...dims] as Vec3,
    spacing: [...spacing] as Vec3,
    origin: [...origin] as Vec3,
    direction: [...IDENTITY_DIRECTION] as Volume['direction'],
  });
  const modalities = Object.fromEntries(
    (Object.keys(out) as PhantomModality[]).map((m) => [m, { ...geometry(), data: out[m] }]),
  ) as Record<PhantomModality, Volume<Uint16Array>>;
  return {
    seed: o.seed,
    modalities,
    labels: { ...geometry(), data: labels },
    tissues: { ...geometry(), data: tissues },
    tumour: {
      centre: [0, 1, 2].map((a) => ((tc[a] as number) - (origin[a] as number)) / (spacing[a] as number)) as Vec3,
      radii: [0, 1, 2].map((a) => (radii[a] as number) / (spacing[a] as number)) as Vec3,
      voxels: counts,
    },
  };
}
