/**
 * The server's shared state on a PRIVATE MariaDB (own folder and port, started by scripts/services/services.sh),
 * with two server instances composed on it: the three FHIR-write loss paths of issue #16 closed (each outbox insert
 * made to fail for real, by a trigger in the database), webhook answers, one review decision across instances, the
 * per-user rate limit and webhook replay cache shared by both, 50,000 jobs, and finally MariaDB stopped for real.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessage, encodeMessage, signWebhook, type JobEvent } from '@cdss/ai-jobs';
import { sampleResult } from '@cdss/ai-jobs/testing';
import { freePort, listenOnFreePort, requireService } from '@cdss/core/testing';
import { createOpenEmrEmulator, SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { startPrivateServices, type PrivateServices } from './private-services.js';

const mariadb = await requireService('mariadb');
const SECRET = 'w'.repeat(40);
const ISSUER = 'https://idp.shared-state.test';

interface Instance {
  composed: ComposedServer;
  url: string;
}

describe.skipIf(!mariadb.available)('shared state on a private MariaDB, two instances', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdss-shared-state-'));
  let privateDb: PrivateServices;
  let dbUrl: string;
  let db: mysql.Pool;
  let emulator: Server;
  let a: Instance;
  let b: Instance;
  let tokenFor: (userId: string, role: string) => Promise<string>;
  let study: { uid: string; patientId: string };

  async function instance(name: string, baseEnv: Record<string, string>): Promise<Instance> {
    const composed = await composeServer(
      loadConfig({ ...baseEnv, CDSS_DATA_DIR: join(dir, name) }),
      createLogger('silent'),
      'test',
    );
    return { composed, url: `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}` };
  }

  beforeAll(async () => {
    privateDb = await startPrivateServices(['mariadb']);
    dbUrl = privateDb.mysqlUrl;
    db = mysql.createPool({ uri: dbUrl, connectionLimit: 2, multipleStatements: false });

    const app = express().use(createOpenEmrEmulator({ dataDir: join(dir, 'openemr'), seed: true }));
    emulator = createServer(app);
    await listenOnFreePort(emulator);
    const emulatorPort = (emulator.address() as { port: number }).port;

    const { publicKey, privateKey } = await generateKeyPair('RS256');
    tokenFor = (userId, role) =>
      new SignJWT({ name: userId, roles: [role] })
        .setProtectedHeader({ alg: 'RS256' })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setAudience('cdss')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey);
    const baseEnv = {
      CDSS_LOG_LEVEL: 'silent',
      CDSS_WORKER: 'off',
      CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
      CDSS_AUTH_PUBLIC_KEY: await exportSPKI(publicKey),
      CDSS_AUTH_ISSUER: ISSUER,
      CDSS_WEBHOOK_SECRET: SECRET,
      CDSS_RATE_LIMIT_PER_MINUTE: '200',
      OPENEMR_URL: `http://127.0.0.1:${emulatorPort}`,
      OPENEMR_CLIENT_ID: SEED_CLIENT.clientId,
      OPENEMR_CLIENT_SECRET: SEED_CLIENT.clientSecret,
      OPENEMR_USERNAME: SEED_ADMIN.username,
      OPENEMR_PASSWORD: SEED_ADMIN.password,
      MYSQL_URL: dbUrl,
    };
    // A seeds the synthetic studies into its embedded PACS (B's stays empty: it only records and reviews).
    a = await instance('a', { ...baseEnv, CDSS_SANDBOX_STUDIES: '1' });
    b = await instance('b', { ...baseEnv, CDSS_SANDBOX_STUDIES: '0' });
    const physician = await tokenFor('dr-shared', 'physician');
    const patients = (await get(a, '/api/patients?limit=50', physician)).body as { items: Array<{ id: string }> };
    for (const patient of patients.items) {
      const studies = (await get(a, `/api/patients/${patient.id}/studies`, physician)).body as {
        items: Array<{ uid: string }>;
      };
      if (studies.items[0]) {
        study = { uid: studies.items[0].uid, patientId: patient.id };
        break;
      }
    }
    expect(study).toBeDefined();
  }, 240_000);

  afterAll(async () => {
    await a?.composed.close();
    await b?.composed.close();
    emulator?.closeAllConnections();
    await new Promise((resolve) => emulator?.close(resolve));
    await db?.end();
    await privateDb?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  async function send(
    target: Instance,
    method: string,
    path: string,
    token: string | undefined,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${target.url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }
  const get = (target: Instance, path: string, token: string) => send(target, 'GET', path, token);

  /** Delivers a signed job event as a worker would. */
  function webhook(target: Instance, event: JobEvent, signature?: string, raw?: string) {
    const body = raw ?? encodeMessage(event);
    return fetch(`${target.url}/api/webhooks/ai`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'cdss-signature': signature ?? signWebhook(body, SECRET) },
      body,
    }).then(async (response) => ({ status: response.status, body: await response.text() }));
  }
  const succeeded = (jobId: string): JobEvent =>
    createMessage({
      type: 'analysis.succeeded',
      jobId,
      workerId: 'test-worker',
      attempt: 1,
      result: {
        ...sampleResult(),
        segmentation: {
          studyInstanceUid: study.uid,
          seriesInstanceUid: `${study.uid}.9`,
          sopInstanceUid: `${study.uid}.9.1`,
        },
      },
    }) as JobEvent;

  async function requestAnalysis(target: Instance, token: string): Promise<string> {
    const response = await send(target, 'POST', `/api/studies/${study.uid}/analyses`, token, {
      patientId: study.patientId,
    });
    expect(response.status).toBe(202);
    return (response.body as { id: string }).id;
  }

  async function succeededAnalysis(): Promise<string> {
    const jobId = await requestAnalysis(a, await tokenFor('dr-shared', 'physician'));
    expect((await webhook(a, succeeded(jobId))).status).toBe(204);
    return jobId;
  }

  /** Makes every non-audit outbox insert fail, for real, inside the database. */
  async function outboxFails(fail: boolean): Promise<void> {
    await db.query('DROP TRIGGER IF EXISTS cdss_test_outbox_down');
    if (fail)
      await db.query(`CREATE TRIGGER cdss_test_outbox_down BEFORE INSERT ON fhir_outbox FOR EACH ROW
        BEGIN
          IF NEW.item_key NOT LIKE 'audit-batch:%' THEN
            SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'outbox unavailable (test)';
          END IF;
        END`);
  }

  /** FHIR writes queued (audit events aside) whose payload contains `like`. */
  async function outboxRows(like: string): Promise<number> {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM fhir_outbox WHERE item_key NOT LIKE 'audit-batch:%' AND payload LIKE ?",
      [`%${like}%`],
    );
    return Number(rows[0]?.['n']);
  }

  /** Chart-outbox entries (approved reports waiting to be filed in OpenEMR) of an analysis. */
  async function chartRows(jobId: string): Promise<number> {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM cdss_chart_outbox WHERE analysis_id = ?',
      [jobId],
    );
    return Number(rows[0]?.['n']);
  }

  it('a result is recorded with its preliminary report or not at all: 503 while the outbox refuses, both on retry', async () => {
    const jobId = await requestAnalysis(a, await tokenFor('dr-shared', 'physician'));
    await outboxFails(true);
    try {
      expect((await webhook(a, succeeded(jobId))).status).toBe(503);
      expect(await outboxRows(jobId)).toBe(0);
      const physician = await tokenFor('dr-shared', 'physician');
      expect(((await get(a, `/api/analyses/${jobId}`, physician)).body as { status: string }).status).toBe('queued');
    } finally {
      await outboxFails(false);
    }
    // the worker's retry (a new delivery of the same event) records the result and its report together
    expect((await webhook(b, succeeded(jobId))).status).toBe(204);
    expect(await outboxRows(jobId)).toBe(1);
    const pending = (await get(b, '/api/analyses?review=pending', await tokenFor('rad-shared', 'radiologist')))
      .body as { items: Array<{ id: string }> };
    expect(pending.items.map((i) => i.id)).toContain(jobId);
  }, 60_000);

  it('a review decision is recorded with its final report or not at all: the retry after a failed enqueue decides', async () => {
    const jobId = await succeededAnalysis();
    const radiologist = await tokenFor('rad-shared', 'radiologist');
    await outboxFails(true);
    try {
      const failed = await send(a, 'POST', `/api/analyses/${jobId}/review`, radiologist, { decision: 'approve' });
      expect(failed.status).toBe(503);
      const after = (await get(b, `/api/analyses/${jobId}`, radiologist)).body as { review: { status: string } };
      expect(after.review.status).toBe('pending');
      expect(await chartRows(jobId)).toBe(0);
    } finally {
      await outboxFails(false);
    }
    const retry = await send(b, 'POST', `/api/analyses/${jobId}/review`, radiologist, { decision: 'approve' });
    expect(retry.status).toBe(200);
    expect(await chartRows(jobId)).toBe(1);
    expect(await outboxRows(`"status":"final"`)).toBeGreaterThanOrEqual(1);
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM fhir_outbox
        WHERE item_key NOT LIKE 'audit-batch:%' AND payload LIKE ? AND payload LIKE '%"status":"final"%'`,
      [`%${jobId}%`],
    );
    expect(Number(rows[0]?.['n'])).toBe(1);
  }, 60_000);

  it('an approval is recorded with its chart-outbox entry or not at all: a refused entry leaves the review pending', async () => {
    const jobId = await succeededAnalysis();
    const radiologist = await tokenFor('rad-shared', 'radiologist');
    await db.query('DROP TRIGGER IF EXISTS cdss_test_chart_down');
    await db.query(`CREATE TRIGGER cdss_test_chart_down BEFORE INSERT ON cdss_chart_outbox FOR EACH ROW
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'chart outbox unavailable (test)'`);
    try {
      const failed = await send(a, 'POST', `/api/analyses/${jobId}/review`, radiologist, { decision: 'approve' });
      expect(failed.status).toBe(503);
      const after = (await get(b, `/api/analyses/${jobId}`, radiologist)).body as { review: { status: string } };
      expect(after.review.status).toBe('pending');
      // the final report queued in the same transaction was rolled back with it
      const [finals] = await db.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM fhir_outbox WHERE payload LIKE ? AND payload LIKE '%"status":"final"%'`,
        [`%${jobId}%`],
      );
      expect(Number(finals[0]?.['n'])).toBe(0);
      expect(await chartRows(jobId)).toBe(0);
    } finally {
      await db.query('DROP TRIGGER IF EXISTS cdss_test_chart_down');
    }
    const retry = await send(b, 'POST', `/api/analyses/${jobId}/review`, radiologist, { decision: 'approve' });
    expect(retry.status).toBe(200);
    expect(await chartRows(jobId)).toBe(1);
    // the shared review keeps who decided, by id and display name, for every instance
    const decided = (await get(a, `/api/analyses/${jobId}`, radiologist)).body as {
      review: { status: string; reviewer?: string; reviewerName?: string };
    };
    expect(decided.review).toMatchObject({ status: 'approved', reviewer: 'rad-shared', reviewerName: 'rad-shared' });
    // a rejection files nothing in the chart
    const rejected = await succeededAnalysis();
    const reject = await send(a, 'POST', `/api/analyses/${rejected}/review`, radiologist, {
      decision: 'reject',
      comment: 'motion artefact',
    });
    expect(reject.status).toBe(200);
    expect(await chartRows(rejected)).toBe(0);
  }, 60_000);

  it('a created patient whose FHIR sync could not be queued is synced by the retry with the same key', async () => {
    const nurse = await tokenFor('nurse-shared', 'nurse');
    const run = Math.random().toString(36).slice(2, 8);
    const input = { givenName: 'Olga', familyName: `Outbox${run}`, birthDate: '1959-09-19', sex: 'female' };
    const key = { 'idempotency-key': `outbox-down-${run}` };
    await outboxFails(true);
    try {
      expect((await send(a, 'POST', '/api/patients', nurse, input, key)).status).toBe(503);
      expect(await outboxRows(input.familyName)).toBe(0);
    } finally {
      await outboxFails(false);
    }
    // the client retries on the other instance: it finds the patient OpenEMR already has, and queues its sync
    const retry = await send(b, 'POST', '/api/patients', nurse, input, key);
    expect(retry.status).toBe(201);
    expect(await outboxRows(input.familyName)).toBe(1);
    const found = (await get(a, `/api/patients?q=${input.familyName}`, nurse)).body as { items: unknown[] };
    expect(found.items).toHaveLength(1);
    // and a further retry replays, queueing nothing more
    expect((await send(a, 'POST', '/api/patients', nurse, input, key)).status).toBe(201);
    expect(await outboxRows(input.familyName)).toBe(1);
  }, 60_000);

  it('webhook answers: 401 for a bad or missing signature, 400 for a bad body, 409 for a replay on either instance, 404 for an unknown job', async () => {
    const jobId = await requestAnalysis(a, await tokenFor('dr-shared', 'physician'));
    const event = createMessage({ type: 'analysis.accepted', jobId, workerId: 'w', attempt: 1 }) as JobEvent;
    const body = encodeMessage(event);
    expect((await webhook(a, event, signWebhook(body, 'x'.repeat(40)))).status).toBe(401);
    expect(
      (
        await fetch(`${a.url}/api/webhooks/ai`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        })
      ).status,
    ).toBe(401);
    const stale = signWebhook(body, SECRET, Math.floor(Date.now() / 1000) - 3_600);
    expect((await webhook(a, event, stale)).status).toBe(401);
    const junk = '{"type":"analysis.accepted","jobId":"nope"}';
    expect((await webhook(a, event, signWebhook(junk, SECRET), junk)).status).toBe(400);
    const signature = signWebhook(body, SECRET);
    expect((await webhook(a, event, signature)).status).toBe(204);
    expect((await webhook(a, event, signature)).status).toBe(409);
    expect((await webhook(b, event, signature)).status).toBe(409);
    const unknown = createMessage({
      type: 'analysis.accepted',
      jobId: '00000000-0000-4000-8000-000000000000',
      workerId: 'w',
      attempt: 1,
    }) as JobEvent;
    expect((await webhook(b, unknown)).status).toBe(404);
  }, 60_000);

  it('concurrent approve on A and reject on B: exactly one decision, the other 409', async () => {
    for (let round = 0; round < 3; round++) {
      const jobId = await succeededAnalysis();
      const radiologist = await tokenFor('rad-shared', 'radiologist');
      const [x, y] = await Promise.all([
        send(a, 'POST', `/api/analyses/${jobId}/review`, radiologist, { decision: 'approve' }),
        send(b, 'POST', `/api/analyses/${jobId}/review`, radiologist, { decision: 'reject', comment: 'motion' }),
      ]);
      expect([x.status, y.status].sort()).toEqual([200, 409]);
      const winner = (x.status === 200 ? x : y).body as { review: { status: string } };
      const stored = (await get(a, `/api/analyses/${jobId}`, radiologist)).body as { review: { status: string } };
      expect(stored.review.status).toBe(winner.review.status);
      expect((await get(b, `/api/analyses/${jobId}`, radiologist)).body).toMatchObject({
        review: { status: winner.review.status },
      });
    }
  }, 60_000);

  it('the per-user rate limit holds across instances', async () => {
    const token = await tokenFor(`limited-${Math.random().toString(36).slice(2)}`, 'nurse');
    const statuses: number[] = [];
    // 200 per minute for the user (CDSS_RATE_LIMIT_PER_MINUTE), counted once for both instances
    for (let i = 0; i < 210; i++)
      statuses.push((await get(i % 2 === 0 ? a : b, '/api/analyses?patient=rate-limited', token)).status);
    expect(statuses.filter((s) => s !== 429)).toHaveLength(200);
    expect(statuses.slice(200).every((s) => s === 429)).toBe(true);
  }, 60_000);

  it('with 50,000 jobs, a new analysis is first on its patient’s page and in the review queue', async () => {
    const jobIds = await seedJobs(db, 50_000, study.patientId);
    expect(jobIds).toBe(50_000);
    const jobId = await succeededAnalysis();
    const token = await tokenFor('rad-shared', 'radiologist');
    const mine = (await get(b, `/api/analyses?patient=${study.patientId}&limit=5`, token)).body as {
      items: Array<{ id: string }>;
      nextCursor?: string;
    };
    expect(mine.items[0]?.id).toBe(jobId);
    expect(mine.items).toHaveLength(5);
    const next = (await get(b, `/api/analyses?patient=${study.patientId}&limit=5&cursor=${mine.nextCursor}`, token))
      .body as { items: Array<{ id: string }> };
    expect(next.items).toHaveLength(5);
    expect(next.items.map((i) => i.id)).not.toContain(jobId);
    const queue = (await get(a, '/api/analyses?review=pending&limit=3', token)).body as {
      items: Array<{ id: string }>;
    };
    expect(queue.items[0]?.id).toBe(jobId);
    const assessment = await get(a, `/api/patients/${study.patientId}/assessment`, token);
    expect(assessment.status).toBe(200);
    // one timepoint per study: the newest analysis of the study stands for it, past all 50,000
    expect(JSON.stringify((assessment.body as { timeline: unknown[] }).timeline)).toContain(jobId);
  }, 180_000);

  it('MariaDB stopped for real: webhooks answer 503 (the worker retries), nothing is lost after the restart', async () => {
    const jobId = await requestAnalysis(a, await tokenFor('dr-shared', 'physician'));
    await privateDb.stop('mariadb');
    try {
      expect((await webhook(a, succeeded(jobId))).status).toBe(503);
    } finally {
      await privateDb.start('mariadb');
    }
    await expect
      .poll(async () => (await webhook(b, succeeded(jobId))).status, { timeout: 30_000, interval: 500 })
      .toBe(204);
    const token = await tokenFor('rad-shared', 'radiologist');
    expect(((await get(a, `/api/analyses/${jobId}`, token)).body as { status: string }).status).toBe('succeeded');
    // recorded with its consequences: the review opened (the study has an approved report from the tests above, so
    // this re-run's preliminary report is not published; an approval would amend the approved one)
    const [reviews] = await db.query<mysql.RowDataPacket[]>('SELECT status FROM cdss_reviews WHERE job_id = ?', [
      jobId,
    ]);
    expect(reviews).toEqual([expect.objectContaining({ status: 'pending' })]);
  }, 120_000);
});

