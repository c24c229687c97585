/**
 * The AI worker as a service: consumes analysis jobs from `@cdss/ai-jobs`, runs {@link analyseStudy}, and exposes the
 * HTTP endpoints of the original architecture's AI server (`/healthz`, `/models`, `POST /analyze` for a direct
 * analysis of a study). Limits: jobs in flight (prefetch), a per-job timeout, the largest input grid.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { timingSafeEqual, createHash, randomUUID } from 'node:crypto';
import express from 'express';
import { z } from 'zod';
import { JobFailure, JobWorker, type JobTransport } from '@cdss/ai-jobs';
import { StudySeriesError, VoxelBufferPool } from '@cdss/dicom';
import { SegmentationModel, loadModelManifest, loadMonaiBundle } from '@cdss/segmentation';
import { findStudySeries, type DicomWebClient } from '@cdss/orthanc-client';
import type { Logger } from 'pino';
import { analyseStudy, modelRef, type PreprocessHook } from './analysis.js';

/**
 * The model a worker serves, loaded on first use. A model that fails to load (a corrupt file, a manifest that does not
 * fit the network) fails each job with a clear reason instead of stopping the worker, and loading is tried again on
 * the next job, so replacing the file repairs the worker without a restart.
 */
export interface ModelProvider {
  /** @throws {@link JobFailure} `unsupported-model` when the model cannot be loaded */
  get(): Promise<SegmentationModel>;
  close(): Promise<void>;
}

/**
 * Loads the model the worker serves: a manifest file, or a MONAI bundle folder.
 * @param path - `manifest.json`, or a bundle folder with `configs/` and `models/`
 */
export async function loadModel(path: string): Promise<SegmentationModel> {
  // A bundle folder with a manifest.json beside its configs (as models/brats-demo has) is loaded by its manifest,
  // which carries what a MONAI bundle cannot say (clean-up and plausibility thresholds).
  const manifest = path.endsWith('.json') ? path : join(path, 'manifest.json');
  return existsSync(manifest)
    ? SegmentationModel.load({ manifestPath: manifest })
    : SegmentationModel.load({ bundleDir: path });
}

/**
 * The protocol's reference of the model at `path` (as {@link loadModel} finds it), from its manifest alone: no
 * inference session. For a server whose analyses run in another process (`CDSS_WORKER=off`): its requests must name
 * the model that worker serves.
 * @param path - `manifest.json`, or a bundle folder with `configs/` and `models/`
 */
export async function loadModelReference(path: string): Promise<{ id: string; version: string }> {
  const manifest = path.endsWith('.json') ? path : join(path, 'manifest.json');
  const loaded = existsSync(manifest) ? await loadModelManifest(manifest) : await loadMonaiBundle(path);
  return modelRef(loaded);
}

/**
 * A provider over a loader.
 * @param load - loads the model (e.g. `SegmentationModel.load({ bundleDir })`)
 */
