/**
 * One contract suite for every CacheStore: the embedded MemoryStore, the real MySqlStore on MariaDB, and the
 * two-tier TieredStore over each. The same assertions must hold for all of them.
 */
import { ValidationError } from '@cdss/core';
import { createTestClock, requireService, type TestClock } from '@cdss/core/testing';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';
import { MySqlStore } from './mysql-store.js';
import { TieredStore } from './tiered-store.js';
import type { CacheStore, JsonValue } from './types.js';

const mariadb = await requireService('mariadb');
const RUN = `${process.pid}_${Date.now().toString(36)}`;

interface Fixture {
  store: CacheStore;
  clock: TestClock;
}

function contract(name: string, setup: () => Promise<Fixture>, teardown: (f: Fixture) => Promise<void>): void {
  describe(`CacheStore contract: ${name}`, () => {
    let f: Fixture;
    beforeEach(async () => {
      f = await setup();
      return () => teardown(f);
    });
    const timing = (ttl: number, grace = 0) => {
      const now = f.clock.now();
      return { expiresAt: now + ttl, staleUntil: now + ttl + grace };
    };

    it('returns undefined for an absent key', async () => {
      expect(await f.store.get('absent')).toBeUndefined();
    });

    it('round-trips JSON values exactly, with version and timing', async () => {
      const value: JsonValue = {
        name: [{ family: 'O\'Brien "Quoted"', given: ['Zoë', '李'] }],
        n: 12.5,
        neg: -3,
        flags: [true, false, null],
        nested: { deep: { deeper: [] } },
        empty: '',
      };
      const stored = await f.store.set('patient:1', value, timing(1_000, 500));
      expect(stored.version).toBeGreaterThanOrEqual(1);
      const read = await f.store.get('patient:1');
      expect(read?.value).toEqual(value);
      expect(read?.version).toBe(stored.version);
      expect(read?.expiresAt).toBe(f.clock.now() + 1_000);
      expect(read?.staleUntil).toBe(f.clock.now() + 1_500);
      expect(read?.storedAt).toBe(f.clock.now());
      for (const scalar of ['text', 0, true, null] as const) {
        await f.store.set('scalar', scalar, timing(1_000));
        expect((await f.store.get('scalar'))?.value).toBe(scalar);
      }
    });

    it('replaces a value and increases its version', async () => {
      const a = await f.store.set('k', { v: 1 }, timing(1_000));
      const b = await f.store.set('k', { v: 2 }, timing(1_000));
      expect(b.version).toBeGreaterThan(a.version);
      const read = await f.store.get('k');
      expect(read?.value).toEqual({ v: 2 });
      expect(read?.version).toBe(b.version);
    });

    it('deletes a key, reporting whether it was there', async () => {
      await f.store.set('gone', 1, timing(1_000));
      expect(await f.store.delete('gone')).toBe(true);
      expect(await f.store.get('gone')).toBeUndefined();
      expect(await f.store.delete('gone')).toBe(false);
    });

    it('keeps a stale entry until staleUntil, then hides it, and sweep drops it', async () => {
      await f.store.set('ttl', 'v', timing(100, 200));
      await f.store.set('long', 'v', timing(10_000));
      f.clock.advance(150);
      const stale = await f.store.get('ttl');
      expect(stale?.value).toBe('v');
      expect(stale && stale.expiresAt <= f.clock.now()).toBe(true);
      f.clock.advance(200);
      expect(await f.store.get('ttl')).toBeUndefined();
      await f.store.set('ttl2', 'v', timing(10, 0));
      f.clock.advance(20);
      expect(await f.store.sweep()).toBeGreaterThanOrEqual(1);
      expect(await f.store.get('ttl2')).toBeUndefined();
      expect((await f.store.get('long'))?.value).toBe('v');
    });

    it('treats keys as exact strings (case, accents, punctuation)', async () => {
      await f.store.set('Key', 'upper', timing(1_000));
      await f.store.set('key', 'lower', timing(1_000));
      await f.store.set('café', 'accent', timing(1_000));
      await f.store.set('cafe', 'plain', timing(1_000));
      await f.store.set("a'b;--", 'punct', timing(1_000));
      expect((await f.store.get('Key'))?.value).toBe('upper');
      expect((await f.store.get('key'))?.value).toBe('lower');
      expect((await f.store.get('café'))?.value).toBe('accent');
      expect((await f.store.get('cafe'))?.value).toBe('plain');
      expect((await f.store.get("a'b;--"))?.value).toBe('punct');
    });

    it('rejects bad keys with a ValidationError naming the problem, changing nothing', async () => {
      await f.store.set('ok', 1, timing(1_000));
      for (const bad of ['', 'x'.repeat(251), 'tab\there', 'nl\n']) {
        await expect(f.store.set(bad, 2, timing(1_000))).rejects.toBeInstanceOf(ValidationError);
        await expect(f.store.get(bad)).rejects.toBeInstanceOf(ValidationError);
        await expect(f.store.delete(bad)).rejects.toBeInstanceOf(ValidationError);
      }
      const error = await f.store.get('').catch((e: unknown) => e);
      expect((error as ValidationError).message).toMatch(/cache key/i);
      expect((await f.store.get('ok'))?.value).toBe(1);
      expect(await f.store.set('x'.repeat(250), 'max', timing(1_000))).toMatchObject({ value: 'max' });
    });

    it('rejects values that are not JSON and bad timing, keeping the old value', async () => {
      await f.store.set('v', 'old', timing(1_000));
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      const bad: unknown[] = [undefined, Number.NaN, Number.POSITIVE_INFINITY, () => 1, { d: new Date(0) }, 10n];
      for (const value of bad) {
        await expect(f.store.set('v', value as JsonValue, timing(1_000))).rejects.toBeInstanceOf(ValidationError);
      }
      await expect(
        f.store.set('v', 'new', { expiresAt: f.clock.now() + 10, staleUntil: f.clock.now() }),
      ).rejects.toBeInstanceOf(ValidationError);
      await expect(f.store.set('v', 'new', { expiresAt: -1, staleUntil: 5 })).rejects.toBeInstanceOf(ValidationError);
      expect((await f.store.get('v'))?.value).toBe('old');
    });

    it('handles concurrent writes and reads of many keys', async () => {
      const keys = Array.from({ length: 50 }, (_, i) => `bulk:${i}`);
      await Promise.all(keys.map((k, i) => f.store.set(k, { i }, timing(1_000))));
      const read = await Promise.all(keys.map((k) => f.store.get(k)));
      expect(read.map((e) => e?.value)).toEqual(keys.map((_, i) => ({ i })));
    });
  });
}

