import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import { AmqpTransport } from './amqp-transport.js';
import { jobsContract } from './jobs.contract.js';
import { transportContract } from './transport.contract.js';

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
