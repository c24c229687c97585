import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import { MySqlJobStore } from './mysql-store.js';
import { jobStoreContract } from './store.contract.js';

const db = await requireService('mariadb');
// a unique table prefix per run, so parallel runs and earlier runs never meet
const prefix = `t_aijobs_${randomBytes(4).toString('hex')}_`;
const opened: MySqlJobStore[] = [];

describe.skipIf(!db.available)('MySqlJobStore on the real MariaDB', () => {
  afterAll(async () => {
    const [first, ...rest] = opened;
    if (first) await first.dropTables();
    for (const s of [first, ...rest]) await s?.close();
  });

  jobStoreContract('MySqlJobStore', async () => {
    const store = await MySqlJobStore.open({ url: db.url, tablePrefix: prefix });
    opened.push(store);
    return store;
  });

  it('refuses a bad table prefix before touching the database', async () => {
    await expect(MySqlJobStore.open({ url: db.url, tablePrefix: 'x; DROP TABLE y' })).rejects.toSatisfy((e) =>
      ValidationError.isInstance(e),
    );
  });

  it('a second store on the same tables sees the same jobs (state survives the process)', async () => {
    const a = opened[0] ?? (await MySqlJobStore.open({ url: db.url, tablePrefix: prefix }));
    const listed = await a.list({ limit: 5 });
    const b = await MySqlJobStore.open({ url: db.url, tablePrefix: prefix });
    opened.push(b);
    expect((await b.list({ limit: 5 })).map((j) => j.jobId)).toEqual(listed.map((j) => j.jobId));
  });
});
