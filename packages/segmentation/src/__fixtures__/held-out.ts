/**
 * Held-out evaluation of a segmentation model on synthetic template phantoms, through the whole study pipeline a
 * worker runs (`prepareStudy` → `segment` → `studyFindings`): Dice of the labels on the study's own grid against
 * the phantom's truth. Used by the demo model's test and by tools/monai-reference/evaluate-demo.ts, which writes the
 * figures into the manifest's `evaluation` section.
 */
import { generateTemplatePhantom, type Volume } from '@cdss/dicom';
import type { SegmentationModel } from '../inference.js';
import type { ModelManifest } from '../manifest.js';
import { orient } from '../spatial.js';
import { prepareStudy, studyFindings } from '../study-pipeline.js';
import { dice } from './monai/reference.js';

/** One set of held-out phantoms (the manifest's `evaluation.sets[].phantom`). */
export type HeldOutPhantoms = NonNullable<NonNullable<ModelManifest['evaluation']>['sets'][number]['phantom']>;

/** Dice per region; NaN where the truth and the prediction are both empty (MONAI `ignore_empty`). */
export interface RegionDice {
  tc: number;
  wt: number;
  et: number;
}

const REGIONS = {
  tc: (v: number) => v === 1 || v === 4,
  wt: (v: number) => v !== 0,
  et: (v: number) => v === 4,
} as const;

/** The phantom of one seed of a set, stored in the set's axis order, as the worker would download it. */
export function heldOutStudy(
  set: HeldOutPhantoms,
  seed: string | number,
): { channels: Record<string, { volume: Volume }>; truth: Volume<Uint8Array> } {
  const p = generateTemplatePhantom({
    seed,
    dims: [...set.dims],
    spacing: [...set.spacingMm],
    ...(set.tumourScale === undefined ? {} : { tumourScale: set.tumourScale }),
  });
  const stored = <T extends Volume['data']>(v: Volume<T>): Volume<T> => (set.axcodes === 'LPS' ? v : orient(v, set.axcodes));
  const channel = (v: Volume) => ({ volume: stored({ ...v, data: Float32Array.from(v.data) }) });
  return {
    channels: {
      t1c: channel(p.modalities.t1c),
      t1: channel(p.modalities.t1),
      t2: channel(p.modalities.t2),
      flair: channel(p.modalities.flair),
    },
    truth: stored(p.labels),
  };
}

/**
 * Dice of the model on one held-out phantom, through the whole pipeline.
 * @param model - a loaded model
 * @param set - the set's generator parameters
 * @param seed - one of its seeds
 */
export async function heldOutDice(
  model: SegmentationModel,
  set: HeldOutPhantoms,
  seed: string | number,
): Promise<RegionDice> {
  const { channels, truth } = heldOutStudy(set, seed);
  const prepared = prepareStudy(model.manifest, channels);
  const result = await model.segment(prepared.input, { keepLogits: true, inputNormalized: prepared.normalized });
  const findings = studyFindings(result, prepared, model.manifest);
  const labels = findings.labels.data;
  if (findings.labels.dims.join() !== truth.dims.join()) throw new Error('the labels are not on the study grid');
  const score = (inRegion: (v: number) => boolean): number => {
    let any = false;
    for (let i = 0; i < truth.data.length && !any; i++) any = inRegion(truth.data[i] as number) || inRegion(labels[i] as number);
    return any ? dice(labels, truth.data, inRegion) : Number.NaN;
  };
  return { tc: score(REGIONS.tc), wt: score(REGIONS.wt), et: score(REGIONS.et) };
}

/** Mean over cases per region, skipping NaN (MONAI DiceMetric `mean_batch`). */
export function meanDice(cases: readonly RegionDice[]): RegionDice {
  const mean = (k: keyof RegionDice): number => {
    const v = cases.map((c) => c[k]).filter((x) => !Number.isNaN(x));
    return v.length === 0 ? Number.NaN : v.reduce((a, b) => a + b, 0) / v.length;
  };
  return { tc: mean('tc'), wt: mean('wt'), et: mean('et') };
}
