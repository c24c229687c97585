// The transport contract: one suite, run against MemoryTransport and AmqpTransport on the real RabbitMQ.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ATTEMPT_HEADER, type Delivery, type JobTransport, type OutgoingMessage } from './transport.js';

/** How the suite gets transports: every call with the same prefix reaches the same broker. */
export interface TransportFactory {
  create(prefix: string): JobTransport;
  /** Removes what `prefix` declared (optional). */
  cleanup?(prefix: string): Promise<void>;
}

export function msg(body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { body: Buffer.from(body), messageId: randomUUID(), type: 'test', ...extra };
}

/** Resolves when `n` items have been pushed, or rejects after `ms` (a bound, not a timing assertion). */
export function collector<T>(): { items: T[]; push(x: T): void; waitFor(n: number, ms?: number): Promise<T[]> } {
  const items: T[] = [];
  const waiters: { n: number; resolve: (v: T[]) => void }[] = [];
  return {
    items,
    push(x: T) {
      items.push(x);
      for (const w of [...waiters]) if (items.length >= w.n) w.resolve(items.slice());
    },
    waitFor(n: number, ms = 10_000) {
      if (items.length >= n) return Promise.resolve(items.slice());
      return new Promise<T[]>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${items.length} of ${n} items after ${ms} ms`)), ms);
        waiters.push({ n, resolve: (v) => (clearTimeout(t), resolve(v)) });
      });
    },
  };
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function transportContract(name: string, factory: TransportFactory): void {
  describe(`JobTransport contract: ${name}`, () => {
    const open: JobTransport[] = [];
    const prefixes: string[] = [];
    const make = async (prefix?: string): Promise<{ t: JobTransport; prefix: string }> => {
      const p = prefix ?? `test.${randomUUID().slice(0, 8)}`;
      if (!prefixes.includes(p)) prefixes.push(p);
      const t = factory.create(p);
      open.push(t);
      await t.start();
      return { t, prefix: p };
    };
    afterEach(async () => {
      for (const t of open.splice(0)) await t.close();
      for (const p of prefixes.splice(0)) await factory.cleanup?.(p);
    });

    it('delivers a published request with its properties, once acknowledged it is gone', async () => {
      const { t } = await make();
      const m = msg('{"hello":1}', {
        type: 'analysis.requested',
        correlationId: 'job-1',
        headers: { 'x-extra': 'yes' },
      });
      await t.publishRequest(m);
      const got = collector<Delivery>();
      await t.consumeRequests(async (d) => got.push(d), { prefetch: 1 });
      const [d] = await got.waitFor(1);
      expect(d!.body.toString()).toBe('{"hello":1}');
      expect(d).toMatchObject({
        messageId: m.messageId,
        type: 'analysis.requested',
        correlationId: 'job-1',
        redelivered: false,
        attempt: 1,
      });
      expect(d!.headers['x-extra']).toBe('yes');
      await d!.ack();
      await settle(100);
      expect(await t.depth('work')).toBe(0);
    });

    it('declaring the topology twice is harmless (idempotent)', async () => {
      const { t, prefix } = await make();
      const { t: t2 } = await make(prefix);
      await t.publishRequest(msg('x'));
      expect(await t2.depth('work')).toBe(1);
    });

    it('delivers higher priorities first', async () => {
      const { t } = await make();
      for (let i = 0; i < 5; i++) await t.publishRequest(msg(`routine-${i}`, { priority: 1 }));
      await t.publishRequest(msg('stat', { priority: 9 }));
      await t.publishRequest(msg('urgent', { priority: 4 }));
      const got = collector<string>();
      await t.consumeRequests(
        async (d) => {
          got.push(d.body.toString());
          await d.ack();
        },
        { prefetch: 1 },
      );
      const order = await got.waitFor(7);
      expect(order.slice(0, 3)).toEqual(['stat', 'urgent', 'routine-0']);
    });

    it('holds no more unsettled deliveries than the prefetch', async () => {
      const { t } = await make();
      for (let i = 0; i < 5; i++) await t.publishRequest(msg(`m${i}`));
      const got = collector<Delivery>();
      await t.consumeRequests(async (d) => got.push(d), { prefetch: 2 });
      await got.waitFor(2);
      await settle(300);
      expect(got.items).toHaveLength(2);
      await got.items[0]!.ack();
      await got.waitFor(3);
      await settle(200);
      expect(got.items).toHaveLength(3);
    });

    it('redelivers a requeued message, marked redelivered', async () => {
      const { t } = await make();
      await t.publishRequest(msg('again'));
      const got = collector<Delivery>();
      await t.consumeRequests(
        async (d) => {
          got.push(d);
          if (got.items.length === 1) await d.requeue();
          else await d.ack();
        },
        { prefetch: 1 },
      );
      const [first, second] = await got.waitFor(2);
      expect(first!.redelivered).toBe(false);
      expect(second!.redelivered).toBe(true);
      expect(second!.body.toString()).toBe('again');
    });

    it('hands a delivery back when its handler throws without settling', async () => {
      const { t } = await make();
      await t.publishRequest(msg('boom'));
      const got = collector<Delivery>();
      await t.consumeRequests(
        async (d) => {
          got.push(d);
          if (got.items.length === 1) throw new Error('handler bug');
          await d.ack();
        },
        { prefetch: 1 },
      );
      const [, second] = await got.waitFor(2);
      expect(second!.redelivered).toBe(true);
    });

    it('retries through the retry queues with a growing attempt number', async () => {
      const { t } = await make();
      await t.publishRequest(msg('flaky', { headers: { 'x-keep': 'kept' } }));
      const got = collector<Delivery>();
      await t.consumeRequests(
        async (d) => {
          got.push(d);
          if (d.attempt < 3) await d.retry(d.attempt - 1);
          else await d.ack();
        },
        { prefetch: 1 },
      );
      const all = await got.waitFor(3);
      expect(all.map((d) => d.attempt)).toEqual([1, 2, 3]);
      expect(all[2]!.headers['x-keep']).toBe('kept');
      expect(all[2]!.headers[ATTEMPT_HEADER]).toBe(3);
      expect(new Set(all.map((d) => d.messageId)).size).toBe(1);
    });

    it('dead-letters with a reason and keeps consuming', async () => {
      const { t } = await make();
      await t.publishRequest(msg('poison'));
      await t.publishRequest(msg('good'));
      const good = collector<string>();
      await t.consumeRequests(
        async (d) => {
          if (d.body.toString() === 'poison') await d.deadLetter('malformed', 'not JSON at 0');
          else {
            good.push(d.body.toString());
            await d.ack();
          }
        },
        { prefetch: 1 },
      );
      await good.waitFor(1);
      let dead: Awaited<ReturnType<JobTransport['takeDeadLetters']>> = [];
      for (let i = 0; i < 50 && dead.length === 0; i++) {
        dead = await t.takeDeadLetters(10);
        if (dead.length === 0) await settle(50);
      }
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ reason: 'malformed', detail: 'not JSON at 0' });
      expect(dead[0]!.source).toMatch(/work\.q$/);
      expect(dead[0]!.body.toString()).toBe('poison');
    });

    it('redelivers what a closed connection held unsettled to another consumer', async () => {
      const { t: a, prefix } = await make();
      const { t: b } = await make(prefix);
      await a.publishRequest(msg('held'));
      const gotA = collector<Delivery>();
      await a.consumeRequests(async (d) => gotA.push(d), { prefetch: 1 });
      await gotA.waitFor(1);
      const gotB = collector<Delivery>();
      await b.consumeRequests(
        async (d) => {
          gotB.push(d);
          await d.ack();
        },
        { prefetch: 1 },
      );
      await a.close();
      const [d] = await gotB.waitFor(1);
      expect(d!.body.toString()).toBe('held');
      expect(d!.redelivered).toBe(true);
      await gotA.items[0]!.ack(); // settling on a closed transport is harmless
    });

    it('a cancelled consumer receives nothing more', async () => {
      const { t } = await make();
      const got = collector<string>();
      const c = await t.consumeRequests(
        async (d) => {
          got.push(d.body.toString());
          await d.ack();
        },
        { prefetch: 1 },
      );
      await t.publishRequest(msg('one'));
      await got.waitFor(1);
      await c.cancel();
      await t.publishRequest(msg('two'));
      await settle(300);
      expect(got.items).toEqual(['one']);
      expect(await t.depth('work')).toBe(1);
    });

    it('routes events to the events queue and control messages to every control consumer', async () => {
      const { t, prefix } = await make();
      const { t: t2 } = await make(prefix);
      const events = collector<string>();
      const c1 = collector<string>();
      const c2 = collector<string>();
      await t.consumeControl(async (d) => (c1.push(d.body.toString()), d.ack()));
      await t2.consumeControl(async (d) => (c2.push(d.body.toString()), d.ack()));
      await t.publishEvent('job.succeeded', msg('event-1'));
      await t.publishEvent('control.cancel', msg('cancel-1'));
      await t.consumeEvents(async (d) => (events.push(d.body.toString()), d.ack()), { prefetch: 10 });
      expect(await events.waitFor(1)).toEqual(['event-1']);
      expect(await c1.waitFor(1)).toEqual(['cancel-1']);
      expect(await c2.waitFor(1)).toEqual(['cancel-1']);
      await settle(200);
      expect(events.items).toEqual(['event-1']);
    });

    it('keeps events while nobody consumes them', async () => {
      const { t, prefix } = await make();
      await t.publishEvent('job.progress', msg('p1'));
      await t.close();
      const { t: later } = await make(prefix);
      const got = collector<string>();
      await later.consumeEvents(async (d) => (got.push(d.body.toString()), d.ack()), { prefetch: 1 });
      expect(await got.waitFor(1)).toEqual(['p1']);
    });
  });
}
