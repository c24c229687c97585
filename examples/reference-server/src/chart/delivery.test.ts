/**
 * Filing approved reports: the chart outbox (memory and the real MariaDB, one contract) and the delivery loop
 * against a documents port that fails first, then stores: filed once, audited, retried with backoff; an entry whose
 * review is not an approval is set aside.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createPool, type Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import type { ApiAnalysis } from '../api-schemas.js';
import { AuditTrail, createMemoryAuditStore } from '../audit.js';
import { createAuditor } from '../domain/auditor.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { chartDelivery, reportFilename, type ChartDocuments } from './delivery.js';
import { keyImages } from './key-images.js';
import { createMemoryChartOutbox, createMySqlChartOutbox, type ChartOutbox } from './outbox.js';
import type { ReportDocumentInput } from './pdf-report.js';

const mariadb = await requireService('mariadb');

function outboxContract(name: string, make: () => Promise<ChartOutbox>) {
  describe(name, () => {
    let outbox: ChartOutbox;
    beforeAll(async () => {
      outbox = await make();
    });
    it('keeps one entry per analysis, leases due entries, and records outcomes', async () => {
      await outbox.enqueue({ analysisId: 'a-1', patientId: 'p' }, 1_000);
      await outbox.enqueue({ analysisId: 'a-1', patientId: 'p' }, 1_500);
      await outbox.enqueue({ analysisId: 'a-2', patientId: 'p' }, 2_000);
      expect((await outbox.claimDue(1_800, 10, 60_000)).map((i) => i.analysisId)).toEqual(['a-1']);
      expect((await outbox.claimDue(2_500, 10, 60_000)).map((i) => i.analysisId)).toEqual(['a-2']);
      await outbox.markFailed('a-1', 'OpenEMR unreachable', 10_000);
      expect(await outbox.claimDue(5_000, 10, 60_000)).toEqual([]);
      const [again] = await outbox.claimDue(100_000, 10, 60_000);
      expect(again).toMatchObject({ analysisId: 'a-1', attempts: 1, lastError: 'OpenEMR unreachable' });
      await outbox.markDelivered('a-1', '17');
      await outbox.markDead('a-2', 'not approved');
      expect(await outbox.state('a-1')).toEqual({ state: 'delivered', documentId: '17' });
      expect(await outbox.stats()).toEqual({ pending: 0, delivered: 1, dead: 1 });
      expect(await outbox.claimDue(1e12, 10, 60_000)).toEqual([]);
    });
  });
}

outboxContract('memory chart outbox', async () => createMemoryChartOutbox());

describe.skipIf(!mariadb.available)('MySQL chart outbox', () => {
  const table = `t${randomBytes(4).toString('hex')}_chart`;
  let pool: Pool;
  beforeAll(() => {
    pool = createPool({ uri: mariadb.url, connectionLimit: 2 });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });
  outboxContract('on MariaDB', () => createMySqlChartOutbox(pool, table));
});

describe('filing approved reports', () => {
  const dims: [number, number, number] = [8, 8, 4];
  const labels = new Uint8Array(256).map((_, i) => (i % 64 === 27 ? 4 : 0));
  const images = keyImages(
    { dims, spacing: [1, 1, 1], data: new Float32Array(256).map((_, i) => i) },
    { dims, spacing: [1, 1, 1], data: labels },
  );
  const analysis = (id: string): ApiAnalysis => ({
    id,
    patientId: 'p-1',
    studyUid: '2.25.1',
    status: 'succeeded',
    requestedBy: 'x',
    requestedAt: '2026-11-02T10:00:00.000Z',
    model: { id: 'brats-demo', version: '0.1.0' },
    result: { volumes: { enhancingTumor: 1, tumorCore: 2, wholeTumor: 3 }, flags: [] },
    review: { status: 'approved', reviewer: 'r', reviewedAt: '2026-11-03T08:00:00.000Z' },
  });
  const input = (id: string): ReportDocumentInput => ({
    reportId: id,
    patient: { id: 'p-1', name: 'Doe, Jane' },
    analysis: analysis(id),
    study: { uid: '2.25.1', date: '2026-11-02' },
    keyImages: images,
    model: { name: 'brats-demo', version: '0.1.0', intendedUse: 'demo', notForClinicalUse: true },
  });

  it('files each approved report once, retries failures with backoff, sets aside the unapproved, audits', async () => {
    const outbox = createMemoryChartOutbox();
    const stored = new Map<string, { id: string; filename: string; category: string }>();
    let failures = 1;
    const documents: ChartDocuments = {
      async upload({ content, filename, category }) {
        if (failures-- > 0) throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'HttpError' });
        const hash = createHash('sha3-512').update(content).digest('hex');
        const existing = stored.get(hash);
        if (existing) return { id: existing.id, created: false };
        stored.set(hash, { id: String(stored.size + 1), filename, category });
        return { id: String(stored.size), created: true };
      },
    };
    const audit = createMemoryAuditStore();
    let clock = 1_000_000;
    const delivery = chartDelivery({
      outbox,
      documents,
      category: 'Medical_Record',
      reportInput: async (id) => (id === 'a-rejected' ? 'not-approved' : input(id)),
      auditor: createAuditor(new AuditTrail({ store: audit }), createMetrics()),
      logger: createLogger('silent'),
      now: () => clock,
    });
    await outbox.enqueue({ analysisId: 'a-ok', patientId: 'p-1' }, clock);
    await outbox.enqueue({ analysisId: 'a-rejected', patientId: 'p-1' }, clock);
    expect(await delivery.drainOnce()).toEqual({ delivered: 0, failed: 1, dead: 1 });
    expect(await delivery.drainOnce()).toEqual({ delivered: 0, failed: 0, dead: 0 }); // backing off
    clock += 2_001;
    expect(await delivery.drainOnce()).toEqual({ delivered: 1, failed: 0, dead: 0 });
    expect([...stored.values()]).toEqual([{ id: '1', filename: reportFilename('a-ok'), category: 'Medical_Record' }]);
    expect(await outbox.state('a-ok')).toEqual({ state: 'delivered', documentId: '1' });
    expect(await outbox.state('a-rejected')).toEqual({ state: 'dead' });
    expect(audit.records.map((r) => [r.action, r.resource, r.outcome, r.patientId])).toEqual([
      ['create', `DocumentReference/${reportFilename('a-ok')}`, 'failure', 'p-1'],
      ['create', 'DocumentReference/1', 'success', 'p-1'],
    ]);
  });
});
