/**
 * Reads the committed MONAI reference vectors of the spatial transforms and the lesion clean-up (written by
 * tools/monai-reference/make_spatial_vectors.py). Test-only; every file is checked against its sha256.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const DIR = dirname(fileURLToPath(import.meta.url));
const affine = z.array(z.array(z.number()).length(4)).length(4);

const manifestSchema = z.object({
  versions: z.record(z.string(), z.union([z.string(), z.number()])),
  cases: z.object({
    resample: z.array(
      z.object({
        name: z.string(),
        affine,
        pixdim: z.array(z.number()).length(3),
        image: z.string(),
        labels: z.string(),
        oriented: z.string(),
        oriented_affine: affine,
        spaced: z.string(),
        spaced_affine: affine,
        spaced_labels: z.string(),
        back_labels: z.string(),
      }),
    ),
    components: z.array(
      z.object({
        op: z.enum(['keep_largest', 'remove_small']),
        input: z.string(),
        connectivity: z.union([z.literal(1), z.literal(2), z.literal(3), z.null()]),
        is_onehot: z.boolean().optional(),
        min_size: z.number().optional(),
        by_measure: z.boolean().optional(),
        pixdim: z.array(z.number()).optional(),
        output: z.string(),
      }),
    ),
  }),
  arrays: z.record(
    z.string(),
    z.object({ file: z.string(), dtype: z.enum(['float32', 'uint8']), shape: z.array(z.number()), sha256: z.string() }),
  ),
});

/** The manifest, validated. */
export const spatialReference = manifestSchema.parse(JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')));

/** An array (float32 or uint8) and its shape `[C, d0, d1, d2]`, C-order. */
export function array(name: string): { data: Float32Array | Uint8Array; shape: [number, number, number, number] } {
  const a = spatialReference.arrays[name];
  if (!a) throw new Error(`no array ${name}`);
  const buf = readFileSync(join(DIR, a.file));
  const sha = createHash('sha256').update(buf).digest('hex');
  if (sha !== a.sha256) throw new Error(`${a.file}: sha256 ${sha} does not match the manifest`);
  const data = a.dtype === 'uint8' ? new Uint8Array(buf) : new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return { data, shape: a.shape as [number, number, number, number] };
}
