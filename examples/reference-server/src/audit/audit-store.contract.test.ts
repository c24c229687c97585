/**
 * One contract for every audit store (memory, the sandbox's JSON-lines file, the connected mode's MySQL table on
 * the real MariaDB): appends, newest-first pages with each filter, cursors that page through everything exactly
 * once, and refusal of foreign cursors. Then what only the file and the table must show.
 */
import { randomUUID } from 'node:crypto';
import { constants, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import type { Bundle } from 'fhir/r4.js';
import { MySqlOutbox } from '@cdss/fhir-mapper/mysql';
import { outboxFhirSync } from '../adapters/fhir-sync.js';
import {
  createMemoryAuditStore,
  mirrorToFhir,
  newAuditRecord,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
} from '../audit.js';
import { FileAuditStore } from './file-store.js';
import { MySqlAuditStore } from './mysql-store.js';

const mariadb = await requireService('mariadb');
const dir = mkdtempSync(join(tmpdir(), 'cdss-audit-store-'));
let pool: Pool | undefined;
const tables: string[] = [];
afterAll(async () => {
  for (const t of tables) await pool?.query(`DROP TABLE IF EXISTS \`${t}\``);
  await pool?.end();
  rmSync(dir, { recursive: true, force: true });
});

async function mysqlStore(table = `cdss_audit_test_${randomUUID().slice(0, 8)}`): Promise<MySqlAuditStore> {
  pool ??= createPool({ uri: mariadb.url, connectionLimit: 4 });
  if (!tables.includes(table)) tables.push(table);
  return MySqlAuditStore.open({ pool, table });
}

const kinds: Array<{ name: string; skip: boolean; make(): Promise<AuditStore> }> = [
  { name: 'memory', skip: false, make: async () => createMemoryAuditStore() },
  { name: 'file', skip: false, make: async () => new FileAuditStore(join(dir, `${randomUUID()}.jsonl`)) },
  { name: 'MySQL', skip: !mariadb.available, make: () => mysqlStore() },
];

const T0 = Date.parse('2026-12-06T08:00:00.000Z');

/** 60 records a second apart: users u0–u2, patients p0–p4 (and none for every 7th), every 5th a failure. */
function sample(count = 60): AuditRecord[] {
  return Array.from({ length: count }, (_, i) =>
    newAuditRecord(
      {
        userId: `u${i % 3}`,
        userName: `User ${i % 3}`,
        roles: ['physician'],
        ...(i % 7 === 0 ? {} : { patientId: `p${i % 5}` }),
        action: i % 4 === 0 ? 'update' : 'read',
        resource: `Patient/p${i % 5}`,
        outcome: i % 5 === 0 ? 'failure' : 'success',
        requestId: `req-${i}`,
      },
      new Date(T0 + i * 1000),
    ),
  );
}

async function everyPage(store: AuditStore, query: Omit<AuditQuery, 'cursor'>): Promise<AuditRecord[][]> {
  const pages: AuditRecord[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ ...query, ...(cursor ? { cursor } : {}) });
    pages.push(page.items);
    cursor = page.nextCursor;
  } while (cursor && pages.length < 100);
  return pages;
}

