/**
 * Proven as a deployment (issue #16 item 7): two reference-server processes and one AI worker process in connected
 * mode behind the real nginx from deploy/nginx, on the real RabbitMQ, MariaDB, Orthanc and HAPI FHIR (OpenEMR through
 * its emulator process). Events cross instances, caches do not serve stale data, one review decision wins, an
 * instance killed with SIGKILL mid-stream loses no acknowledged write, and a worker killed mid-job leaves the job
 * completed once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import mysql from 'mysql2/promise';
import { basicAuth } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import { generatePhantom, writePhantomStudy } from '@cdss/dicom';
import { FhirAdapter, identifierSystems } from '@cdss/fhir-mapper';
import { OrthancClient } from '@cdss/orthanc-client';
import type { Patient } from 'fhir/r4.js';
import { fetchRaw, requireBinaries } from '../../../deploy/test/support.js';
import { DEMO_GRID } from '../src/compose.js';
import { emulatorClient, startDeployment, type Deployment, type DeployedProcess } from './deployment.js';
import { startPrivateServices, type PrivateServices } from './private-services.js';

// RabbitMQ and MariaDB are private instances (queues and tables of their own, so no other suite's worker or server
// running meanwhile takes this deployment's jobs); their shared instances answering means the binaries are here.
const services = await Promise.all(
  (['orthanc', 'rabbitmq', 'mariadb', 'hapi-fhir'] as const).map((name) => requireService(name)),
);
const [orthancSvc, , , hapiSvc] = services;
const bins = requireBinaries('two-instance deployment suite', ['nginx', 'openssl'], 'nginx openssl');
const available = services.every((s) => s.available) && bins !== undefined;

interface Answer {
  status: number;
  body: unknown;
}

describe.skipIf(!available)('two server instances and a worker behind nginx, on the real services', () => {
  let deployment: Deployment;
  let privateServices: PrivateServices;
  let db: mysql.Pool;
  let a: DeployedProcess;
  let b: DeployedProcess;
  const orthancUrl = new URL(orthancSvc!.url);
  const orthanc = new OrthancClient({
    baseUrl: `${orthancUrl.protocol}//${orthancUrl.host}`,
    auth: basicAuth(decodeURIComponent(orthancUrl.username), decodeURIComponent(orthancUrl.password)),
  });
  const fhir = new FhirAdapter({ baseUrl: hapiSvc!.url });
  let tokens: Record<'physician' | 'radiologist' | 'nurse' | 'admin', string>;
  let patient: { id: string };
  let studyUid: string;

  beforeAll(async () => {
    privateServices = await startPrivateServices(['rabbitmq', 'mariadb']);
    deployment = await startDeployment({
      services: {
        amqpUrl: privateServices.amqpUrl,
        mysqlUrl: privateServices.mysqlUrl,
        fhirUrl: hapiSvc!.url,
        orthancUrl: orthancSvc!.url,
      },
      nginx: bins!.nginx,
      openssl: bins!.openssl,
      // one client address sends everything here: nginx's per-IP limit is raised for the test
      apiRate: '500r/s',
      apiBurst: 1000,
      serverEnv: {
        CDSS_RATE_LIMIT_PER_MINUTE: '100000',
        CDSS_JOB_REAP_INTERVAL_MS: '1000',
        // well above the worker's heartbeat even on a loaded CI machine: a busy worker is not taken for a dead one
        // (with 5 s, under load, an analysis of the SIGKILL stream once did not succeed within 240 s)
        CDSS_JOB_STALE_MS: '20000',
        CDSS_JOB_MAX_REAPS: '4',
        CDSS_CACHE_TTL_MS: '600000',
        CDSS_AUTO_ANALYSIS: 'false',
        OPENEMR_TIMEOUT_MS: '5000',
        CDSS_IDEMPOTENCY_LEASE_MS: '15000',
      },
      workerEnv: { WORKER_ACK_TIMEOUT_MS: '500', WORKER_HEARTBEAT_MS: '500' },
    });
    [a, b] = deployment.servers as [DeployedProcess, DeployedProcess];
    db = mysql.createPool({ uri: privateServices.mysqlUrl, connectionLimit: 2 });
    const token = (role: string) => deployment.tokenFor(`deploy-${role}-${randomUUID().slice(0, 6)}`, role);
    tokens = {
      physician: await token('physician'),
      radiologist: await token('radiologist'),
      nurse: await token('nurse'),
      admin: await token('admin'),
    };
    // a patient with a four-series study in the PACS
    const created = await call(deployment.url, 'POST', '/api/patients', tokens.physician, {
      givenName: 'Dee',
      familyName: `Deploy${randomUUID().slice(0, 6)}`,
      birthDate: '1964-04-14',
      sex: 'female',
    });
    expect(created.status).toBe(201);
    patient = created.body as { id: string };
    const phantom = generatePhantom({ seed: `deploy-${patient.id}`, ...DEMO_GRID });
    const study = writePhantomStudy(phantom, {
      patientId: patient.id,
      patientName: 'Deploy^Dee',
      uidSeed: `deploy-${patient.id}`,
    });
    await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
    studyUid = study.studyInstanceUid;
  }, 300_000);

  afterAll(async () => {
    await deployment?.stop();
    await db?.end();
    await privateServices?.close();
  }, 180_000);

  /** One request; `base` is nginx or an instance's own URL. */
  async function call(
    base: string,
    method: string,
    path: string,
    token: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const response = await fetchRaw(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(base.startsWith('https') ? { ca: deployment.ca } : {}),
    });
    const text = response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  async function analysisState(id: string): Promise<{ status: string; review?: { status: string } }> {
    return (await call(deployment.url, 'GET', `/api/analyses/${id}`, tokens.nurse)).body as {
      status: string;
      review?: { status: string };
    };
  }

  async function succeededTransitions(jobId: string): Promise<number> {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM cdss_ai_job_transitions WHERE job_id = ? AND to_state = 'succeeded'",
      [jobId],
    );
    return Number(rows[0]?.['n']);
  }

  /** Opens a WebSocket on one instance, subscribed to the patient's topic; collects events. */
  async function watch(
    instance: DeployedProcess,
  ): Promise<{ events: Array<{ type: string; analysisId?: string }>; close(): void }> {
    const events: Array<{ type: string; analysisId?: string }> = [];
    const ws = new WebSocket(`${instance.url.replace(/^http/, 'ws')}/ws`);
    let ready = false;
    let subscribed = false;
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as { type: string; event?: { type: string; analysisId?: string } };
      if (message.type === 'ready') ready = true;
      if (message.type === 'subscribed') subscribed = true;
      if (message.type === 'event' && message.event) events.push(message.event);
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'auth', token: tokens.physician }));
    await expect.poll(() => ready, { timeout: 10_000 }).toBe(true);
    ws.send(JSON.stringify({ type: 'subscribe', topic: `patient:${patient.id}` }));
    await expect.poll(() => subscribed, { timeout: 10_000 }).toBe(true);
    return { events, close: () => ws.close() };
  }

  let analysisId: string;

  it('a WebSocket client on instance A receives the events of an analysis requested through instance B', async () => {
    const watcher = await watch(a);
    try {
      const requested = await call(b.url, 'POST', `/api/studies/${studyUid}/analyses`, tokens.physician, {
        patientId: patient.id,
      });
      expect(requested.status).toBe(202);
      analysisId = (requested.body as { id: string }).id;
      await expect
        .poll(() => watcher.events.some((e) => e.type === 'analysis.completed' && e.analysisId === analysisId), {
          timeout: 180_000,
          interval: 500,
        })
        .toBe(true);
      expect(watcher.events.some((e) => e.type === 'analysis.progress' && e.analysisId === analysisId)).toBe(true);
      expect((await analysisState(analysisId)).status).toBe('succeeded');
    } finally {
      watcher.close();
    }
  }, 240_000);

  it('a patient update through A is not served stale from B’s cache', async () => {
    const input = {
      givenName: 'Cass',
      familyName: `Cache${randomUUID().slice(0, 6)}`,
      birthDate: '1971-01-01',
      sex: 'male',
    };
    const created = await call(a.url, 'POST', '/api/patients', tokens.nurse, input);
    const id = (created.body as { id: string }).id;
    // B reads it: now in B's L1 (and in the shared L2)
    for (let i = 0; i < 2; i++)
      expect((await call(b.url, 'GET', `/api/patients/${id}`, tokens.nurse)).body).toMatchObject({
        data: { familyName: input.familyName },
      });
    const renamed = { ...input, familyName: `${input.familyName}Renamed` };
    expect((await call(a.url, 'PUT', `/api/patients/${id}`, tokens.nurse, renamed)).status).toBe(200);
    // the invalidation reaches B over RabbitMQ within milliseconds; B never answers the old name after that
    await expect
      .poll(
        async () =>
          ((await call(b.url, 'GET', `/api/patients/${id}`, tokens.nurse)).body as { data: { familyName: string } })
            .data.familyName,
        {
          timeout: 2_000,
          interval: 20,
        },
      )
      .toBe(renamed.familyName);
    for (let i = 0; i < 5; i++)
      expect((await call(b.url, 'GET', `/api/patients/${id}`, tokens.nurse)).body).toMatchObject({
        data: { familyName: renamed.familyName },
        stale: false,
      });
  }, 60_000);

  it('concurrent reviews of one analysis on A and B give one decision', async () => {
    const [x, y] = await Promise.all([
      call(a.url, 'POST', `/api/analyses/${analysisId}/review`, tokens.radiologist, {
        decision: 'approve',
        comment: 'reviewed on A',
      }),
      call(b.url, 'POST', `/api/analyses/${analysisId}/review`, tokens.radiologist, {
        decision: 'reject',
        comment: 'reviewed on B',
      }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 409]);
    const winner = ((x.status === 200 ? x : y).body as { review: { status: string } }).review.status;
    expect((await analysisState(analysisId)).review?.status).toBe(winner);
    const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT status, version FROM cdss_reviews WHERE job_id = ?', [
      analysisId,
    ]);
    expect(rows).toEqual([expect.objectContaining({ status: winner, version: 1 })]);
  }, 60_000);

  it('instance A killed with SIGKILL in a stream of patient writes and reviews loses nothing', async () => {
    // analyses to review during the stream (the worker runs them while the stream goes on)
    const toReview: string[] = [];
    for (let i = 0; i < 3; i++) {
      const requested = await call(deployment.url, 'POST', `/api/studies/${studyUid}/analyses`, tokens.physician, {
        patientId: patient.id,
        priority: 9,
      });
      toReview.push((requested.body as { id: string }).id);
    }
    const family = `Stream${randomUUID().slice(0, 6)}`;
    const acknowledged = new Map<string, { id: string; givenName: string }>();
    const reviewed = new Map<string, string>();
    /** The client's retry loop: same Idempotency-Key, until a definite answer. */
    async function until(send: () => Promise<Answer>, done: (a: Answer) => boolean): Promise<Answer> {
      for (let attempt = 0; ; attempt++) {
        const answer = await send().catch(() => ({ status: 0, body: undefined }));
        if (done(answer) || attempt > 240) return answer;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const writes = (async () => {
      for (let i = 0; i < 30; i++) {
        const key = `stream-${family}-${i}`;
        const input = { givenName: `N${i}`, familyName: family, birthDate: '1980-01-01', sex: 'female' };
        const created = await until(
          () => call(deployment.url, 'POST', '/api/patients', tokens.nurse, input, { 'idempotency-key': key }),
          (r) => r.status === 201 || (r.status >= 400 && r.status < 500 && r.status !== 409),
        );
        if (created.status === 201) acknowledged.set(key, created.body as { id: string; givenName: string });
        if (i % 3 === 2) {
          // and an update of an earlier one (PUT is idempotent: retried as is)
          const earlier = [...acknowledged.values()].at(-2);
          if (earlier) {
            const updated = await until(
              () =>
                call(deployment.url, 'PUT', `/api/patients/${earlier.id}`, tokens.nurse, {
                  givenName: `${earlier.givenName}u`,
                  familyName: family,
                  birthDate: '1980-01-01',
                  sex: 'female',
                }),
              (r) => r.status === 200 || (r.status >= 400 && r.status < 500),
            );
            if (updated.status === 200) earlier.givenName = `${earlier.givenName}u`;
          }
        }
      }
    })();
    const reviews = (async () => {
      for (const id of toReview) {
        await expect
          .poll(async () => (await analysisState(id).catch(() => ({ status: 'unknown' }))).status, {
            timeout: 240_000,
            interval: 500,
          })
          .toBe('succeeded');
        const answer = await until(
          () =>
            call(deployment.url, 'POST', `/api/analyses/${id}/review`, tokens.radiologist, {
              decision: 'approve',
              comment: 'stream',
            }),
          (r) => r.status === 200 || r.status === 409 || (r.status >= 400 && r.status < 500),
        );
        if (answer.status === 200 || answer.status === 409) reviewed.set(id, 'approved');
      }
    })();
    // kill A for real in the middle of it
    await expect.poll(() => acknowledged.size, { timeout: 60_000, interval: 50 }).toBeGreaterThanOrEqual(8);
    await a.kill('SIGKILL');
    await Promise.all([writes, reviews]);
    await a.restart();

    expect(acknowledged.size).toBe(30);
    // every acknowledged create is in OpenEMR, once
    const openemr = emulatorClient(deployment);
    const inEmr = await openemr.patients.list({ lname: family });
    expect(inEmr).toHaveLength(30);
    for (const written of acknowledged.values()) {
      const record = inEmr.find((p) => p.uuid === written.id);
      expect(record?.fname).toBe(written.givenName);
    }
    // in HAPI FHIR exactly once each, with the last acknowledged name
    const system = identifierSystems('default').patientUuid;
    for (const written of acknowledged.values()) {
      await expect
        .poll(
          async () => {
            const found = await fhir.findByIdentifier<Patient>('Patient', { system, value: written.id });
            return found.length === 1 ? found[0]!.name?.[0]?.given?.[0] : `${found.length} resources`;
          },
          { timeout: 60_000, interval: 500 },
        )
        .toBe(written.givenName);
    }
    // and in the audit table
    for (const written of acknowledged.values()) {
      const audit = await call(deployment.url, 'GET', `/api/audit?patient=${written.id}&limit=50`, tokens.admin);
      const items = (audit.body as { items: Array<{ action: string; outcome: string }> }).items;
      expect(items.some((r) => r.action === 'create' && r.outcome === 'success')).toBe(true);
    }
    // every review made, once
    for (const id of toReview) {
      expect(reviewed.get(id)).toBe('approved');
      expect((await analysisState(id)).review?.status).toBe('approved');
    }
  }, 420_000);

  it('the worker killed mid-job: the job is redelivered (or re-published by the reaper) and completes once', async () => {
    const worker = deployment.worker!;
    const requested = await call(deployment.url, 'POST', `/api/studies/${studyUid}/analyses`, tokens.physician, {
      patientId: patient.id,
    });
    const id = (requested.body as { id: string }).id;
    await expect
      .poll(async () => (await analysisState(id)).status, { timeout: 120_000, interval: 100 })
      .toBe('running');
    await worker.kill('SIGKILL');
    await worker.restart();
    await expect
      .poll(async () => (await analysisState(id)).status, { timeout: 180_000, interval: 500 })
      .toBe('succeeded');
    expect(await succeededTransitions(id)).toBe(1);
  }, 360_000);
});