contract(
  'MemoryStore',
  () => {
    const clock = createTestClock();
    return Promise.resolve({ clock, store: new MemoryStore({ clock }) });
  },
  (f) => f.store.close(),
);

contract(
  'TieredStore (memory over memory)',
  () => {
    const clock = createTestClock();
    const store = new TieredStore({ l1: new MemoryStore({ clock }), l2: new MemoryStore({ clock, tier: 'l2' }) });
    return Promise.resolve({ clock, store });
  },
  (f) => f.store.close(),
);

describe.skipIf(!mariadb.available)('on the real MariaDB', () => {
  const tables: string[] = [];
  let tableNo = 0;
  let admin: mysql.Pool;
  beforeAll(() => {
    admin = mysql.createPool({ uri: mariadb.url, connectionLimit: 2 });
  });
  afterAll(async () => {
    for (const t of tables) {
      await admin.query(`DROP TABLE IF EXISTS ${admin.escapeId(t)}`);
      await admin.query('DELETE FROM cdss_cache_schema WHERE table_name = ?', [t]);
    }
    await admin.end();
  });
  const openMySql = async (clock: TestClock): Promise<MySqlStore> => {
    const table = `cache_contract_${RUN}_${tableNo++}`;
    tables.push(table);
    return MySqlStore.open({ url: mariadb.url, table, clock, connectionLimit: 4, sweepIntervalMs: 0 });
  };

  contract(
    'MySqlStore',
    async () => {
      const clock = createTestClock();
      return { clock, store: await openMySql(clock) };
    },
    (f) => f.store.close(),
  );

  contract(
    'TieredStore (memory over MySQL)',
    async () => {
      const clock = createTestClock();
      return { clock, store: new TieredStore({ l1: new MemoryStore({ clock }), l2: await openMySql(clock) }) };
    },
    (f) => f.store.close(),
  );

  describe('MySqlStore specifics', () => {
    it('migrates on start, idempotently, and records the schema version', async () => {
      const clock = createTestClock();
      const first = await openMySql(clock);
      const again = await MySqlStore.open({ url: mariadb.url, table: first.table, clock, sweepIntervalMs: 0 });
      await first.set('k', 'v', { expiresAt: clock.now() + 1_000, staleUntil: clock.now() + 1_000 });
      expect((await again.get('k'))?.value).toBe('v');
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        'SELECT version FROM cdss_cache_schema WHERE table_name = ?',
        [first.table],
      );
      expect(rows[0]?.['version']).toBe(1);
      await first.close();
      await again.close();
    });

    it('stores JSON text with version and expiry columns, using prepared statements', async () => {
      const clock = createTestClock();
      const store = await openMySql(clock);
      await store.set('p', { a: 1 }, { expiresAt: clock.now() + 5, staleUntil: clock.now() + 9 });
      await store.set('p', { a: 2 }, { expiresAt: clock.now() + 5, staleUntil: clock.now() + 9 });
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT v, version, expires_at, stale_until FROM ${admin.escapeId(store.table)} WHERE k = 'p'`,
      );
      expect(rows[0]).toMatchObject({ v: '{"a":2}', version: 2 });
      expect(Number(rows[0]?.['stale_until'])).toBe(clock.now() + 9);
      const [stmts] = await admin.query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'");
      expect(Number(stmts[0]?.['Value'])).toBeGreaterThan(0);
      await store.close();
    });

    it('refuses a value larger than maxValueBytes, changing nothing', async () => {
      const clock = createTestClock();
      const table = `cache_contract_${RUN}_${tableNo++}`;
      tables.push(table);
      const store = await MySqlStore.open({ url: mariadb.url, table, clock, maxValueBytes: 100, sweepIntervalMs: 0 });
      const t = { expiresAt: clock.now() + 5, staleUntil: clock.now() + 9 };
      await store.set('big', 'small', t);
      await expect(store.set('big', 'x'.repeat(200), t)).rejects.toBeInstanceOf(ValidationError);
      expect((await store.get('big'))?.value).toBe('small');
      await store.close();
    });

    it('rejects a bad table name before touching the server', async () => {
      await expect(MySqlStore.open({ url: mariadb.url, table: 'x; DROP TABLE y' })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(MySqlStore.open({ table: 'ok' })).rejects.toBeInstanceOf(ValidationError);
    });
  });
});
