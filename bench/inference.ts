/**
 * Segmentation pipeline (normalise, sliding window over onnxruntime in a worker, post-process) vs bare session.run.
 *
 * Two inputs, both synthetic phantoms in the BraTS layout: one window of BENCH_WINDOW (default 240×240×160, the
 * bundle's roi) and a whole study of BENCH_STUDY (default 240×240×155, padded to one 240×240×160 window as MONAI
 * does). For each, the pipeline (`SegmentationModel.segment`, whole: normalisation, padding, transfer to the worker,
 * stitching, sigmoid, labels; the raw labels' volumes and diameter are measured only when read, and only the e2e
 * line's `studyFindings` measures — the cleaned labels) is timed against a bare onnxruntime-node `session.run` on the
 * same normalised, padded input in the main thread, with the same session options. Each variant runs in its own
 * child process so that its peak RSS (`process.resourceUsage().maxRSS`) is its own; the memory arena is measured
 * on and off for the pipeline.
 *
 * Timing runs bare and pipeline interleaved in one process (machine drift hits both alike); the pipeline also
 * reports its own session.run time, so 'everything else' is measured inside the same run.
 *
 * Settings (environment): BENCH_MODEL (manifest.json; default models/brats-demo/manifest.json, else the reference
 * fixture model), BENCH_WINDOW / BENCH_STUDY ("240,240,160"), BENCH_THREADS (default: available parallelism),
 * BENCH_REPS (timed rounds, default 3, each running both sides, in alternating order), BENCH_WARMUP (untimed
 * full-size rounds first, default 1).
 * The last line is the JSON result: pipeline time for the whole study vs the bare session.run baseline.
 *
 * End to end (`e2e`, issue #18): the model as shipped (the demo model: 2 mm LPS, 64×64×48 windows, overlap 0.5,
 * Gaussian blending) on a 1 mm 240×240×155 template phantom (what the model was trained on) in DICOM's axial order,
 * so the run includes everything the worker does between download and storage: `prepareStudy` (frame-of-reference
 * check, Orientation, Spacing 1 mm → 2 mm, channel stacking), `segment` (normalisation, the sliding window with its
 * 27 windows in the onnxruntime worker thread, blending, labels) and `studyFindings` (connected-component clean-up,
 * labels resampled back onto the 1 mm T1c grid, volumes, RANO lesion measurements, plausibility flags). Its baseline
 * is bare `session.run` in the main thread on exactly the windows the pipeline's network receives (taken from the
 * same sliding window beforehand), one call per window, summed. Its peak RSS is the worker-path line's for the same
 * grid (a cold run in a process of its own).
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { generatePhantom, generateTemplatePhantom, type Volume } from '@cdss/dicom';
import {
  SegmentationModel,
  loadModelManifest,
  normalizeIntensity,
  planWindows,
  prepareStudy,
  slidingWindowInference,
  studyFindings,
  volumesToInput,
  type ModelManifest,
} from '@cdss/segmentation';
import { median } from './_lib.js';

type Vec3 = [number, number, number];
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');

function vec(name: string, fallback: Vec3): Vec3 {
  const raw = process.env[name];
  if (!raw) return fallback;
  const v = raw.split(/[,x]/).map(Number);
  if (v.length !== 3 || v.some((n) => !Number.isInteger(n) || n < 8 || n > 512))
    throw new Error(`${name} must be three integers 8..512`);
  return v as Vec3;
}
function int(name: string, fallback: number, min: number, max: number): number {
  const v = process.env[name] === undefined ? fallback : Number(process.env[name]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer ${min}..${max}`);
  return v;
}

const THREADS = int('BENCH_THREADS', availableParallelism(), 1, 256);
const REPS = int('BENCH_REPS', 3, 1, 7);
const WARMUP = int('BENCH_WARMUP', 1, 0, 3);

function manifestPath(): string {
  if (process.env['BENCH_MODEL']) return resolve(process.env['BENCH_MODEL']);
  const demo = join(root, 'models', 'brats-demo', 'manifest.json');
  if (existsSync(demo)) return demo;
  throw new Error('no model: train the demo model (tools/monai-reference) or set BENCH_MODEL to a manifest.json');
}

/** The part of onnxruntime-node's API the baseline uses (bench does not depend on it directly). */
interface BareOrt {
  InferenceSession: {
    create(
      path: string,
      options: Record<string, unknown>,
    ): Promise<{
      run(feeds: Record<string, unknown>, outputs: string[]): Promise<Record<string, unknown>>;
      release(): Promise<void>;
    }>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
}

/** What a memory child reports. */
interface MemoryResult {
  ms: number;
  maxRssMiB: number;
}

/** The bundle's inferer (roi 240×240×160, overlap 0.5, constant blending, batch 1) instead of the model's own. */
function withRoi(m: ModelManifest, roi: Vec3): ModelManifest {
  return { ...m, inference: { ...m.inference, roiSize: roi, swBatchSize: 1, overlap: 0.5, mode: 'constant' } };
}

function phantomInput(m: ModelManifest, dims: Vec3): ReturnType<typeof volumesToInput> {
  const p = generatePhantom({ seed: 'bench-inference', dims, spacing: m.input.spacingMm });
  return volumesToInput(m, p.modalities);
}

/**
 * The four channels of an LPS phantom study (1 mm by default), as the worker downloads them (float32 volumes): on the
 * MNI template (what the demo model was trained on), or the concentric-ellipsoid phantom, which needs no template in
 * memory (the worker-path memory children).
 */
function studyChannels(
  dims: Vec3,
  spacing: Vec3 = [1, 1, 1],
  template = false,
): Record<string, { volume: Volume; frameOfReferenceUid: string }> {
  const options = { seed: 'bench-inference', dims, spacing };
  const p = template ? generateTemplatePhantom(options) : generatePhantom(options);
  const ch = (v: Volume) => ({ volume: { ...v, data: Float32Array.from(v.data) }, frameOfReferenceUid: '2.25.1' });
  return { t1c: ch(p.modalities.t1c), t1: ch(p.modalities.t1), t2: ch(p.modalities.t2), flair: ch(p.modalities.flair) };
}

/**
 * The windows the pipeline's network receives for a prepared study: the same sliding window run with a predictor
 * that only keeps a copy of each window (and answers zeros).
 */
async function networkWindows(
  m: ModelManifest,
  prepared: ReturnType<typeof prepareStudy>,
): Promise<{ data: Float32Array; dims: number[] }[]> {
  const { input } = prepared;
  const x =
    m.input.normalize && !prepared.normalized
      ? normalizeIntensity(input.data, input.shape, m.input.normalize).data
      : input.data;
  const windows: { data: Float32Array; dims: number[] }[] = [];
  await slidingWindowInference(
    x.slice(),
    input.shape,
    (batch) => {
      windows.push({ data: batch.data.slice(), dims: [batch.count, batch.channels, ...batch.roiSize] });
      const roi = batch.roiSize[0] * batch.roiSize[1] * batch.roiSize[2];
      return {
        data: new Float32Array(batch.count * m.output.channels.length * roi),
        channels: m.output.channels.length,
      };
    },
    m.inference,
  );
  return windows;
}

/** End to end vs bare session.run on the same windows (interleaved, one process). */
async function timingEndToEnd(dims: Vec3): Promise<{ bare: number; e2e: number; network: number; windows: number }> {
  const { manifest: m, modelPath } = await loadModelManifest(manifestPath());
  const channels = studyChannels(dims, [1, 1, 1], true);
  const { ort, session } = await bareSession(modelPath, true);
  const model = await SegmentationModel.load({ manifest: m, modelPath }, { intraOpNumThreads: THREADS });
  // the bare side runs exactly the pipeline's windows, prepared outside the timed calls
  const windows = await networkWindows(m, prepareStudy(m, channels));
  const bare: number[] = [];
  const e2e: number[] = [];
  const network: number[] = [];
  const stages = { prepare: [] as number[], post: [] as number[], segment: [] as number[] };
  try {
    for (let r = 0; r < WARMUP + REPS; r++) {
      const runBare = async (): Promise<number> => {
        let ms = 0;
        for (const w of windows) {
          const t = performance.now();
          await session.run({ [m.model.inputName]: new ort.Tensor('float32', w.data, w.dims) }, [m.model.outputName]);
          ms += performance.now() - t;
        }
        return ms;
      };
      const runEndToEnd = async () => {
        const t = performance.now();
        const prepared = prepareStudy(m, channels);
        const t1 = performance.now();
        const res = await model.segment(prepared.input, { keepLogits: true, inputNormalized: prepared.normalized });
        const t2 = performance.now();
        const findings = studyFindings(res, prepared, m);
        const end = performance.now();
        if (findings.labels.dims.join() !== dims.join()) throw new Error('labels are not on the study grid');
        if (res.windows !== windows.length)
          throw new Error(`${res.windows} windows, the baseline ran ${windows.length}`);
        return { ms: end - t, networkMs: res.timings.networkMs, prepare: t1 - t, segment: t2 - t1, post: end - t2 };
      };
      // Each round alternates which side goes first.
      let b: number;
      let p: Awaited<ReturnType<typeof runEndToEnd>>;
      if (r % 2 === 0) {
        b = await runBare();
        p = await runEndToEnd();
      } else {
        p = await runEndToEnd();
        b = await runBare();
      }
      if (r >= WARMUP) {
        bare.push(b);
        e2e.push(p.ms);
        network.push(p.networkMs);
        stages.prepare.push(p.prepare);
        stages.segment.push(p.segment - p.networkMs);
        stages.post.push(p.post);
      }
    }
  } finally {
    await model.close();
    await session.release();
  }
  const result = { bare: median(bare), e2e: median(e2e), network: median(network), windows: windows.length };
  const roi = m.inference.roiSize.join('x');
  process.stdout.write(
    `e2e     ${dims.join('x')} at 1 mm LPS, model as shipped (${m.input.spacingMm.join('x')} mm ${m.input.axcodes}, ` +
      `${windows.length} windows of ${roi}): bare session.run on the same windows ${result.bare.toFixed(0)} ms, ` +
      `end to end ${result.e2e.toFixed(0)} ms (${((result.e2e / result.bare - 1) * 100).toFixed(1)}% vs bare; ` +
      `prepareStudy ${median(stages.prepare).toFixed(0)} ms, its own session.run ${result.network.toFixed(0)} ms, ` +
      `rest of segment ${median(stages.segment).toFixed(0)} ms, studyFindings ${median(stages.post).toFixed(0)} ms)\n`,
  );
  return result;
}

/** The baseline: onnxruntime-node as a caller would use it without this package, in the main thread. */
async function bareSession(
  modelPath: string,
  arena: boolean,
): Promise<{ ort: BareOrt; session: Awaited<ReturnType<BareOrt['InferenceSession']['create']>> }> {
  const ort = createRequire(createRequire(import.meta.url).resolve('@cdss/segmentation/package.json'))(
    'onnxruntime-node',
  ) as BareOrt;
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    enableCpuMemArena: arena,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    executionProviders: ['cpu'],
  });
  return { ort, session };
}

