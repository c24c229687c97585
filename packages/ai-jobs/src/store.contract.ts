// The job-store contract: one suite, run against MemoryJobStore and MySqlJobStore (imported by their tests only).
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { createMessage, type MessageInput } from './codec.js';
import type { JobEvent } from './protocol.js';
import { IllegalTransitionError, PAGE_CURSOR_PATTERN, assertTransition, type JobStore } from './job-state.js';
import { sampleRequest, sampleResult } from './testing.js';

export function jobStoreContract(name: string, open: () => Promise<JobStore>): void {
  const event = <M extends MessageInput>(input: M) => createMessage(input) as JobEvent;
  describe(`JobStore contract: ${name}`, () => {
    it('creates a queued job once per idempotency key and once per job id', async () => {
      const store = await open();
      const request = sampleRequest();
      const first = await store.create(request);
      expect(first.created).toBe(true);
      expect(first.job).toMatchObject({ state: 'queued', publishedAt: null, attempt: 0 });
      const again = await store.create({ ...sampleRequest({ idempotencyKey: request.idempotencyKey }) });
      expect(again.created).toBe(false);
      expect(again.job.jobId).toBe(request.jobId);
      const sameId = await store.create({ ...sampleRequest({ jobId: request.jobId }) });
      expect(sameId.created).toBe(false);
      expect(await store.findByIdempotencyKey(request.idempotencyKey)).toMatchObject({ jobId: request.jobId });
      expect(await store.get(randomUUID())).toBeUndefined();
    });

    it('refuses an invalid request with a ValidationError and stores nothing', async () => {
      const store = await open();
      const bad = { ...sampleRequest(), studyInstanceUid: 'not-a-uid' };
      await expect(store.create(bad)).rejects.toSatisfy((e) => ValidationError.isInstance(e));
      expect(await store.get(bad.jobId)).toBeUndefined();
    });

    it('walks queued → accepted → running → succeeded and records each transition once', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      const jobId = job.jobId;
      const accepted = event({ type: 'analysis.accepted', jobId, workerId: 'w1', attempt: 1 });
      expect((await store.apply(accepted)).outcome).toBe('applied');
      expect((await store.apply(accepted)).outcome).toBe('duplicate');
      expect(
        (await store.apply(event({ type: 'analysis.progress', jobId, workerId: 'w1', stage: 'fetch', percent: 10 })))
          .outcome,
      ).toBe('applied');
      expect(
        (
          await store.apply(
            event({ type: 'analysis.progress', jobId, workerId: 'w1', stage: 'inference', percent: 60 }),
          )
        ).outcome,
      ).toBe('applied');
      // an older progress redelivered late changes nothing
      expect(
        (await store.apply(event({ type: 'analysis.progress', jobId, workerId: 'w1', stage: 'fetch', percent: 10 })))
          .outcome,
      ).toBe('duplicate');
      const succeeded = event({ type: 'analysis.succeeded', jobId, workerId: 'w1', result: sampleResult() });
      const done = await store.apply(succeeded);
      expect(done.outcome).toBe('applied');
      expect(done.transition).toMatchObject({ from: 'running', to: 'succeeded' });
      // a duplicate result, even a different message from a redelivered job, is applied once
      expect((await store.apply(succeeded)).outcome).toBe('duplicate');
      expect(
        (await store.apply(event({ type: 'analysis.succeeded', jobId, workerId: 'w2', result: sampleResult() })))
          .outcome,
      ).toBe('duplicate');
      const final = await store.get(jobId);
      expect(final).toMatchObject({ state: 'succeeded', workerId: 'w1', attempt: 1, result: sampleResult() });
      expect((await store.history(jobId)).map((t) => `${t.from}>${t.to}`)).toEqual([
        'queued>accepted',
        'accepted>running',
        'running>succeeded',
      ]);
    });

    it('refuses leaving a final state and reports unknown jobs', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      const jobId = job.jobId;
      await store.apply(event({ type: 'analysis.cancelled', jobId, cancelledBy: 'u1', reason: 'wrong study' }));
      const late = await store.apply(
        event({ type: 'analysis.succeeded', jobId, workerId: 'w1', result: sampleResult() }),
      );
      expect(late).toMatchObject({ outcome: 'refused' });
      expect(late.reason).toContain('cancelled');
      const after = await store.get(jobId);
      expect(after).toMatchObject({
        state: 'cancelled',
        result: null,
        cancellation: { cancelledBy: 'u1', reason: 'wrong study' },
      });
      expect(
        (
          await store.apply(
            event({
              type: 'analysis.failed',
              jobId: randomUUID(),
              reason: 'internal-error',
              retryable: false,
              detail: '',
            }),
          )
        ).outcome,
      ).toBe('unknown-job');
      expect(() => assertTransition('succeeded', 'running')).toThrow(IllegalTransitionError);
      expect(() => assertTransition('running', 'queued')).toThrow(IllegalTransitionError);
      expect(() => assertTransition('queued', 'accepted')).not.toThrow();
    });

    it('records failures with their reason', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      await store.apply(event({ type: 'analysis.accepted', jobId: job.jobId, workerId: 'w', attempt: 2 }));
      const r = await store.apply(
        event({
          type: 'analysis.failed',
          jobId: job.jobId,
          workerId: 'w',
          reason: 'input-fetch-failed',
          retryable: true,
          detail: 'PACS 503',
        }),
      );
      expect(r.job).toMatchObject({
        state: 'failed',
        attempt: 2,
        failure: { reason: 'input-fetch-failed', retryable: true, detail: 'PACS 503' },
      });
    });

    it('a final event without an accepted before it (a quick job) records its attempt and worker', async () => {
      const store = await open();
      const a = (await store.create(sampleRequest())).job;
      const done = await store.apply(
        event({ type: 'analysis.succeeded', jobId: a.jobId, workerId: 'w7', attempt: 2, result: sampleResult() }),
      );
      expect(done).toMatchObject({
        outcome: 'applied',
        job: { state: 'succeeded', attempt: 2, workerId: 'w7' },
        transition: { from: 'queued', to: 'succeeded' },
      });
      expect((await store.get(a.jobId))?.attempt).toBe(2);
      expect((await store.history(a.jobId)).map((t) => [t.from, t.to])).toEqual([['queued', 'succeeded']]);

      const b = (await store.create(sampleRequest())).job;
      const failed = await store.apply(
        event({
          type: 'analysis.failed',
          jobId: b.jobId,
          workerId: 'w8',
          attempt: 3,
          reason: 'internal-error',
          retryable: true,
          detail: 'unexpected Error in the job handler (after 3 attempts)',
        }),
      );
      expect(failed.job).toMatchObject({ state: 'failed', attempt: 3, workerId: 'w8' });

      // a worker that always sends `accepted` and no attempt on its result (another language, older worker)
      const c = (await store.create(sampleRequest())).job;
      await store.apply(event({ type: 'analysis.accepted', jobId: c.jobId, workerId: 'py', attempt: 2 }));
      const cDone = await store.apply(
        event({ type: 'analysis.succeeded', jobId: c.jobId, workerId: 'py', result: sampleResult() }),
      );
      expect(cDone.job).toMatchObject({ state: 'succeeded', attempt: 2, workerId: 'py' });
      // a final event never lowers the attempt an accepted reported
      const d = (await store.create(sampleRequest())).job;
      await store.apply(event({ type: 'analysis.accepted', jobId: d.jobId, workerId: 'w', attempt: 3 }));
      const dDone = await store.apply(
        event({ type: 'analysis.succeeded', jobId: d.jobId, workerId: 'w', attempt: 1, result: sampleResult() }),
      );
      expect(dDone.job).toMatchObject({ state: 'succeeded', attempt: 3 });
    });

    it('applies concurrent duplicates once', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      const msgs = Array.from({ length: 10 }, (_, i) =>
        event({ type: 'analysis.succeeded', jobId: job.jobId, workerId: `w${i}`, result: sampleResult() }),
      );
      const outcomes = await Promise.all(msgs.map((m) => store.apply(m)));
      expect(outcomes.filter((o) => o.outcome === 'applied')).toHaveLength(1);
      expect((await store.history(job.jobId)).filter((t) => t.to === 'succeeded')).toHaveLength(1);
    });

    it('keeps the outbox: unpublished queued jobs are listed until marked published', async () => {
      const store = await open();
      const a = (await store.create(sampleRequest())).job;
      const b = (await store.create(sampleRequest())).job;
      const ids = async () => (await store.list({ states: ['queued'], unpublished: true })).map((j) => j.jobId);
      expect(await ids()).toEqual(expect.arrayContaining([a.jobId, b.jobId]));
      await store.markPublished(a.jobId, new Date().toISOString());
      expect(await ids()).not.toContain(a.jobId);
      expect((await store.get(a.jobId))?.publishedAt).not.toBeNull();
    });

    it('lists jobs with stale heartbeats', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      await store.apply(event({ type: 'analysis.accepted', jobId: job.jobId, workerId: 'w', attempt: 1 }));
      const future = new Date(Date.now() + 60_000).toISOString();
      const past = new Date(Date.now() - 60_000).toISOString();
      expect(
        (await store.list({ states: ['accepted', 'running'], updatedBefore: future })).map((j) => j.jobId),
      ).toContain(job.jobId);
      expect(
        (await store.list({ states: ['accepted', 'running'], updatedBefore: past })).map((j) => j.jobId),
      ).not.toContain(job.jobId);
    });

    it('pages jobs by patient and study, newest first, with cursors, and counts without a cap', async () => {
      const store = await open();
      const patientRef = `Patient/${randomUUID()}`;
      const studyInstanceUid = `1.2.826.0.1.${Date.now()}.${Math.floor(Math.random() * 1e6)}`;
      const mine: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { job } = await store.create(sampleRequest({ patientRef, studyInstanceUid }));
        mine.push(job.jobId);
        await new Promise((r) => setTimeout(r, 3)); // distinct creation times
      }
      await store.create(sampleRequest()); // another patient's
      const first = await store.page({ patientRef, limit: 2 });
      expect(first.jobs.map((j) => j.jobId)).toEqual([mine[4], mine[3]]);
      const second = await store.page({ patientRef, limit: 2, cursor: first.nextCursor! });
      expect(second.jobs.map((j) => j.jobId)).toEqual([mine[2], mine[1]]);
      const last = await store.page({ patientRef, limit: 2, cursor: second.nextCursor! });
      expect(last.jobs.map((j) => j.jobId)).toEqual([mine[0]]);
      expect(last.nextCursor).toBeUndefined();
      const oldest = await store.page({ studyInstanceUid, order: 'oldest', limit: 10 });
      expect(oldest.jobs.map((j) => j.jobId)).toEqual(mine);
      expect(await store.count({ patientRef })).toBe(5);
      expect(await store.count({ patientRef, states: ['succeeded'] })).toBe(0);
      expect((await store.list({ patientRef })).map((j) => j.jobId)).toEqual(mine);
      expect((await store.getMany([mine[3]!, randomUUID(), mine[1]!])).map((j) => j.jobId)).toEqual([mine[3], mine[1]]);
      await expect(store.page({ patientRef, cursor: 'bm90IGEgY3Vyc29y' })).rejects.toSatisfy((e) =>
        ValidationError.isInstance(e),
      );
      // any string of the cursor's declared form is a position, never an error: nothing is older than 1970
      expect(
        (await store.page({ patientRef, cursor: `0.${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}` })).jobs,
      ).toEqual([]);
      expect(first.nextCursor).toMatch(PAGE_CURSOR_PATTERN);
    });

    it('marks a stale job reaped once: a second reaper, or a fresh heartbeat, gets nothing', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      const jobId = job.jobId;
      await store.markPublished(jobId, new Date().toISOString());
      expect(await store.markReaped(jobId, new Date(Date.now() + 60_000).toISOString())).toBeUndefined(); // queued
      await store.apply(event({ type: 'analysis.accepted', jobId, workerId: 'w1', attempt: 1 }));
      const staleBefore = new Date(Date.now() + 1_000).toISOString();
      const reaped = await Promise.all([store.markReaped(jobId, staleBefore), store.markReaped(jobId, staleBefore)]);
      const taken = reaped.filter((r) => r !== undefined);
      // both may see it stale only if the first's new updatedAt is still before staleBefore; the store serialises them
      expect(taken.length).toBeGreaterThanOrEqual(1);
      expect((await store.get(jobId))?.reaps).toBe(taken.length);
      expect(await store.markReaped(jobId, new Date(Date.now() - 60_000).toISOString())).toBeUndefined();
    });

    it('records the caller’s writes with the change: a failing `within` leaves the job as it was', async () => {
      const store = await open();
      const { job } = await store.create(sampleRequest());
      const jobId = job.jobId;
      const accepted = event({ type: 'analysis.accepted', jobId, workerId: 'w1', attempt: 1 });
      await expect(
        store.apply(accepted, {
          within: async () => {
            throw new Error('outbox down');
          },
        }),
      ).rejects.toThrow('outbox down');
      expect((await store.get(jobId))?.state).toBe('queued');
      expect(await store.history(jobId)).toEqual([]);
      const seen: string[] = [];
      expect((await store.apply(accepted, { within: async (r) => void seen.push(r.job.state) })).outcome).toBe(
        'applied',
      );
      expect(seen).toEqual(['accepted']);
      // duplicates do not run it
      await store.apply(accepted, { within: async (r) => void seen.push(r.job.state) });
      expect(seen).toEqual(['accepted']);
    });
  });
}
