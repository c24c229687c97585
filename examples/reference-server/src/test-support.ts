/**
 * In-memory fakes of the ports and a harness that starts the server on 127.0.0.1:0 with them. Used by this
 * package's tests only; the sandbox uses the real embedded adapters from `@cdss/sandbox`.
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from '@cdss/core';
import { Cache, MemoryIdempotencyStore, MemoryStore, WriteCoordinator } from '@cdss/cache';
import type { Request, Router } from 'express';
import { loadConfig, type ServerConfig } from './config.js';
import { createLogger } from './logger.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { createSandboxIssuer, type SandboxIssuer, type TokenVerifier } from './auth/tokens.js';
import { createLocalEventBus, createMemoryEventLog, withReplayLog, type EventBus } from './events.js';
import { AuditTrail, createMemoryAuditStore, mirrorToFhir, type AuditStore } from './audit.js';
import { createAuditor } from './domain/auditor.js';
import { createCdssServer, type CdssServer } from './app.js';
import type { AnyRoute } from './http/route.js';
import { ApiError } from './http/errors.js';
import type { ApiPatient, ApiStudy, PatientInput } from './api-schemas.js';
import type { ClinicalLists, FhirSync, ImagingArchive, PatientRecords, ReadThroughCache } from './domain/ports.js';
import { cachePort } from './adapters/cache.js';
import type { Auditor } from './domain/auditor.js';
import { freePort } from '@cdss/core/testing';

/** An EMR fake; `down = true` makes every call fail like an unreachable upstream. */
export function fakeRecords(): PatientRecords & {
  patients: Map<string, ApiPatient>;
  down: boolean;
  writes: number;
  delayMs: number;
} {
  const patients = new Map<string, ApiPatient>();
  const fake = {
    patients,
    down: false,
    writes: 0,
    delayMs: 0,
    check() {
      if (fake.down) {
        const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
        throw new HttpError({ method: 'GET', url: 'http://127.0.0.1:9/apis/default/api/patient', cause });
      }
    },
    async search({ q, limit }: { q?: string; limit: number }) {
      fake.check();
      const items = [...patients.values()].filter(
        (p) => !q || `${p.givenName} ${p.familyName}`.toLowerCase().includes(q.toLowerCase()),
      );
      return { items: items.slice(0, limit) };
    },
    async duplicates(input: PatientInput) {
      fake.check();
      return [...patients.values()].filter(
        (p) => p.givenName === input.givenName && p.familyName === input.familyName && p.birthDate === input.birthDate,
      );
    },
    async get(id: string) {
      fake.check();
      return patients.get(id);
    },
    async create(input: PatientInput) {
      fake.check();
      fake.writes += 1;
      if (fake.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.delayMs));
      const patient = { ...input, id: randomUUID(), pid: String(patients.size + 1) };
      patients.set(patient.id, patient);
      return patient;
    },
    async update(id: string, input: PatientInput) {
      fake.check();
      fake.writes += 1;
      const patient = { ...patients.get(id), ...input, id };
      patients.set(id, patient);
      return patient;
    },
    async matching(input: PatientInput) {
      fake.check();
      const same = (p: ApiPatient): boolean =>
        p.givenName === input.givenName &&
        p.familyName === input.familyName &&
        p.birthDate === input.birthDate &&
        p.sex === input.sex;
      return [...patients.values()].filter(same).map((p) => p.id);
    },
    async list<K extends keyof ClinicalLists>(_id: string, _kind: K): Promise<ClinicalLists[K]> {
      fake.check();
      return [] as ClinicalLists[K];
    },
    async ping() {
      fake.check();
    },
  };
  return fake;
}

/**
 * The real cache port over memory stores (sandbox mode's composition): `store` holds the entries, `writes` the
 * idempotency records.
 */
export function memoryCache(): ReadThroughCache & { store: MemoryStore } {
  const store = new MemoryStore({ tier: 'l1' });
  const cache = new Cache({ store, ttlMs: 60_000 });
  const writes = new WriteCoordinator({ cache, idempotency: new MemoryIdempotencyStore() });
  return Object.assign(cachePort(cache, writes, store), { store });
}

