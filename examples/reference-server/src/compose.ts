/**
 * Composes the CDSS from the `@cdss/*` packages: each port gets its embedded adapter (sandbox) or its real one
 * (connected, by its own environment variables).
 *
 * Sandbox mode starts, on 127.0.0.1 ports chosen by the OS: the OpenEMR emulator and the DICOM store (data persisted
 * under `CDSS_DATA_DIR`), an embedded FHIR R4 server, an in-memory job broker and store, an in-process AI worker with
 * the demo model, a memory cache and a memory outbox. The server talks to each over real HTTP exactly as it talks to
 * the real systems.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import express from 'express';
import type { Logger } from 'pino';
import { basicAuth, ValidationError } from '@cdss/core';
import {
  Cache,
  MemoryIdempotencyStore,
  MemoryStore,
  TieredStore,
  WriteCoordinator,
  type CacheStore,
} from '@cdss/cache';
import { MySqlIdempotencyStore, MySqlStore } from '@cdss/cache/mysql';
import { AmqpInvalidationBus } from '@cdss/cache/amqp';
import {
  JobClient,
  WebhookVerificationError,
  type JobChange,
  type JobStoreTransaction,
  MemoryBroker,
  MemoryJobStore,
  MemoryReplayCache,
  MemoryTransport,
  type JobStore,
  type JobTransport,
} from '@cdss/ai-jobs';
import { AmqpTransport } from '@cdss/ai-jobs/amqp';
import { MySqlJobStore } from '@cdss/ai-jobs/mysql';
import { FhirAdapter, MemoryOutbox, OutboxProcessor, type SyncOutbox } from '@cdss/fhir-mapper';
import { MySqlOutbox } from '@cdss/fhir-mapper/mysql';
import { cdssScopes, createOpenEmrClient, type OpenEmrClient } from '@cdss/openemr-client';
import { OrthancClient } from '@cdss/orthanc-client';
import { generateTemplatePhantom, writePhantomStudy } from '@cdss/dicom';
import {
  createDicomStoreEmulator,
  startEmbeddedFhirServerThread,
  createOpenEmrEmulator,
  SEED_ADMIN,
  SEED_CLIENT,
} from '@cdss/sandbox';
import { sandboxTokenAccess, type ServerConfig } from './config.js';
import { DASHBOARD_DIST, DEMO_MODEL_BUNDLE } from './paths.js';
import { createCdssServer, type CdssServer, type ReadinessCheck } from './app.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { createConnectedVerifier, createSandboxIssuer, DEMO_USERS, type TokenVerifier } from './auth/tokens.js';
import {
  createAmqpEventBus,
  createLocalEventBus,
  createMemoryEventLog,
  createMySqlEventLog,
  withReplayLog,
  type EventBus,
  type EventLog,
} from './events.js';
import { AuditTrail, mirrorToFhir } from './audit.js';
import { FileAuditStore } from './audit/file-store.js';
import { MySqlAuditStore } from './audit/mysql-store.js';
import { createAuditor } from './domain/auditor.js';
import { patientRoutes } from './domain/patients.js';
import { studyRoutes } from './domain/studies.js';
import { dicomWebProxyRoutes } from './domain/dicomweb-proxy.js';
import { analyseDemoStudies } from './demo-analyses.js';
import { createFileNotesStore, createMySqlNotesStore, worklistRoutes } from './domain/worklist.js';
import { analysisFeature } from './domain/analyses.js';
import { AUDIT_CURSORS, auditRoutes } from './domain/audit-routes.js';
import { sandboxRoutes } from './domain/sandbox-routes.js';
import { fhirBackendAuth } from './smart/backend-services.js';
import { configuredServerKeys } from './smart/server-keys.js';
import { dashboardOrigins, registerSandboxApps } from './smart/sandbox-apps.js';
import { sandboxCdsClient } from './cds-hooks/sandbox-client.js';
import { createReviewStore } from './domain/reviews.js';
import { openEmrRecords } from './adapters/openemr.js';
import { orthancArchive } from './adapters/orthanc.js';
import { cachePort, noTransaction, type Transact } from './adapters/cache.js';
import { openMySqlState } from './state/mysql.js';
import { mySqlReviewStore, openMissingReviews } from './state/mysql-reviews.js';
import { mySqlRateLimitStore, mySqlReplayCache } from './state/mysql-limits.js';
import { outboxFhirSync } from './adapters/fhir-sync.js';
import { fhirReports } from './adapters/reports.js';
import { instrument } from './adapters/instrument.js';
import { ApiError } from './http/errors.js';
import { createAiWorker, lazyModel, loadModel, loadModelReference, type AiWorker } from './worker/service.js';
import { modelRef } from './worker/analysis.js';
import { ehrIntegration, type EhrIntegration } from './ehr-integration.js';
import { isBrainTumourProblem } from './domain/brain-tumour.js';
import { openEmrDocuments } from './chart/openemr-documents.js';
import { onSandboxPort } from './sandbox-ports.js';

/** A composed, not yet listening server with everything it started. */
export interface ComposedServer {
  server: CdssServer;
  metrics: ServerMetrics;
  /** URLs of the embedded systems (sandbox mode). */
  embedded: { openemr?: string; fhir?: string; orthanc?: string };
  worker?: AiWorker;
  /** The EHR integration (CDS Hooks store, chart outbox, server keys). */
  ehr: EhrIntegration;
  /** The FHIR sync outbox (its backlog: `stats()`). */
  outbox: SyncOutbox;
  /** Graceful shutdown of the server, then of everything composed. */
  close(): Promise<void>;
}

