/**
 * One contract for the CDS store, run against memory and the real MariaDB (tables with a random prefix, dropped
 * afterwards).
 */
import { randomBytes } from 'node:crypto';
import { createPool, type Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import { createMemoryCdsStore, createMySqlCdsStore, type CdsStore } from './store.js';

const mariadb = await requireService('mariadb');

function contract(name: string, make: () => Promise<CdsStore>) {
  describe(name, () => {
    let store: CdsStore;
    beforeAll(async () => {
      store = await make();
    });

    it('remembers a jti until it expires: a second use is a replay, an expired one may come again', async () => {
      const now = Date.now();
      expect(await store.remember('iss jti-1', now + 60_000)).toBe(true);
      expect(await store.remember('iss jti-1', now + 60_000)).toBe(false);
      expect(await store.remember('iss jti-2', now - 1_000)).toBe(true);
      expect(await store.remember('iss jti-2', now + 60_000)).toBe(true);
      expect(await store.remember('other jti-1', now + 60_000)).toBe(true);
    });

    it('keeps offers, feedback and automatic-analysis requests (once per card)', async () => {
      const offer = {
        cardUuid: 'card-1',
        serviceId: 's',
        patientId: 'p-1',
        hookInstance: 'h',
        orderRefs: ['ServiceRequest/1'],
        suggestions: [{ uuid: 'sug-1', kind: 'auto-analysis' as const }],
        createdAt: 1,
      };
      await store.recordOffer(offer);
      expect(await store.offer('card-1')).toEqual(offer);
      expect(await store.offer('card-x')).toBeUndefined();
      const item = {
        card: 'card-1',
        outcome: 'accepted' as const,
        acceptedSuggestions: [{ id: 'sug-1' }],
        outcomeTimestamp: '2026-12-06T10:00:00Z',
      };
      await store.recordFeedback({ serviceId: 's', caller: 'iss', patientId: 'p-1', item, receivedAt: 5 });
      await store.recordFeedback({
        serviceId: 's',
        caller: 'iss',
        item: { ...item, outcome: 'overridden' },
        receivedAt: 6,
      });
      expect((await store.feedbackOf('card-1')).map((f) => [f.item.outcome, f.patientId])).toEqual([
        ['accepted', 'p-1'],
        ['overridden', undefined],
      ]);
      const request = {
        patientId: 'p-1',
        cardUuid: 'card-1',
        orderRef: 'ServiceRequest/1',
        requestedBy: 'iss',
        requestedAt: 100,
      };
      await store.requestAutoAnalysis(request);
      await store.requestAutoAnalysis({ ...request, requestedAt: 200 });
      await store.requestAutoAnalysis({ ...request, cardUuid: 'card-2', requestedAt: 300 });
      expect((await store.autoAnalysisRequests('p-1', 0)).map((r) => [r.cardUuid, r.requestedAt])).toEqual([
        ['card-2', 300],
        ['card-1', 100],
      ]);
      expect(await store.autoAnalysisRequests('p-1', 250)).toHaveLength(1);
      expect(await store.autoAnalysisRequests('p-2', 0)).toEqual([]);
    });
  });
}

contract('memory CDS store', async () => createMemoryCdsStore());

describe.skipIf(!mariadb.available)('MySQL CDS store', () => {
  const prefix = `t${randomBytes(4).toString('hex')}_`;
  let pool: Pool;
  beforeAll(() => {
    pool = createPool({ uri: mariadb.url, connectionLimit: 2 });
  });
  afterAll(async () => {
    for (const table of ['jti', 'offers', 'feedback', 'auto_analysis'])
      await pool.query(`DROP TABLE IF EXISTS ${prefix}${table}`);
    await pool.end();
  });
  contract('on MariaDB', () => createMySqlCdsStore(pool, prefix));
});