describe.each(kinds)('audit store contract: $name', ({ skip, make }) => {
  it.skipIf(skip)('lists appended records newest first, whole and unchanged', async () => {
    const store = await make();
    const records = sample(12);
    await store.appendBatch(records.slice(0, 5));
    await store.appendBatch(records.slice(5));
    const page = await store.list({ limit: 100 });
    expect(page.items).toEqual([...records].reverse());
    expect(page.nextCursor).toBeUndefined();
    await store.close();
  });

  it.skipIf(skip)('filters by user, patient, outcome and time range, alone and together', async () => {
    const store = await make();
    const records = sample();
    await store.appendBatch(records);
    const expectFilter = async (query: Omit<AuditQuery, 'limit'>, keep: (r: AuditRecord, i: number) => boolean) => {
      const { items } = await store.list({ ...query, limit: 1000 });
      expect(items.map((r) => r.requestId)).toEqual(
        records
          .filter(keep)
          .reverse()
          .map((r) => r.requestId),
      );
    };
    await expectFilter({ userId: 'u1' }, (_r, i) => i % 3 === 1);
    await expectFilter({ patientId: 'p2' }, (_r, i) => i % 7 !== 0 && i % 5 === 2);
    await expectFilter({ outcome: 'failure' }, (_r, i) => i % 5 === 0);
    // Both bounds inclusive, to the millisecond.
    await expectFilter({ from: T0 + 10_000, to: T0 + 20_000 }, (_r, i) => i >= 10 && i <= 20);
    await expectFilter({ from: T0 + 10_001 }, (_r, i) => i >= 11);
    await expectFilter({ to: T0 + 9_999 }, (_r, i) => i <= 9);
    await expectFilter(
      { userId: 'u0', outcome: 'success', from: T0 + 5_000, to: T0 + 50_000 },
      (_r, i) => i % 3 === 0 && i % 5 !== 0 && i >= 5 && i <= 50,
    );
    await expectFilter({ userId: 'nobody' }, () => false);
    await store.close();
  });

  it.skipIf(skip)('pages through every match exactly once with cursors, also while records are added', async () => {
    const store = await make();
    const records = sample();
    await store.appendBatch(records);
    const pages = await everyPage(store, { userId: 'u2', limit: 7 });
    const expected = records.filter((_r, i) => i % 3 === 2).reverse();
    expect(pages.map((p) => p.length)).toEqual([7, 7, 6]);
    expect(pages.flat()).toEqual(expected);

    // A record appended between pages does not shift the pages that follow.
    const first = await store.list({ limit: 10 });
    await store.appendBatch(sample(1).map((r) => ({ ...r, time: new Date(T0 + 3_600_000).toISOString() })));
    const second = await store.list({ limit: 10, cursor: first.nextCursor! });
    expect([...first.items, ...second.items]).toEqual([...records].reverse().slice(0, 20));
    await store.close();
  });

  it.skipIf(skip)('refuses a cursor it did not issue, with a ValidationError', async () => {
    const store = await make();
    await store.appendBatch(sample(3));
    for (const cursor of [
      'nonsense',
      Buffer.from('x:1').toString('base64url'),
      Buffer.from('f:-1').toString('base64url'),
    ])
      await expect(store.list({ limit: 1, cursor })).rejects.toBeInstanceOf(ValidationError);
    await store.close();
  });
});

