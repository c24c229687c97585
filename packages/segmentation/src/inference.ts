/**
 * A segmentation model ready to run: a validated manifest plus an onnxruntime session in a worker thread.
 * This is the entry point an AI worker uses.
 * @packageDocumentation
 */
import {
  loadModelManifest,
  loadMonaiBundle,
  parseModelManifest,
  type ModelManifest,
  type MonaiBundleOptions,
} from './manifest.js';
import { OnnxWorkerSession, type OnnxSessionOptions, type OnnxTensorInfo } from './onnx-session.js';
import { SegmentationError } from './segmentation-errors.js';
import {
  runSegmentation,
  type SegmentationInput,
  type SegmentationOptions,
  type SegmentationResult,
} from './segmentation.js';

/** Where a model comes from. */
export type SegmentationModelSource =
  /** A `manifest.json` next to (or pointing at) its ONNX file. */
  | { manifestPath: string }
  /** A MONAI bundle folder with an ONNX export (see {@link loadMonaiBundle}). */
  | { bundleDir: string; bundle?: MonaiBundleOptions }
  /** A manifest object and the ONNX file's path. */
  | { manifest: unknown; modelPath: string };

/**
 * Checks that the ONNX graph accepts what the manifest will feed it: the input and output names exist, the input
 * is `[N, C, d0, d1, d2]` float32 with C = the manifest's channels, fixed spatial dimensions equal the window size,
 * a fixed batch of 1 only with `swBatchSize` 1, and a fixed output channel count equals the manifest's.
 * @param manifest - the manifest
 * @param inputs - the graph's inputs (from {@link OnnxWorkerSession.inputs})
 * @param outputs - the graph's outputs
 * @returns the list of mismatches (empty when compatible)
 */
export function manifestModelMismatches(
  manifest: ModelManifest,
  inputs: readonly OnnxTensorInfo[],
  outputs: readonly OnnxTensorInfo[],
): string[] {
  const problems: string[] = [];
  const input = inputs.find((i) => i.name === manifest.model.inputName);
  const output = outputs.find((o) => o.name === manifest.model.outputName);
  if (!input)
    problems.push(`model has no input '${manifest.model.inputName}' (it has ${inputs.map((i) => i.name).join(', ')})`);
  if (!output)
    problems.push(
      `model has no output '${manifest.model.outputName}' (it has ${outputs.map((o) => o.name).join(', ')})`,
    );
  const fixed = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;
  if (input) {
    if (input.type !== 'float32') problems.push(`input '${input.name}' is ${String(input.type)}, not float32`);
    if (input.shape.length !== 0 && input.shape.length !== 5) {
      problems.push(`input '${input.name}' has rank ${input.shape.length}; a 3-D model takes [N, C, d0, d1, d2]`);
    } else if (input.shape.length === 5) {
      const [n, c, ...sp] = input.shape;
      if (fixed(c) && c !== manifest.input.channels.length) {
        problems.push(
          `model input has ${c} channels; the manifest lists ${manifest.input.channels.length} (${manifest.input.channels.join(', ')})`,
        );
      }
      if (sp.some((d, i) => fixed(d) && d !== manifest.inference.roiSize[i])) {
        problems.push(
          `model input is fixed to ${sp.join('x')}; the manifest's window is ${manifest.inference.roiSize.join('x')}`,
        );
      }
      if (fixed(n) && n !== manifest.inference.swBatchSize) {
        problems.push(
          `model input batch is fixed to ${n}; the manifest's swBatchSize is ${manifest.inference.swBatchSize}`,
        );
      }
    }
  }
  if (output && output.shape.length === 5) {
    const c = output.shape[1];
    if (fixed(c) && c !== manifest.output.channels.length) {
      problems.push(`model output has ${c} channels; the manifest lists ${manifest.output.channels.length}`);
    }
  }
  return problems;
}

