/**
 * The model manifest: everything the pipeline needs to run a segmentation model exactly as it was trained and
 * validated (input channels and order, preprocessing, sliding-window settings, activation, threshold, label map,
 * expected spacing), plus what it is for. Validated with zod at every load.
 *
 * A manifest can be written by hand next to an ONNX file, or built from a MONAI bundle
 * (`configs/inference.json` + `configs/metadata.json`) with {@link manifestFromMonaiBundle} /
 * {@link loadMonaiBundle}.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { plausibilitySchema } from './flags.js';

const positiveInt = z.number().int().positive();

const regionSizes = z.strictObject({
  tc: z.number().min(0).optional(),
  wt: z.number().min(0).optional(),
  et: z.number().min(0).optional(),
});

/** The `postprocessing` section of a manifest. */
export const postprocessingSchema = z.strictObject({
  /** Connected components per region (MONAI `KeepLargestConnectedComponent`, `RemoveSmallObjects`). */
  components: z
    .strictObject({
      /** scikit-image connectivity: 1 (6 neighbours), 2 (18) or 3 (26, MONAI's `None`). */
      connectivity: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(3),
      /** Regions reduced to their largest component (a network's stray islands; not for multifocal disease). */
      keepLargest: z.array(z.enum(['tc', 'wt', 'et'])).default([]),
      /** Per region, components smaller than this many mm³ are removed. */
      minSizeMm3: regionSizes.prefault({}),
    })
    .prefault({}),
  /** RANO: a lesion is measurable when both diameters are at least this, mm. */
  minMeasurableMm: z.number().positive().default(10),
  plausibility: plausibilitySchema.prefault({}),
});
const triple = <T extends z.ZodType>(t: T) => z.tuple([t, t, t]);

const diceScore = z.number().min(0).max(1);

/**
 * The `evaluation` section of a manifest: what the model's authors measured on held-out data, per set (e.g. per
 * acquisition grid), so that a reader sees where the model was shown to work and a test can measure it again.
 * Informational for the pipeline (like a MONAI bundle's `eval_metrics`).
 */
export const evaluationSchema = z.strictObject({
  /** How the figures were measured (pipeline, metric, averaging). */
  summary: z.string().min(1),
  sets: z
    .array(
      z.strictObject({
        /** e.g. `1 mm axial 240×240×155`. */
        name: z.string().min(1),
        /** Synthetic held-out studies, when the set is generated: enough to generate them again. */
        phantom: z
          .strictObject({
            /** The generator, e.g. `@cdss/dicom generateTemplatePhantom`. */
            generator: z.string().min(1),
            seeds: z.array(z.union([z.int(), z.string().min(1)])).min(1),
            dims: triple(positiveInt),
            spacingMm: triple(z.number().positive()),
            /** The stored axis order (MONAI axcodes); the generator's own is `LPS`. */
            axcodes: z.string().regex(/^(?=.*[LR])(?=.*[PA])(?=.*[IS])[LRPAIS]{3}$/),
            tumourScale: z.number().positive().optional(),
          })
          .optional(),
        /** Mean Dice over the set's studies, per region. */
        dice: z.strictObject({ tc: diceScore, wt: diceScore, et: diceScore }),
      }),
    )
    .min(1),
});

