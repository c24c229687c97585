import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import { JobClient, RequestAnalysis } from './client.js';
import { createMessage, encodeMessage } from './codec.js';
import type { JobEvent } from './protocol.js';
import { MemoryBroker, MemoryTransport } from './memory-transport.js';
import { MySqlJobStore } from './mysql-store.js';
import { pollJob } from './polling.js';
import { sampleRequest, sampleRequestInput, sampleResult } from './testing.js';
import { JobWorker } from './worker.js';
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

  it('keeps at most 64 prepared statements per connection for the callers’ writes inside apply (not mysql2’s 16,000)', async () => {
    // One connection, so the statements below are prepared in the same MariaDB session as the store's own.
    const store = await MySqlJobStore.open({ url: db.url, tablePrefix: prefix, connectionLimit: 1 });
    opened.push(store);
    const { job } = await store.create(sampleRequest());
    let status: RowDataPacket[] = [];
    await store.apply(
      createMessage({ type: 'analysis.accepted', jobId: job.jobId, workerId: 'w1', attempt: 1 }) as JobEvent,
      {
        within: async (_result, transaction) => {
          const connection = transaction.connection as unknown as PoolConnection;
          for (let n = 0; n < 84; n++) await connection.execute(`SELECT ? + ${n} AS v`, [1]);
          [status] = await connection.query<RowDataPacket[]>(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')",
          );
        },
      },
    );
    const count = (name: string): number => Number(status.find((r) => r['Variable_name'] === name)?.['Value']);
    expect(count('Com_stmt_prepare')).toBeGreaterThanOrEqual(84);
    expect(count('Com_stmt_prepare') - count('Com_stmt_close')).toBeLessThanOrEqual(64);
  });

  it('a second store on the same tables sees the same jobs (state survives the process)', async () => {
    const a = opened[0] ?? (await MySqlJobStore.open({ url: db.url, tablePrefix: prefix }));
    const listed = await a.list({ limit: 5 });
    const b = await MySqlJobStore.open({ url: db.url, tablePrefix: prefix });
    opened.push(b);
    expect((await b.list({ limit: 5 })).map((j) => j.jobId)).toEqual(listed.map((j) => j.jobId));
  });

  it('records a client + worker run, with every result delivered twice, exactly once per job', async () => {
    const store = await MySqlJobStore.open({ url: db.url, tablePrefix: prefix });
    opened.push(store);
    const broker = new MemoryBroker();
    const serverT = new MemoryTransport({ broker });
    const workerT = new MemoryTransport({ broker });
    const client = new JobClient({ transport: serverT, store, prefetch: 8 });
    await client.start();
    const worker = new JobWorker({
      transport: workerT,
      prefetch: 4,
      handler: async (ctx) => {
        // a duplicate result, as a worker redelivered the job would send
        const dup = createMessage({
          type: 'analysis.succeeded',
          jobId: ctx.request.jobId,
          workerId: 'dup',
          result: sampleResult(),
        });
        await workerT.publishEvent('job.succeeded', {
          body: encodeMessage(dup),
          messageId: dup.messageId,
          type: dup.type,
        });
        return sampleResult();
      },
    });
    await worker.start();
    const jobs = await Promise.all(
      Array.from({ length: 20 }, () => client.send(new RequestAnalysis(sampleRequestInput()))),
    );
    for (const job of jobs) {
      expect(
        (await pollJob((id) => store.get(id), job.jobId, { intervalMs: 20, backoff: 1, timeoutMs: 20_000 })).state,
      ).toBe('succeeded');
    }
    await worker.stop();
    await client.stop();
    for (const job of jobs)
      expect((await store.history(job.jobId)).filter((t) => t.to === 'succeeded')).toHaveLength(1);
    await workerT.close();
    await serverT.close();
  });
});