/**
 * A loaded segmentation model. Create with {@link SegmentationModel.load}; call {@link SegmentationModel.close}.
 *
 * @example
 * ```ts
 * const model = await SegmentationModel.load({ manifestPath: 'models/brats-demo/manifest.json' }, { intraOpNumThreads: 2 });
 * const data = stackChannels(model.manifest, { T1c, T1, T2, FLAIR }, dims);
 * const result = await model.segment({ data, shape: [4, ...dims], spacingMm: [1, 1, 1] }, { onProgress });
 * // result.labels (BraTS labels), result.volumes.wt.mL, result.wholeTumourDiameter?.mm
 * await model.close();
 * ```
 */
export class SegmentationModel {
  /** The validated manifest. */
  readonly manifest: ModelManifest;
  /** Absolute path of the ONNX file. */
  readonly modelPath: string;
  /** The onnxruntime session (in its worker thread). */
  readonly session: OnnxWorkerSession;

  private constructor(manifest: ModelManifest, modelPath: string, session: OnnxWorkerSession) {
    this.manifest = manifest;
    this.modelPath = modelPath;
    this.session = session;
  }

  /**
   * Loads the manifest, starts the onnxruntime worker and checks that the two agree.
   * @param source - a manifest file, a MONAI bundle folder, or a manifest object and model path
   * @param sessionOptions - onnxruntime threads and memory arena
   * @returns the ready model
   * @throws {@link ValidationError} for an invalid manifest/bundle or a model file whose sha256 differs;
   *   {@link SegmentationError} `MODEL_LOAD_FAILED` for a corrupt model, `MODEL_MISMATCH` when the manifest does not
   *   fit the model (the session is closed again)
   */
  static async load(
    source: SegmentationModelSource,
    sessionOptions: OnnxSessionOptions = {},
  ): Promise<SegmentationModel> {
    let manifest: ModelManifest;
    let modelPath: string;
    if ('manifestPath' in source) {
      ({ manifest, modelPath } = await loadModelManifest(source.manifestPath));
    } else if ('bundleDir' in source) {
      ({ manifest, modelPath } = await loadMonaiBundle(source.bundleDir, source.bundle));
    } else {
      manifest = parseModelManifest(source.manifest);
      modelPath = source.modelPath;
    }
    const session = await OnnxWorkerSession.create(modelPath, sessionOptions);
    const problems = manifestModelMismatches(manifest, session.inputs, session.outputs);
    if (problems.length > 0) {
      await session.close();
      throw new SegmentationError(
        'MODEL_MISMATCH',
        `manifest ${manifest.name} does not fit ${modelPath}: ${problems.join('; ')}`,
      );
    }
    return new SegmentationModel(manifest, modelPath, session);
  }

  /**
   * Segments one volume: normalise, sliding window over the ONNX model (in the worker thread), post-process.
   * @param input - `[C, d0, d1, d2]` float32 in the manifest's channel order, and its spacing
   * @param options - abort signal, progress, keep logits, spacing tolerance
   * @returns labels, volumes, diameter, timings
   * @throws {@link SegmentationError} `INVALID_INPUT`, `INFERENCE_FAILED`, `SESSION_CLOSED`, `ABORTED`
   */
  segment(input: SegmentationInput, options: SegmentationOptions = {}): Promise<SegmentationResult> {
    const { inputName, outputName } = this.manifest.model;
    return runSegmentation(
      input,
      this.manifest,
      async (batch) => {
        const dims = [batch.count, batch.channels, ...batch.roiSize];
        const r = await this.session.run(batch.data, dims, {
          inputName,
          outputName,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        return { data: r.data, channels: r.dims[1] ?? 0, networkMs: r.runMs, ...(r.input ? { input: r.input } : {}) };
      },
      options,
    );
  }

  /**
   * Stops the onnxruntime worker. Idempotent.
   * @returns when the worker has exited
   */
  close(): Promise<void> {
    return this.session.close();
  }
}