/** The normalised input padded to the single window: exactly the tensor the pipeline's one window receives. */
function bareTensorData(
  m: ModelManifest,
  input: ReturnType<typeof volumesToInput>,
  roi: Vec3,
  normalized = false,
): { data: Float32Array; dims: number[] } {
  const dims = input.shape.slice(1) as Vec3;
  const norm =
    m.input.normalize && !normalized ? normalizeIntensity(input.data, input.shape, m.input.normalize).data : input.data;
  const plan = planWindows(dims, roi, 0.5);
  if (plan.starts.length !== 1)
    throw new Error(
      `the baseline needs one window; ${dims.join('x')} with roi ${roi.join('x')} has ${plan.starts.length}`,
    );
  const [p0, p1, p2] = plan.paddedSize;
  const padded = new Float32Array(4 * p0 * p1 * p2);
  for (let c = 0; c < 4; c++)
    for (let i = 0; i < dims[0]; i++)
      for (let j = 0; j < dims[1]; j++) {
        const from = ((c * dims[0] + i) * dims[1] + j) * dims[2];
        const to = ((c * p0 + i + plan.padBefore[0]) * p1 + j + plan.padBefore[1]) * p2 + plan.padBefore[2];
        padded.set(norm.subarray(from, from + dims[2]), to);
      }
  return { data: padded, dims: [1, 4, p0, p1, p2] };
}

