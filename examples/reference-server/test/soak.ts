/**
 * The soak (issue #16 item 8): `npm run soak -- --minutes N [--users U] [--sockets S] [--analysis-every S]`.
 *
 * Starts the two-instance deployment (two servers and a worker behind the real nginx, the OpenEMR emulator) on a
 * PRIVATE RabbitMQ and MariaDB and the shared Orthanc and HAPI FHIR, runs mixed load through nginx (reads, patient
 * creates with an Idempotency-Key and updates, analyses, reviews, WebSocket clients) while it restarts RabbitMQ,
 * MariaDB and one server instance on a schedule (at 25 %, 50 % and 75 % of the run), then lets the system drain and
 * reconciles: every acknowledged write must be in OpenEMR, in HAPI exactly once and in the audit table; every
 * analysis requested must have finished. Prints one JSON line; exits 1 when anything was lost, duplicated or stuck.
 * Loopback only; bounded by --minutes plus the drain (at most 6 minutes).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { WebSocket } from 'ws';
import mysql from 'mysql2/promise';
import { basicAuth } from '@cdss/core';
import { generatePhantom, writePhantomStudy } from '@cdss/dicom';
import { FhirAdapter, identifierSystems } from '@cdss/fhir-mapper';
import { OrthancClient } from '@cdss/orthanc-client';
import type { Patient } from 'fhir/r4.js';
import { fetchRaw, requireBinaries } from '../../../deploy/test/support.js';
import { DEMO_GRID } from '../src/compose.js';
import { emulatorClient, startDeployment, type DeployedProcess, type Deployment } from './deployment.js';
import type { MemorySample } from './memory-sampler.js';
import { startPrivateServices, type PrivateServices } from './private-services.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    users: { type: 'string', default: '4' },
    sockets: { type: 'string', default: '4' },
    'analysis-every': { type: 'string', default: '30' },
    'sample-seconds': { type: 'string', default: '5' },
    /** Heap snapshots of server-b into this folder at the warm baseline and at the end of the load (investigation
     * only: each pauses the server, so the figures of such a run are not the soak's). */
    'heap-snapshots': { type: 'string' },
    /** Run the servers and the worker without the images' memory settings (NODE_OPTIONS, MALLOC_ARENA_MAX), to
     * measure what they change; a soak that stands for the deployment runs without this. */
    'node-defaults': { type: 'boolean', default: false },
  },
});
const MINUTES = Number(args.minutes);
const USERS = Number(args.users);
const SOCKETS = Number(args.sockets);
const ANALYSIS_EVERY_MS = Number(args['analysis-every']) * 1000;
const SAMPLE_MS = Number(args['sample-seconds']) * 1000;
/** The bound on each process's RSS growth over the soak, from its warm point (see `rssReport`). */
const RSS_GROWTH_LIMIT_PERCENT = 20;
if (
  !(MINUTES > 0 && MINUTES <= 240) ||
  !(USERS >= 1) ||
  !(SOCKETS >= 0) ||
  !(ANALYSIS_EVERY_MS >= 1000) ||
  !(SAMPLE_MS >= 1000)
) {
  process.stderr.write(
    'usage: npm run soak -- --minutes N (1–240) [--users U] [--sockets S] [--analysis-every s] [--sample-seconds s]\n',
  );
  process.exit(2);
}

