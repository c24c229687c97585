// Fault tests on a PRIVATE RabbitMQ that this suite starts, stops for real (SIGTERM to its PID) and restarts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import { startPrivateBroker, type PrivateBroker } from './__fixtures__/private-broker.js';
import { AmqpTransport } from './amqp-transport.js';
import { JobClient, RequestAnalysis, type JobChange } from './client.js';
import { MemoryJobStore } from './memory-store.js';
import { pollJob } from './polling.js';
import { sampleRequestInput, sampleResult } from './testing.js';
import { JobWorker } from './worker.js';

const here = dirname(fileURLToPath(import.meta.url));
// the broker binaries come with the shared service; without them there is nothing to fault-test
const rabbit = await requireService('rabbitmq');
const haveBroker = rabbit.available && existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server');

describe.skipIf(!haveBroker)('fault tests on a private RabbitMQ', () => {
  let broker: PrivateBroker;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    broker = await startPrivateBroker();
  }, 180_000);
  afterAll(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => {});
    await broker?.destroy();
  }, 120_000);

  it('(a) 1,000 jobs in flight while the broker is stopped and restarted: each succeeds exactly once, none lost', async () => {
    const prefix = `fault-a.${randomUUID().slice(0, 8)}`;
    const mk = () =>
      new AmqpTransport({
        url: broker.url,
        prefix,
        retryDelaysMs: [200],
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      });
    const store = new MemoryJobStore();
    const serverT = mk();
    const client = new JobClient({ transport: serverT, store, prefetch: 64 });
    await client.start();
    const succeeded = new Map<string, number>();
    let succeededCount = 0;
    let firstWave!: () => void;
    const wave = new Promise<void>((r) => (firstWave = r));
    client.subscribe((c: JobChange) => {
      if (c.transition?.to !== 'succeeded') return;
      succeeded.set(c.job.jobId, (succeeded.get(c.job.jobId) ?? 0) + 1);
      if (++succeededCount === 100) firstWave();
    });
    const workers: { w: JobWorker; t: AmqpTransport }[] = [];
    for (let i = 0; i < 2; i++) {
      const t = mk();
      const w = new JobWorker({
        transport: t,
        prefetch: 8,
        workerId: `w${i}`,
        handler: async () => (await new Promise((r) => setTimeout(r, 5)), sampleResult()),
      });
      await w.start();
      workers.push({ w, t });
    }
    closers.push(async () => {
      for (const { w, t } of workers) await w.stop({ graceMs: 0 }).then(() => t.close());
      await client.stop();
      await serverT.close();
    });

    const ids: string[] = [];
    const send = async (n: number) => {
      const jobs = [];
      for (let i = 0; i < n; i++)
        jobs.push(client.send(new RequestAnalysis(sampleRequestInput())).then((j) => ids.push(j.jobId)));
      await Promise.all(jobs);
    };
    await send(800);
    await wave; // 100 done, ~700 queued or in workers' hands
    await broker.stop(); // the real broker process is gone
    for (let i = 0; i < 100 && serverT.connected; i++) await new Promise((r) => setTimeout(r, 100));
    expect(serverT.connected).toBe(false); // the client noticed (the event may lag on a busy machine)
    const openAtOutage = (await store.list({ states: ['queued', 'accepted', 'running'], limit: 2000 })).length;
    expect(openAtOutage).toBeGreaterThan(0);
    const duringOutage = send(200); // these wait for the broker, confirmed only after the restart
    await new Promise((r) => setTimeout(r, 500));
    await broker.start();
    await duringOutage;
    expect(ids).toHaveLength(1000);

    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const open = await store.list({ states: ['queued', 'accepted', 'running'], limit: 1 });
      if (open.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const all = await store.list({ limit: 2000 });
    expect(all).toHaveLength(1000);
    expect(all.filter((j) => j.state !== 'succeeded').map((j) => `${j.jobId}:${j.state}`)).toEqual([]);
    for (const id of ids) {
      const history = await store.history(id);
      expect(
        history.filter((t) => t.to === 'succeeded'),
        id,
      ).toHaveLength(1);
    }
    expect(succeeded.size).toBe(1000);
    expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
    expect(await serverT.depth('dead')).toBe(0);
    process.stderr.write(
      `[fault a] jobs not yet finished when the broker stopped: ${openAtOutage} + 200 sent during the outage\n`,
    );
  }, 180_000);

  it('(b) a worker process killed mid-job: the job is redelivered and completes once', async () => {
    const prefix = `fault-b.${randomUUID().slice(0, 8)}`;
    const store = new MemoryJobStore();
    const serverT = new AmqpTransport({ url: broker.url, prefix, retryDelaysMs: [50] });
    const client = new JobClient({ transport: serverT, store });
    await client.start();
    closers.push(async () => (await client.stop(), await serverT.close()));

    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=@cdss/source', join(here, '__fixtures__', 'worker-child.ts')],
      {
        env: { ...process.env, AIJOBS_AMQP_URL: broker.url, AIJOBS_PREFIX: prefix },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    closers.push(async () => void (child.exitCode === null && child.kill('SIGKILL')));
    let out = '';
    const waitLine = (re: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child said: ${out}`)), 60_000);
        const check = (): void => {
          const m = re.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m);
          }
        };
        child.stdout!.on('data', (d: Buffer) => ((out += d.toString()), check()));
        check();
      });
    await waitLine(/ready/);
    const job = await client.send(new RequestAnalysis(sampleRequestInput()));
    await waitLine(new RegExp(`started ${job.jobId}`));
    for (let i = 0; i < 200 && (await store.get(job.jobId))?.state !== 'running'; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect((await store.get(job.jobId))?.state).toBe('running'); // the child is mid-job
    expect(child.pid).toBeGreaterThan(0);
    process.kill(child.pid!, 'SIGKILL'); // by its PID, mid-job
    await new Promise<void>((r) =>
      child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
    );
    expect(child.signalCode).toBe('SIGKILL');

    const seen: { redelivered: boolean }[] = [];
    const t = new AmqpTransport({ url: broker.url, prefix, retryDelaysMs: [50] });
    const w = new JobWorker({
      transport: t,
      workerId: 'survivor',
      handler: async (ctx) => (seen.push({ redelivered: ctx.redelivered }), sampleResult()),
    });
    await w.start();
    closers.push(async () => (await w.stop({ graceMs: 0 }), await t.close()));
    const done = await pollJob((id) => store.get(id), job.jobId, { intervalMs: 20, backoff: 1, timeoutMs: 60_000 });
    expect(done).toMatchObject({ state: 'succeeded', workerId: 'survivor' });
    expect(seen).toEqual([{ redelivered: true }]);
    expect((await store.history(job.jobId)).map((x) => x.to)).toEqual(['accepted', 'running', 'succeeded']);
  }, 120_000);

  it('(c) malformed and schema-invalid requests land in the DLQ with their reason while good jobs keep flowing', async () => {
    const prefix = `fault-c.${randomUUID().slice(0, 8)}`;
    const store = new MemoryJobStore();
    const serverT = new AmqpTransport({ url: broker.url, prefix, retryDelaysMs: [50] });
    const client = new JobClient({ transport: serverT, store });
    await client.start();
    const t = new AmqpTransport({ url: broker.url, prefix, retryDelaysMs: [50] });
    const w = new JobWorker({ transport: t, prefetch: 4, handler: async () => sampleResult() });
    await w.start();
    closers.push(
      async () => (await w.stop({ graceMs: 0 }), await t.close(), await client.stop(), await serverT.close()),
    );
    const good: string[] = [];
    for (let i = 0; i < 100; i++) {
      good.push((await client.send(new RequestAnalysis(sampleRequestInput()))).jobId);
      if (i % 5 === 0)
        await serverT.publishRequest({
          body: Buffer.from(`{"broken": ${i}`),
          messageId: randomUUID(),
          type: 'analysis.requested',
        });
      if (i % 5 === 1) {
        const body = JSON.stringify({
          protocol: 'cdss.ai-jobs',
          version: 1,
          type: 'analysis.requested',
          jobId: randomUUID(),
          messageId: randomUUID(),
          sentAt: new Date().toISOString(),
          ...sampleRequestInput(),
          priority: 'whenever',
        });
        await serverT.publishRequest({ body: Buffer.from(body), messageId: randomUUID(), type: 'analysis.requested' });
      }
    }
    for (const id of good)
      expect((await pollJob((x) => store.get(x), id, { intervalMs: 20, backoff: 1, timeoutMs: 60_000 })).state).toBe(
        'succeeded',
      );
    const dead = [];
    for (let i = 0; i < 100 && dead.length < 40; i++) {
      dead.push(...(await serverT.takeDeadLetters(100)));
      if (dead.length < 40) await new Promise((r) => setTimeout(r, 50));
    }
    expect(dead).toHaveLength(40);
    expect(dead.filter((d) => d.reason === 'malformed')).toHaveLength(20);
    const invalid = dead.filter((d) => d.reason === 'schema-invalid');
    expect(invalid).toHaveLength(20);
    expect(invalid.every((d) => d.detail?.includes('priority'))).toBe(true);
    expect(dead.every((d) => d.source?.endsWith('.work.q'))).toBe(true);
  }, 120_000);
});