/** One variant alone in this process, for its own peak RSS. */
async function memoryChild(variant: string, dims: Vec3, roi: Vec3, arena: boolean): Promise<MemoryResult> {
  const { manifest, modelPath } = await loadModelManifest(manifestPath());
  const m = withRoi(manifest, roi);
  // only the session-level variants take a prepared input; the worker paths build theirs from the study, timed
  const input = variant === 'bare' || variant === 'pipeline' ? phantomInput(m, dims) : undefined;
  const t = performance.now();
  if (variant === 'worker') {
    // the demo model as it is (its own grid): the study is resampled onto it and the labels back
    const model = await SegmentationModel.load(
      { manifest, modelPath },
      { intraOpNumThreads: THREADS, enableCpuMemArena: arena },
    );
    const prepared = prepareStudy(manifest, studyChannels(dims, roi));
    studyFindings(
      await model.segment(prepared.input, { keepLogits: true, inputNormalized: prepared.normalized }),
      prepared,
      manifest,
    );
    await model.close();
  } else if (variant === 'bare') {
    const { ort, session } = await bareSession(modelPath, arena);
    const x = bareTensorData(m, input!, roi);
    await session.run({ [m.model.inputName]: new ort.Tensor('float32', x.data, x.dims) }, [m.model.outputName]);
    await session.release();
  } else {
    const model = await SegmentationModel.load(
      { manifest: m, modelPath },
      { intraOpNumThreads: THREADS, enableCpuMemArena: arena },
    );
    await model.segment(input!);
    await model.close();
  }
  return { ms: performance.now() - t, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

function runChild(variant: string, dims: Vec3, roi: Vec3, arena: boolean): Promise<MemoryResult> {
  return new Promise((resolvePromise, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ['--child', variant, dims.join(','), roi.join(','), String(arena)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    c.on('message', (msg: MemoryResult) => resolvePromise(msg));
    c.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${variant} child exited with code ${code}`));
    });
  });
}

/** Timing: bare and pipeline interleaved in this one process, so that machine drift affects both alike. */
async function timing(label: string, dims: Vec3, roi: Vec3): Promise<{ bare: number; pipe: number; network: number }> {
  const { manifest, modelPath } = await loadModelManifest(manifestPath());
  const m = withRoi(manifest, roi);
  const input = phantomInput(m, dims);
  const { ort, session } = await bareSession(modelPath, true);
  const model = await SegmentationModel.load({ manifest: m, modelPath }, { intraOpNumThreads: THREADS });
  const bare: number[] = [];
  const pipe: number[] = [];
  const network: number[] = [];
  let windows = 0;
  try {
    for (let r = 0; r < WARMUP + REPS; r++) {
      const x = bareTensorData(m, input!, roi); // prepared outside the timed call
      const runBare = async (): Promise<number> => {
        const t = performance.now();
        await session.run({ [m.model.inputName]: new ort.Tensor('float32', x.data, x.dims) }, [m.model.outputName]);
        return performance.now() - t;
      };
      const runPipeline = async (): Promise<{ ms: number; networkMs: number }> => {
        const t = performance.now();
        const res = await model.segment(input);
        windows = res.windows;
        return { ms: performance.now() - t, networkMs: res.timings.networkMs };
      };
      // Each round alternates which side goes first, so neither always runs on a cache or thread pool the other warmed.
      let b: number;
      let p: { ms: number; networkMs: number };
      if (r % 2 === 0) {
        b = await runBare();
        p = await runPipeline();
      } else {
        p = await runPipeline();
        b = await runBare();
      }
      if (r >= WARMUP) {
        bare.push(b);
        pipe.push(p.ms);
        network.push(p.networkMs);
      }
    }
  } finally {
    await model.close();
    await session.release();
  }
  const result = { bare: median(bare), pipe: median(pipe), network: median(network) };
  process.stdout.write(
    `${label.padEnd(7)} ${dims.join('x')} (${windows} window of ${roi.join('x')}): bare session.run ${result.bare.toFixed(0)} ms, ` +
      `pipeline ${result.pipe.toFixed(0)} ms (${((result.pipe / result.bare - 1) * 100).toFixed(1)}% vs bare; ` +
      `its own session.run ${result.network.toFixed(0)} ms, everything else ${(result.pipe - result.network).toFixed(0)} ms = ` +
      `${(((result.pipe - result.network) / result.network) * 100).toFixed(1)}%)\n`,
  );
  return result;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const [variant, dims, roi, arena] = process.argv.slice(3) as [string, string, string, string];
    const r = await memoryChild(
      variant,
      dims.split(',').map(Number) as Vec3,
      roi.split(',').map(Number) as Vec3,
      arena === 'true',
    );
    process.send?.(r);
    return;
  }
  const window = vec('BENCH_WINDOW', [240, 240, 160]);
  const study = vec('BENCH_STUDY', [240, 240, 155]);
  const roi = window;
  process.stdout.write(`model ${manifestPath()}, threads ${THREADS}, reps ${REPS}, warm-up ${WARMUP}\n`);
  await timing('window', window, roi);
  const s = await timing('study', study, roi);
  const e = await timingEndToEnd(study);
  // Peak memory: each variant alone in a fresh process (maxRSS covers the onnxruntime worker thread too).
  const mem: [string, MemoryResult][] = [];
  for (const [name, variant, arena] of [
    ['bare session.run, arena on', 'bare', true],
    ['pipeline, arena on', 'pipeline', true],
    ['bare session.run, arena off', 'bare', false],
    ['pipeline, arena off', 'pipeline', false],
  ] as const) {
    const r = await runChild(variant, study, roi, arena);
    mem.push([name, r]);
    process.stdout.write(
      `peak RSS, study, ${name.padEnd(28)} ${r.maxRssMiB.toFixed(0)} MiB (one cold run ${r.ms.toFixed(0)} ms)\n`,
    );
  }
  // The worker's path with the model as it is, on the two studies issue #18 names: time and peak RSS of one cold run.
  const studies: [string, Vec3, Vec3][] = [
    ['1 mm', [240, 240, 155], [1, 1, 1]],
    ['0.9x0.9x3 mm axial', [256, 256, 50], [0.9, 0.9, 3]],
  ];
  const worker: Record<string, MemoryResult> = {};
  for (const [name, dims, spacing] of studies) {
    // the spacing travels in the roi slot of the child's arguments
    const r = await runChild('worker', dims, spacing, true);
    worker[`${dims.join('x')} at ${name}`] = r;
    process.stdout.write(
      `worker path, model as shipped, ${dims.join('x')} at ${name}: ${r.ms.toFixed(0)} ms cold (load, prepareStudy, segment, studyFindings), peak RSS ${r.maxRssMiB.toFixed(0)} MiB\n`,
    );
  }
  process.stdout.write(
    JSON.stringify({
      bench: 'inference',
      unit: 'ms',
      value: Math.round(s.pipe),
      baseline: Math.round(s.bare),
      baseline_name: `bare onnxruntime-node session.run on the same ${study.join('x')} study (normalised, padded to ${roi.join('x')}), same process, interleaved`,
      ratio: Number((s.pipe / s.bare).toFixed(4)),
      e2e: {
        value: Math.round(e.e2e),
        baseline: Math.round(e.bare),
        ratio: Number((e.e2e / e.bare).toFixed(4)),
        windows: e.windows,
        peak_rss_mib: Math.round(worker[`${study.join('x')} at 1 mm`]?.maxRssMiB ?? NaN),
        what: `prepareStudy + segment + studyFindings, the model as shipped, on a 1 mm LPS ${study.join('x')} study vs bare session.run on the same ${e.windows} windows (summed); peak RSS from the worker-path child of the same grid`,
      },
      peak_rss_mib: Object.fromEntries(mem.map(([name, r]) => [name, Math.round(r.maxRssMiB)])),
      worker_path: Object.fromEntries(
        Object.entries(worker).map(([k, r]) => [k, { ms: Math.round(r.ms), peak_rss_mib: Math.round(r.maxRssMiB) }]),
      ),
    }) + '\n',
  );
}

await main();
