/**
 * Analyses that start themselves, against the real Orthanc: the server (sandbox composition, its OpenEMR emulator
 * seeded with brain-tumour patients, the in-process AI worker) follows Orthanc's `/changes`. A phantom study of a
 * patient with a brain-tumour problem is analysed without anyone asking, the patient's WebSocket subscribers get
 * `analysis.progress`; a study of a patient without one is not. The server is then stopped, a study arrives while it
 * is down, and after the restart that study is analysed and the first is not analysed again (the checkpoint, not the
 * job store's idempotency, prevents it here: the sandbox job store starts empty).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { basicAuth } from '@cdss/core';
import { freePort, requireService } from '@cdss/core/testing';
import { createCdssClient, type CdssClient } from '@cdss/client';
import { generateTemplatePhantom, writePhantomStudy } from '@cdss/dicom';
import { OrthancClient } from '@cdss/orthanc-client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, DEMO_GRID, type ComposedServer } from '../src/compose.js';

const orthancSvc = await requireService('orthanc');

describe.skipIf(!orthancSvc.available)('automatic analyses from the real Orthanc change feed', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-auto-'));
  const orthancUrl = new URL(orthancSvc.url);
  const credentials = {
    username: decodeURIComponent(orthancUrl.username),
    password: decodeURIComponent(orthancUrl.password),
  };
  const base = `${orthancUrl.protocol}//${orthancUrl.host}`;
  const orthanc = new OrthancClient({ baseUrl: base, auth: basicAuth(credentials.username, credentials.password) });
  const config = loadConfig({
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '0',
    CDSS_LOG_LEVEL: 'warn',
    CDSS_RATE_LIMIT_PER_MINUTE: '10000',
    CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
    ORTHANC_URL: base,
    ORTHANC_USERNAME: credentials.username,
    ORTHANC_PASSWORD: credentials.password,
  });
  let composed: ComposedServer;
  let baseUrl: string;
  let client: CdssClient;
  let token: string;

  const start = async (): Promise<void> => {
    composed = await composeServer(config, createLogger('warn'), 'test');
    baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
    token = (await createCdssClient({ baseUrl }).sandbox.token('demo-physician')).access_token;
    client = createCdssClient({ baseUrl, getToken: () => token });
  };
  const upload = async (patientId: string, name: string): Promise<string> => {
    const seed = `auto-${randomUUID()}`;
    const study = writePhantomStudy(generateTemplatePhantom({ seed, ...DEMO_GRID }), {
      patientId,
      patientName: name,
      uidSeed: seed,
    });
    await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
    return study.studyInstanceUid;
  };
  const analysesOf = async (patientId: string) => (await client.analyses.list({ patient: patientId })).items;

  beforeAll(async () => {
    await start();
  }, 120_000);
  afterAll(async () => {
    await composed?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('analyses a brain-tumour patient’s study by itself, and not another patient’s; survives a restart', async () => {
    // A seeded patient with a glioma on the problem list, and a new patient without any problem.
    const { items } = await client.patients.search({ limit: 50 });
    let tumourPatient: string | undefined;
    for (const patient of items) {
      const problems = await client.patients.problems(patient.id);
      if (problems.data.some((p) => /glio/i.test(p.title))) {
        tumourPatient = patient.id;
        break;
      }
    }
    expect(tumourPatient).toBeDefined();
    const other = await client.patients.create({
      givenName: 'Otto',
      familyName: `NoTumour${Date.now()}`,
      birthDate: '1966-06-06',
      sex: 'male',
    });

    const events: Array<{ type: string; analysisId?: string }> = [];
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`);
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as { type: string; event?: (typeof events)[number] };
      if (message.type === 'event' && message.event) events.push(message.event);
      if (message.type === 'ready') ws.send(JSON.stringify({ type: 'subscribe', topic: `patient:${tumourPatient}` }));
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'auth', token }));
    let first = '';
    try {
      const ignored = await upload(other.id, 'NoTumour^Otto');
      first = await upload(tumourPatient!, 'Tumour^Patient');

      await expect
        .poll(async () => (await analysesOf(tumourPatient!)).filter((a) => a.studyUid === first), {
          timeout: 90_000,
          interval: 500,
        })
        .toHaveLength(1);
      const [analysis] = (await analysesOf(tumourPatient!)).filter((a) => a.studyUid === first);
      expect(analysis?.requestedBy).toBe('cdss-auto-analysis');
      await expect
        .poll(() => events.some((e) => e.type === 'analysis.progress' && e.analysisId === analysis?.id), {
          timeout: 90_000,
        })
        .toBe(true);
      const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
      expect(metrics).toMatch(/cdss_auto_analysis_studies_total\{outcome="queued"\} [1-9]/);
      expect(metrics).toMatch(/cdss_auto_analysis_studies_total\{outcome="skipped"\} [1-9]/);
      expect(metrics).toContain('cdss_chart_outbox_pending 0');
      // The other patient's study came first in the feed, so it was handled already: no analysis.
      expect((await analysesOf(other.id)).filter((a) => a.studyUid === ignored)).toEqual([]);
      await expect
        .poll(async () => (await client.analyses.get(analysis!.id)).status, { timeout: 120_000, interval: 500 })
        .toMatch(/succeeded|failed/);
    } finally {
      ws.close();
    }

    // Down: a study arrives and becomes stable while no server follows the feed.
    await composed.close();
    const second = await upload(tumourPatient!, 'Tumour^Patient');
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    await start();
    await expect
      .poll(async () => (await analysesOf(tumourPatient!)).filter((a) => a.studyUid === second).length, {
        timeout: 90_000,
        interval: 500,
      })
      .toBe(1);
    // The sandbox's job store is in memory, so any job for the first study now would be a second analysis of it.
    expect((await analysesOf(tumourPatient!)).filter((a) => a.studyUid === first)).toEqual([]);
  }, 400_000);
});