/** Schema of a model manifest (`manifest.json`). */
export const modelManifestSchema = z
  .object({
    /** Manifest format version. */
    schemaVersion: z.literal(1),
    /** Model name, e.g. `brats-segresnet-demo`. */
    name: z.string().min(1),
    /** Model version (the bundle's `version`). */
    version: z.string().min(1),
    /** One-paragraph description. */
    description: z.string().default(''),
    /** What the model may be used for, verbatim from its authors. */
    intendedUse: z.string().min(1),
    /** `true` unless the model is cleared for clinical use; every CDSS output must then say so. */
    notForClinicalUse: z.boolean(),
    /** What the model was trained on, in words. */
    trainingData: z.string().optional(),
    /** The ONNX file. */
    model: z
      .object({
        /** Path of the `.onnx` file, relative to the manifest's folder (or absolute). */
        file: z.string().min(1),
        format: z.literal('onnx'),
        /** sha256 of the file; checked at load when present. */
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits')
          .optional(),
        /** Graph input name (the image). */
        inputName: z.string().min(1),
        /** Graph output name (the logits). */
        outputName: z.string().min(1),
        /** Every spatial size fed to the model must be a multiple of this (SegResNet: 8). */
        spatialMultiple: positiveInt.default(1),
      })
      .strict(),
    input: z
      .object({
        /** Channel names in the order the model expects them, e.g. `["T1c", "T1", "T2", "FLAIR"]`. */
        channels: z.array(z.string().min(1)).min(1),
        /** Voxel spacing in mm the model was trained at (BraTS: 1 mm isotropic). */
        spacingMm: triple(z.number().positive()),
        /**
         * What the input must already have had done to it (e.g. BraTS: co-registered to SRI24, skull-stripped,
         * 1 mm, background exactly 0). Informational: the pipeline cannot check it.
         */
        requires: z.string().default(''),
        /**
         * MONAI `Orientationd(axcodes)`: the direction each array axis runs, e.g. `RAS` (the MONAI bundles) or `LPS`
         * (DICOM's axial order). Inputs are reoriented to it, resampled to `spacingMm`, and the labels sent back.
         */
        axcodes: z
          .string()
          .regex(/^(?=.*[LR])(?=.*[PA])(?=.*[IS])[LRPAIS]{3}$/, 'three letters, one each of L/R, P/A and I/S')
          .default('RAS'),
        /** MONAI `NormalizeIntensity` settings, or `null` for none. */
        normalize: z.object({ nonzero: z.boolean(), channelWise: z.boolean() }).strict().nullable(),
      })
      .strict(),
    inference: z
      .object({
        /** Window size (MONAI `roi_size`). */
        roiSize: triple(positiveInt),
        /** Windows per run (MONAI `sw_batch_size`). */
        swBatchSize: positiveInt.default(1),
        /** Overlap in [0, 1). */
        overlap: z.union([z.number().min(0).lt(1), triple(z.number().min(0).lt(1))]).default(0.25),
        /** Blending. */
        mode: z.enum(['constant', 'gaussian']).default('constant'),
        /** Gaussian σ fraction. */
        sigmaScale: z.union([z.number().positive(), triple(z.number().positive())]).default(0.125),
        /** Padding value. */
        cval: z.number().default(0),
      })
      .strict(),
    output: z.discriminatedUnion('activation', [
      z
        .object({
          /** Multi-label output (one sigmoid per region channel), e.g. the BraTS bundle's TC/WT/ET. */
          activation: z.literal('sigmoid'),
          /** Output channel names in order. */
          channels: z.array(z.string().min(1)).min(1),
          /** `sigmoid >= threshold` is "on" (MONAI AsDiscrete). */
          threshold: z.number().gt(0).lt(1),
          /** Which output channel is tumour core, whole tumour, enhancing tumour. */
          regions: z
            .object({ tc: z.number().int().min(0), wt: z.number().int().min(0), et: z.number().int().min(0) })
            .strict(),
        })
        .strict(),
      z
        .object({
          /** Multi-class output: softmax then argmax over channels. */
          activation: z.literal('softmax'),
          /** Output channel (class) names in order. */
          channels: z.array(z.string().min(1)).min(2),
          /** The label written for each class (background first, usually 0). */
          classLabels: z.array(z.number().int().min(0).max(255)).min(2),
        })
        .strict(),
    ]),
    /** The labels of the output label map: value → name, e.g. `{"1": "NCR", "2": "ED", "4": "ET"}`. */
    labels: z.record(z.string().regex(/^\d+$/), z.string().min(1)),
    /** The enhancing-tumour label: 4 (BraTS ≤ 2021) or 3 (BraTS 2023). */
    etLabel: z.union([z.literal(3), z.literal(4)]),
    /** Lesion clean-up, measurement and plausibility thresholds (see `lesions.ts`, `flags.ts`). */
    postprocessing: postprocessingSchema.prefault({}),
    /** Held-out results measured by the model's authors (see {@link evaluationSchema}). */
    evaluation: evaluationSchema.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.output.activation === 'sigmoid') {
      for (const k of ['tc', 'wt', 'et'] as const) {
        if (m.output.regions[k] >= m.output.channels.length) {
          ctx.addIssue({
            code: 'custom',
            path: ['output', 'regions', k],
            message: `channel ${m.output.regions[k]} does not exist`,
          });
        }
      }
    } else if (m.output.classLabels.length !== m.output.channels.length) {
      ctx.addIssue({ code: 'custom', path: ['output', 'classLabels'], message: 'needs one label per output channel' });
    }
    if (!(String(m.etLabel) in m.labels)) {
      ctx.addIssue({ code: 'custom', path: ['labels'], message: `must name the enhancing-tumour label ${m.etLabel}` });
    }
    m.inference.roiSize.forEach((r, i) => {
      if (r % m.model.spatialMultiple !== 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['inference', 'roiSize', i],
          message: `${r} is not a multiple of model.spatialMultiple (${m.model.spatialMultiple})`,
        });
      }
    });
  });