async function listenApp(app: express.Express): Promise<{ url: string; server: Server }> {
  const server = createServer(app);
  const port = await onSandboxPort(
    (candidate) =>
      new Promise<number>((ok, fail) => {
        server.once('error', fail).listen(candidate, '127.0.0.1', () => {
          server.off('error', fail);
          ok(candidate);
        });
      }),
  );
  return { url: `http://127.0.0.1:${port}`, server };
}

const closeServer = (server: Server): Promise<void> =>
  new Promise((ok) => {
    server.closeAllConnections();
    server.close(() => ok());
  });

/**
 * Seeds synthetic MRI studies for the first brain-tumour demo patients, once (the store persists): phantoms on the MNI
 * template, on a grid of the demo model's held-out evaluation, so its results on them are meaningful.
 */
async function seedStudies(
  openemr: OpenEmrClient,
  orthanc: OrthancClient,
  count: number,
  grid: PhantomGrid,
  logger: Logger,
): Promise<string[]> {
  if (count === 0) return [];
  const patients = (await openemr.patients.page({}, { limit: 50 })).patients;
  const withTumours: typeof patients = [];
  for (const patient of patients) {
    const problems = await openemr.medicalProblems.list(patient.uuid).catch(() => []);
    if (problems.some((p) => isBrainTumourProblem({ text: `${p.title} ${p.diagnosis ?? ''}` })))
      withTumours.push(patient);
  }
  const demo = (withTumours.length > 0 ? withTumours : patients).slice(0, count);
  if ((await orthanc.list('Study', { limit: 1 })).length > 0) return demo.map((p) => p.uuid);
  let studies = 0;
  for (const [index, patient] of demo.entries()) {
    // Follow-up visits of one patient: the same head and the same lesion, in the same place, growing or shrinking.
    const course = DEMO_COURSES[index] ?? DEMO_COURSES.at(-1)!;
    for (const [visit, { date, scale }] of course.entries()) {
      const phantom = generateTemplatePhantom({ seed: patient.uuid, ...grid, tumourScale: scale });
      const study = writePhantomStudy(phantom, {
        patientId: patient.uuid,
        patientName: `${patient.lname}^${patient.fname}`,
        uidSeed: `${patient.uuid}:${visit + 1}`,
        studyDescription: `MRI BRAIN W/WO CONTRAST (visit ${visit + 1})`,
        studyDate: date.replaceAll('-', ''),
        studyTime: '093000',
      });
      await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
      studies++;
    }
  }
  logger.info({ studies }, 'seeded synthetic MRI studies');
  return demo.map((p) => p.uuid);
}