describe('file audit store', () => {
  it('writes each batch with one write, durable when it returns (O_DSYNC), on a file it keeps open, mode 0600', async () => {
    const path = join(dir, `${randomUUID()}.jsonl`);
    const store = new FileAuditStore(path);
    await store.appendBatch(sample(1)); // opens the file
    const probe = await open(path, 'r');
    const proto = Object.getPrototypeOf(probe) as { write: () => unknown; datasync: () => unknown };
    await probe.close();
    const writes = vi.spyOn(proto, 'write');
    const syncs = vi.spyOn(proto, 'datasync');
    try {
      await store.appendBatch(sample(50));
      await store.appendBatch(sample(3));
      expect(writes).toHaveBeenCalledTimes(2);
      if (process.platform === 'linux') {
        // The file was opened with O_DSYNC (octal 010000 in /proc's flags): each write is a write and an
        // fdatasync in one, so there is no separate one.
        const { fd } = writes.mock.contexts[0] as { fd: number };
        const flags = /flags:\s*([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
        expect(Number.parseInt(flags ?? '0', 8) & constants.O_DSYNC).toBe(constants.O_DSYNC);
        expect(syncs).not.toHaveBeenCalled();
      }
    } finally {
      writes.mockRestore();
      syncs.mockRestore();
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(54);
    await store.close();
  });

  it('cuts a failed batch off the file, so no record of a refused request stays and the next line is whole', async () => {
    const path = join(dir, `${randomUUID()}.jsonl`);
    const store = new FileAuditStore(path);
    const kept = sample(2);
    await store.appendBatch(kept);
    const before = statSync(path).size;
    const probe = await open(path, 'r');
    type Write = (data: Buffer, offset: number, length: number) => Promise<{ bytesWritten: number }>;
    const proto = Object.getPrototypeOf(probe) as { write: Write };
    await probe.close();
    const realWrite = proto.write;
    // Half the batch reaches the file, then the disk fails (EIO, as a failed O_DSYNC write or fdatasync reports).
    const writes = vi
      .spyOn(proto, 'write')
      .mockImplementationOnce(function (this: unknown, data, offset, length) {
        return realWrite.call(this, data, offset, Math.ceil(length / 2));
      })
      .mockRejectedValueOnce(Object.assign(new Error('EIO'), { code: 'EIO' }));
    try {
      await expect(store.appendBatch(sample(5))).rejects.toThrow('EIO');
    } finally {
      writes.mockRestore();
    }
    expect(statSync(path).size).toBe(before);
    const after = sample(1);
    await store.appendBatch(after);
    expect((await store.list({ limit: 10 })).items).toEqual([...kept, ...after].reverse());
    await store.close();
  });

  it('cuts off a torn last line left by a crash when it opens the file', async () => {
    const path = join(dir, `${randomUUID()}.jsonl`);
    const records = sample(3);
    writeFileSync(path, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const whole = statSync(path).size;
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"id":"torn`);
    const store = new FileAuditStore(path);
    expect((await store.list({ limit: 10 })).items).toEqual([...records].reverse());
    expect(statSync(path).size).toBe(whole);
    await store.appendBatch(sample(1));
    expect(
      readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditRecord),
    ).toHaveLength(4);
    await store.close();
    // An empty file, and one with no whole line, open as empty.
    truncateSync(path, 10);
    const again = new FileAuditStore(path);
    expect((await again.list({ limit: 10 })).items).toEqual([]);
    expect(statSync(path).size).toBe(0);
    await again.close();
  });

  it('reads pages of a file much larger than its read chunk', async () => {
    const store = new FileAuditStore(join(dir, `${randomUUID()}.jsonl`));
    const records = Array.from({ length: 4 }, () => sample(500)).flat();
    await store.appendBatch(records);
    const pages = await everyPage(store, { limit: 333 });
    expect(pages.flat().map((r) => r.id)).toEqual([...records].reverse().map((r) => r.id));
    await store.close();
  });
});

describe.skipIf(!mariadb.available)('MySQL audit store', () => {
  it('two instances (two pools) appending at once keep one trail', async () => {
    const table = `cdss_audit_test_${randomUUID().slice(0, 8)}`;
    const a = await mysqlStore(table);
    const otherPool = createPool({ uri: mariadb.url, connectionLimit: 2 });
    try {
      const b = await MySqlAuditStore.open({ pool: otherPool, table });
      const fromA = sample(40).map((r) => ({ ...r, userId: 'instance-a' }));
      const fromB = sample(40).map((r) => ({ ...r, userId: 'instance-b' }));
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? b : a).appendBatch(
            (i % 2 ? fromB : fromA).slice(Math.floor(i / 2) * 10, Math.floor(i / 2) * 10 + 10),
          ),
        ),
      );
      const all = (await everyPage(a, { limit: 25 })).flat();
      expect(all).toHaveLength(80);
      expect(new Set(all.map((r) => r.id)).size).toBe(80);
      expect((await b.list({ userId: 'instance-a', limit: 100 })).items).toHaveLength(40);
    } finally {
      await otherPool.end();
    }
  });

  it("commits the AuditEvents outbox row in the records' transaction, and neither when that fails", async () => {
    const store = await mysqlStore();
    const outboxTable = `fhir_outbox_audit_test_${randomUUID().slice(0, 8)}`;
    tables.push(outboxTable);
    const outbox = new MySqlOutbox({ pool: pool!, table: outboxTable });
    await outbox.ensureSchema();
    const mirror = mirrorToFhir(outboxFhirSync(outbox));
    const kept = sample(3);
    await store.appendBatch(kept, (transaction) => mirror(kept, transaction));
    const [item] = await outbox.claimDue(Date.now(), 10, 1000);
    expect(item?.write.kind).toBe('batch');
    expect((item?.write as { bundle: Bundle }).bundle.entry).toHaveLength(3);

    const lost = sample(2).map((r) => ({ ...r, userId: 'rolled-back' }));
    await expect(
      store.appendBatch(lost, async (transaction) => {
        await mirror(lost, transaction);
        throw new Error('outbox full');
      }),
    ).rejects.toThrow('outbox full');
    expect((await store.list({ userId: 'rolled-back', limit: 10 })).items).toEqual([]);
    expect((await outbox.stats()).pending).toBe(1);
  });

  it('answers each filter from its index (EXPLAIN), not a table scan', async () => {
    const table = `cdss_audit_test_${randomUUID().slice(0, 8)}`;
    const store = await mysqlStore(table);
    await store.appendBatch(Array.from({ length: 5 }, () => sample(200)).flat());
    await pool!.query(`ANALYZE TABLE \`${table}\``);
    const explain = async (where: string): Promise<string | null> => {
      const [rows] = await pool!.query<RowDataPacket[]>(
        `EXPLAIN SELECT * FROM \`${table}\` WHERE ${where} ORDER BY time DESC, seq DESC LIMIT 101`,
      );
      return (rows[0]?.['key'] as string | null) ?? null;
    };
    expect(await explain(`user_id = 'u1'`)).toBe('idx_audit_user_time');
    expect(await explain(`patient_id = 'p3' AND time >= '2026-12-06 08:00:10'`)).toBe('idx_audit_patient_time');
    expect(await explain(`outcome = 'failure'`)).toBe('idx_audit_outcome_time');
    expect(await explain(`time >= '2026-12-06 08:00:10' AND time <= '2026-12-06 08:00:20'`)).toBe('idx_audit_time');
  });
});
