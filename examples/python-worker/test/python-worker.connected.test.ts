/**
 * The Python worker end to end: the TypeScript reference server in connected mode (the real Orthanc, RabbitMQ,
 * MariaDB and HAPI FHIR started by `scripts/services/`, OpenEMR through its emulator run as a process) with no worker
 * of its own, and the Python worker (`python -m cdss_worker` in the venv `install.sh` makes) as a process beside it.
 * One analysis of a synthetic study goes through it: progress over the WebSocket, the result, the report (a FHIR
 * DiagnosticReport), and a DICOM SEG with its TID 1500 SR in Orthanc written by the Python worker (highdicom; the SEG
 * AUTOMATIC with the model's name and version). The volumes must match what the TypeScript worker's `analyseStudy`
 * computes on the same study in Orthanc, within 0.5 % of each region's voxels (one voxel at least; today they agree to
 * the voxel), and so must the largest diameter and the RANO lesion diameters (within one voxel, 3.75 mm) and the
 * plausibility flags' codes.
 *
 * The job queues live under a prefix of this run's own (`CDSS_JOBS_PREFIX`) on the shared broker, so no other test's
 * worker can take the job; they are deleted afterwards. Without the venv the suite skips, except under CI=true, where
 * it fails (`.ci/run` runs `examples/python-worker/install.sh`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { basicAuth } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import { createCdssClient } from '@cdss/client';
import { AmqpTransport } from '@cdss/ai-jobs/amqp';
import { generateTemplatePhantom, writePhantomStudy } from '@cdss/dicom';
import { dicomString, OrthancClient } from '@cdss/orthanc-client';
import { loadConfig } from '../../reference-server/src/config.js';
import { createLogger } from '../../reference-server/src/logger.js';
import { composeServer, DEMO_GRID, type ComposedServer } from '../../reference-server/src/compose.js';
import { DEMO_MODEL_BUNDLE } from '../../reference-server/src/paths.js';
import { analyseStudy } from '../../reference-server/src/worker/analysis.js';
import { loadModel } from '../../reference-server/src/worker/service.js';
import { freePort, startProcess, startTsProcess, type Child } from '../../reference-server/test/processes.js';
import { connectedUpstreamEnv, createTestIdentityProvider, orthancEnv } from '../../reference-server/test/upstreams.js';
import { python, venvAvailable, workerDir } from './venv.js';

const venv = venvAvailable('Python worker end to end');
const services = await Promise.all(
  (['orthanc', 'rabbitmq', 'mariadb', 'hapi-fhir'] as const).map((name) => requireService(name)),
);
const [orthancSvc, rabbitSvc] = services;
const available = venv && services.every((s) => s.available);

/** Each region's voxels may differ by 0.5 % (at least one voxel) between the two workers. */
const VOXEL_TOLERANCE = 0.005;