/** Records what would be synced to FHIR. */
export function fakeFhirSync(): FhirSync & { queued: Array<{ kind: string; payload: unknown }> } {
  const queued: Array<{ kind: string; payload: unknown }> = [];
  return {
    queued,
    async enqueue(kind, payload) {
      queued.push({ kind, payload });
    },
    async ping() {},
  };
}

/** A PACS fake. */
export function fakeArchive(studies: ApiStudy[] = []): ImagingArchive {
  // Volumes are 2×2×2 ramps; the tests check the binary framing, not imaging.
  return {
    async studiesOfPatient(patientId) {
      return studies.filter((s) => s.patientId === patientId);
    },
    async study(uid) {
      return studies.find((s) => s.uid === uid);
    },
    async seriesVolume() {
      return { dims: [2, 2, 2], spacing: [1, 1, 1], data: new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]) };
    },
    async segmentation() {
      return { dims: [2, 2, 2], spacing: [1, 1, 1], data: new Uint8Array([0, 0, 1, 2, 4, 4, 0, 0]) };
    },
    async ping() {},
  };
}

/** A started test server. */
export interface Harness {
  server: CdssServer;
  baseUrl: string;
  issuer: SandboxIssuer;
  metrics: ServerMetrics;
  bus: EventBus;
  audit: ReturnType<typeof createMemoryAuditStore>;
  auditor: Auditor;
  fhir: ReturnType<typeof fakeFhirSync>;
  /** A bearer token for a demo user. */
  token(userId: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts the server with routes built from the harness's shared pieces.
 * @param buildRoutes - builds the route table
 * @param env - extra environment for the config
 */
export async function startHarness(
  buildRoutes: (shared: {
    auditor: Auditor;
    audit: AuditStore;
    bus: EventBus;
    fhir: FhirSync;
    metrics: ServerMetrics;
  }) => AnyRoute[],
  env: Record<string, string> = {},
  webhook: (req: Request) => Promise<void> = async () => {
    throw new ApiError(401, 'login', 'unsigned');
  },
  buildRouters: (shared: { auditor: Auditor }) => Router[] = () => [],
  wrapVerifier: (verifier: TokenVerifier) => TokenVerifier = (verifier) => verifier,
): Promise<Harness> {
  const config: ServerConfig = loadConfig({ CDSS_LOG_LEVEL: 'silent', ...env });
  const metrics = createMetrics();
  const issuer = createSandboxIssuer({
    issuer: config.CDSS_AUTH_ISSUER,
    audience: config.CDSS_AUTH_AUDIENCE,
    roleClaim: config.CDSS_AUTH_ROLE_CLAIM,
  });
  const eventLog = createMemoryEventLog();
  const bus = withReplayLog(createLocalEventBus(), eventLog);
  const audit = createMemoryAuditStore();
  const fhir = fakeFhirSync();
  const auditor = createAuditor(new AuditTrail({ store: audit, mirror: mirrorToFhir(fhir) }), metrics);
  const server = createCdssServer({
    config,
    logger: createLogger(process.env['CDSS_TEST_LOG_LEVEL'] ?? 'silent'),
    metrics,
    verifier: wrapVerifier(issuer.verifier),
    bus,
    eventLog,
    routes: buildRoutes({ auditor, audit, bus, fhir, metrics }),
    readiness: [],
    auditor,
    routers: buildRouters({ auditor }),
    verifyWebhook: webhook,
    version: 'test',
  });
  const port = await server.listen(await freePort(), '127.0.0.1');
  return {
    server,
    baseUrl: `http://127.0.0.1:${port}`,
    issuer,
    metrics,
    bus,
    audit,
    auditor,
    fhir,
    token: async (userId) => (await issuer.issue(userId)).accessToken,
    close: () => server.close(),
  };
}
