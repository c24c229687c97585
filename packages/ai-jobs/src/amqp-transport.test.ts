import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import { AmqpTransport } from './amqp-transport.js';
import { jobsContract } from './jobs.contract.js';
import { transportContract } from './transport.contract.js';
import type { Delivery } from './transport.js';

const rabbit = await requireService('rabbitmq');

describe.skipIf(!rabbit.available)('AmqpTransport on the real RabbitMQ', () => {
  transportContract('AmqpTransport', {
    create: (prefix) => new AmqpTransport({ url: rabbit.url, prefix, retryDelaysMs: [50, 100] }),
    async cleanup(prefix) {
      const t = new AmqpTransport({ url: rabbit.url, prefix, retryDelaysMs: [50, 100] });
      await t.start();
      await t.deleteTopology();
      await t.close();
    },
  });

  jobsContract('AmqpTransport', {
    create: (prefix) => new AmqpTransport({ url: rabbit.url, prefix, retryDelaysMs: [20, 40] }),
    async cleanup(prefix) {
      const t = new AmqpTransport({ url: rabbit.url, prefix, retryDelaysMs: [20, 40] });
      await t.start();
      await t.deleteTopology();
      await t.close();
    },
  });

  it('coalesced acks cover only settled deliveries: one held in the middle comes back, the acked ones do not', async () => {
    const prefix = `test.acks.${randomUUID().slice(0, 8)}`;
    const t = new AmqpTransport({ url: rabbit.url, prefix });
    await t.start();
    try {
      const ids = Array.from({ length: 6 }, (_, i) => `m${i}`);
      for (const id of ids) await t.publishRequest({ body: Buffer.from(id), messageId: id, type: 'x' });
      const got: Delivery[] = [];
      const all = new Promise<void>((resolve) => {
        void t
          .consumeRequests(
            async (d) => {
              got.push(d);
              if (got.length === ids.length) resolve();
            },
            { prefetch: 10 },
          )
          .then((c) => (consumer = c));
      });
      let consumer: { cancel(): Promise<void> } | undefined;
      await all;
      // settle out of order, holding m2 and requeueing m4: acks of m0, m1, m3, m5 leave coalesced
      for (const i of [5, 0, 3, 1]) await got[i]!.ack();
      await got[4]!.requeue();
      await new Promise((r) => setTimeout(r, 50));
      await consumer?.cancel();
      await t.close();
      // the held delivery and the requeued one are back on the queue; none of the acked ones are
      const t2 = new AmqpTransport({ url: rabbit.url, prefix });
      await t2.start();
      try {
        expect(await t2.depth('work')).toBe(2);
        const back = new Set<string>();
        const twoBack = new Promise<void>((resolve) => {
          void t2.consumeRequests(
            async (d) => {
              back.add(d.messageId ?? '');
              await d.ack();
              if (back.size === 2) resolve();
            },
            { prefetch: 10 },
          );
        });
        await twoBack;
        expect([...back].sort()).toEqual(['m2', 'm4']);
        await t2.deleteTopology();
      } finally {
        await t2.close();
      }
    } finally {
      await t.close();
    }
  });

  it('refuses bad options with a ValidationError', () => {
    expect(() => new AmqpTransport({ url: 'http://nope' })).toThrow(ValidationError);
    expect(() => new AmqpTransport({ url: rabbit.url, retryDelaysMs: [] })).toThrow(ValidationError);
  });

  it('fails start() loudly on wrong credentials, without retrying forever', async () => {
    const url = new URL(rabbit.url);
    url.password = 'wrong';
    const t = new AmqpTransport({ url: url.toString() });
    await expect(t.start()).rejects.toThrow();
    await t.close();
  });
});
