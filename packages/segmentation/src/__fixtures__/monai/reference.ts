/**
 * Reads the committed MONAI reference vectors (written by tools/monai-reference/make_vectors.py).
 * Test-only; every file is checked against the sha256 recorded in manifest.json.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Folder of the vectors. */
export const MONAI_FIXTURES = dirname(fileURLToPath(import.meta.url));

const arraySchema = z.object({
  file: z.string(),
  dtype: z.enum(['float32', 'uint8']),
  shape: z.array(z.number().int().positive()),
  sha256: z.string().length(64),
});

const swCase = z.object({
  input: z.string(),
  roi_size: z.array(z.number().int()),
  sw_batch_size: z.number().int(),
  overlap: z.number(),
  mode: z.enum(['constant', 'gaussian']),
  sigma_scale: z.number(),
  cval: z.number().optional(),
  output: z.string(),
});

/** Shape of manifest.json. */
export const referenceManifestSchema = z.object({
  versions: z.record(z.string(), z.union([z.string(), z.number()])),
  seed: z.number(),
  cases: z.object({
    normalize: z.array(z.object({ input: z.string(), nonzero: z.boolean(), channel_wise: z.boolean(), output: z.string() })),
    importance: z.array(z.object({ roi_size: z.array(z.number()), mode: z.literal('gaussian'), sigma_scale: z.number(), output: z.string() })),
    sliding_window_toy: z.array(swCase),
    sliding_window_net: z.array(swCase),
    network: z.object({
      onnx: z.string(),
      onnx_sha256: z.string(),
      input_name: z.string(),
      output_name: z.string(),
      window: z.object({ input: z.string(), starts: z.array(z.number()), size: z.array(z.number()), output: z.string() }),
    }),
    postprocess: z.object({
      logits: z.string(),
      spacing: z.array(z.number()),
      threshold: z.number(),
      labels: z.record(z.string(), z.object({ output: z.string(), counts: z.record(z.string(), z.number()) })),
      volumes_ml: z.object({ ncr: z.number(), ed: z.number(), et: z.number(), tc: z.number(), wt: z.number() }),
      wt_diameter_mm: z.number(),
      et_diameter_mm: z.number(),
    }),
  }),
  arrays: z.record(z.string(), arraySchema),
});

/** The parsed manifest. */
export type ReferenceManifest = z.infer<typeof referenceManifestSchema>;

/** The manifest, validated. */
export const reference: ReferenceManifest = referenceManifestSchema.parse(
  JSON.parse(readFileSync(join(MONAI_FIXTURES, 'manifest.json'), 'utf8')),
);

function bytes(file: string, sha: string): Buffer {
  const buf = readFileSync(join(MONAI_FIXTURES, file));
  const got = createHash('sha256').update(buf).digest('hex');
  if (got !== sha) throw new Error(`${file}: sha256 ${got} does not match the manifest (${sha})`);
  return buf;
}

/** A float32 array and its shape. */
export function f32(name: string): { data: Float32Array; shape: number[] } {
  const a = reference.arrays[name];
  if (!a || a.dtype !== 'float32') throw new Error(`no float32 array ${name}`);
  const buf = bytes(a.file, a.sha256);
  const data = new Float32Array(buf.byteLength / 4);
  new Uint8Array(data.buffer).set(buf); // little-endian on every platform we run on
  return { data, shape: a.shape };
}

/** A uint8 array and its shape. */
export function u8(name: string): { data: Uint8Array; shape: number[] } {
  const a = reference.arrays[name];
  if (!a || a.dtype !== 'uint8') throw new Error(`no uint8 array ${name}`);
  return { data: new Uint8Array(bytes(a.file, a.sha256)), shape: a.shape };
}

/** Path of the reference ONNX model (sha256 checked). */
export function referenceModelPath(): string {
  const n = reference.cases.network;
  bytes(n.onnx, n.onnx_sha256);
  return join(MONAI_FIXTURES, n.onnx);
}

/** Largest absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Dice of `a == value` vs `b == value` (or of a predicate); 1 when both are empty. */
export function dice(a: Uint8Array, b: Uint8Array, inRegion: (v: number) => boolean): number {
  let inter = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = inRegion(a[i] as number);
    const y = inRegion(b[i] as number);
    if (x) na++;
    if (y) nb++;
    if (x && y) inter++;
  }
  return na + nb === 0 ? 1 : (2 * inter) / (na + nb);
}