export function lazyModel(load: () => Promise<SegmentationModel>): ModelProvider {
  let loading: Promise<SegmentationModel> | undefined;
  return {
    get() {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw new JobFailure(
          'unsupported-model',
          `the model could not be loaded: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      });
      return loading;
    },
    async close() {
      const model = await loading?.catch(() => undefined);
      await model?.close();
    },
  };
}

/** Options of {@link createAiWorker}. */
export interface AiWorkerOptions {
  transport: JobTransport;
  dicomweb: DicomWebClient;
  model: ModelProvider;
  logger: Logger;
  /** Jobs run at once. Default 1: inference saturates the CPU. */
  maxConcurrentJobs?: number;
  /** A job running longer fails with `deadline-exceeded`. Default 15 minutes. */
  jobTimeoutMs?: number;
  /**
   * A job still running after this is acknowledged early and kept by heartbeats (`JobWorkerOptions.ackTimeoutMs`):
   * if the worker dies, the server's reaper re-publishes it. Default 25 minutes.
   */
  ackTimeoutMs?: number;
  /** Heartbeat period of a running job (`JobWorkerOptions.heartbeatMs`). Default 30 s. */
  heartbeatMs?: number;
  /** Largest accepted grid, in voxels per channel. Default 240×240×160. */
  maxVoxels?: number;
  preprocess?: PreprocessHook;
  /** Bearer token required by `POST /analyze`; without one the endpoint is off. */
  apiToken?: string;
  workerId?: string;
}

/** A running worker. */
export interface AiWorker {
  worker: JobWorker;
  /** The HTTP app (health, models, direct analysis). */
  app: express.Express;
  start(): Promise<void>;
  /** Stops consuming; jobs in flight finish or are handed back to the queue. */
  stop(): Promise<void>;
  /** Listens on a port; resolves with the bound port. */
  listen(port: number, host?: string): Promise<{ port: number; server: Server }>;
}

const analyzeBodySchema = z.strictObject({
  studyInstanceUid: z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)*$/)
    .max(64),
});

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * Builds the worker.
 * @param options - transport, PACS client, model, limits
 */
export function createAiWorker(options: AiWorkerOptions): AiWorker {
  const { dicomweb, logger } = options;
  const jobTimeoutMs = options.jobTimeoutMs ?? 15 * 60_000;
  const maxVoxels = options.maxVoxels ?? 240 * 240 * 160;
  let running = 0;
  // One pool for every analysis of this worker: each study's volumes reuse the memory of the last one's.
  const pool = new VoxelBufferPool();

  const worker = new JobWorker({
    transport: options.transport,
    prefetch: options.maxConcurrentJobs ?? 1,
    ...(options.workerId ? { workerId: options.workerId } : {}),
    ...(options.ackTimeoutMs ? { ackTimeoutMs: options.ackTimeoutMs } : {}),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    logger,
    handler: async (ctx) => {
      const model = await options.model.get();
      const wanted = ctx.request.model;
      const mine = modelRef(model);
      if (wanted.id !== mine.id)
        throw new JobFailure('unsupported-model', `this worker serves ${mine.id} ${mine.version}, not ${wanted.id}`);
      running++;
      try {
        return await analyseStudy({
          dicomweb,
          model,
          jobId: ctx.request.jobId,
          studyInstanceUid: ctx.request.studyInstanceUid,
          series: ctx.request.series,
          signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(jobTimeoutMs)]),
          progress: (stage, percent) => ctx.progress(stage, percent),
          maxVoxels,
          pool,
          ...(options.preprocess ? { preprocess: options.preprocess } : {}),
        });
      } finally {
        running--;
      }
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '16kb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', running });
  });
  app.get('/models', async (_req, res) => {
    let model: SegmentationModel;
    try {
      model = await options.model.get();
    } catch (error) {
      res.status(503).json({ reason: 'unsupported-model', detail: (error as Error).message });
      return;
    }
    const m = model.manifest;
    res.json([
      {
        ...modelRef(model),
        name: m.name,
        description: m.description,
        intendedUse: m.intendedUse,
        notForClinicalUse: m.notForClinicalUse,
        input: m.input,
        inference: m.inference,
      },
    ]);
  });
  app.post('/analyze', async (req, res) => {
    const auth = /^Bearer (.+)$/.exec(req.header('authorization') ?? '')?.[1];
    if (!options.apiToken || !auth || !sameSecret(auth, options.apiToken)) {
      res.status(401).json({ error: 'a valid bearer token is required' });
      return;
    }
    const body = analyzeBodySchema.safeParse(req.body);
    if (!body.success) {
      res.status(400).json({ error: 'invalid request', fields: body.error.issues.map((i) => i.path.join('.')) });
      return;
    }
    try {
      const chosen = await findStudySeries(dicomweb, body.data.studyInstanceUid);
      const result = await analyseStudy({
        dicomweb,
        model: await options.model.get(),
        jobId: randomUUID(),
        studyInstanceUid: body.data.studyInstanceUid,
        series: {
          t1c: chosen.t1c.seriesInstanceUid,
          t1: chosen.t1.seriesInstanceUid,
          t2: chosen.t2.seriesInstanceUid,
          flair: chosen.flair.seriesInstanceUid,
        },
        signal: AbortSignal.timeout(jobTimeoutMs),
        progress: async () => undefined,
        maxVoxels,
        pool,
        ...(options.preprocess ? { preprocess: options.preprocess } : {}),
      });
      res.json(result);
    } catch (error) {
      const failure =
        error instanceof JobFailure
          ? error
          : error instanceof StudySeriesError
            ? new JobFailure('series-missing', error.message)
            : undefined;
      if (failure) {
        res
          .status(failure.reason === 'series-missing' || failure.reason === 'invalid-request' ? 422 : 502)
          .json({ reason: failure.reason, detail: failure.detail });
        return;
      }
      logger.error({ err: error }, 'direct analysis failed');
      res.status(500).json({ reason: 'internal-error' });
    }
  });

  return {
    worker,
    app,
    start: () => worker.start(),
    stop: () => worker.stop(),
    listen(port, host = '127.0.0.1') {
      const server = createServer(app);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolve({ port: typeof address === 'object' && address ? address.port : port, server });
        });
      });
    },
  };
}
