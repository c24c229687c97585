// The protocol contract: JobClient + JobWorker + store over a transport, run on MemoryTransport and on RabbitMQ.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { CancelAnalysis, GetAnalysis, JobClient, RequestAnalysis, type JobChange } from './client.js';
import { createMessage, encodeMessage } from './codec.js';
import { MemoryJobStore } from './memory-store.js';
import { pollJob } from './polling.js';
import { sampleRequestInput, sampleResult } from './testing.js';
import { collector, msg, type TransportFactory } from './transport.contract.js';
import type { JobTransport } from './transport.js';
import { JobFailure, JobWorker, type JobHandler, type JobWorkerOptions } from './worker.js';

export function jobsContract(name: string, factory: TransportFactory): void {
  describe(`job protocol contract: ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function system(prefix = `jobs.${randomUUID().slice(0, 8)}`) {
      const store = new MemoryJobStore();
      const serverT = factory.create(prefix);
      const client = new JobClient({ transport: serverT, store });
      await client.start();
      const changes: JobChange[] = [];
      client.subscribe((c) => changes.push(c));
      cleanups.push(async () => {
        await client.stop();
        await serverT.close();
        await factory.cleanup?.(prefix);
      });
      const startWorker = async (handler: JobHandler, options: Partial<JobWorkerOptions> = {}) => {
        const t = factory.create(prefix);
        const worker = new JobWorker({ transport: t, handler, ...options });
        await worker.start();
        cleanups.push(async () => {
          await worker.stop({ graceMs: 0 });
          await t.close();
        });
        return { worker, transport: t };
      };
      const waitState = (jobId: string, ms = 15_000) =>
        pollJob((id) => store.get(id), jobId, { intervalMs: 20, backoff: 1, timeoutMs: ms });
      return { store, client, changes, startWorker, waitState, serverT, prefix };
    }

    it('runs a job end to end: progress, result, every change reported once', async () => {
      const { client, changes, startWorker, waitState, store } = await system();
      await startWorker(async (ctx) => {
        await ctx.progress('inference', 50);
        return sampleResult();
      });
      const job = await client.send(new RequestAnalysis(sampleRequestInput({ priority: 'urgent' })));
      expect(job.state).toBe('queued');
      expect(job.publishedAt).not.toBeNull();
      const done = await waitState(job.jobId);
      expect(done).toMatchObject({ state: 'succeeded', result: sampleResult(), attempt: 1 });
      const mine = changes.filter((c) => c.job.jobId === job.jobId);
      expect(mine.filter((c) => c.transition).map((c) => c.transition!.to)).toEqual([
        'accepted',
        'running',
        'succeeded',
      ]);
      expect(mine.some((c) => c.event.type === 'analysis.progress' && c.event.percent === 50)).toBe(true);
      expect((await store.history(job.jobId)).map((t) => t.to)).toEqual(['accepted', 'running', 'succeeded']);
      expect(await client.send(new GetAnalysis({ jobId: job.jobId }))).toMatchObject({ state: 'succeeded' });
    });

    const typesOf = (changes: JobChange[], jobId: string) =>
      changes.filter((c) => c.job.jobId === jobId).map((c) => c.event.type);

    it('a quick job publishes no accepted: only its result, which names the attempt and the worker', async () => {
      const { client, changes, startWorker, waitState, store } = await system();
      const { worker } = await startWorker(async () => sampleResult()); // default acceptedAfterMs
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect(await waitState(job.jobId)).toMatchObject({ state: 'succeeded', attempt: 1, workerId: worker.workerId });
      expect(typesOf(changes, job.jobId)).toEqual(['analysis.succeeded']);
      expect((await store.history(job.jobId)).map((t) => [t.from, t.to])).toEqual([['queued', 'succeeded']]);
    });

    it('a quick failure publishes only analysis.failed, with its attempt and worker', async () => {
      const { client, changes, startWorker, waitState } = await system();
      const { worker } = await startWorker(async () => {
        throw new JobFailure('series-missing', 'no FLAIR series');
      });
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect(await waitState(job.jobId)).toMatchObject({
        state: 'failed',
        attempt: 1,
        workerId: worker.workerId,
        failure: { reason: 'series-missing' },
      });
      expect(typesOf(changes, job.jobId)).toEqual(['analysis.failed']);
    });

    it('acceptedAfterMs 0 publishes accepted for every job, before its result', async () => {
      const { client, changes, startWorker, waitState } = await system();
      await startWorker(async () => sampleResult(), { acceptedAfterMs: 0 });
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect(await waitState(job.jobId)).toMatchObject({ state: 'succeeded', attempt: 1 });
      expect(typesOf(changes, job.jobId)).toEqual(['analysis.accepted', 'analysis.succeeded']);
    });

    it('a job still running after acceptedAfterMs publishes accepted first, then its result', async () => {
      const { client, changes, startWorker, waitState, store } = await system();
      const acceptedSeen = collector<string>();
      client.subscribe((c) => {
        if (c.event.type === 'analysis.accepted') acceptedSeen.push(c.job.jobId);
      });
      const { worker } = await startWorker(
        async () => {
          await acceptedSeen.waitFor(1); // runs until the server has recorded `accepted`
          return sampleResult();
        },
        { acceptedAfterMs: 20 },
      );
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect(await waitState(job.jobId)).toMatchObject({ state: 'succeeded', attempt: 1, workerId: worker.workerId });
      expect(typesOf(changes, job.jobId)).toEqual(['analysis.accepted', 'analysis.succeeded']);
      expect((await store.history(job.jobId)).map((t) => t.to)).toEqual(['accepted', 'succeeded']);
    });

    it('progress before the delay publishes accepted just before it, in order', async () => {
      const { client, changes, startWorker, waitState } = await system();
      await startWorker(
        async (ctx) => {
          await ctx.progress('fetch', 10);
          await ctx.progress('inference', 60);
          return sampleResult();
        },
        { acceptedAfterMs: 600_000, heartbeatMs: 600_000 },
      );
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect(await waitState(job.jobId)).toMatchObject({ state: 'succeeded', attempt: 1 });
      expect(typesOf(changes, job.jobId)).toEqual([
        'analysis.accepted',
        'analysis.progress',
        'analysis.progress',
        'analysis.succeeded',
      ]);
    });

    it('a heartbeat due before acceptedAfterMs publishes accepted first, then the heartbeat', async () => {
      const { client, changes, startWorker, waitState } = await system();
      const running = collector<string>();
      client.subscribe((c) => {
        if (c.job.state === 'running') running.push(c.job.jobId);
      });
      await startWorker(
        async () => {
          await running.waitFor(1); // silent handler: only heartbeats move the job to running
          return sampleResult();
        },
        { acceptedAfterMs: 600_000, heartbeatMs: 20 },
      );
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect(await waitState(job.jobId)).toMatchObject({ state: 'succeeded', progress: { stage: 'fetch' } });
      const types = typesOf(changes, job.jobId);
      expect(types[0]).toBe('analysis.accepted');
      expect(types[1]).toBe('analysis.progress');
      expect(types.at(-1)).toBe('analysis.succeeded');
    });

    it('retries are tracked without accepted: a quick retry, and a slow first attempt then a quick second', async () => {
      const { client, changes, startWorker, waitState } = await system();
      const acceptedSeen = collector<string>();
      client.subscribe((c) => {
        if (c.event.type === 'analysis.accepted') acceptedSeen.push(c.job.jobId);
      });
      const { worker } = await startWorker(
        async (ctx) => {
          if (ctx.attempt === 1 && ctx.request.idempotencyKey.startsWith('slow')) {
            await acceptedSeen.waitFor(1);
            throw new JobFailure('input-fetch-failed', 'PACS 503', { retryable: true });
          }
          if (ctx.attempt === 1) throw new JobFailure('input-fetch-failed', 'PACS 503', { retryable: true });
          return sampleResult();
        },
        { acceptedAfterMs: 20 },
      );
      const quick = await client.send(
        new RequestAnalysis(sampleRequestInput({ idempotencyKey: `quick-${randomUUID()}` })),
      );
      expect(await waitState(quick.jobId)).toMatchObject({ state: 'succeeded', attempt: 2, workerId: worker.workerId });
      expect(typesOf(changes, quick.jobId)).toEqual(['analysis.succeeded']);
      const slow = await client.send(
        new RequestAnalysis(sampleRequestInput({ idempotencyKey: `slow-${randomUUID()}` })),
      );
      expect(await waitState(slow.jobId)).toMatchObject({ state: 'succeeded', attempt: 2 });
      const slowChanges = changes.filter((c) => c.job.jobId === slow.jobId);
      expect(slowChanges.map((c) => c.event.type)).toEqual(['analysis.accepted', 'analysis.succeeded']);
      expect(slowChanges.map((c) => c.job.attempt)).toEqual([1, 2]);
    });

    it('a deadline passing while the job runs fails it, even with a handler that ignores the signal', async () => {
      const { client, startWorker, waitState } = await system();
      const started = collector<string>();
      await startWorker(async (ctx) => {
        started.push(ctx.request.jobId);
        await new Promise(() => {}); // never settles, never reads the signal
        return sampleResult();
      });
      const deadline = new Date(Date.now() + 300).toISOString();
      const job = await client.send(new RequestAnalysis(sampleRequestInput({ deadline })));
      await started.waitFor(1);
      expect(await waitState(job.jobId)).toMatchObject({
        state: 'failed',
        attempt: 1,
        failure: { reason: 'deadline-exceeded', retryable: false },
      });
    });

    it('refuses a negative or non-finite acceptedAfterMs', async () => {
      const { serverT } = await system();
      for (const acceptedAfterMs of [-1, Number.NaN, Number.POSITIVE_INFINITY])
        expect(
          () => new JobWorker({ transport: serverT, handler: async () => sampleResult(), acceptedAfterMs }),
        ).toThrow(ValidationError);
    });

    it('the same idempotency key is one job', async () => {
      const { client, serverT } = await system();
      const input = sampleRequestInput();
      const a = await client.send(new RequestAnalysis(input));
      const b = await client.send(new RequestAnalysis({ ...input, jobId: randomUUID() }));
      expect(b.jobId).toBe(a.jobId);
      expect(await serverT.depth('work')).toBe(1);
    });

    it('refuses invalid input with a ValidationError and publishes nothing', async () => {
      const { client, serverT, store } = await system();
      const bad = { ...sampleRequestInput(), patientRef: 'Doe^Jane' };
      await expect(client.send(new RequestAnalysis(bad))).rejects.toSatisfy(
        (e) => ValidationError.isInstance(e) && e.fields.includes('patientRef'),
      );
      expect(await serverT.depth('work')).toBe(0);
      expect(await store.list()).toEqual([]);
    });

    it('dead-letters malformed and schema-invalid requests with their reason while good jobs keep flowing', async () => {
      const { client, startWorker, waitState, serverT } = await system();
      const seen = collector<string>();
      await startWorker(
        async (ctx) => {
          seen.push(ctx.request.jobId);
          return sampleResult();
        },
        { prefetch: 2 },
      );
      const good1 = await client.send(new RequestAnalysis(sampleRequestInput()));
      await serverT.publishRequest(msg('{"protocol":"cdss.ai-jobs", truncated'));
      const invalid = {
        ...createMessage({
          type: 'analysis.requested',
          jobId: randomUUID(),
          createdAt: new Date().toISOString(),
          ...sampleRequestInput(),
        }),
        priority: 'whenever',
      };
      await serverT.publishRequest(msg(JSON.stringify(invalid)));
      await serverT.publishRequest(msg(JSON.stringify({ ...invalid, priority: 'routine', version: 2 })));
      const good2 = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect((await waitState(good1.jobId)).state).toBe('succeeded');
      expect((await waitState(good2.jobId)).state).toBe('succeeded');
      let dead: Awaited<ReturnType<JobTransport['takeDeadLetters']>> = [];
      for (let i = 0; i < 100 && dead.length < 3; i++) {
        dead.push(...(await serverT.takeDeadLetters(10)));
        if (dead.length < 3) await new Promise((r) => setTimeout(r, 50));
      }
      dead = dead.sort((a, b) => String(a.reason).localeCompare(String(b.reason)));
      expect(dead.map((d) => d.reason)).toEqual(['malformed', 'schema-invalid', 'unsupported-version']);
      expect(dead.find((d) => d.reason === 'schema-invalid')!.detail).toContain('priority');
      expect(seen.items.sort()).toEqual([good1.jobId, good2.jobId].sort());
    });

    it('dead-letters invalid events on the events queue and keeps recording', async () => {
      const { client, serverT, waitState, startWorker } = await system();
      await serverT.publishEvent('job.succeeded', msg('{"type":"analysis.succeeded"}'));
      await startWorker(async () => sampleResult());
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect((await waitState(job.jobId)).state).toBe('succeeded');
      let dead: Awaited<ReturnType<JobTransport['takeDeadLetters']>> = [];
      for (let i = 0; i < 100 && dead.length === 0; i++) {
        dead = await serverT.takeDeadLetters(10);
        if (dead.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(dead[0]).toMatchObject({ reason: 'schema-invalid' });
      expect(dead[0]!.source).toMatch(/events\.q$/);
    });

    it('retries a retryable failure, then succeeds; a permanent failure fails at once with its reason', async () => {
      const { client, startWorker, waitState } = await system();
      const attempts = new Map<string, number>();
      await startWorker(async (ctx) => {
        attempts.set(ctx.request.jobId, ctx.attempt);
        if (ctx.request.idempotencyKey.startsWith('flaky') && ctx.attempt < 2)
          throw new JobFailure('input-fetch-failed', 'PACS 503', { retryable: true });
        if (ctx.request.idempotencyKey.startsWith('bad')) throw new JobFailure('series-missing', 'no FLAIR series');
        if (ctx.request.idempotencyKey.startsWith('crashy')) throw new Error('segfault-ish');
        return sampleResult();
      });
      const flaky = await client.send(
        new RequestAnalysis(sampleRequestInput({ idempotencyKey: `flaky-${randomUUID()}` })),
      );
      const bad = await client.send(new RequestAnalysis(sampleRequestInput({ idempotencyKey: `bad-${randomUUID()}` })));
      const crashy = await client.send(
        new RequestAnalysis(sampleRequestInput({ idempotencyKey: `crashy-${randomUUID()}` })),
      );
      expect(await waitState(flaky.jobId)).toMatchObject({ state: 'succeeded', attempt: 2 });
      expect(await waitState(bad.jobId)).toMatchObject({
        state: 'failed',
        failure: { reason: 'series-missing', retryable: false },
      });
      const c = await waitState(crashy.jobId);
      // retries run out (the factory's transports have two retry delays: three attempts)
      expect(c).toMatchObject({ state: 'failed', attempt: 3, failure: { reason: 'internal-error', retryable: true } });
      expect(c.failure!.detail).toContain('after 3 attempts');
    });

    it('cancels a queued job: nothing a worker reports afterwards changes it', async () => {
      const { client, startWorker, waitState, store } = await system();
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      const cancelled = await client.send(
        new CancelAnalysis({ jobId: job.jobId, cancelledBy: 'user-1', reason: 'wrong patient' }),
      );
      expect(cancelled.state).toBe('cancelled');
      let ran = false;
      await startWorker(async () => {
        ran = true;
        return sampleResult();
      });
      const probe = await client.send(new RequestAnalysis(sampleRequestInput()));
      expect((await waitState(probe.jobId)).state).toBe('succeeded');
      expect(ran).toBe(true); // the worker is alive (it ran the probe)
      expect(await store.get(job.jobId)).toMatchObject({
        state: 'cancelled',
        result: null,
        cancellation: { cancelledBy: 'user-1' },
      });
      expect((await store.history(job.jobId)).map((t) => t.to)).toEqual(['cancelled']);
    });

    it('cancels a running job: the worker aborts it', async () => {
      const { client, startWorker, waitState } = await system();
      const started = collector<string>();
      const aborted = collector<string>();
      await startWorker(async (ctx) => {
        started.push(ctx.request.jobId);
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        aborted.push(ctx.request.jobId);
        return sampleResult();
      });
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      await started.waitFor(1);
      await client.send(new CancelAnalysis({ jobId: job.jobId, cancelledBy: 'user-2' }));
      expect(await aborted.waitFor(1)).toEqual([job.jobId]);
      expect(await waitState(job.jobId)).toMatchObject({ state: 'cancelled', result: null });
    });

    it('graceful stop hands unfinished jobs back; another worker completes them', async () => {
      const { client, startWorker, waitState, store } = await system();
      const started = collector<string>();
      const first = await startWorker(async (ctx) => {
        started.push(ctx.request.jobId);
        await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
        throw new Error('aborted');
      });
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      await started.waitFor(1);
      await first.worker.stop({ graceMs: 50 });
      expect(first.worker.inFlight).toBe(0);
      const second = await startWorker(async () => sampleResult());
      // handed back, not retried: still the first attempt, completed by the second worker
      expect(await waitState(job.jobId)).toMatchObject({
        state: 'succeeded',
        attempt: 1,
        workerId: second.worker.workerId,
      });
      expect((await store.history(job.jobId)).filter((t) => t.to === 'succeeded')).toHaveLength(1);
    });

    it('long jobs: acknowledged early past ackTimeoutMs, kept alive by heartbeats, re-published by reap() when the worker dies', async () => {
      const { client, startWorker, waitState, serverT, store } = await system();
      const started = collector<string>();
      const hung = await startWorker(
        async (ctx) => {
          started.push(ctx.request.jobId);
          await new Promise(() => {}); // a worker that hangs, then is killed
          return sampleResult();
        },
        { ackTimeoutMs: 50, heartbeatMs: 60_000 },
      );
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      await started.waitFor(1);
      // acknowledged early: nothing left in the queue even though the job is still running
      await new Promise((r) => setTimeout(r, 300));
      await hung.transport.close(); // the worker process dies: nothing is redelivered, the delivery was acknowledged
      expect(await serverT.depth('work')).toBe(0);
      expect((await store.get(job.jobId))?.state).toBe('accepted'); // taken, no progress reported yet
      expect(await client.reap({ staleMs: 0 })).toEqual({ republished: [job.jobId], failed: [] });
      expect((await store.get(job.jobId))?.reaps).toBe(1);
      await startWorker(async () => sampleResult());
      expect(await waitState(job.jobId)).toMatchObject({ state: 'succeeded' });
    });

    it('reap() fails a job whose worker is lost again after maxReaps re-publications, with reason worker-lost', async () => {
      const { client, startWorker, waitState, store } = await system();
      const started = collector<string>();
      const hung = await startWorker(
        async (ctx) => {
          started.push(ctx.request.jobId);
          await new Promise(() => {});
          return sampleResult();
        },
        { ackTimeoutMs: 50, heartbeatMs: 60_000 },
      );
      const changes: string[] = [];
      client.subscribe((change) => changes.push(`${change.job.jobId}:${change.job.state}`));
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      await started.waitFor(1);
      await new Promise((r) => setTimeout(r, 300));
      await hung.transport.close();
      expect(await client.reap({ staleMs: 0, maxReaps: 0 })).toEqual({ republished: [], failed: [job.jobId] });
      expect(await waitState(job.jobId)).toMatchObject({
        state: 'failed',
        failure: { reason: 'worker-lost', retryable: true },
      });
      expect(changes).toContain(`${job.jobId}:failed`);
      // a failed job is not reaped again
      expect(await client.reap({ staleMs: 0, maxReaps: 0 })).toEqual({ republished: [], failed: [] });
      expect((await store.history(job.jobId)).filter((t) => t.to === 'failed')).toHaveLength(1);
    });

    it('polls to the end and times out cleanly', async () => {
      const { client, startWorker } = await system();
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      const get = (id: string) => client.send(new GetAnalysis({ jobId: id }));
      await expect(pollJob(get, job.jobId, { intervalMs: 10, timeoutMs: 50 })).rejects.toThrow(/still queued/);
      await startWorker(async () => sampleResult());
      const updates: string[] = [];
      const done = await pollJob(get, job.jobId, {
        intervalMs: 10,
        onUpdate: (j) => updates.push(j.state),
        timeoutMs: 15_000,
      });
      expect(done.state).toBe('succeeded');
      expect(updates.at(-1)).toBe('succeeded');
    });

    it('events published twice (a redelivered job) are recorded once', async () => {
      const { client, serverT, waitState, changes } = await system();
      const job = await client.send(new RequestAnalysis(sampleRequestInput()));
      const succeeded = createMessage({
        type: 'analysis.succeeded',
        jobId: job.jobId,
        workerId: 'w',
        result: sampleResult(),
      });
      for (let i = 0; i < 3; i++)
        await serverT.publishEvent('job.succeeded', {
          body: encodeMessage(succeeded),
          messageId: succeeded.messageId,
          type: succeeded.type,
        });
      const again = createMessage({
        type: 'analysis.succeeded',
        jobId: job.jobId,
        workerId: 'w2',
        result: sampleResult(),
      });
      await serverT.publishEvent('job.succeeded', {
        body: encodeMessage(again),
        messageId: again.messageId,
        type: again.type,
      });
      expect((await waitState(job.jobId)).state).toBe('succeeded');
      await new Promise((r) => setTimeout(r, 300));
      expect(changes.filter((c) => c.job.jobId === job.jobId && c.transition?.to === 'succeeded')).toHaveLength(1);
    });
  });
}