const log = (message: string): void => {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The shared Orthanc and HAPI FHIR: from the test environment, else from scripts/services. */
function sharedServiceUrls(): { orthanc: string; fhir: string } {
  let orthanc = process.env['CDSS_TEST_ORTHANC_URL'];
  let fhir = process.env['CDSS_TEST_FHIR_URL'];
  if (!orthanc || !fhir) {
    const env = execFileSync('bash', ['scripts/services/services.sh', 'env', 'orthanc', 'hapi-fhir'], {
      encoding: 'utf8',
    });
    orthanc ??= /CDSS_TEST_ORTHANC_URL=(\S+)/.exec(env)?.[1];
    fhir ??= /CDSS_TEST_FHIR_URL=(\S+)/.exec(env)?.[1];
  }
  if (!orthanc || !fhir)
    throw new Error('Orthanc and HAPI FHIR are needed: npm run services -- start orthanc hapi-fhir');
  return { orthanc: orthanc.replace(/^'|'$/g, ''), fhir: fhir.replace(/^'|'$/g, '') };
}

/** One life of a process (one pid): RSS in bytes at its start, at its warm point and at its end. */
interface Life {
  pid: number;
  start: number;
  warm?: { rss: number; at: number };
  /** At the end of the load (still running then). */
  endOfLoad?: number;
  /** After the drain and the reconciliation, or just before the SIGKILL. */
  end?: number;
  ended?: string;
}

function life(p: DeployedProcess): Life {
  return { pid: p.pid(), start: p.rss() };
}

/**
 * RSS per process and per life (pid). Growth is measured within one life: a restarted process is a new process, so
 * the killed one is measured up to its SIGKILL and the new one from its own start and warm point. The issue's bound
 * applies from the warm point (20 % into the load, after the worker's first analysis: the start is an idle process
 * that has served nothing, its first minute of load loads code, fills caches and pools and sizes V8's heap), to the
 * higher of the RSS at the end of the load and after the drain; growth from the start is printed beside it.
 */
function rssReport(lives: Map<string, Life[]>): Record<string, unknown> {
  const mib = (bytes: number): number => Math.round(bytes / 1048576);
  const percent = (from: number, to: number): number => Math.round(((to - from) / from) * 1000) / 10;
  const processes: Record<string, unknown[]> = {};
  let worst: { process: string; pid: number; growthSinceWarmPercent: number } | undefined;
  for (const [name, list] of lives) {
    processes[name] = list.map((l) => {
      const end = Math.max(l.end ?? 0, l.endOfLoad ?? 0);
      const sinceWarm = l.warm && l.warm.rss > 0 && end > 0 ? percent(l.warm.rss, end) : null;
      if (sinceWarm !== null && (!worst || sinceWarm > worst.growthSinceWarmPercent))
        worst = { process: name, pid: l.pid, growthSinceWarmPercent: sinceWarm };
      return {
        pid: l.pid,
        startMiB: mib(l.start),
        warmMiB: l.warm ? mib(l.warm.rss) : null,
        ...(l.endOfLoad !== undefined ? { endOfLoadMiB: mib(l.endOfLoad) } : {}),
        endMiB: l.end !== undefined ? mib(l.end) : null,
        ended: l.ended ?? 'running at the end',
        growthPercent: l.start > 0 && end > 0 ? percent(l.start, end) : null,
        growthSinceWarmPercent: sinceWarm,
      };
    });
  }
  return {
    baseline:
      'growthSinceWarmPercent: from the warm point (20 % into the load; a restarted process: as long after its own ' +
      'start, at most half-way to the end) to the higher of endOfLoadMiB and endMiB, within one pid; growthPercent: ' +
      'the same end from the pid’s start',
    limitPercent: RSS_GROWTH_LIMIT_PERCENT,
    worst,
    withinLimit: worst !== undefined && worst.growthSinceWarmPercent < RSS_GROWTH_LIMIT_PERCENT,
    processes,
  };
}

interface Answer {
  status: number;
  body: unknown;
}

/** Counts every request by status (0: no answer). */
const statuses = new Map<number, number>();
let requests = 0;

async function main(): Promise<number> {
  const bins = requireBinaries('soak', ['nginx', 'openssl'], 'nginx openssl');
  if (!bins) return 2;
  const shared = sharedServiceUrls();
  const run = randomUUID().slice(0, 8);
  log(`starting private RabbitMQ and MariaDB, then the deployment (run ${run})`);
  const privateServices: PrivateServices = await startPrivateServices(['rabbitmq', 'mariadb']);
  const samples = mkdtempSync(join(tmpdir(), 'cdss-soak-memory-'));
  let deployment: Deployment | undefined;
  try {
    deployment = await startDeployment({
      services: {
        amqpUrl: privateServices.amqpUrl,
        mysqlUrl: privateServices.mysqlUrl,
        fhirUrl: shared.fhir,
        orthancUrl: shared.orthanc,
      },
      nginx: bins.nginx,
      openssl: bins.openssl,
      memorySamples: { dir: samples, intervalMs: SAMPLE_MS },
      ...(args['heap-snapshots'] ? { heapSnapshotDir: args['heap-snapshots'] } : {}),
      memorySettings: args['node-defaults'] ? 'node-defaults' : 'image',
      apiRate: '2000r/s',
      apiBurst: 4000,
      serverEnv: {
        CDSS_LOG_LEVEL: 'error',
        CDSS_RATE_LIMIT_PER_MINUTE: '1000000',
        CDSS_JOB_REAP_INTERVAL_MS: '5000',
        CDSS_JOB_STALE_MS: '30000',
        CDSS_AUTO_ANALYSIS: 'false',
        OPENEMR_TIMEOUT_MS: '5000',
        CDSS_IDEMPOTENCY_LEASE_MS: '15000',
      },
      workerEnv: { CDSS_LOG_LEVEL: 'error', WORKER_ACK_TIMEOUT_MS: '20000', WORKER_HEARTBEAT_MS: '5000' },
    });
    return await soak(deployment, privateServices, shared, run, samples);
  } finally {
    await deployment?.stop();
    await privateServices.close();
    rmSync(samples, { recursive: true, force: true });
  }
}

async function soak(
  deployment: Deployment,
  privateServices: PrivateServices,
  shared: { orthanc: string; fhir: string },
  run: string,
  samples: string,
): Promise<number> {
  const loadAtStart = loadavg();
  const family = `Soak${run}`;
  const nurse = await deployment.tokenFor(`soak-nurse-${run}`, 'nurse');
  const physician = await deployment.tokenFor(`soak-physician-${run}`, 'physician');
  const radiologist = await deployment.tokenFor(`soak-radiologist-${run}`, 'radiologist');
  const admin = await deployment.tokenFor(`soak-admin-${run}`, 'admin');

  async function call(
    method: string,
    path: string,
    token: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    requests++;
    let answer: Answer;
    try {
      const response = await fetchRaw(`${deployment.url}${path}`, {
        method,
        ca: deployment.ca,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = response.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      answer = { status: response.status, body: parsed };
    } catch {
      answer = { status: 0, body: undefined };
    }
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    return answer;
  }

  /** A client's retry loop: the same request (and Idempotency-Key) until a definite answer or `giveUpMs`. */
  async function definite(send: () => Promise<Answer>, giveUpMs = 120_000): Promise<Answer> {
    const deadline = Date.now() + giveUpMs;
    for (let delay = 200; ; delay = Math.min(delay * 2, 2_000)) {
      const answer = await send();
      const retry = answer.status === 0 || answer.status === 409 || answer.status === 429 || answer.status >= 500;
      if (!retry || Date.now() > deadline) return answer;
      await sleep(delay);
    }
  }

  // --- seed: patients with a study each in the PACS
  const orthancUrl = new URL(shared.orthanc);
  const orthanc = new OrthancClient({
    baseUrl: `${orthancUrl.protocol}//${orthancUrl.host}`,
    auth: basicAuth(decodeURIComponent(orthancUrl.username), decodeURIComponent(orthancUrl.password)),
  });
  const studies: Array<{ patientId: string; studyUid: string }> = [];
  for (let i = 0; i < 2; i++) {
    const created = await definite(() =>
      call(
        'POST',
        '/api/patients',
        nurse,
        { givenName: `Scan${i}`, familyName: family, birthDate: '1970-01-01', sex: 'female' },
        {
          'idempotency-key': `soak-${run}-scan-${i}`,
        },
      ),
    );
    if (created.status !== 201) throw new Error(`seeding a patient answered ${created.status}`);
    const patientId = (created.body as { id: string }).id;
    const study = writePhantomStudy(generatePhantom({ seed: `soak-${run}-${i}`, ...DEMO_GRID }), {
      patientId,
      patientName: `${family}^Scan${i}`,
      uidSeed: `soak-${run}-${i}`,
    });
    await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
    studies.push({ patientId, studyUid: study.studyInstanceUid });
  }

  // --- what the clients were told
  const creates = new Map<string, { id: string; givenName: string }>(); // acknowledged, by idempotency key
  const unacknowledgedCreates: string[] = [];
  const updates = new Map<string, { acknowledged: string; maybe: Set<string> }>(); // by patient id
  const requested = new Set<string>(); // analyses accepted (202)
  const reviewed = new Map<string, string>(); // analysis → decision acknowledged
  const processes: DeployedProcess[] = [
    ...deployment.servers,
    ...(deployment.worker ? [deployment.worker] : []),
    deployment.emulator,
    deployment.nginx,
  ];
  // each life of each process (the SIGKILLed server has two), RSS at its start, warm point and end
  const lives = new Map<string, Life[]>(processes.map((p) => [p.name, [life(p)]]));
  const current = (p: DeployedProcess): Life => lives.get(p.name)!.at(-1)!;
  const restarts: Array<{ what: string; at: string; downMs: number }> = [];
  let warmAt = 0;
  let killAt = 0;

  // --- WebSocket clients (through nginx), reconnecting when their instance goes away
  let wsEvents = 0;
  let wsReconnects = 0;
  let stopping = false;
  const sockets: WebSocket[] = [];
  function connect(index: number): void {
    const ws = new WebSocket(`${deployment.url.replace(/^https/, 'wss')}/ws`, { ca: deployment.ca });
    sockets[index] = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: physician })));
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as { type: string };
      if (message.type === 'ready')
        for (const s of studies) ws.send(JSON.stringify({ type: 'subscribe', topic: `patient:${s.patientId}` }));
      if (message.type === 'event') wsEvents++;
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (stopping) return;
      wsReconnects++;
      setTimeout(() => connect(index), 1_000);
    });
  }
  for (let i = 0; i < SOCKETS; i++) connect(i);

  const loadStartedAt = Date.now();
  const endAt = loadStartedAt + MINUTES * 60_000;
  log(`load for ${MINUTES} min: ${USERS} users, ${SOCKETS} sockets, an analysis every ${ANALYSIS_EVERY_MS / 1000} s`);

  // --- the schedule of restarts
  const schedule = (async () => {
    const at = (fraction: number) => sleep(Math.max(0, endAt - MINUTES * 60_000 * (1 - fraction) - Date.now()));
    const outage = async (what: string, down: () => Promise<void>, up: () => Promise<void>, pauseMs: number) => {
      const t0 = Date.now();
      log(`restart: ${what}`);
      await down();
      await sleep(pauseMs);
      await up();
      restarts.push({ what, at: new Date(t0).toISOString(), downMs: Date.now() - t0 });
    };
    // a baseline once every process is warm (the worker has loaded its model for the first analysis): growth from
    // here on is what a leak would show; growth from the start mostly shows the model loading
    await at(0.2);
    warmAt = Date.now();
    for (const p of processes) current(p).warm = { rss: p.rss(), at: warmAt };
    if (args['heap-snapshots']) await heapSnapshot(deployment.servers[1]!, args['heap-snapshots']);
    await at(0.25);
    await outage(
      'RabbitMQ',
      () => privateServices.stop('rabbitmq'),
      () => privateServices.start('rabbitmq'),
      5_000,
    );
    await at(0.5);
    await outage(
      'MariaDB',
      () => privateServices.stop('mariadb'),
      () => privateServices.start('mariadb'),
      5_000,
    );
    await at(0.75);
    const victim = deployment.servers[0]!;
    killAt = Date.now();
    const killed = current(victim);
    killed.end = victim.rss();
    killed.ended = 'SIGKILL at 75 % of the load';
    await outage(
      `${victim.name} (SIGKILL)`,
      () => victim.kill('SIGKILL'),
      async () => {
        await victim.restart();
        lives.get(victim.name)!.push(life(victim));
      },
      3_000,
    );
    // the new process's own warm point: as long after its start as the first one's (20 % of the run), but no later
    // than half-way to the end of the load, so that it is measured over a window of load too
    const restarted = current(victim);
    await sleep(Math.min(warmAt - loadStartedAt, (endAt - Date.now()) / 2));
    restarted.warm = { rss: victim.rss(), at: Date.now() };
  })();

  // --- analyses, on a timer
  const analyses = (async () => {
    for (let i = 0; Date.now() < endAt; i++) {
      const target = studies[i % studies.length]!;
      const key = `soak-${run}-analysis-${i}`;
      const answer = await definite(() =>
        call(
          'POST',
          `/api/studies/${target.studyUid}/analyses`,
          physician,
          { patientId: target.patientId },
          {
            'idempotency-key': key,
          },
        ),
      );
      if (answer.status === 202) requested.add((answer.body as { id: string }).id);
      await sleep(Math.max(0, Math.min(ANALYSIS_EVERY_MS, endAt - Date.now())));
    }
  })();

  // --- the users
  async function user(u: number): Promise<void> {
    const mine: Array<{ id: string; givenName: string }> = [];
    for (let n = 0; Date.now() < endAt; n++) {
      const dice = Math.random();
      if (dice < 0.15 || mine.length === 0) {
        const key = `soak-${run}-u${u}-${n}`;
        const givenName = `U${u}N${n}`;
        const answer = await definite(() =>
          call(
            'POST',
            '/api/patients',
            nurse,
            { givenName, familyName: family, birthDate: '1980-02-02', sex: 'male' },
            {
              'idempotency-key': key,
            },
          ),
        );
        if (answer.status === 201) {
          const id = (answer.body as { id: string }).id;
          creates.set(key, { id, givenName });
          mine.push({ id, givenName });
        } else unacknowledgedCreates.push(key);
      } else if (dice < 0.3) {
        const patient = mine[Math.floor(Math.random() * mine.length)]!;
        const id = patient.id;
        const givenName = `${patient.givenName}-${n}`;
        const state = updates.get(id) ?? { acknowledged: '', maybe: new Set<string>() };
        updates.set(id, state);
        state.maybe.add(givenName);
        const answer = await definite(() =>
          call('PUT', `/api/patients/${id}`, nurse, {
            givenName,
            familyName: family,
            birthDate: '1980-02-02',
            sex: 'male',
          }),
        );
        if (answer.status === 200) {
          state.acknowledged = givenName;
          state.maybe = new Set();
        }
      } else if (dice < 0.4) {
        const pending = await call('GET', '/api/analyses?review=pending&limit=5', radiologist);
        const items = (pending.body as { items?: Array<{ id: string; result?: { flags?: unknown[] } }> })?.items ?? [];
        const mineToReview = items.find((a) => requested.has(a.id) && !reviewed.has(a.id));
        if (mineToReview) {
          const decision = Math.random() < 0.8 ? 'approve' : 'reject';
          const answer = await definite(() =>
            call('POST', `/api/analyses/${mineToReview.id}/review`, radiologist, { decision, comment: 'soak review' }),
          );
          if (answer.status === 200) reviewed.set(mineToReview.id, decision === 'approve' ? 'approved' : 'rejected');
        }
      } else if (dice < 0.75) {
        await call('GET', `/api/patients/${mine[Math.floor(Math.random() * mine.length)]!.id}`, nurse);
      } else if (dice < 0.85) {
        await call('GET', `/api/patients?q=${family}&limit=20`, nurse);
      } else {
        const s = studies[Math.floor(Math.random() * studies.length)]!;
        await call('GET', `/api/analyses?patient=${s.patientId}&limit=20`, physician);
      }
      await sleep(20);
    }
  }
  // RSS at the end of the load's time, before the clients' last retries trickle out and the servers go idle
  const endOfLoad = sleep(endAt - Date.now()).then(() => {
    for (const p of processes) current(p).endOfLoad = p.rss();
  });
  await Promise.all([...Array.from({ length: USERS }, (_, u) => user(u)), analyses, schedule, endOfLoad]);
  if (args['heap-snapshots']) await heapSnapshot(deployment.servers[1]!, args['heap-snapshots']);
  stopping = true;
  for (const ws of sockets) ws?.close();
  log(`load done: ${requests} requests; draining`);

  // --- drain: every analysis finished, every FHIR write delivered
  const db = mysql.createPool({ uri: privateServices.mysqlUrl, connectionLimit: 2 });
  const finished = new Map<string, string>();
  const drainUntil = Date.now() + 6 * 60_000;
  for (;;) {
    for (const id of requested) {
      if (finished.has(id)) continue;
      const answer = await call('GET', `/api/analyses/${id}`, physician);
      const status = (answer.body as { status?: string })?.status;
      if (status === 'succeeded' || status === 'failed' || status === 'cancelled') finished.set(id, status);
    }
    const [pending] = await db.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM fhir_outbox WHERE status = 'pending'",
    );
    const outboxPending = Number(pending[0]?.['n']);
    if ((finished.size === requested.size && outboxPending === 0) || Date.now() > drainUntil) break;
    await sleep(2_000);
  }

  // --- reconcile
  log('reconciling with OpenEMR, HAPI FHIR and the audit table');
  const openemr = emulatorClient(deployment);
  const inEmr = await openemr.patients.list({ lname: family });
  const fhir = new FhirAdapter({ baseUrl: shared.fhir });
  const system = identifierSystems('default').patientUuid;
  const expectedName = (c: { id: string; givenName: string }): Set<string> => {
    const state = updates.get(c.id);
    if (!state) return new Set([c.givenName]);
    return new Set([state.acknowledged || c.givenName, ...state.maybe]);
  };
  const missing = { openemr: [] as string[], hapi: [] as string[], audit: [] as string[] };
  let duplicatesInHapi = 0;
  for (const c of creates.values()) {
    const names = expectedName(c);
    const emr = inEmr.find((p) => p.uuid === c.id);
    if (!emr || !names.has(emr.fname)) missing.openemr.push(c.id);
    const resources = await fhir.findByIdentifier<Patient>('Patient', { system, value: c.id }).catch(() => []);
    if (resources.length > 1) duplicatesInHapi++;
    if (resources.length !== 1 || !names.has(resources[0]!.name?.[0]?.given?.[0] ?? '')) missing.hapi.push(c.id);
    const audit = await definite(() => call('GET', `/api/audit?patient=${c.id}&limit=50`, admin));
    const items = (audit.body as { items?: Array<{ action: string; outcome: string }> })?.items ?? [];
    if (!items.some((r) => r.action === 'create' && r.outcome === 'success')) missing.audit.push(c.id);
  }
  const foundInOpenEmr = creates.size - missing.openemr.length;
  const foundInHapi = creates.size - missing.hapi.length;
  const foundInAudit = creates.size - missing.audit.length;
  const givenNames = inEmr.map((p) => p.fname.split('-')[0]);
  const duplicatesInOpenEmr = givenNames.length - new Set(givenNames).size;
  let reviewsFound = 0;
  for (const [id, decision] of reviewed) {
    const answer = await call('GET', `/api/analyses/${id}`, radiologist);
    if ((answer.body as { review?: { status: string } })?.review?.status === decision) reviewsFound++;
  }
  await db.end();

  for (const p of processes) if (!current(p).ended) current(p).end = p.rss();
  const rss = rssReport(lives);
  const states = [...finished.values()];
  const summary = {
    minutes: MINUTES,
    users: USERS,
    sockets: SOCKETS,
    requests,
    statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
    errorsByStatus: Object.fromEntries([...statuses].filter(([s]) => s === 0 || s >= 400).sort(([a], [b]) => a - b)),
    writes: {
      acknowledged: creates.size,
      foundInOpenEmr,
      foundInHapi,
      foundInAudit,
      duplicatesInOpenEmr,
      duplicatesInHapi,
      unacknowledgedCreates: unacknowledgedCreates.length,
      updatesAcknowledged: [...updates.values()].filter((u) => u.acknowledged).length,
      ...(missing.openemr.length + missing.hapi.length + missing.audit.length > 0
        ? {
            missing: {
              openemr: missing.openemr.slice(0, 10),
              hapi: missing.hapi.slice(0, 10),
              audit: missing.audit.slice(0, 10),
            },
          }
        : {}),
    },
    reviews: { acknowledged: reviewed.size, found: reviewsFound },
    jobs: {
      requested: requested.size,
      finished: finished.size,
      succeeded: states.filter((s) => s === 'succeeded').length,
      failed: states.filter((s) => s === 'failed').length,
      stuck: requested.size - finished.size,
    },
    websocket: { clients: SOCKETS, events: wsEvents, reconnects: wsReconnects },
    restarts,
    rss,
    memory: memoryReport(samples, { loadStartedAt, warmAt, killAt, endAt }),
    loadAverage: {
      start: loadAtStart.map((l) => Math.round(l * 10) / 10),
      end: loadavg().map((l) => Math.round(l * 10) / 10),
    },
  };
  const ok =
    creates.size > 0 &&
    foundInOpenEmr === creates.size &&
    foundInHapi === creates.size &&
    foundInAudit === creates.size &&
    duplicatesInOpenEmr === 0 &&
    duplicatesInHapi === 0 &&
    reviewsFound === reviewed.size &&
    summary.jobs.stuck === 0;
  process.stdout.write(`${JSON.stringify({ ...summary, ok })}\n`);
  return ok ? 0 : 1;
}

