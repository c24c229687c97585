/** One contract suite for the IdempotencyStore port: in memory and on the real MariaDB. */
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryIdempotencyStore, type IdempotencyStore } from './idempotency.js';
import { MySqlIdempotencyStore } from './mysql-idempotency.js';

const mariadb = await requireService('mariadb');
const RUN = `${process.pid}_${Date.now().toString(36)}`;
const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const T0 = Date.UTC(2026, 0, 1);

function contract(name: string, open: () => Promise<IdempotencyStore>): void {
  describe(`IdempotencyStore contract: ${name}`, () => {
    let store: IdempotencyStore;
    beforeEach(async () => {
      store = await open();
      return () => store.close();
    });
    const claim = (key: string, owner: string, now = T0, fingerprint = FP_A, leaseMs = 1_000) =>
      store.claim({ key, fingerprint, owner, now, leaseMs });

    it('gives a key to the first claimant and reports it pending to the next', async () => {
      expect(await claim('k1', 'o1')).toEqual({ status: 'claimed' });
      expect(await claim('k1', 'o2', T0 + 10, FP_B)).toEqual({
        status: 'pending',
        fingerprint: FP_A,
        leaseUntil: T0 + 1_000,
      });
    });

    it('replays the completed answer to later claims', async () => {
      await claim('k2', 'o1');
      expect(await store.complete({ key: 'k2', owner: 'o1', response: '{"id":"p9"}', expiresAt: T0 + 60_000 })).toBe(
        true,
      );
      expect(await claim('k2', 'o2', T0 + 5)).toEqual({ status: 'done', fingerprint: FP_A, response: '{"id":"p9"}' });
    });

    it('hands a key whose owner outlived its lease to the same request as "recover", with the first context', async () => {
      await store.claim({ key: 'k3', fingerprint: FP_A, owner: 'o1', now: T0, leaseMs: 1_000, context: '{"n":1}' });
      // another request with the key is refused, even after the lease
      expect(await claim('k3', 'o2', T0 + 1_000, FP_B)).toEqual({ status: 'unknown', fingerprint: FP_A });
      expect(await claim('k3', 'o2', T0 + 1_000)).toEqual({ status: 'recover', context: '{"n":1}' });
      expect(await store.complete({ key: 'k3', owner: 'o1', response: '1', expiresAt: T0 + 9_000 })).toBe(false);
      expect(await store.complete({ key: 'k3', owner: 'o2', response: '2', expiresAt: T0 + 9_000 })).toBe(true);
      expect(await claim('k3', 'o3', T0 + 2_000)).toMatchObject({ status: 'done', response: '2' });
    });

    it('keeps an unknown outcome until the same request recovers it; only its owner marks it', async () => {
      await claim('u1', 'o1');
      expect(await store.markUnknown({ key: 'u1', owner: 'intruder', expiresAt: T0 + 60_000 })).toBe(false);
      expect(await store.markUnknown({ key: 'u1', owner: 'o1', expiresAt: T0 + 60_000 })).toBe(true);
      expect(await claim('u1', 'o2', T0 + 10, FP_B)).toEqual({ status: 'unknown', fingerprint: FP_A });
      expect(await claim('u1', 'o2', T0 + 10)).toEqual({ status: 'recover', context: undefined });
      // the recovering owner holds a fresh lease
      expect(await claim('u1', 'o3', T0 + 20)).toMatchObject({ status: 'pending', fingerprint: FP_A });
      // past its retention an unresolved record is forgotten
      await store.markUnknown({ key: 'u1', owner: 'o2', expiresAt: T0 + 100 });
      expect(await claim('u1', 'o4', T0 + 100, FP_B)).toEqual({ status: 'claimed' });
    });

    it('records the answer atomically with the caller’s writes: a failing `within` records nothing', async () => {
      await claim('t1', 'o1');
      const boom = new Error('outbox down');
      await expect(
        store.complete(
          { key: 't1', owner: 'o1', response: '1', expiresAt: T0 + 60_000 },
          {
            within: async () => {
              throw boom;
            },
          },
        ),
      ).rejects.toBe(boom);
      expect(await claim('t1', 'o2', T0 + 10)).toMatchObject({ status: 'pending' });
      let ran = 0;
      expect(
        await store.complete(
          { key: 't1', owner: 'o1', response: '2', expiresAt: T0 + 60_000 },
          { within: async () => void ran++ },
        ),
      ).toBe(true);
      expect(ran).toBe(1);
      expect(await claim('t1', 'o2', T0 + 20)).toMatchObject({ status: 'done', response: '2' });
    });

    it('frees a released key for a retry, but only for its owner', async () => {
      await claim('k4', 'o1');
      await store.release('k4', 'intruder');
      expect(await claim('k4', 'o2', T0 + 1)).toMatchObject({ status: 'pending' });
      await store.release('k4', 'o1');
      expect(await claim('k4', 'o2', T0 + 2)).toEqual({ status: 'claimed' });
    });

    it('forgets expired records (claimable again) and sweeps them', async () => {
      await claim('k5', 'o1');
      await store.complete({ key: 'k5', owner: 'o1', response: '1', expiresAt: T0 + 100 });
      expect(await claim('k5', 'o2', T0 + 100)).toEqual({ status: 'claimed' });
      await claim('k6', 'o1');
      expect(await store.sweep(T0 + 50_000)).toBe(0); // an unresolved claim is kept for its retention
      expect(await store.sweep(T0 + 25 * 60 * 60 * 1000)).toBeGreaterThanOrEqual(1);
      expect(await claim('k6', 'o9', T0 + 25 * 60 * 60 * 1000 + 1)).toEqual({ status: 'claimed' });
    });

    it('gives a key to exactly one of many concurrent claimants', async () => {
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => claim('k7', `o${i}`)));
      expect(outcomes.filter((o) => o.status === 'claimed')).toHaveLength(1);
      expect(outcomes.filter((o) => o.status === 'pending')).toHaveLength(19);
    });

    it('rejects bad input with a ValidationError', async () => {
      await expect(store.claim({ key: '', fingerprint: FP_A, owner: 'o', now: T0, leaseMs: 1 })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(
        store.claim({ key: 'k', fingerprint: 'nothex', owner: 'o', now: T0, leaseMs: 1 }),
      ).rejects.toBeInstanceOf(ValidationError);
      await expect(
        store.claim({ key: 'k', fingerprint: FP_A, owner: 'o', now: T0, leaseMs: 0 }),
      ).rejects.toBeInstanceOf(ValidationError);
      expect(await claim('k', 'o')).toEqual({ status: 'claimed' }); // nothing was recorded by the bad calls
    });
  });
}

contract('memory', () => Promise.resolve(new MemoryIdempotencyStore()));

describe.skipIf(!mariadb.available)('on the real MariaDB', () => {
  const tables: string[] = [];
  let admin: mysql.Pool;
  beforeAll(() => {
    admin = mysql.createPool({ uri: mariadb.url, connectionLimit: 1 });
  });
  afterAll(async () => {
    for (const t of tables) {
      await admin.query(`DROP TABLE IF EXISTS ${admin.escapeId(t)}`);
      await admin.query('DELETE FROM cdss_cache_schema WHERE table_name = ?', [t]);
    }
    await admin.end();
  });
  contract('MySQL', () => {
    const table = `idem_contract_${RUN}_${tables.length}`;
    tables.push(table);
    return MySqlIdempotencyStore.open({ url: mariadb.url, table, connectionLimit: 4 });
  });
});
