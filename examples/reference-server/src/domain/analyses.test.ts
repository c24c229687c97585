import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { JobClient, JobWorker, MemoryBroker, MemoryJobStore, MemoryTransport } from '@cdss/ai-jobs';
import type { Bundle, DiagnosticReport } from 'fhir/r4.js';
import { fakeArchive, memoryCache, startHarness, type Harness } from '../test-support.js';
import { analysisFeature, type ReportBuilder } from './analyses.js';
import { createReviewStore } from './reviews.js';
import { createLogger } from '../logger.js';
import type { ApiAnalysis } from '../api-schemas.js';

const study = {
  uid: '1.2.826.0.1.3680043.8.498.1',
  patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
  modalities: ['MR'],
  series: [
    { uid: '1.2.3.1', description: 'AX T1 POST GD' },
    { uid: '1.2.3.2', description: 'AX T1' },
    { uid: '1.2.3.3', description: 'AX T2' },
    { uid: '1.2.3.4', description: 'AX FLAIR' },
  ],
};
const incomplete = { ...study, uid: '1.2.826.0.1.3680043.8.498.2', series: study.series.slice(0, 2) };
const otherPatients = {
  ...study,
  uid: '1.2.826.0.1.3680043.8.498.3',
  patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000002',
};

// The whole tumour grows with each analysis, so the second approved result is a progression.
let wholeTumour = 10;
// Plausibility flags the worker attaches to its next result.
let nextFlags: { code: string; message: string }[] = [];
const reports: ReportBuilder = {
  report: (analysis: ApiAnalysis): Bundle => {
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      status: analysis.review?.status === 'approved' ? 'final' : 'preliminary',
      code: { text: 'x' },
    };
    return { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: report }] };
  },
  assess: (patientId, analyses) => {
    const usable = analyses.filter((a) => a.status === 'succeeded' && a.review?.status !== 'rejected');
    const first = usable[0]?.result?.volumes.wholeTumor ?? 0;
    const last = usable.at(-1)?.result?.volumes.wholeTumor ?? 0;
    const change = first ? ((last - first) / first) * 100 : 0;
    return {
      patientId,
      status: change >= 40 ? 'progression' : 'stable',
      changePercent: change,
      ...(usable.at(-1) ? { currentAnalysisId: usable.at(-1)?.id } : {}),
      timeline: [],
    };
  },
};

let h: Harness;
let stop: () => void;
const broker = new MemoryBroker();
const store = new MemoryJobStore();
let onJobChange: ReturnType<typeof analysisFeature>['onJobChange'] = async () => undefined;
const client = new JobClient({
  transport: new MemoryTransport({ broker }),
  store,
  onChange: (change, transaction) => onJobChange(change, transaction),
});
const worker = new JobWorker({
  transport: new MemoryTransport({ broker }),
  handler: async (ctx) => {
    for (const [stage, percent] of [
      ['fetch', 20],
      ['inference', 60],
      ['store', 90],
    ] as const)
      await ctx.progress(stage, percent);
    wholeTumour *= 1.6;
    return {
      regions: [
        { region: 'enhancing-tumour', volumeMl: 2, voxelCount: 2000 },
        { region: 'tumour-core', volumeMl: 4, voxelCount: 4000 },
        { region: 'whole-tumour', volumeMl: wholeTumour, voxelCount: 10000 },
      ],
      segmentation: {
        studyInstanceUid: ctx.request.studyInstanceUid,
        seriesInstanceUid: '1.2.9.1',
        sopInstanceUid: '1.2.9.1.1',
      },
      model: ctx.request.model,
      timingsMs: { fetch: 5, inference: 10 },
      ...(nextFlags.length > 0 ? { flags: nextFlags } : {}),
    };
  },
});

beforeAll(async () => {
  await client.start();
  await worker.start();
  const reviews = await createReviewStore();
  h = await startHarness(({ auditor, bus, fhir, metrics }) => {
    const feature = analysisFeature({
      jobs: client,
      jobStore: store,
      reviews,
      writes: memoryCache(),
      archive: fakeArchive([study, incomplete, otherPatients]),
      reports,
      fhir,
      bus,
      auditor,
      metrics,
      models: [{ id: 'brats-demo', version: '1.0.0' }],
      logger: createLogger('silent'),
    });
    onJobChange = feature.onJobChange;
    stop = () => undefined;
    queueMicrotask(() => {
      stop = feature.start();
    });
    return feature.routes;
  });
});
afterAll(async () => {
  stop();
  await worker.stop();
  await client.stop();
  await h.close();
});