/**
 * Seeds `count` jobs straight into the job table (10 per patient, 80 % succeeded with a pending review), created over
 * the past year, a tenth of them for `patientId`'s neighbours so the patient has a full page of old analyses too.
 */
async function seedJobs(db: mysql.Pool, count: number, patientId: string): Promise<number> {
  const { sampleRequest } = await import('@cdss/ai-jobs/testing');
  const template = sampleRequest();
  const start = Date.now() - 365 * 24 * 3600_000;
  let inserted = 0;
  for (let batch = 0; batch < count / 1000; batch++) {
    const jobs: unknown[][] = [];
    const reviews: unknown[][] = [];
    for (let i = 0; i < 1000; i++) {
      const n = batch * 1000 + i;
      const jobId = `${(0x10000000 + n).toString(16)}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
      const createdAt = new Date(start + n * 600_000).toISOString();
      const patientRef = n % 5_000 === 1 ? `Patient/${patientId}` : `Patient/seed-${n % 5_000}`;
      const succeededJob = n % 5 !== 0;
      const record = {
        jobId,
        idempotencyKey: `seed-${n}`,
        state: succeededJob ? 'succeeded' : 'failed',
        request: { ...template, jobId, idempotencyKey: `seed-${n}`, patientRef, createdAt },
        createdAt,
        updatedAt: createdAt,
        publishedAt: createdAt,
        attempt: 1,
        workerId: 'seed',
        progress: null,
        result: succeededJob ? sampleResult() : null,
        failure: succeededJob ? null : { reason: 'inference-failed', retryable: false, detail: 'seeded' },
        cancellation: null,
        reaps: 0,
      };
      const at = createdAt.replace('T', ' ').replace('Z', '');
      jobs.push([
        jobId,
        `seed-${n}`,
        record.state,
        JSON.stringify(record),
        at,
        at,
        at,
        patientRef,
        template.studyInstanceUid,
      ]);
      if (succeededJob) reviews.push([jobId, patientRef.slice('Patient/'.length), 'pending', at]);
    }
    await db.query(
      'INSERT INTO cdss_ai_jobs (job_id, idempotency_key, state, record, created_at, updated_at, published_at, patient_ref, study_uid) VALUES ?',
      [jobs],
    );
    await db.query('INSERT INTO cdss_reviews (job_id, patient_id, status, opened_at) VALUES ?', [reviews]);
    inserted += jobs.length;
  }
  return inserted;
}