/** Orthanc's DICOMweb root, with its credentials in the URL (the proxy turns them into Basic auth). */
function dicomWebUrl(orthancUrl: string, credentials?: { username: string; password: string }): string {
  const url = new URL(`${orthancUrl.replace(/\/+$/, '')}/dicom-web`);
  if (credentials) {
    url.username = encodeURIComponent(credentials.username);
    url.password = encodeURIComponent(credentials.password);
  }
  return url.href;
}

/**
 * The demo patients' imaging courses: scan dates and the lesion's size (its radii scaled) at each visit. The first
 * patient's lesion grows over three visits three months apart (to about 2.2 times its volume: RANO progression), the
 * second's shrinks a little (stable disease), the others have one baseline scan. (The demo model misses lesions much
 * smaller than those it was trained on, so the courses stay within that range.)
 */
export const DEMO_COURSES: readonly (readonly { date: string; scale: number }[])[] = [
  [
    { date: '2026-01-12', scale: 1 },
    { date: '2026-04-13', scale: 1.12 },
    { date: '2026-07-13', scale: 1.3 },
  ],
  [
    { date: '2026-02-02', scale: 1 },
    { date: '2026-05-04', scale: 0.92 },
  ],
  [{ date: '2026-03-02', scale: 1 }],
];

/** The grid of synthetic studies. */
export interface PhantomGrid {
  dims: [number, number, number];
  spacing: [number, number, number];
}

/**
 * The grid of the sandbox's synthetic studies: 64×64×48 at 3.75 mm covers a 240×240×180 mm field of view around the
 * MNI template head. It is one of the grids of the demo model's held-out evaluation (models/brats-demo/manifest.json);
 * the worker resamples it onto the model's own grid and the labels back.
 */
export const DEMO_GRID: PhantomGrid = { dims: [64, 64, 48], spacing: [3.75, 3.75, 3.75] };

/**
 * What a webhook failure tells its sender: 401 only for a missing or bad signature, 409 for a replay, 400 naming the
 * problems for a signed body that is not a job event (the `ValidationError` itself), and 503 for anything else (the
 * store is down: the sender retries).
 * @param error - what `JobClient.handleWebhook` threw
 */
export function webhookError(error: unknown): Error {
  if (error instanceof WebhookVerificationError) {
    return error.rejection === 'replayed'
      ? new ApiError(409, 'duplicate', 'This webhook was already delivered')
      : new ApiError(401, 'login', `Invalid webhook signature (${error.rejection})`);
  }
  if (ValidationError.isInstance(error)) return error;
  return new ApiError(503, 'transient', 'The event could not be recorded; retry later');
}

/**
 * Builds the server and every adapter from the configuration.
 * @param config - validated configuration
 * @param logger - the server's logger
 * @param version - reported by /healthz and the OpenAPI document
 */
