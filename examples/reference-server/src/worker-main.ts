/**
 * Entry point of the AI worker as its own process (the original architecture's AI server): consumes analysis jobs
 * from RabbitMQ, reads studies from Orthanc over DICOMweb, stores DICOM SEGs back, and serves `/healthz`, `/models`
 * and `POST /analyze` on `WORKER_PORT`.
 *
 * Environment: AMQP_URL, ORTHANC_URL (+ ORTHANC_USERNAME/ORTHANC_PASSWORD), CDSS_MODEL_PATH (a manifest.json or a MONAI bundle folder; default: the demo
 * model), CDSS_JOBS_PREFIX (default cdss.ai), WORKER_PORT (default 8081), WORKER_HOST, WORKER_CONCURRENCY,
 * WORKER_JOB_TIMEOUT_MS, WORKER_ACK_TIMEOUT_MS, WORKER_HEARTBEAT_MS, WORKER_API_TOKEN.
 */
import { z } from 'zod';
import { basicAuth } from '@cdss/core';
import { AmqpTransport } from '@cdss/ai-jobs/amqp';
import { OrthancClient } from '@cdss/orthanc-client';
import { createLogger } from './logger.js';
import { createAiWorker, lazyModel, loadModel } from './worker/service.js';
import { DEMO_MODEL_BUNDLE } from './paths.js';

const envSchema = z.object({
  AMQP_URL: z.url({ protocol: /^amqps?$/ }),
  ORTHANC_URL: z.url({ protocol: /^https?$/ }),
  ORTHANC_USERNAME: z.string().min(1).optional(),
  ORTHANC_PASSWORD: z.string().min(1).optional(),
  CDSS_MODEL_PATH: z.string().min(1).default(DEMO_MODEL_BUNDLE),
  CDSS_JOBS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/)
    .default('cdss.ai'),
  WORKER_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  WORKER_HOST: z.string().default('127.0.0.1'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(1),
  WORKER_JOB_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(15 * 60_000),
  WORKER_API_TOKEN: z.string().min(32).optional(),
  // Past WORKER_ACK_TIMEOUT_MS a job is acknowledged early and kept by heartbeats every WORKER_HEARTBEAT_MS; the
  // server re-publishes it when they stop (CDSS_JOB_STALE_MS), so keep that a few heartbeats long.
  WORKER_ACK_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(25 * 60_000),
  WORKER_HEARTBEAT_MS: z.coerce.number().int().positive().default(30_000),
  CDSS_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

async function main(): Promise<void> {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    process.stderr.write(
      `Invalid configuration:\n${parsed.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`).join('\n')}\n`,
    );
    process.exit(2);
  }
  const env = parsed.data;
  const logger = createLogger(env.CDSS_LOG_LEVEL).child({ component: 'ai-worker' });
  const model = lazyModel(() => loadModel(env.CDSS_MODEL_PATH));
  // Fail fast on a broken model at start-up; at run time a broken model fails jobs instead (see lazyModel).
  const loaded = await model.get();
  const orthanc = new OrthancClient({
    baseUrl: env.ORTHANC_URL,
    ...(env.ORTHANC_USERNAME && env.ORTHANC_PASSWORD
      ? { auth: basicAuth(env.ORTHANC_USERNAME, env.ORTHANC_PASSWORD) }
      : {}),
    logger,
  });
  const transport = new AmqpTransport({ url: env.AMQP_URL, prefix: env.CDSS_JOBS_PREFIX, logger });
  const worker = createAiWorker({
    transport,
    dicomweb: orthanc.dicomweb,
    model,
    logger,
    maxConcurrentJobs: env.WORKER_CONCURRENCY,
    jobTimeoutMs: env.WORKER_JOB_TIMEOUT_MS,
    ackTimeoutMs: env.WORKER_ACK_TIMEOUT_MS,
    heartbeatMs: env.WORKER_HEARTBEAT_MS,
    ...(env.WORKER_API_TOKEN ? { apiToken: env.WORKER_API_TOKEN } : {}),
  });
  await worker.start();
  const { port, server } = await worker.listen(env.WORKER_PORT, env.WORKER_HOST);
  logger.info({ port, model: loaded.manifest.name, version: loaded.manifest.version }, 'AI worker ready');

  const stop = async (): Promise<void> => {
    logger.info('stopping: finishing or handing back jobs in flight');
    server.close();
    await worker.stop();
    await transport.close();
    await model.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`AI worker failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