/** A validated model manifest (defaults applied). */
export type ModelManifest = z.infer<typeof modelManifestSchema>;
/** A model manifest as written in JSON (defaults may be left out). */
export type ModelManifestInput = z.input<typeof modelManifestSchema>;

/**
 * Validates a manifest object.
 * @param value - parsed JSON
 * @returns the manifest with defaults applied
 * @throws {@link ValidationError} naming every bad field
 */
export function parseModelManifest(value: unknown): ModelManifest {
  const r = modelManifestSchema.safeParse(value);
  if (!r.success) throw ValidationError.fromZod(r.error, 'Invalid model manifest');
  return r.data;
}

/** A manifest read from disk, with the model file's absolute path. */
export interface LoadedManifest {
  /** The validated manifest. */
  manifest: ModelManifest;
  /** Absolute path of the ONNX file. */
  modelPath: string;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ValidationError(
      `Cannot read ${what}`,
      [{ path: '', message: `${path}: ${(e as Error).message}`, code: 'unreadable' }],
      {
        cause: e,
      },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ValidationError(
      `${what} is not JSON`,
      [{ path: '', message: (e as Error).message, code: 'invalid_json' }],
      { cause: e },
    );
  }
}

/**
 * sha256 of a file, hex.
 * @param path - the file
 * @returns 64 hex digits
 */
export async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/**
 * Reads and validates a `manifest.json`; checks the model file's sha256 when the manifest gives one.
 * @param manifestPath - path of the manifest
 * @returns the manifest and the model's absolute path
 * @throws {@link ValidationError} when the manifest is unreadable or invalid, or the model file is missing or
 *   its sha256 differs
 */
export async function loadModelManifest(manifestPath: string): Promise<LoadedManifest> {
  const manifest = parseModelManifest(await readJson(manifestPath, 'model manifest'));
  const modelPath = isAbsolute(manifest.model.file)
    ? manifest.model.file
    : resolve(dirname(manifestPath), manifest.model.file);
  await checkModelFile(modelPath, manifest.model.sha256);
  return { manifest, modelPath };
}

async function checkModelFile(modelPath: string, sha256: string | undefined): Promise<string> {
  let digest: string;
  try {
    digest = await sha256File(modelPath);
  } catch (e) {
    throw new ValidationError(
      'Model file missing',
      [{ path: 'model.file', message: `${modelPath}: ${(e as Error).message}`, code: 'unreadable' }],
      {
        cause: e,
      },
    );
  }
  if (sha256 !== undefined && digest !== sha256) {
    throw new ValidationError('Model file does not match the manifest', [
      { path: 'model.sha256', message: `file has sha256 ${digest}, manifest says ${sha256}`, code: 'sha256_mismatch' },
    ]);
  }
  return digest;
}