describe.skipIf(!available)('the Python worker with the reference server on the real services', () => {
  const prefix = `cdss.ai.test-python-${randomUUID().slice(0, 8)}`;
  const workerId = `python-worker-test-${randomUUID().slice(0, 8)}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-pyworker-'));
  const emulatorData = mkdtempSync(join(tmpdir(), 'cdss-pyworker-openemr-'));
  const orthancUrl = new URL(orthancSvc?.url ?? 'http://127.0.0.1');
  const orthancBase = `${orthancUrl.protocol}//${orthancUrl.host}`;
  const orthancUser = decodeURIComponent(orthancUrl.username);
  const orthancPassword = decodeURIComponent(orthancUrl.password);
  const orthanc = new OrthancClient({ baseUrl: orthancBase, auth: basicAuth(orthancUser, orthancPassword) });
  let emulator: Child | undefined;
  let worker: Child | undefined;
  let composed: ComposedServer | undefined;
  let baseUrl: string;
  let tokenFor: (userId: string) => Promise<string>;

  beforeAll(async () => {
    const emulatorPort = await freePort();
    emulator = await startTsProcess(
      'test/openemr-emulator-process.ts',
      { PORT: String(emulatorPort), DATA_DIR: emulatorData },
      /^ready/m,
    );
    const idp = await createTestIdentityProvider();
    tokenFor = (userId) => idp.tokenFor(userId);
    // The Python worker first: it declares the topology under the run's prefix as the server would.
    worker = await startProcess(python, ['-m', 'cdss_worker'], {
      cwd: workerDir,
      readyPattern: /^ready$/m,
      timeoutMs: 120_000,
      name: 'python -m cdss_worker',
      env: {
        AMQP_URL: rabbitSvc!.url,
        ...orthancEnv(orthancSvc!.url),
        CDSS_JOBS_PREFIX: prefix,
        WORKER_ID: workerId,
        WORKER_TORCH_THREADS: '2',
        CDSS_LOG_LEVEL: 'info',
      },
    });
    composed = await composeServer(
      loadConfig({
        CDSS_MODE: 'connected',
        CDSS_DATA_DIR: dataDir,
        CDSS_LOG_LEVEL: 'warn',
        CDSS_RATE_LIMIT_PER_MINUTE: '10000',
        CDSS_WORKER: 'off',
        CDSS_JOBS_PREFIX: prefix,
        // this test's study must be analysed once, by the request below
        CDSS_AUTO_ANALYSIS: 'false',
        ...idp.env,
        CDSS_WEBHOOK_SECRET: 'x'.repeat(40),
        ...connectedUpstreamEnv(`http://127.0.0.1:${emulatorPort}`, services),
      }),
      createLogger('warn'),
      'test',
    );
    baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
  }, 240_000);

  afterAll(async () => {
    await composed?.close();
    await worker?.stop(15_000);
    const code = worker?.process.exitCode;
    if (worker && code !== 0) process.stderr.write(`python worker exited with ${code}:\n${worker.output()}\n`);
    await emulator?.stop();
    // the run's queues and exchanges, so the shared broker keeps none of them
    const transport = new AmqpTransport({ url: rabbitSvc!.url, prefix });
    try {
      await transport.start();
      await transport.deleteTopology();
    } finally {
      await transport.close();
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(emulatorData, { recursive: true, force: true });
  }, 60_000);

  it('runs an analysis through the Python worker, and its volumes match the TypeScript worker on the same study', async () => {
    const physicianToken = await tokenFor('demo-physician');
    const physician = createCdssClient({ baseUrl, getToken: () => physicianToken });
    const patient = await physician.patients.create({
      givenName: 'Pia',
      familyName: 'Python',
      birthDate: '1968-03-04',
      sex: 'female',
    });
    const phantom = generateTemplatePhantom({ seed: `python-worker-${patient.id}`, ...DEMO_GRID });
    const study = writePhantomStudy(phantom, {
      patientId: patient.id,
      patientName: 'Python^Pia',
      uidSeed: `python-worker-${patient.id}`,
    });
    await orthanc.uploadInstances(Object.values(study.series).flatMap((s) => s.files));

    const events: Array<{ type: string; analysisId?: string; data: Record<string, unknown> }> = [];
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`);
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as { type: string; event?: (typeof events)[number] };
      if (message.type === 'event' && message.event) events.push(message.event);
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'auth', token: physicianToken }));
    ws.send(JSON.stringify({ type: 'subscribe', topic: `patient:${patient.id}` }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const requested = await physician.analyses.request(study.studyInstanceUid, { patientId: patient.id });
      await expect
        .poll(
          async () =>
            ['succeeded', 'failed', 'cancelled'].includes((await physician.analyses.get(requested.id)).status),
          { timeout: 180_000, interval: 500 },
        )
        .toBe(true);
      const done = await physician.analyses.get(requested.id);
      expect(done.status, `${JSON.stringify(done.failure)}\n${worker!.output()}`).toBe('succeeded');
      expect(done.model.id).toBe('brats-segresnet-demo');
      await expect
        .poll(() => events.some((e) => e.type === 'analysis.completed' && e.analysisId === requested.id))
        .toBe(true);
      const progress = events
        .filter((e) => e.type === 'analysis.progress' && e.analysisId === requested.id)
        .map((e) => Number(e.data['percent']));
      expect(progress.length).toBeGreaterThan(0);
      expect([...progress].sort((a, b) => a - b)).toEqual(progress);
      expect(worker!.output()).toContain(`job ${requested.id} succeeded`);

      const report = await physician.analyses.report(requested.id);
      expect(report.entry?.some((e) => e.resource?.resourceType === 'DiagnosticReport')).toBe(true);

      // The SEG in Orthanc is the Python worker's: highdicom, AUTOMATIC, the model's name and version.
      const result = done.result!;
      const version = done.model.version;
      expect(version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(result.segSeriesUid).toBeTruthy();
      const [seg] = await orthanc.dicomweb.retrieveSeriesMetadata(study.studyInstanceUid, result.segSeriesUid!);
      expect(dicomString(seg!, '00080060')).toBe('SEG');
      expect(dicomString(seg!, '00081090')).toBe('cdss-python-worker');
      expect(dicomString(seg!, '0008103E')).toBe(`AI segmentation ${version}`);
      const segments = (seg!['00620002'] as { Value: Array<Record<string, { Value?: unknown[] }>> }).Value;
      expect(segments.map((s) => s['00620005']?.Value?.[0])).toEqual(['NCR', 'ED', 'ET']);
      for (const segment of segments) {
        expect(segment['00620008']?.Value?.[0]).toBe('AUTOMATIC');
        expect(segment['00620009']?.Value?.[0]).toBe('brats-segresnet-demo');
      }
      // and its TID 1500 measurement report beside it
      expect(result.srSeriesUid).toBeTruthy();
      const [sr] = await orthanc.dicomweb.retrieveSeriesMetadata(study.studyInstanceUid, result.srSeriesUid!);
      expect(dicomString(sr!, '00080060')).toBe('SR');
      expect(dicomString(sr!, '0008103E')).toBe(`AI measurements ${version}`);

      // The TypeScript worker's analysis of the same study in Orthanc.
      const model = await loadModel(DEMO_MODEL_BUNDLE);
      try {
        const reference = await analyseStudy({
          dicomweb: orthanc.dicomweb,
          model,
          studyInstanceUid: study.studyInstanceUid,
          jobId: randomUUID(),
          series: {
            t1c: study.series.t1c.seriesInstanceUid,
            t1: study.series.t1.seriesInstanceUid,
            t2: study.series.t2.seriesInstanceUid,
            flair: study.series.flair.seriesInstanceUid,
          },
          signal: AbortSignal.timeout(120_000),
          progress: async () => undefined,
        });
        const ts = Object.fromEntries(reference.regions.map((r) => [r.region, r]));
        expect(ts['whole-tumour']!.voxelCount).toBeGreaterThan(0);
        const py = {
          'enhancing-tumour': result.volumes.enhancingTumor,
          'tumour-core': result.volumes.tumorCore,
          'whole-tumour': result.volumes.wholeTumor,
        };
        const voxelMl = ts['whole-tumour']!.volumeMl / ts['whole-tumour']!.voxelCount;
        for (const [region, ml] of Object.entries(py)) {
          const expected = ts[region]!;
          const tolerance = Math.max(1, Math.ceil(expected.voxelCount * VOXEL_TOLERANCE)) * voxelMl;
          expect(
            Math.abs(ml - expected.volumeMl),
            `${region}: python ${ml} mL, typescript ${expected.volumeMl} mL`,
          ).toBeLessThanOrEqual(tolerance + 1e-9);
        }
        const voxel = DEMO_GRID.spacing[0];
        expect(result.largestDiameterMm).toBeDefined();
        expect(Math.abs(result.largestDiameterMm! - reference.largestDiameterMm!)).toBeLessThanOrEqual(voxel);
        // the same enhancing lesions (RANO), diameters within one voxel, and the same plausibility flags
        const lesions = result.lesions ?? [];
        expect(lesions.length).toBe(reference.lesions?.length);
        lesions.forEach((lesion, n) => {
          const expected = reference.lesions![n]!;
          expect(lesion.measurable).toBe(expected.measurable);
          expect(lesion.slice).toBe(expected.slice);
          expect(Math.abs(lesion.longestDiameterMm - expected.longestDiameterMm)).toBeLessThanOrEqual(voxel);
          expect(Math.abs(lesion.perpendicularDiameterMm - expected.perpendicularDiameterMm)).toBeLessThanOrEqual(
            voxel,
          );
        });
        expect(result.flags.map((f) => f.code)).toEqual((reference.flags ?? []).map((f) => f.code));
      } finally {
        await model.close();
      }
    } finally {
      ws.close();
    }
  }, 300_000);
});
