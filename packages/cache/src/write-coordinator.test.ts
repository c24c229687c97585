import { HttpError, TimeoutError, ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryInvalidationHub } from './bus.js';
import { Cache } from './cache.js';
import {
  CacheUnavailableError,
  IdempotencyConflictError,
  IdempotencyInProgressError,
  IdempotencyOutcomeUnknownError,
} from './errors.js';
import { MemoryIdempotencyStore, type IdempotencyStore, type IdempotencyTransaction } from './idempotency.js';
import { MySqlIdempotencyStore } from './mysql-idempotency.js';
import { MemoryStore } from './memory-store.js';
import { createCountingMetrics, FakeUpstream, SwitchableStore } from './testing.js';
import { TieredStore } from './tiered-store.js';
import { isOutcomeUnknown, WriteCoordinator, type WriteRequest } from './write-coordinator.js';

const mariadb = await requireService('mariadb');
const RUN = `${process.pid}_${Date.now().toString(36)}`;

const patientSchema = z.object({ id: z.string(), name: z.string() });
type Patient = z.infer<typeof patientSchema>;

function setup(idempotency?: IdempotencyStore) {
  const { listener, counts } = createCountingMetrics();
  const l2 = new SwitchableStore(new MemoryStore({ tier: 'l2' }));
  const store = new TieredStore({ l1: new MemoryStore(), l2 });
  const hub = new MemoryInvalidationHub();
  const bus = hub.connect('writer');
  const published: string[][] = [];
  hub.connect('observer').subscribe((e) => {
    if (e.kind === 'keys') published.push([...e.keys]);
  });
  const cache = new Cache({ store, bus, metrics: listener, ttlMs: 60_000, repair: { intervalMs: 5, baseDelayMs: 1 } });
  const writes = new WriteCoordinator({ cache, idempotency, metrics: listener });
  const upstream = new FakeUpstream<Patient>();
  const create = (p: Patient) => ({
    upstream: () => upstream.write(p.id, p),
    key: `patient:${p.id}`,
    toCache: (r: Patient) => r,
  });
  return { cache, l2, store, writes, upstream, counts, published, create };
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('WriteCoordinator: upstream first', () => {
  it('writes the upstream first, then the cache, and invalidates other instances', async () => {
    const { writes, upstream, cache, published, l2 } = setup();
    const order: string[] = [];
    const out = await writes.write({
      upstream: async () => {
        order.push(`upstream (cached before: ${String(await l2.inner.get('patient:1').then((e) => e !== undefined))})`);
        return upstream.write('1', { id: '1', name: 'Ada' });
      },
      key: 'patient:1',
      toCache: (p) => p,
      invalidate: ['patients:list'],
    });
    order.push('returned');
    expect(order).toEqual(['upstream (cached before: false)', 'returned']);
    expect(out).toEqual({ result: { id: '1', name: 'Ada' }, replayed: false, cache: 'updated' });
    expect((await l2.get('patient:1'))?.value).toEqual({ id: '1', name: 'Ada' });
    expect(await cache.getOrLoad('patient:1', () => Promise.reject(new Error('not called')))).toMatchObject({
      source: 'l1',
    });
    await tick();
    expect(published).toEqual([['patient:1'], ['patients:list']]);
  });

  it('writes nothing when the upstream fails: the error propagates and the cache keeps its old value', async () => {
    const { writes, upstream, cache, l2, published, create } = setup();
    await writes.write(create({ id: '2', name: 'Old' }));
    await tick();
    published.length = 0;
    const before = await l2.get('patient:2');
    upstream.failWith = new Error('OpenEMR 500');
    await expect(writes.write(create({ id: '2', name: 'New' }))).rejects.toThrow('OpenEMR 500');
    expect(await l2.get('patient:2')).toEqual(before);
    expect(await cache.getOrLoad('patient:2', () => Promise.resolve({ id: '2', name: 'x' }))).toMatchObject({
      value: { id: '2', name: 'Old' },
      source: 'l1',
    });
    await tick();
    expect(published).toEqual([]);
  });

  it('evicts the key when the cache update fails', async () => {
    const { writes, l2, create } = setup();
    await writes.write(create({ id: '3', name: 'Old' }));
    l2.failing.add('set');
    const out = await writes.write(create({ id: '3', name: 'New' }));
    expect(out.cache).toBe('evicted');
    l2.failing.clear();
    expect(await l2.get('patient:3')).toBeUndefined();
  });

  it('schedules a repair when update and evict both fail; the background task evicts once the store is back', async () => {
    const { writes, l2, cache, counts, create } = setup();
    await writes.write(create({ id: '4', name: 'Old' }));
    l2.failing.add('set');
    l2.failing.add('delete');
    const out = await writes.write(create({ id: '4', name: 'New' }));
    expect(out).toMatchObject({ result: { name: 'New' }, cache: 'repair-scheduled' });
    expect(cache.repairs.has('patient:4')).toBe(true);
    // meanwhile reads bypass the (stale) L2 entry
    expect(await cache.getOrLoad('patient:4', () => Promise.resolve({ id: '4', name: 'New' }))).toMatchObject({
      value: { name: 'New' },
      source: 'loader',
    });
    l2.failing.clear();
    const deadline = Date.now() + 5_000;
    while (cache.repairs.has('patient:4') && Date.now() < deadline) await tick(5);
    expect(cache.repairs.has('patient:4')).toBe(false);
    expect(await l2.get('patient:4')).toBeUndefined();
    expect(counts.repairs.succeeded).toBe(1);
    await cache.close();
  });

  it('evicts instead of updating when no toCache is given', async () => {
    const { writes, upstream, l2, create } = setup();
    await writes.write(create({ id: '5', name: 'Old' }));
    const out = await writes.write({ upstream: () => upstream.write('5', { id: '5', name: 'New' }), key: 'patient:5' });
    expect(out.cache).toBe('evicted');
    expect(await l2.get('patient:5')).toBeUndefined();
  });

  it('rejects bad cache keys before calling the upstream', async () => {
    const { writes, upstream } = setup();
    await expect(
      writes.write({ upstream: () => upstream.write('x', { id: 'x', name: 'n' }), key: '' }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      writes.write({
        upstream: () => upstream.write('x', { id: 'x', name: 'n' }),
        idempotencyKey: 'bad\nkey',
        resultSchema: patientSchema,
      }),
    ).rejects.toBeInstanceOf(ValidationError);
    const untyped = {
      upstream: () => upstream.write('x', { id: 'x', name: 'n' }),
      idempotencyKey: 'k',
    } as unknown as WriteRequest<Patient>;
    await expect(writes.write(untyped)).rejects.toBeInstanceOf(ValidationError);
    expect(upstream.writes).toBe(0);
  });
});

describe('WriteCoordinator: idempotency keys (in memory)', () => {
  it('replays the first answer to a retry without repeating the upstream write', async () => {
    const { writes, upstream, create } = setup();
    const req = {
      ...create({ id: '6', name: 'Ada' }),
      idempotencyKey: 'req-6',
      request: { name: 'Ada' },
      resultSchema: patientSchema,
    };
    const first = await writes.write(req);
    const retry = await writes.write(req);
    expect(upstream.writes).toBe(1);
    expect(first).toMatchObject({ replayed: false, cache: 'updated' });
    expect(retry).toEqual({ result: first.result, replayed: true, cache: 'none' });
  });

  it('keeps at most localRecords answers of the shared store in this process: an older retry asks the shared store', async () => {
    const { cache, upstream, create } = setup();
    const shared = new MemoryIdempotencyStore();
    const claimed: string[] = [];
    const claim = shared.claim.bind(shared);
    shared.claim = (input) => {
      claimed.push(input.key);
      return claim(input);
    };
    const writes = new WriteCoordinator({ cache, idempotency: shared, localRecords: 2 });
    const req = (id: string) => ({
      ...create({ id, name: 'Ada' }),
      idempotencyKey: `req-local-${id}`,
      request: { id },
      resultSchema: patientSchema,
    });
    for (const id of ['1', '2', '3']) await writes.write(req(id));
    expect(claimed).toEqual(['req-local-1', 'req-local-2', 'req-local-3']);
    // the newest two are replayed from this process's copies, the oldest from the shared store
    expect(await writes.write(req('3'))).toMatchObject({ replayed: true });
    expect(await writes.write(req('2'))).toMatchObject({ replayed: true });
    expect(claimed).toHaveLength(3);
    expect(await writes.write(req('1'))).toMatchObject({ replayed: true, result: { id: '1', name: 'Ada' } });
    expect(claimed).toEqual(['req-local-1', 'req-local-2', 'req-local-3', 'req-local-1']);
    expect(upstream.writes).toBe(3);
  });

  it('answers a concurrent duplicate with IdempotencyInProgressError (409) and writes once', async () => {
    const { writes, upstream, create } = setup();
    upstream.delayMs = 20;
    const req = { ...create({ id: '7', name: 'Bo' }), idempotencyKey: 'req-7', resultSchema: patientSchema };
    const outs = await Promise.allSettled(Array.from({ length: 10 }, () => writes.write(req)));
    expect(upstream.writes).toBe(1);
    expect(outs.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outs.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    expect(refused).toHaveLength(9);
    for (const error of refused) expect(error).toBeInstanceOf(IdempotencyInProgressError);
    // once the first finished, a retry replays it
    expect(await writes.write(req)).toMatchObject({ replayed: true, result: { id: '7', name: 'Bo' } });
  });

  it('lets a retry run again after the first attempt failed upstream without writing', async () => {
    const { writes, upstream, create } = setup();
    const req = { ...create({ id: '8', name: 'Cy' }), idempotencyKey: 'req-8', resultSchema: patientSchema };
    upstream.failWith = new HttpError({ method: 'POST', url: 'http://emr/api/patient', status: 503 });
    await expect(writes.write(req)).rejects.toThrow('503');
    upstream.failWith = undefined;
    expect(await writes.write(req)).toMatchObject({ replayed: false });
    expect(upstream.writes).toBe(2);
  });

  it('refuses a reused key with a different request', async () => {
    const { writes, upstream, create } = setup();
    await writes.write({
      ...create({ id: '9', name: 'A' }),
      idempotencyKey: 'req-9',
      request: { name: 'A' },
      resultSchema: patientSchema,
    });
    await expect(
      writes.write({
        ...create({ id: '9', name: 'B' }),
        idempotencyKey: 'req-9',
        request: { name: 'B' },
        resultSchema: patientSchema,
      }),
    ).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(upstream.writes).toBe(1);
  });

  it('fingerprints requests canonically (key order does not matter)', async () => {
    const { writes, upstream, create } = setup();
    const base = { ...create({ id: '10', name: 'A' }), idempotencyKey: 'req-10', resultSchema: patientSchema };
    await writes.write({ ...base, request: { a: 1, b: { c: 2, d: 3 } } });
    expect(await writes.write({ ...base, request: { b: { d: 3, c: 2 }, a: 1 } })).toMatchObject({ replayed: true });
    expect(upstream.writes).toBe(1);
  });
});

describe('WriteCoordinator: unknown outcomes', () => {
  const timeout = () => new TimeoutError('POST http://emr/api/patient: no response within 10 ms', 10);
  /** An upstream that commits the write and then times out, once. */
  function commitThenTimeout(upstream: FakeUpstream<Patient>) {
    let faults = 1;
    return async (p: Patient): Promise<Patient> => {
      const written = await upstream.write(p.id, p);
      if (faults-- > 0) throw timeout();
      return written;
    };
  }

  it('classifies timeouts, resets after sending and gateway errors as unknown; refusals and 4xx as not written', () => {
    const noResponse = (code: string) =>
      new HttpError({ method: 'POST', url: 'http://emr', cause: Object.assign(new Error(code), { code }) });
    expect(isOutcomeUnknown(timeout())).toBe(true);
    expect(isOutcomeUnknown(noResponse('ECONNRESET'))).toBe(true);
    expect(isOutcomeUnknown(new HttpError({ method: 'POST', url: 'http://emr', status: 504 }))).toBe(true);
    expect(isOutcomeUnknown(noResponse('ECONNREFUSED'))).toBe(false);
    expect(isOutcomeUnknown(new HttpError({ method: 'POST', url: 'http://emr', status: 400 }))).toBe(false);
    expect(isOutcomeUnknown(new HttpError({ method: 'POST', url: 'http://emr', status: 503 }))).toBe(false);
    expect(isOutcomeUnknown(new Error('bug'))).toBe(false);
  });

  it('keeps the key after a timeout and settles the retry by reading the upstream back: one write', async () => {
    const { writes, upstream } = setup();
    const write = commitThenTimeout(upstream);
    const readBacks: unknown[] = [];
    const req = {
      upstream: () => write({ id: '20', name: 'Tim' }),
      prepare: async () => ({ before: [...upstream.records.keys()] }),
      readBack: async ({ prepared }: { prepared: unknown }) => {
        readBacks.push(prepared);
        return upstream.records.get('20');
      },
      key: 'patient:20',
      toCache: (p: Patient) => p,
      idempotencyKey: 'req-20',
      request: { name: 'Tim' },
      resultSchema: patientSchema,
    };
    await expect(writes.write(req)).rejects.toBeInstanceOf(TimeoutError);
    const retry = await writes.write(req);
    expect(retry).toMatchObject({ result: { id: '20', name: 'Tim' }, replayed: false, recovered: true });
    expect(upstream.writes).toBe(1);
    // the read-back got what the first attempt knew before it wrote
    expect(readBacks).toEqual([{ before: [] }]);
    expect(await writes.write(req)).toMatchObject({ replayed: true });
    expect(upstream.writes).toBe(1);
  });

  it('writes again when the read-back finds nothing, and refuses to guess without a read-back', async () => {
    const { writes, upstream } = setup();
    let fail = true;
    const req = {
      upstream: async () => {
        if (fail) {
          fail = false;
          throw timeout(); // timed out before the upstream wrote anything
        }
        return upstream.write('21', { id: '21', name: 'Ann' });
      },
      readBack: async () => undefined,
      idempotencyKey: 'req-21',
      request: { name: 'Ann' },
      resultSchema: patientSchema,
    };
    await expect(writes.write(req)).rejects.toBeInstanceOf(TimeoutError);
    expect(await writes.write(req)).toMatchObject({ replayed: false, result: { id: '21' } });
    expect(upstream.writes).toBe(1);

    const blind = { ...req, upstream: commitThenTimeout(upstream).bind(null, { id: '22', name: 'Bea' }) };
    const { readBack: _omit, ...withoutReadBack } = { ...blind, idempotencyKey: 'req-22' };
    await expect(writes.write(withoutReadBack)).rejects.toBeInstanceOf(TimeoutError);
    await expect(writes.write(withoutReadBack)).rejects.toBeInstanceOf(IdempotencyOutcomeUnknownError);
    await expect(writes.write(withoutReadBack)).rejects.toBeInstanceOf(IdempotencyOutcomeUnknownError);
    expect(upstream.records.size).toBe(2);
  });

  it('a commit that fails after the upstream write leaves the key unknown; the retry reads back and commits', async () => {
    const { writes, upstream } = setup();
    const committed: Patient[] = [];
    let commitFails = true;
    const req = {
      upstream: () => upstream.write('23', { id: '23', name: 'Cal' }),
      readBack: async () => upstream.records.get('23'),
      commit: async (p: Patient) => {
        if (commitFails) throw new Error('outbox unavailable');
        committed.push(p);
      },
      idempotencyKey: 'req-23',
      request: { name: 'Cal' },
      resultSchema: patientSchema,
    };
    await expect(writes.write(req)).rejects.toThrow('outbox unavailable');
    expect(committed).toEqual([]);
    commitFails = false;
    expect(await writes.write(req)).toMatchObject({ recovered: true });
    expect(committed).toEqual([{ id: '23', name: 'Cal' }]);
    expect(upstream.writes).toBe(1);
  });

  it('with whenStoreDown: fail, refuses to write while the shared store is unreachable', async () => {
    const { cache, upstream } = setup();
    const down: IdempotencyStore = new MemoryIdempotencyStore();
    down.claim = async () => {
      throw new CacheUnavailableError('mysql', 'MySQL is unavailable');
    };
    const writes = new WriteCoordinator({ cache, idempotency: down, whenStoreDown: 'fail' });
    await expect(
      writes.write({
        upstream: () => upstream.write('24', { id: '24', name: 'Dan' }),
        idempotencyKey: 'req-24',
        resultSchema: patientSchema,
      }),
    ).rejects.toBeInstanceOf(CacheUnavailableError);
    expect(upstream.writes).toBe(0);
  });
});

describe.skipIf(!mariadb.available)('WriteCoordinator: idempotency keys in the real MariaDB', () => {
  const table = `idem_writes_${RUN}`;
  let admin: mysql.Pool;
  beforeAll(() => {
    admin = mysql.createPool({ uri: mariadb.url, connectionLimit: 1 });
  });
  afterAll(async () => {
    await admin.query(`DROP TABLE IF EXISTS ${admin.escapeId(table)}`);
    await admin.query('DELETE FROM cdss_cache_schema WHERE table_name = ?', [table]);
    await admin.end();
  });

  it('two instances sharing the store: a concurrent duplicate gets 409, retries replay, one upstream write', async () => {
    const storeA = await MySqlIdempotencyStore.open({ url: mariadb.url, table, connectionLimit: 2 });
    const storeB = await MySqlIdempotencyStore.open({ url: mariadb.url, table, connectionLimit: 2 });
    const a = setup(storeA);
    const b = setup(storeB);
    const upstream = new FakeUpstream<Patient>();
    upstream.delayMs = 50;
    const req = {
      upstream: () => upstream.write('11', { id: '11', name: 'Dee' }),
      key: 'patient:11',
      toCache: (p: Patient) => p,
      idempotencyKey: `req-11-${RUN}`,
      request: { name: 'Dee' },
      resultSchema: patientSchema,
    };
    const [x, y] = await Promise.allSettled([a.writes.write(req), b.writes.write(req)]);
    expect(upstream.writes).toBe(1);
    const fulfilled = [x, y].filter((o) => o.status === 'fulfilled');
    expect(fulfilled).toHaveLength(1);
    expect([x, y].find((o) => o.status === 'rejected')?.reason).toBeInstanceOf(IdempotencyInProgressError);
    // the other instance's retry replays the answer from MySQL
    expect(await (x.status === 'rejected' ? a : b).writes.write(req)).toMatchObject({ replayed: true });
    // a later retry on a third instance, with a cold memory, replays from MySQL
    const storeC = await MySqlIdempotencyStore.open({ url: mariadb.url, table, connectionLimit: 1 });
    const c = setup(storeC);
    expect(await c.writes.write(req)).toEqual({ result: { id: '11', name: 'Dee' }, replayed: true, cache: 'none' });
    expect(upstream.writes).toBe(1);
    await Promise.all([storeA.close(), storeB.close(), storeC.close()]);
  });

  it('commits the caller’s rows in the transaction that records the answer, and recovers a dead writer’s key', async () => {
    const outbox = `idem_outbox_${RUN}`;
    await admin.query(`CREATE TABLE ${admin.escapeId(outbox)} (k VARCHAR(64) NOT NULL PRIMARY KEY)`);
    try {
      const store = await MySqlIdempotencyStore.open({ url: mariadb.url, table, connectionLimit: 2 });
      const { cache } = setup(store);
      const writes = new WriteCoordinator({ cache, idempotency: store, whenStoreDown: 'fail' });
      const upstream = new FakeUpstream<Patient>();
      let failAfterInsert = true;
      const req = {
        upstream: () => upstream.write('30', { id: '30', name: 'Eve' }),
        readBack: async () => upstream.records.get('30'),
        commit: async (p: Patient, tx: IdempotencyTransaction) => {
          await tx.connection!.execute(`INSERT INTO ${admin.escapeId(outbox)} (k) VALUES (?)`, [p.id]);
          if (failAfterInsert) throw new Error('crash between the two rows');
        },
        idempotencyKey: `req-30-${RUN}`,
        request: { name: 'Eve' },
        resultSchema: patientSchema,
      };
      await expect(writes.write(req)).rejects.toThrow('crash between');
      const rows = async () => ((await admin.query(`SELECT k FROM ${admin.escapeId(outbox)}`))[0] as unknown[]).length;
      expect(await rows()).toBe(0); // rolled back with the answer
      failAfterInsert = false;
      expect(await writes.write(req)).toMatchObject({ recovered: true });
      expect(await rows()).toBe(1);
      expect(upstream.writes).toBe(1);

      // A writer that died holding a claim (its lease ran out): the next instance reads back instead of writing.
      const dead = new WriteCoordinator({ cache, idempotency: store, leaseMs: 50 });
      const hung = dead.write({
        upstream: () => new Promise<Patient>(() => void upstream.records.set('31', { id: '31', name: 'Fay' })),
        idempotencyKey: `req-31-${RUN}`,
        request: { name: 'Fay' },
        resultSchema: patientSchema,
      });
      void hung.catch(() => undefined);
      await tick(100);
      const other = new WriteCoordinator({ cache, idempotency: store });
      const recovered = await other.write({
        upstream: () => upstream.write('31', { id: '31', name: 'Fay' }),
        readBack: async () => upstream.records.get('31'),
        idempotencyKey: `req-31-${RUN}`,
        request: { name: 'Fay' },
        resultSchema: patientSchema,
      });
      expect(recovered).toMatchObject({ recovered: true, result: { id: '31' } });
      expect(upstream.writes).toBe(1);
      await store.close();
    } finally {
      await admin.query(`DROP TABLE IF EXISTS ${admin.escapeId(outbox)}`);
    }
  });
});