async function call(method: string, path: string, user: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${h.baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${await h.token(user)}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json().catch(() => undefined)) as Record<string, unknown> };
}

describe('analyses', () => {
  it('runs request → progress over WebSocket → completion → review → final, and alerts on progression', async () => {
    const ws = new WebSocket(`${h.baseUrl.replace('http', 'ws')}/ws`);
    const events: Array<{ type: string; data: Record<string, unknown> }> = [];
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString()) as {
        type: string;
        event?: { type: string; data: Record<string, unknown> };
      };
      if (message.type === 'event' && message.event) events.push(message.event);
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'auth', token: await h.token('demo-physician') }));
    ws.send(JSON.stringify({ type: 'subscribe', topic: 'patient:5d0e6b8a-7c1f-4e2a-9b3c-000000000001' }));
    await new Promise((resolve) => setTimeout(resolve, 100));

    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const requested = await call('POST', `/api/studies/${study.uid}/analyses`, 'demo-physician', {
        patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
      });
      expect(requested.status).toBe(202);
      const id = requested.body['id'] as string;
      ids.push(id);
      await expect
        .poll(async () => (await call('GET', `/api/analyses/${id}`, 'demo-nurse')).body['status'], { timeout: 5_000 })
        .toBe('succeeded');
    }
    await expect.poll(() => events.filter((e) => e.type === 'analysis.completed').length).toBe(2);
    const percents = events.filter((e) => e.type === 'analysis.progress').map((e) => e.data['percent']);
    expect(percents).toEqual(expect.arrayContaining([20, 60, 90]));

    const pending = await call('GET', '/api/analyses?review=pending', 'demo-radiologist');
    expect((pending.body['items'] as unknown[]).length).toBe(2);
    expect(
      (await call('POST', `/api/analyses/${ids[0]}/review`, 'demo-physician', { decision: 'approve' })).status,
    ).toBe(403);
    expect(
      (await call('POST', `/api/analyses/${ids[0]}/review`, 'demo-radiologist', { decision: 'reject' })).status,
    ).toBe(400);
    const approved = await call('POST', `/api/analyses/${ids[0]}/review`, 'demo-radiologist', { decision: 'approve' });
    expect(approved.body['review']).toMatchObject({
      status: 'approved',
      reviewer: 'demo-radiologist',
      reviewerName: 'Dr. Rita Radiologist',
    });
    expect(
      (await call('POST', `/api/analyses/${ids[0]}/review`, 'demo-radiologist', { decision: 'approve' })).status,
    ).toBe(409);
    const second = await call('POST', `/api/analyses/${ids[1]}/review`, 'demo-radiologist', { decision: 'approve' });
    expect(second.status).toBe(200);
    await expect.poll(() => events.some((e) => e.type === 'patient.alert')).toBe(true);

    const reportsQueued = h.fhir.queued
      .filter((q) => q.kind === 'analysis-report')
      .map((q) => (q.payload as Bundle).entry?.[0]?.resource as DiagnosticReport);
    expect(reportsQueued.map((r) => r.status)).toContain('final');
    const report = await call('GET', `/api/analyses/${ids[0]}/report`, 'demo-physician');
    expect(report.body['resourceType']).toBe('Bundle');
    const list = await call('GET', '/api/analyses?patient=5d0e6b8a-7c1f-4e2a-9b3c-000000000001', 'demo-nurse');
    expect((list.body['items'] as unknown[]).length).toBe(2);
    expect(
      h.audit.records.some(
        (r) =>
          r.action === 'review' && r.patientId === '5d0e6b8a-7c1f-4e2a-9b3c-000000000001' && r.outcome === 'success',
      ),
    ).toBe(true);
    ws.close();
  });

  it('shows a flagged result in the review queue and approves it only with a comment', async () => {
    const published = () => h.fhir.queued.filter((q) => q.kind === 'analysis-report').length;
    nextFlags = [{ code: 'fov-edge', message: 'the whole tumour reaches the edge of the field of view (d0 low)' }];
    const requested = await call('POST', `/api/studies/${study.uid}/analyses`, 'demo-physician', {
      patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
    });
    nextFlags = [];
    const id = requested.body['id'] as string;
    await expect
      .poll(async () => (await call('GET', `/api/analyses/${id}`, 'demo-nurse')).body['status'], { timeout: 5_000 })
      .toBe('succeeded');
    // the study already has an approved report: a re-run is not published as a second report while pending
    const before = published();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(published()).toBe(before);
    const queue = await call('GET', '/api/analyses?review=pending', 'demo-radiologist');
    const item = (queue.body['items'] as ApiAnalysis[]).find((a) => a.id === id);
    expect(item?.result?.flags).toEqual([{ code: 'fov-edge', message: expect.stringContaining('edge') }]);
    const bare = await call('POST', `/api/analyses/${id}/review`, 'demo-radiologist', { decision: 'approve' });
    expect(bare.status).toBe(409);
    expect(JSON.stringify(bare.body)).toContain('fov-edge');
    expect((await call('GET', `/api/analyses/${id}`, 'demo-nurse')).body['review']).toEqual({ status: 'pending' });
    const withComment = await call('POST', `/api/analyses/${id}/review`, 'demo-radiologist', {
      decision: 'approve',
      comment: 'checked: the tumour is real and reaches the cropped edge',
    });
    expect(withComment.status).toBe(200);
    expect(withComment.body['review']).toMatchObject({ status: 'approved' });
    // approved, it amends the study's report
    await expect.poll(published).toBe(before + 1);
  });

  it('refuses nurses, unknown studies and studies missing a modality, and queues nothing', async () => {
    const before = (await store.list()).length;
    expect(
      (
        await call('POST', `/api/studies/${study.uid}/analyses`, 'demo-nurse', {
          patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await call('POST', '/api/studies/1.2.999/analyses', 'demo-physician', {
          patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
        })
      ).status,
    ).toBe(404);
    const missing = await call('POST', `/api/studies/${incomplete.uid}/analyses`, 'demo-physician', {
      patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
    });
    expect(missing.status).toBe(409);
    expect(JSON.stringify(missing.body)).toMatch(/t2|flair/i);
    expect(
      (
        await call('POST', `/api/studies/${study.uid}/analyses`, 'demo-physician', {
          patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001',
          priority: 'high',
        })
      ).status,
    ).toBe(400);
    expect((await store.list()).length).toBe(before);
  });

  it('binds an Idempotency-Key to the study and patient: reused on another patient’s study it answers 422', async () => {
    const key = { 'idempotency-key': 'analysis-key-0001' };
    const first = await call(
      'POST',
      `/api/studies/${study.uid}/analyses`,
      'demo-physician',
      { patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001' },
      key,
    );
    expect(first.status).toBe(202);
    const retry = await call(
      'POST',
      `/api/studies/${study.uid}/analyses`,
      'demo-physician',
      { patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001' },
      key,
    );
    expect(retry).toMatchObject({ status: 202, body: { id: first.body['id'] } });
    const before = (await store.list()).length;
    const crossed = await call(
      'POST',
      `/api/studies/${otherPatients.uid}/analyses`,
      'demo-physician',
      { patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000002' },
      key,
    );
    expect(crossed.status).toBe(422);
    expect(JSON.stringify(crossed.body)).not.toContain(first.body['id'] as string);
    expect((await store.list()).length).toBe(before);
    // the same key from another user is that user's own key: a new analysis of 5d0e6b8a-7c1f-4e2a-9b3c-000000000002
    const mine = await call(
      'POST',
      `/api/studies/${otherPatients.uid}/analyses`,
      'demo-radiologist',
      { patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000002' },
      key,
    );
    expect(mine.status).toBe(202);
    expect(mine.body['id']).not.toBe(first.body['id']);
  });

  it('refuses a short Idempotency-Key with 400, not 500, and queues nothing', async () => {
    const before = (await store.list()).length;
    const response = await call(
      'POST',
      `/api/studies/${study.uid}/analyses`,
      'demo-physician',
      { patientId: '5d0e6b8a-7c1f-4e2a-9b3c-000000000001' },
      { 'idempotency-key': 'short' },
    );
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toContain('Idempotency-Key');
    expect((await store.list()).length).toBe(before);
  });
});