// ---------------------------------------------------------------------------------------------------------------
// MONAI bundle → manifest

const transformSchema = z.looseObject({ _target_: z.string() });
const composeSchema = z.looseObject({ _target_: z.string().optional(), transforms: z.array(transformSchema) });
const bundleInferenceSchema = z.looseObject({
  network_def: z.looseObject({
    _target_: z.string(),
    in_channels: positiveInt,
    out_channels: positiveInt,
  }),
  preprocessing: composeSchema,
  inferer: z.looseObject({
    _target_: z.string(),
    roi_size: z.union([triple(positiveInt), positiveInt]),
    sw_batch_size: positiveInt.optional(),
    overlap: z.union([z.number(), triple(z.number())]).optional(),
    mode: z.enum(['constant', 'gaussian']).optional(),
    sigma_scale: z.union([z.number(), triple(z.number())]).optional(),
    padding_mode: z.string().optional(),
    cval: z.number().optional(),
  }),
  postprocessing: composeSchema,
});
const channelDefSchema = z.record(z.string().regex(/^\d+$/), z.string().min(1));
const bundleMetadataSchema = z.looseObject({
  version: z.string().min(1),
  description: z.string().optional(),
  intended_use: z.string().optional(),
  image_classes: z.string().optional(),
  network_data_format: z.looseObject({
    inputs: z.record(
      z.string(),
      z.looseObject({
        num_channels: positiveInt.optional(),
        spatial_shape: z.array(z.union([z.string(), z.number()])).optional(),
        channel_def: channelDefSchema,
      }),
    ),
    outputs: z.record(z.string(), z.looseObject({ channel_def: channelDefSchema.optional() })),
  }),
});

/** Options of {@link manifestFromMonaiBundle}. */
export interface MonaiBundleOptions {
  /** Path of the ONNX export, relative to where the manifest will be (default `models/model.onnx`). */
  modelFile?: string;
  /** ONNX input name (default `image`, as MONAI's `onnx_export` examples name it). */
  inputName?: string;
  /** ONNX output name (default `pred`). */
  outputName?: string;
  /** Model name (default: the bundle folder name or `monai-bundle`). */
  name?: string;
  /** Voxel spacing; default: parsed from metadata `image_classes` (`… at 1x1x1 mm`), else an error. */
  spacingMm?: [number, number, number];
  /** sha256 of the ONNX file, recorded in the manifest. */
  sha256?: string;
  /** Overrides `notForClinicalUse` (default `true`, and `true` whenever `intended_use` says "not … diagnostic"). */
  notForClinicalUse?: boolean;
  /** Recorded as `trainingData`. */
  trainingData?: string;
  /** Axis codes of the model's input (default: the bundle's `Orientationd`, else `RAS`). */
  axcodes?: string;
  /** The `postprocessing` section (clean-up and plausibility thresholds). */
  postprocessing?: z.input<typeof postprocessingSchema>;
}

/** Transforms that change nothing the ONNX pipeline has to reproduce (loading, typing, saving, inversion of nothing). */
const NEUTRAL = new Set([
  'LoadImaged',
  'LoadImage',
  'EnsureTyped',
  'EnsureType',
  'ToTensord',
  'ToTensor',
  'CastToTyped',
  'EnsureChannelFirstd',
  'EnsureChannelFirst',
  'Invertd',
  'SaveImaged',
  'SaveImage',
  'CopyItemsd',
]);

function bad(message: string, path: string): ValidationError {
  return new ValidationError(`Unsupported MONAI bundle (${message})`, [{ path, message, code: 'unsupported' }]);
}

function shortName(target: string): string {
  const parts = target.split('.');
  return parts[parts.length - 1] ?? target;
}

/**
 * The bundle's label rule, e.g. `torch.where(x[[2]] > 0, 4, torch.where(x[[0]] > 0, 1, torch.where(x[[1]] > 0, 2, 0)))`:
 * returns the channel → label pairs in priority order.
 */
