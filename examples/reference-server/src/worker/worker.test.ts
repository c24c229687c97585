/**
 * The AI worker end to end over the embedded DICOM store and the in-memory job transport, with the demo model:
 * a good study is segmented (volumes near the phantom's ground truth, the SEG stored, progress in order), and bad
 * input — a missing modality, series on different grids, a corrupt model file, a manifest that does not fit the
 * network — each fails its job with a clear reason while the worker keeps serving.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JobClient,
  MemoryBroker,
  MemoryJobStore,
  MemoryTransport,
  RequestAnalysis,
  type JobRecord,
} from '@cdss/ai-jobs';
import {
  BRATS_LABELS,
  PHANTOM_SERIES,
  generatePhantom,
  generateTemplatePhantom,
  uidFromSeed,
  VoxelBufferPool,
  readSeg,
  volumeFromPart10,
  writeDicomSeries,
  writePhantomStudy,
  type Phantom,
} from '@cdss/dicom';
import { dciodvfyAvailable, dciodvfyErrors } from '@cdss/dicom/testing';
import { SegmentationModel, loadMonaiBundle } from '@cdss/segmentation';
import { OrthancClient, dicomString } from '@cdss/orthanc-client';
import { createDicomStoreEmulator, type DicomStoreEmulator } from '@cdss/sandbox';
import { createLogger } from '../logger.js';
import { DEMO_GRID } from '../compose.js';
import { DEMO_MODEL_BUNDLE } from '../paths.js';
import { createAiWorker, lazyModel, loadModel, type AiWorker, type ModelProvider } from './service.js';
import { analyseStudy, modelRef } from './analysis.js';
import { freePort } from '@cdss/core/testing';

const root = mkdtempSync(join(tmpdir(), 'cdss-worker-'));
let store: DicomStoreEmulator;
let orthanc: OrthancClient;
const broker = new MemoryBroker();
const jobs = new MemoryJobStore();
const client = new JobClient({ transport: new MemoryTransport({ broker }), store: jobs });
const workers: AiWorker[] = [];
const providers: ModelProvider[] = [];
let model: { id: string; version: string };

async function startWorker(provider: ModelProvider): Promise<void> {
  providers.push(provider);
  const worker = createAiWorker({
    transport: new MemoryTransport({ broker }),
    dicomweb: orthanc.dicomweb,
    model: provider,
    logger: createLogger('silent'),
  });
  await worker.start();
  workers.push(worker);
}

async function upload(phantom: Phantom, seed: string): Promise<ReturnType<typeof writePhantomStudy>> {
  const study = writePhantomStudy(phantom, { patientId: `worker-${seed}`, uidSeed: seed });
  await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
  return study;
}

async function run(
  study: ReturnType<typeof writePhantomStudy>,
  series: Record<'t1c' | 't1' | 't2' | 'flair', string>,
  modelRefOverride = model,
): Promise<JobRecord> {
  const job = await client.send(
    new RequestAnalysis({
      idempotencyKey: createHash('sha256')
        .update(`${study.studyInstanceUid}:${JSON.stringify(series)}:${modelRefOverride.id}`)
        .digest('base64url'),
      patientRef: 'Patient/worker-test',
      studyInstanceUid: study.studyInstanceUid,
      series,
      model: modelRefOverride,
      requestedBy: 'test',
    }),
  );
  let current = job;
  await expect
    .poll(
      async () => {
        current = (await jobs.get(job.jobId))!;
        return ['succeeded', 'failed', 'cancelled'].includes(current.state);
      },
      { timeout: 180_000, interval: 200 },
    )
    .toBe(true);
  return current;
}

const seriesOf = (study: ReturnType<typeof writePhantomStudy>) => ({
  t1c: study.series.t1c.seriesInstanceUid,
  t1: study.series.t1.seriesInstanceUid,
  t2: study.series.t2.seriesInstanceUid,
  flair: study.series.flair.seriesInstanceUid,
});

beforeAll(async () => {
  store = await createDicomStoreEmulator({ root: join(root, 'dicom'), port: await freePort() });
  orthanc = new OrthancClient({ baseUrl: store.url });
  await client.start();
  const provider = lazyModel(() => loadModel(DEMO_MODEL_BUNDLE));
  model = modelRef(await provider.get());
  await startWorker(provider);
}, 60_000);

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  for (const provider of providers) await provider.close();
  await client.stop();
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

describe('AI worker', () => {
  it('fails a study missing a modality with series-missing, then keeps serving', async () => {
    const study = await upload(generateTemplatePhantom({ seed: 'missing', ...DEMO_GRID }), 'missing');
    const failed = await run(study, { ...seriesOf(study), flair: '1.2.3.4.5.6.7.8.9' });
    expect(failed.state).toBe('failed');
    expect(failed.failure, JSON.stringify(failed.failure)).toMatchObject({ reason: 'series-missing' });
    expect(failed.failure?.detail).toMatch(/FLAIR/i);
  }, 90_000);

  it('fails series in another frame of reference with preprocessing-failed, naming the series', async () => {
    const study = await upload(generateTemplatePhantom({ seed: 'grid', ...DEMO_GRID }), 'grid');
    // A FLAIR of the same study acquired on another grid (not registered to the T1c).
    const other = generatePhantom({ seed: 'grid-other', dims: [48, 48, 40], spacing: DEMO_GRID.spacing });
    const flairUid = uidFromSeed('grid/other-flair');
    const files = writeDicomSeries(other.modalities.flair, {
      patient: { id: 'worker-grid', name: 'Grid^Test' },
      study: { instanceUid: study.studyInstanceUid },
      series: {
        instanceUid: flairUid,
        number: 9,
        description: 'AX FLAIR other grid',
        frameOfReferenceUid: uidFromSeed('grid/other-for'),
      },
      mr: PHANTOM_SERIES.flair.mr,
    });
    await orthanc.uploadInstances(files);
    const failed = await run(study, { ...seriesOf(study), flair: flairUid });
    expect(failed.failure?.reason).toBe('preprocessing-failed');
    expect(failed.failure?.detail).toContain(flairUid);
    expect(failed.failure?.detail).toMatch(/FLAIR.*FrameOfReferenceUID/);
  }, 90_000);

  it('analyses a study on another grid than the model’s: resampled in, labels back on the T1c grid, SEG and SR valid', async () => {
    // 3 mm voxels over the same 240 mm field of view (the model runs at 2 mm), and a FLAIR acquired on a coarser
    // grid of the same frame of reference (resampled onto the T1c grid first).
    const phantom = generateTemplatePhantom({ seed: 'resampled', dims: [80, 80, 60], spacing: [3, 3, 3] });
    const study = await upload(phantom, 'resampled');
    const coarse = generateTemplatePhantom({ seed: 'resampled', dims: [60, 60, 45], spacing: [4, 4, 4] });
    const flairUid = uidFromSeed('resampled/coarse-flair');
    await orthanc.uploadInstances(
      writeDicomSeries(coarse.modalities.flair, {
        patient: { id: 'worker-resampled', name: 'Resampled^Test' },
        study: { instanceUid: study.studyInstanceUid, description: 'Synthetic brain MRI' },
        series: {
          instanceUid: flairUid,
          number: 9,
          description: 'AX FLAIR 4mm',
          frameOfReferenceUid: study.frameOfReferenceUid,
        },
        mr: PHANTOM_SERIES.flair.mr,
      }),
    );
    const done = await run(study, { ...seriesOf(study), flair: flairUid });
    expect(done.state, JSON.stringify(done.failure)).toBe('succeeded');
    const result = done.result!;
    const voxelMl = 27 / 1000;
    let truthWhole = 0;
    for (const label of phantom.labels.data) if (label !== BRATS_LABELS.background) truthWhole += voxelMl;
    const whole = result.regions.find((r) => r.region === 'whole-tumour')!;
    expect(Math.abs(whole.volumeMl - truthWhole) / truthWhole).toBeLessThan(0.3);
    // volumes are counted on the T1c grid (3 mm voxels), never on the model's
    expect(whole.volumeMl).toBeCloseTo(whole.voxelCount * voxelMl, 9);
    expect(result.lesions?.length).toBeGreaterThan(0);
    expect(result.sumOfProductsMm2).toBeGreaterThanOrEqual(0);
    expect(Array.isArray(result.flags)).toBe(true);

    const fetch = async (uid: string): Promise<Uint8Array> => {
      const [instance] = await orthanc.dicomweb.searchForInstances(study.studyInstanceUid, uid);
      const sop = dicomString(instance!, 'SOPInstanceUID')!;
      return orthanc.dicomweb.retrieveInstance(study.studyInstanceUid, uid, sop);
    };
    const seg = await fetch(result.segmentation.seriesInstanceUid);
    const sr = await fetch(result.structuredReport!.seriesInstanceUid);
    const labels = readSeg(seg, { grid: volumeFromPart10(study.series.t1c.files) });
    expect(labels.labels.dims).toEqual([80, 80, 60]);
    expect(labels.segments.every((x) => x.algorithmType === 'AUTOMATIC')).toBe(true);
    if (dciodvfyAvailable()) expect(dciodvfyErrors([seg, sr])).toEqual([]);
  }, 300_000);

  it('gives the downloaded volumes back to its pool when an analysis ends, failed or not', async () => {
    const study = await upload(generateTemplatePhantom({ seed: 'pooled', ...DEMO_GRID }), 'pooled');
    /** Tracks the buffers handed out and not given back. */
    class TrackingPool extends VoxelBufferPool {
      readonly out = new Set<ArrayBufferLike>();
      override acquire(byteLength: number): ArrayBuffer {
        const buffer = super.acquire(byteLength);
        this.out.add(buffer);
        return buffer;
      }
      override release(target: Parameters<VoxelBufferPool['release']>[0]): void {
        this.out.delete(target instanceof ArrayBuffer ? target : 'data' in target ? target.data.buffer : target.buffer);
        super.release(target);
      }
    }
    const pool = new TrackingPool();
    const base = {
      dicomweb: orthanc.dicomweb,
      model: await providers[0]!.get(),
      studyInstanceUid: study.studyInstanceUid,
      signal: AbortSignal.timeout(180_000),
      progress: async () => undefined,
      pool,
    };
    await analyseStudy({ ...base, jobId: 'pooled-1', series: seriesOf(study) });
    expect(pool.out.size).toBe(0);
    expect(pool.retainedBytes).toBeGreaterThan(0);
    const failed = await analyseStudy({
      ...base,
      jobId: 'pooled-2',
      series: { ...seriesOf(study), flair: '1.2.3.4.5.6.7.8.9' },
    }).catch((e: unknown) => e);
    expect(failed).toMatchObject({ reason: 'series-missing' });
    expect(pool.out.size).toBe(0);
  }, 300_000);

  it('segments a synthetic study: progress in order, SEG stored, volumes near the ground truth', async () => {
    const phantom = generateTemplatePhantom({ seed: 'good', ...DEMO_GRID });
    const study = await upload(phantom, 'good');
    const done = await run(study, seriesOf(study));
    expect(done.state, JSON.stringify(done.failure)).toBe('succeeded');
    const voxelMl = DEMO_GRID.spacing.reduce((a, b) => a * b, 1) / 1000;
    const truth = { whole: 0, core: 0 };
    for (const label of phantom.labels.data) {
      if (label !== BRATS_LABELS.background) truth.whole += voxelMl;
      if (label === BRATS_LABELS.necrosis || label === BRATS_LABELS.enhancing) truth.core += voxelMl;
    }
    const found = Object.fromEntries(done.result!.regions.map((r) => [r.region, r.volumeMl]));
    // The demo model segments held-out phantoms with Dice >= 0.8 per region; volumes follow within a quarter.
    expect(Math.abs(found['whole-tumour']! - truth.whole) / truth.whole).toBeLessThan(0.25);
    expect(Math.abs(found['tumour-core']! - truth.core) / truth.core).toBeLessThan(0.25);
    const segs = await orthanc.dicomweb.searchForSeries(study.studyInstanceUid, { match: { Modality: 'SEG' } });
    expect(segs).toHaveLength(1);
    expect(done.result!.timingsMs.inference).toBeGreaterThan(0);
  }, 300_000);

  it('fails jobs with unsupported-model when the model file is corrupt or does not fit its manifest, and keeps serving', async () => {
    // A second worker group on its own broker, serving a broken copy of the bundle.
    const corrupt = join(root, 'corrupt', 'brats-demo');
    cpSync(DEMO_MODEL_BUNDLE, corrupt, { recursive: true });
    writeFileSync(join(corrupt, 'models', 'model.onnx'), Buffer.from('this is not an ONNX model'));
    const provider = lazyModel(() => loadModel(corrupt));
    await expect(provider.get()).rejects.toMatchObject({ reason: 'unsupported-model' });

    const { manifest, modelPath } = await loadMonaiBundle(DEMO_MODEL_BUNDLE);
    const misfit = lazyModel(() =>
      SegmentationModel.load({
        manifest: { ...manifest, input: { ...manifest.input, channels: ['t1c', 't1', 't2'] } },
        modelPath,
      }),
    );
    const error = (await misfit.get().then(
      () => undefined,
      (e: unknown) => e,
    )) as { reason: string; detail: string } | undefined;
    expect(error).toMatchObject({ reason: 'unsupported-model' });
    expect(error?.detail).toMatch(/channel/i);

    // Through the queue: the broken worker fails the job with the reason, then a repaired file serves again.
    const isolated = new MemoryBroker();
    const isolatedStore = new MemoryJobStore();
    const isolatedClient = new JobClient({
      transport: new MemoryTransport({ broker: isolated }),
      store: isolatedStore,
    });
    await isolatedClient.start();
    const broken = createAiWorker({
      transport: new MemoryTransport({ broker: isolated }),
      dicomweb: orthanc.dicomweb,
      model: provider,
      logger: createLogger('silent'),
    });
    await broken.start();
    try {
      const study = await upload(generateTemplatePhantom({ seed: 'broken', ...DEMO_GRID }), 'broken');
      const request = (key: string) =>
        isolatedClient.send(
          new RequestAnalysis({
            idempotencyKey: key,
            patientRef: 'Patient/worker-test',
            studyInstanceUid: study.studyInstanceUid,
            series: seriesOf(study),
            model,
            requestedBy: 'test',
          }),
        );
      const first = await request('broken-1');
      await expect
        .poll(async () => (await isolatedStore.get(first.jobId))?.failure?.reason, { timeout: 30_000 })
        .toBe('unsupported-model');
      copyFileSync(join(DEMO_MODEL_BUNDLE, 'models', 'model.onnx'), join(corrupt, 'models', 'model.onnx'));
      const second = await request('broken-2');
      await expect
        .poll(async () => ['succeeded', 'failed'].includes((await isolatedStore.get(second.jobId))?.state ?? ''), {
          timeout: 60_000,
        })
        .toBe(true);
      const repaired = await isolatedStore.get(second.jobId);
      expect(repaired?.state, JSON.stringify(repaired?.failure)).toBe('succeeded');
    } finally {
      await broken.stop();
      await provider.close();
      await isolatedClient.stop();
    }
  }, 300_000);
});