/**
 * What the memory samples say, per Node.js process and per life (pid; the restarted server has two): a per-minute
 * series of RSS, of the heap still alive after the last full GC of the minute, of the heap V8 holds (heapTotal) and of
 * external memory, and over the
 * windows from the warm baseline (20 % of the run) to the end of the load and to the SIGKILL (75 %, the same load on
 * both servers): RSS growth and the least-squares slopes of RSS and of the heap after full GCs. A leak of JavaScript
 * objects shows as a heap after GC that keeps rising; RSS rising over a flat heap is native memory or the allocator
 * keeping pages.
 * @param dir - the sample files, `<process>.jsonl`
 * @param times - when the load began (minute 0), the warm baseline, the SIGKILL and the end of the load
 */
function memoryReport(
  dir: string,
  times: { loadStartedAt: number; warmAt: number; killAt: number; endAt: number },
): Record<string, unknown> {
  const { loadStartedAt, warmAt, killAt, endAt } = times;
  const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
  /** Least-squares slope of `value` (MiB) over `t`, per minute. */
  const slopePerMinute = (points: MemorySample[], value: (s: MemorySample) => number): number | null => {
    if (points.length < 3) return null;
    const n = points.length;
    const mt = points.reduce((a, p) => a + p.t, 0) / n;
    const mv = points.reduce((a, p) => a + value(p), 0) / n;
    const num = points.reduce((a, p) => a + (p.t - mt) * (value(p) - mv), 0);
    const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
    return den > 0 ? Math.round((num / den) * 60_000 * (100 / 1048576)) / 100 : null;
  };
  const windowStats = (samples: MemorySample[], from: number, to: number): Record<string, unknown> | undefined => {
    const window = samples.filter((s) => s.t >= from && s.t <= to && !s.afterMajorGc);
    const first = window[0];
    const last = window.at(-1);
    if (!first || !last || last.t - first.t < 60_000) return undefined;
    const gcs = samples.filter((s) => s.t >= from && s.t <= to && s.afterMajorGc);
    return {
      minutes: Math.round(((last.t - first.t) / 60_000) * 10) / 10,
      rssMiB: [mib(first.rss), mib(last.rss)],
      rssGrowthPercent: Math.round(((last.rss - first.rss) / first.rss) * 1000) / 10,
      rssSlopeMiBPerMinute: slopePerMinute(window, (s) => s.rss),
      majorGcs: gcs.length,
      heapAfterGcMiB: gcs.length > 0 ? [mib(gcs[0]!.heapUsed), mib(gcs.at(-1)!.heapUsed)] : null,
      heapAfterGcSlopeMiBPerMinute: slopePerMinute(gcs, (s) => s.heapUsed),
      heapTotalMiB: [mib(first.heapTotal), mib(last.heapTotal)],
      externalMiB: [mib(first.external), mib(last.external)],
    };
  };
  const report: Record<string, unknown> = {};
  for (const name of ['server-a', 'server-b', 'ai-worker', 'openemr-emulator']) {
    const file = join(dir, `${name}.jsonl`);
    if (!existsSync(file)) continue;
    const all = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as MemorySample);
    report[name] = [...new Set(all.map((s) => s.pid))].map((pid) => {
      const mine = all.filter((s) => s.pid === pid && s.t <= endAt);
      const minutes = new Map<number, MemorySample[]>();
      for (const s of mine) {
        const minute = Math.floor((s.t - loadStartedAt) / 60_000);
        minutes.set(minute, [...(minutes.get(minute) ?? []), s]);
      }
      const series = [...minutes].map(([minute, group]) => {
        const plain = group.filter((s) => !s.afterMajorGc);
        const gc = group.filter((s) => s.afterMajorGc).at(-1);
        return {
          minute,
          rssMiB: mib((plain.at(-1) ?? group.at(-1)!).rss),
          heapAfterGcMiB: gc ? mib(gc.heapUsed) : null,
          heapTotalMiB: mib((plain.at(-1) ?? group.at(-1)!).heapTotal),
          externalMiB: mib((plain.at(-1) ?? group.at(-1)!).external),
          spacesMiB: Object.fromEntries(
            Object.entries((plain.at(-1) ?? group.at(-1)!).spaces ?? {}).map(([space, bytes]) => [space, mib(bytes)]),
          ),
        };
      });
      const sinceWarm = windowStats(mine, warmAt, endAt);
      const untilKill = killAt > 0 ? windowStats(mine, warmAt, killAt) : undefined;
      return { pid, series, ...(sinceWarm ? { sinceWarm } : {}), ...(untilKill ? { warmToKill: untilKill } : {}) };
    });
  }
  return report;
}

/** Asks a sampled process for a heap snapshot (SIGUSR2, test/memory-sampler.ts) and waits until it is written. */
async function heapSnapshot(p: DeployedProcess, dir: string): Promise<void> {
  const written = (): number =>
    (existsSync(join(dir, 'written')) ? readFileSync(join(dir, 'written'), 'utf8') : '').length;
  const before = written();
  log(`heap snapshot of ${p.name} (pid ${p.pid()})`);
  process.kill(p.pid(), 'SIGUSR2');
  for (let waited = 0; waited < 120_000 && written() === before; waited += 1_000) await sleep(1_000);
}

// package.json's version, for the log line only
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
log(`CDSS reference server ${version}`);
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
