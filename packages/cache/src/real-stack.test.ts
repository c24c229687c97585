/**
 * The full stack on the real MariaDB (L1 memory over MySQL L2, idempotency records in MySQL): single-flight under
 * 100 concurrent misses, a failing upstream that leaves the cache unchanged, and a retried idempotent write.
 */
import { requireService } from '@cdss/core/testing';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Cache } from './cache.js';
import { MySqlIdempotencyStore } from './mysql-idempotency.js';
import { MemoryStore } from './memory-store.js';
import { MySqlStore } from './mysql-store.js';
import { FakeUpstream } from './testing.js';
import { TieredStore } from './tiered-store.js';
import { WriteCoordinator } from './write-coordinator.js';

const mariadb = await requireService('mariadb');
const RUN = `${process.pid}_${Date.now().toString(36)}`;
const patientSchema = z.object({ id: z.string(), name: z.string() });
type Patient = z.infer<typeof patientSchema>;

describe.skipIf(!mariadb.available)('cache over the real MariaDB', () => {
  const cacheTable = `stack_cache_${RUN}`;
  const idemTable = `stack_idem_${RUN}`;
  let l2: MySqlStore;
  let idempotency: MySqlIdempotencyStore;
  let admin: mysql.Pool;
  const newCache = () => new Cache({ store: new TieredStore({ l1: new MemoryStore(), l2 }), ttlMs: 60_000 });

  beforeAll(async () => {
    admin = mysql.createPool({ uri: mariadb.url, connectionLimit: 1 });
    l2 = await MySqlStore.open({ url: mariadb.url, table: cacheTable, sweepIntervalMs: 0 });
    idempotency = await MySqlIdempotencyStore.open({ url: mariadb.url, table: idemTable });
  });
  afterAll(async () => {
    await l2.close();
    await idempotency.close();
    for (const t of [cacheTable, idemTable]) {
      await admin.query(`DROP TABLE IF EXISTS ${admin.escapeId(t)}`);
      await admin.query('DELETE FROM cdss_cache_schema WHERE table_name = ?', [t]);
    }
    await admin.end();
  });

  it('100 concurrent misses for one key make exactly one loader call', async () => {
    const cache = newCache();
    let calls = 0;
    const loader = async (): Promise<Patient> => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { id: 'hot', name: 'Hot' };
    };
    const results = await Promise.all(Array.from({ length: 100 }, () => cache.getOrLoad('patient:hot', loader)));
    expect(calls).toBe(1);
    expect(results.every((r) => r.value.name === 'Hot')).toBe(true);
    expect((await l2.get('patient:hot'))?.value).toEqual({ id: 'hot', name: 'Hot' });
  });

  it('a failing upstream write fails the request and leaves the cache unchanged', async () => {
    const cache = newCache();
    const writes = new WriteCoordinator({ cache, idempotency });
    const upstream = new FakeUpstream<Patient>();
    const req = (name: string, idempotencyKey: string) => ({
      upstream: () => upstream.write('u1', { id: 'u1', name }),
      key: 'patient:u1',
      toCache: (p: Patient) => p,
      idempotencyKey,
      request: { name },
      resultSchema: patientSchema,
    });
    await writes.write(req('Original', `${RUN}-a`));
    const before = await l2.get('patient:u1');
    upstream.failWith = new Error('OpenEMR 500');
    await expect(writes.write(req('Changed', `${RUN}-b`))).rejects.toThrow('OpenEMR 500');
    expect(await l2.get('patient:u1')).toEqual(before); // same value, same version
    expect(await cache.getOrLoad('patient:u1', () => upstream.read('u1'))).toMatchObject({
      value: { name: 'Original' },
      source: 'l1',
    });
    // the failed key was released: a retry after the upstream recovers runs for real
    upstream.failWith = undefined;
    expect(await writes.write(req('Changed', `${RUN}-b`))).toMatchObject({ replayed: false, cache: 'updated' });
  });

  it('a retried write with the same idempotency key makes one upstream write, even from another instance', async () => {
    const upstream = new FakeUpstream<Patient>();
    const req = {
      upstream: () => upstream.write('r1', { id: 'r1', name: 'Once' }),
      key: 'patient:r1',
      toCache: (p: Patient) => p,
      idempotencyKey: `${RUN}-retry`,
      request: { name: 'Once' },
      resultSchema: patientSchema,
    };
    const first = await new WriteCoordinator({ cache: newCache(), idempotency }).write(req);
    const retry = await new WriteCoordinator({ cache: newCache(), idempotency }).write(req);
    expect(upstream.writes).toBe(1);
    expect(retry).toEqual({ result: first.result, replayed: true, cache: 'none' });
  });
});