export async function composeServer(config: ServerConfig, logger: Logger, version: string): Promise<ComposedServer> {
  const sandbox = config.CDSS_MODE === 'sandbox';
  const dataDir = resolve(config.CDSS_DATA_DIR);
  const closers: Array<() => Promise<unknown>> = [];
  const embedded: ComposedServer['embedded'] = {};
  const metrics = createMetrics();
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  // --- Authentication
  const tokenSettings = {
    issuer: config.CDSS_AUTH_ISSUER,
    audience: config.CDSS_AUTH_AUDIENCE,
    roleClaim: config.CDSS_AUTH_ROLE_CLAIM,
    maxLifetimeSeconds: config.CDSS_AUTH_MAX_TOKEN_LIFETIME_S,
    algorithms: config.CDSS_AUTH_ALGORITHMS,
  };
  const issuer =
    sandbox && !config.CDSS_AUTH_JWKS_URL && !config.CDSS_AUTH_PUBLIC_KEY
      ? createSandboxIssuer(tokenSettings)
      : undefined;
  // The demo-token route hands an admin token to whoever asks: loopback only, unless explicitly exposed.
  const tokenAccess = issuer ? sandboxTokenAccess(config) : 'off';
  if (tokenAccess === 'exposed')
    logger.warn(
      { host: config.HOST },
      'CDSS_SANDBOX_EXPOSE=true: the sandbox token route hands admin tokens to anyone who can reach this address',
    );
  else if (issuer && tokenAccess === 'off')
    logger.warn(
      { host: config.HOST },
      'the sandbox token route is off because HOST is not a loopback address (set CDSS_SANDBOX_EXPOSE=true to serve it)',
    );
  const verifier: TokenVerifier =
    issuer?.verifier ??
    createConnectedVerifier(
      config.CDSS_AUTH_JWKS_URL
        ? { jwksUrl: config.CDSS_AUTH_JWKS_URL }
        : { publicKeyPem: config.CDSS_AUTH_PUBLIC_KEY ?? '' },
      tokenSettings,
    );

  // --- OpenEMR (source of truth)
  let openemrUrl = config.OPENEMR_URL;
  let openemrAuth = {
    clientId: config.OPENEMR_CLIENT_ID ?? '',
    ...(config.OPENEMR_CLIENT_SECRET ? { clientSecret: config.OPENEMR_CLIENT_SECRET } : {}),
    username: config.OPENEMR_USERNAME ?? '',
    password: config.OPENEMR_PASSWORD ?? '',
  };
  let emulator: ReturnType<typeof createOpenEmrEmulator> | undefined;
  if (!openemrUrl) {
    emulator = createOpenEmrEmulator({
      version: config.OPENEMR_VERSION === 'auto' ? '8.0' : config.OPENEMR_VERSION,
      dataDir: join(dataDir, 'openemr'),
      seed: true,
    });
    const app = express().use(emulator);
    const started = await listenApp(app);
    closers.push(() => closeServer(started.server));
    openemrUrl = embedded.openemr = started.url;
    openemrAuth = {
      clientId: SEED_CLIENT.clientId,
      clientSecret: SEED_CLIENT.clientSecret,
      username: SEED_ADMIN.username,
      password: SEED_ADMIN.password,
    };
  }
  const openemr = createOpenEmrClient({
    baseUrl: openemrUrl,
    site: config.OPENEMR_SITE,
    version: config.OPENEMR_VERSION,
    // OpenEMR 7.0 knows only SMART v1 scopes (recorded-7.0.1 files 01, 05).
    auth: { kind: 'password', ...openemrAuth, scope: cdssScopes(config.OPENEMR_VERSION === '7.0' ? 'v1' : 'v2') },
    timeoutMs: config.OPENEMR_TIMEOUT_MS,
    logger,
  });

  // --- Orthanc (PACS)
  let orthancUrl = config.ORTHANC_URL;
  let orthancCredentials =
    config.ORTHANC_USERNAME && config.ORTHANC_PASSWORD
      ? { username: config.ORTHANC_USERNAME, password: config.ORTHANC_PASSWORD }
      : undefined;
  if (!orthancUrl) {
    const store = await onSandboxPort((port) => createDicomStoreEmulator({ root: join(dataDir, 'dicom'), port }));
    closers.push(() => store.close());
    orthancUrl = embedded.orthanc = store.url;
    orthancCredentials = undefined;
  }
  const orthanc = new OrthancClient({
    baseUrl: orthancUrl,
    ...(orthancCredentials ? { auth: basicAuth(orthancCredentials.username, orthancCredentials.password) } : {}),
    logger,
  });

  // --- FHIR server and the sync outbox (SMART Backend Services with the server's keys when FHIR_BACKEND_CLIENT_ID)
  const keys = await configuredServerKeys(config);
  let fhirUrl = config.FHIR_URL;
  if (!fhirUrl) {
    // The embedded server then checks tokens too, with the server's client registered with its public keys.
    const backendServices =
      config.FHIR_BACKEND_CLIENT_ID && keys
        ? {
            clients: [
              { clientId: config.FHIR_BACKEND_CLIENT_ID, jwks: keys.publicJwks, scope: config.FHIR_BACKEND_SCOPE },
            ],
          }
        : undefined;
    // In a Worker of its own: it validates and indexes every resource sent to it (an AuditEvent Bundle per audit
    // group), work that would otherwise share the event loop with the requests it audits.
    const fhirThread = await startEmbeddedFhirServerThread({
      ...(backendServices ? { backendServices } : {}),
      // Behind the requests it audits where the cores are busy: it stands in for a FHIR server of its own.
      nice: 10,
      onError: (error) =>
        logger.error({ err: error }, 'the embedded FHIR server stopped; FHIR deliveries wait in the outbox'),
    });
    closers.push(() => fhirThread.close());
    fhirUrl = embedded.fhir = (await onSandboxPort((port) => fhirThread.listen(port, '127.0.0.1'))).url;
  }
  // The server's own shared state (reviews, webhook replays, rate-limit counters) and its transactions: connected mode.
  // The outbox, the event log, the audit table and the notes share its pool.
  const state = config.MYSQL_URL ? await openMySqlState(config.MYSQL_URL, { connectionLimit: 10 }) : undefined;
  if (state) closers.push(() => state.close());
  const transact: Transact = state ? (work) => state.transaction(work) : noTransaction;

  const fhirAuth = fhirBackendAuth(config, keys, fhirUrl, logger);
  const fhirAdapter = new FhirAdapter({ baseUrl: fhirUrl, logger, ...(fhirAuth ? { auth: fhirAuth } : {}) });
  let outbox: SyncOutbox;
  if (state) {
    const mysqlOutbox = new MySqlOutbox({ pool: state.pool });
    await mysqlOutbox.ensureSchema();
    outbox = mysqlOutbox;
  } else outbox = new MemoryOutbox();
  const processor = new OutboxProcessor({ outbox, adapter: instrument(fhirAdapter, 'fhir', metrics), logger });
  processor.start(1_000);
  closers.push(() => processor.stop());
  const fhir = outboxFhirSync(outbox, config.OPENEMR_SITE);

  // --- Cache (L1 in process, L2 MySQL when configured) and cross-instance invalidation
  const l1 = new MemoryStore({ maxEntries: 10_000, tier: 'l1' });
  let store: CacheStore = l1;
  let idempotency: MemoryIdempotencyStore | MySqlIdempotencyStore = new MemoryIdempotencyStore();
  const cacheMetrics = {
    hit: (tier: string) => metrics.cacheEvents.inc({ cache: tier, event: 'hit' }),
    miss: () => metrics.cacheEvents.inc({ cache: 'all', event: 'miss' }),
    load: () => metrics.cacheEvents.inc({ cache: 'all', event: 'load' }),
    loadError: () => metrics.cacheEvents.inc({ cache: 'all', event: 'load_error' }),
    staleServe: () => metrics.cacheEvents.inc({ cache: 'all', event: 'stale' }),
    eviction: (_reason: string, tier: string) => metrics.cacheEvents.inc({ cache: tier, event: 'eviction' }),
    repair: () => metrics.cacheEvents.inc({ cache: 'all', event: 'repair' }),
  };
  if (config.MYSQL_URL) {
    const l2 = await MySqlStore.open({ url: config.MYSQL_URL, metrics: cacheMetrics });
    store = new TieredStore({ l1, l2 });
    idempotency = await MySqlIdempotencyStore.open({ url: config.MYSQL_URL });
  }
  closers.push(() => idempotency.close());
  const bus = config.AMQP_URL ? await AmqpInvalidationBus.open({ url: config.AMQP_URL }) : undefined;
  if (bus) closers.push(() => bus.close());
  const cache = new Cache({
    store,
    ...(bus ? { bus } : {}),
    metrics: cacheMetrics,
    logger,
    ttlMs: config.CDSS_CACHE_TTL_MS,
    staleIfErrorMs: 24 * 60 * 60_000,
  });
  // Connected: a write whose idempotency record cannot be kept in MySQL is refused (503) rather than risk a duplicate
  // from a retry on another instance; its outbox rows could not be committed anyway.
  const writes = new WriteCoordinator({
    cache,
    idempotency,
    metrics: cacheMetrics,
    logger,
    whenStoreDown: config.MYSQL_URL ? 'fail' : 'local',
    leaseMs: Math.max(config.CDSS_IDEMPOTENCY_LEASE_MS, config.OPENEMR_TIMEOUT_MS * 2),
  });
  closers.push(() => cache.close());

  // --- Jobs: AMQP in connected mode, an in-memory broker in sandbox mode
  const broker = new MemoryBroker();
  const transport: JobTransport = config.AMQP_URL
    ? new AmqpTransport({ url: config.AMQP_URL, prefix: config.CDSS_JOBS_PREFIX, logger })
    : new MemoryTransport({ broker });
  const jobStore: JobStore = config.MYSQL_URL
    ? await MySqlJobStore.open({ url: config.MYSQL_URL })
    : new MemoryJobStore();
  const webhookSecrets = config.CDSS_WEBHOOK_SECRET ? [config.CDSS_WEBHOOK_SECRET] : [];
  // What must commit with a job's change (its review, its report's outbox rows) is set once the analysis feature
  // exists; events are consumed only after that (`jobs.start()` below).
  let onJobChange: (change: JobChange, transaction: JobStoreTransaction) => Promise<void> = async () => undefined;
  const jobs = new JobClient({
    transport,
    store: jobStore,
    webhookSecrets,
    replayCache: state ? mySqlReplayCache(state) : new MemoryReplayCache(),
    onChange: (change, transaction) => onJobChange(change, transaction),
    logger,
  });
  closers.push(() => jobStore.close());

  // --- AI worker, in process (sandbox, or when asked)
  let worker: AiWorker | undefined;
  const modelPath = config.CDSS_MODEL_PATH ?? DEMO_MODEL_BUNDLE;
  let models = [{ id: 'cdss-brats-demo', version: '0.0.0' }];
  let grid = DEMO_GRID;
  if (config.CDSS_WORKER === 'in-process' && existsSync(modelPath)) {
    const provider = lazyModel(() => loadModel(modelPath));
    try {
      const model = await provider.get();
      models = [modelRef(model)];
      grid = { dims: DEMO_GRID.dims, spacing: [...model.manifest.input.spacingMm] };
    } catch (error) {
      // The worker still starts: each job fails with the reason until the model file is repaired.
      logger.error({ err: error, modelPath }, 'the model could not be loaded');
    }
    const workerTransport: JobTransport = config.AMQP_URL
      ? new AmqpTransport({ url: config.AMQP_URL, prefix: config.CDSS_JOBS_PREFIX, logger })
      : new MemoryTransport({ broker });
    worker = createAiWorker({
      transport: workerTransport,
      dicomweb: orthanc.dicomweb,
      model: provider,
      logger: logger.child({ component: 'ai-worker' }),
    });
    await worker.start();
    const running = worker;
    closers.push(async () => {
      await running.stop();
      await workerTransport.close();
      await provider.close();
    });
  } else if (config.CDSS_WORKER === 'in-process') {
    logger.warn({ modelPath }, 'no model found: analyses will queue until a worker connects');
  } else if (existsSync(modelPath)) {
    // The analyses run in another process (the ai-worker, the Python worker) serving this model: requests name it.
    models = await loadModelReference(modelPath).then(
      (ref) => [ref],
      (error: unknown) => {
        logger.error({ err: error, modelPath }, 'the model manifest could not be read: requests name no served model');
        return models;
      },
    );
  }
  const demoPatients = sandbox
    ? await seedStudies(openemr, orthanc, config.CDSS_SANDBOX_STUDIES, grid, logger).catch((error: unknown) => {
        logger.warn({ err: error }, 'could not seed demo studies');
        return [];
      })
    : [];

  // --- Events, audit, reviews
  // Events are numbered per topic in a replay log before they fan out (MySQL when configured, so every instance
  // numbers alike), so that a WebSocket client that reconnects receives what it missed.
  const eventLog: EventLog = state ? await createMySqlEventLog({ pool: state.pool }) : createMemoryEventLog();
  const events: EventBus = withReplayLog(
    config.AMQP_URL ? await createAmqpEventBus(config.AMQP_URL) : createLocalEventBus(),
    eventLog,
  );
  closers.push(() => events.close());
  // One shared table in connected mode (every instance appends to it), a file of this process's in sandbox mode.
  const audit = new AuditTrail({
    store: state ? await MySqlAuditStore.open({ pool: state.pool }) : new FileAuditStore(join(dataDir, 'audit.jsonl')),
    mirror: mirrorToFhir(fhir, config.OPENEMR_SITE),
    onCommit: (records) => metrics.auditGroupSize.observe(records),
  });
  closers.push(() => audit.close());
  const auditor = createAuditor(audit, metrics);
  const reviews = state ? mySqlReviewStore(state) : await createReviewStore(join(dataDir, 'reviews.json'));
  if (state && jobStore instanceof MySqlJobStore) {
    const opened = await openMissingReviews(state);
    if (opened > 0) logger.info({ opened }, 'opened the reviews of analyses that succeeded before reviews were shared');
  }
  const notes = state
    ? await createMySqlNotesStore(state.pool)
    : await createFileNotesStore(join(dataDir, 'notes.json'));
  const archive = instrument(orthancArchive(orthanc), 'orthanc', metrics);
  const records = instrument(openEmrRecords(openemr), 'openemr', metrics);
  const readThrough = cachePort(cache, writes, store, transact);

  const reports = fhirReports();
  // Sandbox: the embedded OpenEMR knows the dashboard as a SMART app and the server as a backend-services client,
  // and a demo CDS Client stands in for the EHR's CDS Hooks calls (with the demo-token routes only).
  let ehrConfig = config;
  if (emulator && keys) {
    const apps = await registerSandboxApps({
      openemrUrl,
      site: config.OPENEMR_SITE,
      admin: emulator.engine,
      file: join(dataDir, 'sandbox-apps.json'),
      dashboardOrigins: dashboardOrigins(config.CDSS_PUBLIC_URL, config.HOST, config.PORT),
      dashboardScope: [
        ...new Set(`${config.CDSS_SMART_EHR_SCOPE} ${config.CDSS_SMART_STANDALONE_SCOPE}`.split(/\s+/)),
      ].join(' '),
      backend: { keys, scope: config.OPENEMR_BACKEND_SCOPE },
      logger,
    });
    ehrConfig = {
      ...config,
      CDSS_SMART_CLIENT_ID: config.CDSS_SMART_CLIENT_ID ?? apps.smartClientId,
      OPENEMR_BACKEND_CLIENT_ID: config.OPENEMR_BACKEND_CLIENT_ID ?? apps.backendClientId,
    };
  }
  const ehr = await ehrIntegration({
    config: ehrConfig,
    logger,
    metrics,
    cache,
    jobs,
    jobStore,
    archive,
    orthanc,
    records,
    reports,
    auditor,
    models,
    keys,
    openemrUrl,
    documents: openEmrDocuments(openemr, records),
    sandboxCdsClient:
      sandbox && tokenAccess !== 'off' ? await sandboxCdsClient(join(dataDir, 'cds-client.jwks.json')) : undefined,
    analysesOf: (patientId) => analysis.patientAnalyses(patientId),
  });
  closers.push(() => ehr.close());
  const analysis = analysisFeature({
    jobs,
    jobStore,
    reviews: ehr.observeReviews(reviews),
    writes: readThrough,
    archive,
    reports,
    fhir,
    bus: events,
    auditor,
    metrics,
    models,
    logger,
  });
  onJobChange = analysis.onJobChange;
  const stopAnalysis = analysis.start();
  closers.push(async () => stopAnalysis());
  await jobs.start();
  closers.push(async () => {
    await jobs.stop();
    await transport.close();
  });
  // The safety net of jobs acknowledged early whose worker died: every instance reaps (one takes each job).
  const stopReaper = jobs.startReaper({
    intervalMs: config.CDSS_JOB_REAP_INTERVAL_MS,
    staleMs: config.CDSS_JOB_STALE_MS,
    maxReaps: config.CDSS_JOB_MAX_REAPS,
  });
  closers.push(async () => stopReaper());
  if (state) {
    const sweeper = setInterval(() => void state.sweep().catch(() => undefined), 60_000);
    sweeper.unref();
    closers.push(async () => clearInterval(sweeper));
  }
  ehr.start();
  if (demoPatients.length > 0)
    void analyseDemoStudies({ archive, patientIds: demoPatients, jobs, jobStore, model: models[0], logger }).catch(
      (error: unknown) => logger.warn({ err: error }, 'could not analyse the demo studies'),
    );

  // Outbox backlog for the alert rules.
  const outboxTimer = setInterval(() => {
    void outbox.stats().then(
      (stats) => {
        metrics.outboxPending.set(stats.pending);
        metrics.outboxDeadLetters.set(stats.dead);
        metrics.outboxOldestAgeSeconds.set(
          stats.oldestPendingAt === undefined ? 0 : (Date.now() - stats.oldestPendingAt) / 1000,
        );
      },
      () => undefined,
    );
  }, 5_000);
  outboxTimer.unref();
  closers.push(async () => clearInterval(outboxTimer));

  const readiness: ReadinessCheck[] = [
    { name: 'openemr', check: () => records.ping() },
    { name: 'orthanc', check: () => archive.ping() },
    { name: 'fhir', check: async () => void (await fhirAdapter.search('Patient', { _count: '1' })) },
    { name: 'cache', check: () => readThrough.ping() },
    { name: 'outbox', check: () => fhir.ping() },
    { name: 'jobs', check: async () => void (await jobStore.list({ limit: 1 })) },
  ];

  const server = createCdssServer({
    config,
    logger,
    metrics,
    verifier: ehr.verifier(verifier),
    bus: events,
    eventLog,
    routes: [
      ...(issuer && tokenAccess !== 'off' ? sandboxRoutes(issuer) : []),
      ...patientRoutes({ records, cache: readThrough, fhir, bus: events, auditor }),
      ...studyRoutes({ archive, auditor }),
      ...dicomWebProxyRoutes({
        upstream: { url: dicomWebUrl(orthancUrl, orthancCredentials) },
        auditor,
        logger,
      }),
      ...analysis.routes,
      ...ehr.routes,
      ...worklistRoutes({
        notes,
        pendingReview: () => analysis.pendingReview(),
        analysis: (id) => analysis.view(id),
        records,
        cache: readThrough,
        archive,
        auditor,
      }),
      ...auditRoutes(audit.store, state ? AUDIT_CURSORS.mysql : AUDIT_CURSORS.file),
    ],
    readiness,
    auditor,
    routers: ehr.routers,
    connectSources: ehr.connectSources,
    verifyWebhook: async (req) => {
      // without a secret no signature can be valid
      if (webhookSecrets.length === 0) throw new ApiError(401, 'login', 'Webhooks are not configured');
      let outcome;
      try {
        // No body (none sent, so none parsed): the signature is checked over zero bytes.
        outcome = await jobs.handleWebhook(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), req.headers);
      } catch (error) {
        throw webhookError(error);
      }
      if (outcome.outcome === 'unknown-job') throw new ApiError(404, 'not-found', 'No such job');
      if (outcome.outcome === 'refused')
        throw new ApiError(409, 'business-rule', outcome.reason ?? 'The job no longer accepts this event');
    },
    ...(state ? { rateLimitStore: mySqlRateLimitStore(state, 'user:') } : {}),
    ...(config.CDSS_DASHBOARD_DIR ? { staticDir: resolve(config.CDSS_DASHBOARD_DIR) } : { staticDir: DASHBOARD_DIST }),
    version,
  });

  return {
    server,
    metrics,
    embedded,
    ehr,
    outbox,
    ...(worker ? { worker } : {}),
    async close() {
      await server.close();
      for (const close of closers.reverse())
        await close().catch((error: unknown) => logger.warn({ err: error }, 'error while closing'));
    },
  };
}

export { DEMO_USERS };