function parseLabelRule(func: string): { channel: number; label: number }[] | undefined {
  const re = /x\[\[(\d+)\]\]\s*>\s*0\s*,\s*(\d+)/g;
  const out: { channel: number; label: number }[] = [];
  for (let m = re.exec(func); m; m = re.exec(func)) out.push({ channel: Number(m[1]), label: Number(m[2]) });
  return out.length > 0 ? out : undefined;
}

function parseSpacing(text: string | undefined): [number, number, number] | undefined {
  const m = text ? /(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)\s*x\s*(\d+(?:\.\d+)?)\s*mm/i.exec(text) : null;
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * Builds a manifest from a MONAI bundle's `configs/inference.json` and `configs/metadata.json` (the model-zoo
 * layout, e.g. `brats_mri_segmentation`). Understands `NormalizeIntensityd`, `SlidingWindowInferer`,
 * `Activationsd` (sigmoid or softmax), `AsDiscreted` (threshold or argmax) and the BraTS `Lambdad` label rule.
 * Any other preprocessing transform (e.g. `Orientationd`, `Spacingd`, `CropForegroundd`) is refused, because
 * the pipeline would not reproduce it: do it upstream and remove it from the bundle config.
 * @param inference - parsed `configs/inference.json`
 * @param metadata - parsed `configs/metadata.json`
 * @param options - model file, graph names, spacing, name
 * @returns a validated manifest
 * @throws {@link ValidationError} when the bundle is malformed or uses something the pipeline cannot reproduce
 */
