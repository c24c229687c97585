/**
 * Checkpoints (file, MariaDB) and the follower lease on the real MariaDB: one instance follows at a time, and another
 * takes over when it gives the lease up or its connection dies.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import {
  createFileCheckpoints,
  createMySqlCheckpoints,
  mySqlFollowerLease,
  type CheckpointStore,
} from './checkpoint.js';

const mariadb = await requireService('mariadb');
const dir = mkdtempSync(join(tmpdir(), 'cdss-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function roundTrip(store: CheckpointStore): Promise<void> {
  expect(await store.load('feed-a')).toBeUndefined();
  await store.save('feed-a', 41);
  await Promise.all([store.save('feed-a', 42), store.save('feed-b', 7)]);
  expect([await store.load('feed-a'), await store.load('feed-b')]).toEqual([42, 7]);
}

describe('checkpoints', () => {
  it('keeps the place of each feed in a file', async () => {
    await roundTrip(createFileCheckpoints(join(dir, 'sub', 'checkpoints.json')));
    expect(await createFileCheckpoints(join(dir, 'sub', 'checkpoints.json')).load('feed-a')).toBe(42);
  });
});

describe.skipIf(!mariadb.available)('checkpoints and the follower lease on MariaDB', () => {
  const table = `t${randomBytes(4).toString('hex')}_checkpoints`;
  const lock = `cdss.test.${randomBytes(4).toString('hex')}`;
  let pool: Pool;
  beforeAll(() => {
    pool = createPool({ uri: mariadb.url, connectionLimit: 4 });
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('keeps the place of each feed in a row', async () => {
    await roundTrip(await createMySqlCheckpoints(pool, table));
  });

  it('lets one instance follow at a time, and another take over', async () => {
    const first = mySqlFollowerLease(pool, lock);
    const second = mySqlFollowerLease(pool, lock);
    expect(await first.acquire()).toBe(true);
    expect(await first.acquire()).toBe(true);
    expect(await second.acquire()).toBe(false);
    await first.release();
    expect(await second.acquire()).toBe(true);
    expect(await first.acquire()).toBe(false);
    await second.release();
  });
});
