/**
 * CDS Hooks `patient-view` latency through the reference server's CDS router: answered from the cache (the tumour
 * status cached per patient, as the server composes it) vs the same call computing the status on every request.
 *
 * Both sides run the same HTTP stack in this process (the reference server's app: request id, helmet, CORS, JSON
 * parser, rate limits; then the CDS router: ES384 caller JWT verified against the EHR's JWKS, fetched once over HTTP
 * and cached; `jti` recorded; request and context validated with the CDS Hooks zod schemas; the audit record; the
 * card built; the response validated). The status comes from BENCH_PATIENTS patients × 2 analyses held like a job
 * store's list (the server filters the list by patient), the RANO assessment of `fhirReports()`, and study dates and
 * series read from a PACS stand-in over HTTP on loopback (one QIDO-like GET per analysed study). The cached side
 * serves the status from `@cdss/cache` (memory L1), warmed by one untimed call per patient; the baseline computes it
 * on every call. Requests go one at a time, as an EHR opening a chart sends them; tokens are signed before timing.
 *
 * Settings (environment): BENCH_PATIENTS (2000, max 20000), BENCH_REQUESTS (300 per side per round, max 2000),
 * BENCH_ROUNDS (5, max 10). The last line is the JSON result: p50 latency in ms, cached vs uncached (p95 beside).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Cache, MemoryStore } from '@cdss/cache';
import { startHarness } from '../examples/reference-server/src/test-support.js';
import { createLogger } from '../examples/reference-server/src/logger.js';
import { fhirReports } from '../examples/reference-server/src/adapters/reports.js';
import type { ApiAnalysis, ApiStudy } from '../examples/reference-server/src/api-schemas.js';
import { createCdsCallerVerifier } from '../examples/reference-server/src/cds-hooks/caller-auth.js';
import { cdsHooksRouter } from '../examples/reference-server/src/cds-hooks/router.js';
import {
  cdsServices,
  CDS_SERVICE_IDS,
  type TumourStatusSource,
} from '../examples/reference-server/src/cds-hooks/services.js';
import {
  cachedTumourStatus,
  computeTumourStatus,
  type TumourStatusDeps,
} from '../examples/reference-server/src/cds-hooks/status.js';
import { createMemoryCdsStore } from '../examples/reference-server/src/cds-hooks/store.js';
import { intEnv, median } from './_lib.js';
import { listenOnFreePort } from '@cdss/core/testing';

const patients = intEnv('BENCH_PATIENTS', 2000, 20_000);
const requests = intEnv('BENCH_REQUESTS', 300, 2000);
const rounds = intEnv('BENCH_ROUNDS', 5, 10);

const listen = async (server: Server): Promise<string> => {
  await listenOnFreePort(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

// --- The data: two succeeded, approved analyses per patient, one study each.
const patientIds = Array.from({ length: patients }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
const analyses: ApiAnalysis[] = patientIds.flatMap((patientId, i) =>
  [0, 1].map((visit) => ({
    id: `a-${i}-${visit}`,
    patientId,
    studyUid: `2.25.${i}.${visit}`,
    status: 'succeeded' as const,
    requestedBy: 'bench',
    requestedAt: `2026-0${visit + 1}-01T10:00:00.000Z`,
    finishedAt: `2026-0${visit + 1}-01T10:01:00.000Z`,
    model: { id: 'brats-demo', version: '0.1.0' },
    result: {
      volumes: { enhancingTumor: 10 + visit * 4, tumorCore: 20 + visit, wholeTumor: 40 + visit * 5 },
      largestDiameterMm: 30,
      flags: [],
    },
    review: { status: 'approved' as const, reviewer: 'r', reviewedAt: `2026-0${visit + 1}-02T08:00:00.000Z` },
  })),
);

// --- A PACS stand-in: the study of a UID, over HTTP.
const pacs = createServer((req, res) => {
  const uid = decodeURIComponent((req.url ?? '').slice('/studies/'.length));
  const visit = Number(uid.split('.').at(-1));
  const study: ApiStudy = {
    uid,
    date: `2026-0${visit + 1}-01`,
    modalities: ['MR'],
    series: [{ uid: `${uid}.1`, modality: 'MR', description: 'T1 post Gd' }],
  };
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(study));
});
const pacsUrl = await listen(pacs);
const studyOf = async (uid: string): Promise<ApiStudy> =>
  (await fetch(`${pacsUrl}/studies/${encodeURIComponent(uid)}`)).json() as Promise<ApiStudy>;

const reports = fhirReports();
const statusDeps: TumourStatusDeps = {
  analysesOf: async (patientId) => analyses.filter((a) => a.patientId === patientId),
  assess: async (patientId, list) => {
    const uids = [...new Set(list.map((a) => a.studyUid))];
    const studies = new Map(await Promise.all(uids.map(async (uid) => [uid, await studyOf(uid)] as const)));
    return reports.assess(patientId, list, studies);
  },
  studyDate: async (uid) => (await studyOf(uid)).date,
};
const cache = new Cache({ store: new MemoryStore({ maxEntries: 50_000, tier: 'l1' }), ttlMs: 300_000 });
const cached = cachedTumourStatus(statusDeps, cache);
const uncached: TumourStatusSource = { status: (patientId) => computeTumourStatus(statusDeps, patientId) };

// --- The EHR: an ES384 key whose JWKS it serves over HTTP.
const { privateKey, publicKey } = await generateKeyPair('ES384');
const jwk = { ...(await exportJWK(publicKey)), kid: 'ehr', alg: 'ES384', use: 'sig' };
const ehr = createServer((_req, res) =>
  res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })),
);
const jwksUrl = `${await listen(ehr)}/jwks`;

async function side(status: TumourStatusSource) {
  const store = createMemoryCdsStore();
  const harness = await startHarness(
    () => [],
    { CDSS_RATE_LIMIT_PER_MINUTE: '1000000' },
    undefined,
    ({ auditor }) => [
      cdsHooksRouter({
        services: cdsServices({ status, store }),
        verifier: createCdsCallerVerifier({
          clients: [{ iss: 'https://ehr.bench', jwksUrls: [jwksUrl] }],
          replay: store,
        }),
        store,
        auditor,
        logger: createLogger('silent'),
      }),
    ],
  );
  const url = `${harness.baseUrl}/cds-services/${CDS_SERVICE_IDS.tumourStatus}`;
  const token = () =>
    new SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'ehr', jku: jwksUrl })
      .setIssuer('https://ehr.bench')
      .setAudience(url)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
  const call = async (patientId: string, jwt: string): Promise<number> => {
    const started = performance.now();
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      body: JSON.stringify({
        hook: 'patient-view',
        hookInstance: crypto.randomUUID(),
        context: { userId: 'Practitioner/1', patientId },
        prefetch: {
          patient: { resourceType: 'Patient', id: patientId, name: [{ family: 'Bench', given: ['Pat'] }] },
          conditions: { resourceType: 'Bundle', type: 'searchset', entry: [] },
        },
      }),
    });
    const body = (await response.json()) as { cards?: Array<{ summary: string }> };
    if (response.status !== 200 || !body.cards?.[0]?.summary.startsWith('Brain tumour:'))
      throw new Error(`unexpected answer ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
    return performance.now() - started;
  };
  return { harness, token, call };
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)] ?? 0;

const cachedSide = await side(cached);
const baselineSide = await side(uncached);
// Warm-up: every patient once on the cached side (fills the cache), and a few hundred calls on both sides.
for (const patientId of patientIds) await cachedSide.call(patientId, await cachedSide.token());
for (let i = 0; i < 200; i++) await baselineSide.call(patientIds[i % patients]!, await baselineSide.token());

const results = {
  cached: [] as Array<{ p50: number; p95: number }>,
  uncached: [] as Array<{ p50: number; p95: number }>,
};
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? (['cached', 'uncached'] as const) : (['uncached', 'cached'] as const);
  for (const name of order) {
    const target = name === 'cached' ? cachedSide : baselineSide;
    const tokens = await Promise.all(Array.from({ length: requests }, () => target.token()));
    const times: number[] = [];
    for (let i = 0; i < requests; i++) times.push(await target.call(patientIds[(i * 7919) % patients]!, tokens[i]!));
    results[name].push({ p50: percentile(times, 0.5), p95: percentile(times, 0.95) });
  }
  console.log(
    `round ${round + 1}: cached p50 ${results.cached.at(-1)!.p50.toFixed(2)} ms p95 ${results.cached.at(-1)!.p95.toFixed(2)} ms; ` +
      `uncached p50 ${results.uncached.at(-1)!.p50.toFixed(2)} ms p95 ${results.uncached.at(-1)!.p95.toFixed(2)} ms`,
  );
}
await cachedSide.harness.close();
await baselineSide.harness.close();
await cache.close();
pacs.close();
ehr.close();

const value = median(results.cached.map((r) => r.p50));
const baseline = median(results.uncached.map((r) => r.p50));
console.log(
  JSON.stringify({
    bench: 'cds-hooks',
    unit: 'ms',
    value: Math.round(value * 100) / 100,
    baseline: Math.round(baseline * 100) / 100,
    baseline_name: 'status computed on every call (job list + PACS study reads)',
    ratio: Math.round((value / baseline) * 1000) / 1000,
    p95: Math.round(median(results.cached.map((r) => r.p95)) * 100) / 100,
    baseline_p95: Math.round(median(results.uncached.map((r) => r.p95)) * 100) / 100,
    patients,
    requests_per_round: requests,
    rounds,
  }),
);