export function manifestFromMonaiBundle(
  inference: unknown,
  metadata: unknown,
  options: MonaiBundleOptions = {},
): ModelManifest {
  const inf = bundleInferenceSchema.safeParse(inference);
  if (!inf.success) throw ValidationError.fromZod(inf.error, 'Invalid MONAI bundle inference.json');
  const meta = bundleMetadataSchema.safeParse(metadata);
  if (!meta.success) throw ValidationError.fromZod(meta.error, 'Invalid MONAI bundle metadata.json');
  const cfg = inf.data;
  const md = meta.data;

  // Preprocessing.
  let normalize: ModelManifest['input']['normalize'] = null;
  let axcodes: string | undefined;
  let pixdim: [number, number, number] | undefined;
  cfg.preprocessing.transforms.forEach((t, i) => {
    const name = shortName(t._target_);
    if (name === 'NormalizeIntensityd' || name === 'NormalizeIntensity') {
      if (t['subtrahend'] !== undefined || t['divisor'] !== undefined) {
        throw bad('NormalizeIntensityd with subtrahend/divisor is not supported', `preprocessing.transforms.${i}`);
      }
      normalize = { nonzero: t['nonzero'] === true, channelWise: t['channel_wise'] === true };
    } else if ((name === 'Orientationd' || name === 'Orientation') && typeof t['axcodes'] === 'string') {
      axcodes = t['axcodes'].toUpperCase();
    } else if ((name === 'Spacingd' || name === 'Spacing') && t['pixdim'] !== undefined) {
      const p = t['pixdim'];
      const triple = typeof p === 'number' ? [p, p, p] : p;
      if (!Array.isArray(triple) || triple.length !== 3 || !triple.every((v) => typeof v === 'number' && v > 0))
        throw bad('Spacingd pixdim must be a positive number or three', `preprocessing.transforms.${i}.pixdim`);
      pixdim = triple as [number, number, number];
    } else if (!NEUTRAL.has(name)) {
      throw bad(
        `preprocessing transform ${name} is not reproduced by the pipeline; apply it upstream`,
        `preprocessing.transforms.${i}`,
      );
    }
  });

  // Inferer.
  const inferer = cfg.inferer;
  if (shortName(inferer._target_) !== 'SlidingWindowInferer') {
    throw bad(`inferer ${inferer._target_} is not supported (only SlidingWindowInferer)`, 'inferer._target_');
  }
  if (inferer.padding_mode !== undefined && inferer.padding_mode !== 'constant') {
    throw bad(`padding_mode ${inferer.padding_mode} is not supported (only constant)`, 'inferer.padding_mode');
  }
  const roi =
    typeof inferer.roi_size === 'number' ? [inferer.roi_size, inferer.roi_size, inferer.roi_size] : inferer.roi_size;

  // Postprocessing.
  let activation: 'sigmoid' | 'softmax' | undefined;
  let thresholdValue: number | undefined;
  let argmax = false;
  let rule: { channel: number; label: number }[] | undefined;
  cfg.postprocessing.transforms.forEach((t, i) => {
    const name = shortName(t._target_);
    const path = `postprocessing.transforms.${i}`;
    if (name === 'Activationsd' || name === 'Activations') {
      if (t['sigmoid'] === true) activation = 'sigmoid';
      else if (t['softmax'] === true) activation = 'softmax';
      else throw bad('Activationsd must set sigmoid or softmax', path);
    } else if (name === 'AsDiscreted' || name === 'AsDiscrete') {
      if (typeof t['threshold'] === 'number') thresholdValue = t['threshold'];
      else if (t['argmax'] === true) argmax = true;
      else throw bad('AsDiscreted must set threshold or argmax', path);
    } else if (name === 'Lambdad' || name === 'Lambda') {
      rule = typeof t['func'] === 'string' ? parseLabelRule(t['func']) : undefined;
      if (!rule) throw bad('Lambdad is not the BraTS label rule (torch.where(x[[c]] > 0, label, ...))', `${path}.func`);
    } else if (!NEUTRAL.has(name)) {
      throw bad(`postprocessing transform ${name} is not reproduced by the pipeline`, path);
    }
  });
  if (!activation) throw bad('no Activationsd in postprocessing', 'postprocessing');

  const inputs = Object.values(md.network_data_format.inputs);
  const outputs = Object.values(md.network_data_format.outputs);
  const inDef = inputs[0];
  if (!inDef) throw bad('metadata has no network_data_format input', 'network_data_format.inputs');
  const inChannels = Object.entries(inDef.channel_def)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([, v]) => v);
  if (inChannels.length !== cfg.network_def.in_channels) {
    throw bad(
      `channel_def names ${inChannels.length} channels, network_def.in_channels is ${cfg.network_def.in_channels}`,
      'network_def.in_channels',
    );
  }
  const outDef = outputs[0]?.channel_def ?? {};
  const outChannels = Array.from(
    { length: cfg.network_def.out_channels },
    (_, i) => outDef[String(i)] ?? `channel ${i}`,
  );
  const multiple = (inDef.spatial_shape ?? [])
    .map((s) => (typeof s === 'string' ? /^(\d+)\s*\*\s*n$/.exec(s)?.[1] : undefined))
    .filter((s): s is string => s !== undefined)
    .map(Number);

  let output: z.input<typeof modelManifestSchema>['output'];
  let labels: Record<string, string>;
  let etLabel: 3 | 4;
  if (activation === 'sigmoid') {
    if (thresholdValue === undefined) throw bad('sigmoid output needs AsDiscreted(threshold)', 'postprocessing');
    if (!rule || rule.length !== 3)
      throw bad('sigmoid output needs the 3-channel BraTS Lambdad label rule', 'postprocessing');
    // Priority order of the rule: ET first (its label), then TC (→ 1), then WT (→ 2).
    const [et, tc, wt] = rule as [
      { channel: number; label: number },
      { channel: number; label: number },
      { channel: number; label: number },
    ];
    if (tc.label !== 1 || wt.label !== 2 || (et.label !== 3 && et.label !== 4)) {
      throw bad(
        `label rule gives ET→${et.label}, TC→${tc.label}, WT→${wt.label}; expected ET→4 or 3, TC→1, WT→2`,
        'postprocessing',
      );
    }
    etLabel = et.label as 3 | 4;
    output = {
      activation,
      channels: outChannels,
      threshold: thresholdValue,
      regions: { tc: tc.channel, wt: wt.channel, et: et.channel },
    };
    labels = { '1': 'NCR', '2': 'ED', [String(etLabel)]: 'ET' };
  } else {
    if (!argmax) throw bad('softmax output needs AsDiscreted(argmax=True)', 'postprocessing');
    const classLabels = outChannels.map((_, i) => i);
    output = { activation, channels: outChannels, classLabels };
    labels = Object.fromEntries(outChannels.slice(1).map((n, i) => [String(i + 1), n]));
    const etIndex = outChannels.findIndex((n) => /enhanc|^ET$/i.test(n));
    if (etIndex !== 3 && etIndex !== 4) {
      throw bad(
        'a softmax bundle must name its enhancing-tumour class (index 3 or 4) in the output channel_def',
        'network_data_format.outputs',
      );
    }
    etLabel = etIndex;
  }

  const spacingMm = options.spacingMm ?? pixdim ?? parseSpacing(md.image_classes);
  if (!spacingMm) throw bad('metadata image_classes gives no "AxBxC mm" spacing; pass spacingMm', 'image_classes');
  const intendedUse = md.intended_use ?? 'not stated by the bundle';
  const notClinical = options.notForClinicalUse ?? true;
  return parseModelManifest({
    schemaVersion: 1,
    name: options.name ?? 'monai-bundle',
    version: md.version,
    description: md.description ?? '',
    intendedUse,
    notForClinicalUse: notClinical || /not\b.*\b(diagnos|clinical)/i.test(intendedUse),
    ...(options.trainingData !== undefined ? { trainingData: options.trainingData } : {}),
    ...(options.postprocessing ? { postprocessing: options.postprocessing } : {}),
    model: {
      file: options.modelFile ?? 'models/model.onnx',
      format: 'onnx',
      ...(options.sha256 !== undefined ? { sha256: options.sha256 } : {}),
      inputName: options.inputName ?? 'image',
      outputName: options.outputName ?? 'pred',
      spatialMultiple: multiple.length > 0 ? Math.max(...multiple) : 1,
    },
    input: {
      channels: inChannels,
      spacingMm,
      requires: md.image_classes ?? '',
      ...((options.axcodes ?? axcodes) ? { axcodes: options.axcodes ?? axcodes } : {}),
      normalize,
    },
    inference: {
      roiSize: roi,
      swBatchSize: inferer.sw_batch_size ?? 1,
      overlap: inferer.overlap ?? 0.25,
      mode: inferer.mode ?? 'constant',
      sigmaScale: inferer.sigma_scale ?? 0.125,
      cval: inferer.cval ?? 0,
    },
    output,
    labels,
    etLabel,
  });
}

/**
 * Reads a MONAI bundle folder (`configs/inference.json`, `configs/metadata.json`, the ONNX export at
 * `models/model.onnx` unless `options.modelFile` says otherwise) and builds its manifest, with the model's sha256.
 * @param bundleDir - the bundle's root folder
 * @param options - see {@link MonaiBundleOptions}
 * @returns the manifest and the model's absolute path
 * @throws {@link ValidationError} when a file is missing or the bundle is unsupported
 */
export async function loadMonaiBundle(bundleDir: string, options: MonaiBundleOptions = {}): Promise<LoadedManifest> {
  const inference = await readJson(join(bundleDir, 'configs', 'inference.json'), 'bundle configs/inference.json');
  const metadata = await readJson(join(bundleDir, 'configs', 'metadata.json'), 'bundle configs/metadata.json');
  const modelFile = options.modelFile ?? 'models/model.onnx';
  const modelPath = resolve(bundleDir, modelFile);
  const sha256 = await checkModelFile(modelPath, options.sha256);
  const name = options.name ?? (resolve(bundleDir).split(/[\\/]/).pop() || 'monai-bundle');
  const manifest = manifestFromMonaiBundle(inference, metadata, { ...options, modelFile, sha256, name });
  return { manifest, modelPath };
}
