import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle } from 'fhir/r4.js';
import { createCdssClient, type AuditRecord } from '@cdss/client';
import { memoryCache, fakeRecords, startHarness, type Harness } from '../test-support.js';
import { patientRoutes } from './patients.js';
import { AUDIT_CURSORS, auditRoutes } from './audit-routes.js';
import { AUDIT_EVENTS_PER_BUNDLE } from '../audit.js';

let h: Harness;
const records = fakeRecords();
const P1 = '6f1c2a9e-0b7d-4c3e-9a51-3d2f8e7b1c40';
records.patients.set(P1, { id: P1, givenName: 'Jane', familyName: 'Doe', birthDate: '1970-01-02', sex: 'female' });
beforeAll(async () => {
  h = await startHarness(({ auditor, audit, bus, fhir }) => [
    ...patientRoutes({ records, cache: memoryCache(), fhir, bus, auditor }),
    ...auditRoutes(audit, AUDIT_CURSORS.memory),
  ]);
});
afterAll(async () => h.close());

const clientFor = async (userId: string) => {
  const token = await h.token(userId);
  return createCdssClient({ baseUrl: h.baseUrl, getToken: () => token });
};

describe('GET /api/audit', () => {
  it('filters by user, patient, outcome and a time range to the second, and pages with cursors', async () => {
    const nurse = await clientFor('demo-nurse');
    const physician = await clientFor('demo-physician');
    const started = new Date();
    for (let i = 0; i < 5; i++) await nurse.patients.get(P1);
    await physician.patients.get(P1);
    await physician.patients.get('00000000-0000-4000-8000-000000000000').catch(() => undefined);
    const admin = await clientFor('demo-admin');

    const nurseReads = await admin.audit.list({ user: 'demo-nurse', patient: P1, limit: 2 });
    expect(nurseReads.items).toHaveLength(2);
    expect(nurseReads.items.every((r) => r.userId === 'demo-nurse' && r.patientId === P1)).toBe(true);
    const pages: AuditRecord[][] = [nurseReads.items];
    for (let cursor = nurseReads.nextCursor; cursor;) {
      const page = await admin.audit.list({ user: 'demo-nurse', patient: P1, limit: 2, cursor });
      pages.push(page.items);
      cursor = page.nextCursor;
    }
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const times = pages.flat().map((r) => r.time);
    expect(times).toEqual([...times].sort().reverse());

    const failures = await admin.audit.list({ outcome: 'failure' });
    expect(failures.items.map((r) => [r.userId, r.resource])).toEqual([
      ['demo-physician', 'Patient/00000000-0000-4000-8000-000000000000'],
    ]);

    // Second-level bounds: `to` includes the whole second it names.
    const second = started.toISOString().slice(0, 19);
    const inRange = await admin.audit.list({ from: `${second}Z`, to: new Date(Date.now() + 1000).toISOString() });
    expect(inRange.items).toHaveLength(7);
    const all = (await admin.audit.list({ limit: 1000 })).items;
    expect((await admin.audit.list({ to: `${second}Z`, limit: 1000 })).items).toEqual(
      all.filter((r) => r.time.slice(0, 19) <= second),
    );
    expect((await admin.audit.list({ from: '2999-01-01' })).items).toEqual([]);
  });

  it('answers 400 for a bad time or cursor, 422 for an inverted range, and 403 without audit:read', async () => {
    const token = await h.token('demo-admin');
    const get = (query: string) =>
      fetch(`${h.baseUrl}/api/audit?${query}`, { headers: { authorization: `Bearer ${token}` } });
    for (const query of [
      'from=yesterday',
      'to=2026-13-01',
      'cursor=bogus',
      'cursor=1.2', // the memory store's positions have one part
      'cursor=%D9%A1', // ARABIC-INDIC DIGIT ONE
      'cursor=12345678901234',
    ])
      expect((await get(query)).status, query).toBe(400);
    const inverted = await get('from=2026-12-06&to=2026-12-05');
    expect(inverted.status).toBe(422);
    expect(await inverted.text()).toContain('from must not be after to');
    expect((await get('from=2026-12-06T10:00:00%2B01:00&to=2026-12-06')).status).toBe(200);
    const nurse = await fetch(`${h.baseUrl}/api/audit`, {
      headers: { authorization: `Bearer ${await h.token('demo-nurse')}` },
    });
    expect(nurse.status).toBe(403);
  });

  it('takes every cursor its document allows (a position, issued or not) and says so with an exact pattern', async () => {
    const admin = await clientFor('demo-admin');
    const first = await admin.audit.list({ limit: 1 });
    expect(first.nextCursor).toMatch(/^[0-9]+$/);
    const all = (await admin.audit.list({ limit: 1000 })).items;
    expect((await admin.audit.list({ cursor: '0' })).items).toEqual([]);
    expect((await admin.audit.list({ cursor: '9999999999999', limit: 1000 })).items).toEqual(all);
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters: Array<{ name: string; schema: { pattern?: string } }> }>>;
    };
    const cursor = doc.paths['/api/audit']!['get']!.parameters.find((p) => p.name === 'cursor')!;
    expect(cursor.schema.pattern).toBe('^[0-9]{1,13}$');
  });

  it('mirrors AuditEvents to FHIR as batch Bundles of PUTs by id, never one queued write per record', async () => {
    const before = h.fhir.queued.length;
    const nurse = await clientFor('demo-nurse');
    await Promise.all(Array.from({ length: 30 }, () => nurse.patients.get(P1)));
    const queued = h.fhir.queued.slice(before);
    expect(queued.every((q) => q.kind === 'audit-events')).toBe(true);
    expect(queued.length).toBeLessThan(30); // concurrent reads share Bundles
    const entries = queued.flatMap((q) => (q.payload as Bundle).entry ?? []);
    expect(entries).toHaveLength(30);
    for (const q of queued) {
      expect((q.payload as Bundle).type).toBe('batch');
      expect((q.payload as Bundle).entry!.length).toBeLessThanOrEqual(AUDIT_EVENTS_PER_BUNDLE);
    }
    for (const entry of entries) {
      expect(entry.request?.method).toBe('PUT');
      expect(entry.request?.url).toBe(`AuditEvent/${entry.resource?.id}`);
    }
  });
});
