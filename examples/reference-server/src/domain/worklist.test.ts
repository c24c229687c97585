/**
 * The worklist, claims and measurements: routes over in-memory fakes, and the notes store contract on a file and on
 * the real MariaDB.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiAnalysis } from '@cdss/client';
import { requireService } from '@cdss/core/testing';
import { notFound } from '../http/errors.js';
import { fakeArchive, memoryCache, fakeRecords, startHarness, type Harness } from '../test-support.js';
import { createFileNotesStore, createMySqlNotesStore, worklistRoutes, type AnalysisNotesStore } from './worklist.js';

const mariadb = await requireService('mariadb');
const OTHER_RADIOLOGIST = 'token-of-another-radiologist';

type Flags = NonNullable<ApiAnalysis['result']>['flags'];
const analysis = (id: string, patientId: string, finishedAt: string, flags: Flags = []): ApiAnalysis => ({
  id,
  patientId,
  studyUid: '1.2.3',
  status: 'succeeded',
  requestedBy: 'demo-physician',
  requestedAt: '2026-12-01T10:00:00.000Z',
  finishedAt,
  model: { id: 'cdss-brats-demo', version: '0.0.0' },
  result: { volumes: { enhancingTumor: 1, tumorCore: 2, wholeTumor: 3 }, flags },
  review: { status: 'pending' },
});

describe('worklist routes', () => {
  let h: Harness;
  const records = fakeRecords();
  const pending = [
    analysis('a-new', 'p1', '2026-12-01T10:05:00.000Z', [{ code: 'implausible-volume', message: 'too large' }]),
    analysis('a-old', 'p1', '2026-12-01T09:00:00.000Z'),
  ];
  beforeAll(async () => {
    const maria = await records.create({
      givenName: 'Maria',
      familyName: 'Rossi',
      birthDate: '1970-05-06',
      sex: 'female',
    });
    for (const a of pending) (a as { patientId: string }).patientId = maria.id;
    const notes = await createFileNotesStore();
    h = await startHarness(
      ({ auditor }) =>
        worklistRoutes({
          notes,
          pendingReview: async () => pending,
          analysis: async (id) => {
            const found = pending.find((a) => a.id === id);
            if (!found) throw notFound('Analysis');
            return found;
          },
          records,
          cache: memoryCache(),
          archive: fakeArchive([
            {
              uid: '1.2.3',
              patientId: maria.id,
              date: '2026-11-30',
              description: 'MRI BRAIN',
              modalities: ['MR'],
              series: [],
            },
          ]),
          auditor,
        }),
      {},
      undefined,
      undefined,
      (verifier) => ({
        verify: async (token) =>
          token === OTHER_RADIOLOGIST
            ? { id: 'rad-2', name: 'Dr. Second', roles: ['radiologist'] }
            : verifier.verify(token),
      }),
    );
  });
  afterAll(async () => h.close());

  async function call(method: string, path: string, user: string, body?: unknown) {
    const token = user === OTHER_RADIOLOGIST ? user : await h.token(user);
    const response = await fetch(`${h.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }

  it('lists what waits for review, oldest first, with patient, study, flags; radiologists only', async () => {
    const list = await call('GET', '/api/worklist', 'demo-radiologist');
    expect(list.status).toBe(200);
    const items = list.body?.['items'] as Array<Record<string, unknown>>;
    expect(items.map((i) => i['analysisId'])).toEqual(['a-old', 'a-new']);
    expect(items[1]).toMatchObject({
      patient: { name: 'Rossi, Maria', birthDate: '1970-05-06', sex: 'female' },
      study: { date: '2026-11-30', description: 'MRI BRAIN' },
      waitingSince: '2026-12-01T10:05:00.000Z',
      flags: [{ code: 'implausible-volume' }],
    });
    expect((await call('GET', '/api/worklist', 'demo-nurse')).status).toBe(403);
    expect(h.audit.records.at(-1)).toMatchObject({ outcome: 'denied', userId: 'demo-nurse' });
  });

  it('lets one radiologist claim an item; another gets 409 until it is given back', async () => {
    const first = await call('POST', '/api/analyses/a-old/claim', 'demo-radiologist');
    expect(first).toMatchObject({ status: 200, body: { userId: 'demo-radiologist' } });
    expect((await call('POST', '/api/analyses/a-old/claim', 'demo-radiologist')).status).toBe(200);
    const second = await call('POST', '/api/analyses/a-old/claim', OTHER_RADIOLOGIST);
    expect(second.status).toBe(409);
    expect(JSON.stringify(second.body)).toContain('Dr. Rita Radiologist');
    const listed = (await call('GET', '/api/worklist', OTHER_RADIOLOGIST)).body?.['items'] as Array<
      Record<string, unknown>
    >;
    expect(listed[0]).toMatchObject({ claim: { userName: 'Dr. Rita Radiologist' } });
    expect((await call('DELETE', '/api/analyses/a-old/claim', OTHER_RADIOLOGIST)).status).toBe(204);
    expect((await call('POST', '/api/analyses/a-old/claim', OTHER_RADIOLOGIST)).status).toBe(409);
    expect((await call('DELETE', '/api/analyses/a-old/claim', 'demo-radiologist')).status).toBe(204);
    expect((await call('POST', '/api/analyses/a-old/claim', OTHER_RADIOLOGIST)).status).toBe(200);
    expect((await call('POST', '/api/analyses/nope/claim', 'demo-radiologist')).status).toBe(404);
  });

  it('gives a claim back with 204 and no content, as the OpenAPI document says (no media type for 204)', async () => {
    await call('POST', '/api/analyses/a-new/claim', 'demo-radiologist');
    const released = await fetch(`${h.baseUrl}/api/analyses/a-new/claim`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await h.token('demo-radiologist')}` },
    });
    expect(released.status).toBe(204);
    expect(released.headers.get('content-type')).toBeNull();
    expect(await released.text()).toBe('');
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>;
    };
    expect(doc.paths['/api/analyses/{id}/claim']!['delete']!.responses['204']).not.toHaveProperty('content');
  });

  it('saves measurements with the analysis, reads them back, and refuses bad ones', async () => {
    const items = [
      {
        id: 'm1',
        tool: 'Bidirectional',
        lengthMm: 31.2,
        widthMm: 18.4,
        annotation: { metadata: { toolName: 'Bidirectional' } },
      },
    ];
    expect((await call('PUT', '/api/analyses/a-new/measurements', 'demo-radiologist', { items })).status).toBe(200);
    expect(await call('GET', '/api/analyses/a-new/measurements', 'demo-physician')).toMatchObject({
      status: 200,
      body: { items },
    });
    expect((await call('PUT', '/api/analyses/a-new/measurements', 'demo-physician', { items })).status).toBe(403);
    const bad = await call('PUT', '/api/analyses/a-new/measurements', 'demo-radiologist', {
      items: [{ ...items[0], lengthMm: -1 }],
    });
    expect(bad.status).toBe(400);
    expect((await call('GET', '/api/analyses/a-new/measurements', 'demo-nurse')).body).toMatchObject({ items });
    expect(
      h.audit.records.filter((r) => r.resource === 'Analysis/a-new/measurements').map((r) => r.patientId),
    ).not.toContain(undefined);
  });
});

function notesContract(name: string, open: () => Promise<AnalysisNotesStore>): void {
  it(`${name}: one claim holds, measurements round-trip`, async () => {
    const store = await open();
    const id = `an-${Math.random().toString(36).slice(2)}`;
    const a = { userId: 'u1', userName: 'One', at: '2026-12-01T10:00:00.000Z' };
    const b = { userId: 'u2', userName: 'Two', at: '2026-12-01T10:00:01.000Z' };
    const [x, y] = await Promise.all([store.claim(id, a), store.claim(id, b)]);
    expect(x.userId).toBe(y.userId);
    const holder = x.userId;
    await store.release(id, holder === 'u1' ? 'u2' : 'u1');
    expect((await store.claims([id])).get(id)?.userId).toBe(holder);
    await store.release(id, holder);
    expect((await store.claims([id])).size).toBe(0);
    const m = [{ id: 'm', tool: 'Length' as const, lengthMm: 12, annotation: {} }];
    await store.saveMeasurements(id, m);
    expect(await store.measurements(id)).toEqual(m);
  });
}

describe('notes store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdss-notes-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));
  notesContract('file', () => createFileNotesStore(join(dir, 'notes.json')));
  it('file: survives a restart', async () => {
    const file = join(dir, 'restart.json');
    await (await createFileNotesStore(file)).claim('x', { userId: 'u', userName: 'U', at: 't' });
    expect((await (await createFileNotesStore(file)).claims(['x'])).get('x')?.userId).toBe('u');
  });
});

describe.skipIf(!mariadb.available)('notes store on the real MariaDB', () => {
  let pool: Pool;
  const prefix = `t_notes_${process.pid}_${Date.now().toString(36)}`;
  beforeAll(() => {
    pool = createPool({ uri: mariadb.url, connectionLimit: 4 });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${prefix}_analysis_notes`).catch(() => undefined);
    await pool.end();
  });
  notesContract('MySQL', () => createMySqlNotesStore(pool, prefix));
});
