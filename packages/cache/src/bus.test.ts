/**
 * Invalidation buses: the in-memory hub, and AMQP fanout on the real RabbitMQ with two cache instances.
 */
import { ValidationError } from '@cdss/core';
import { requireService } from '@cdss/core/testing';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { AmqpInvalidationBus } from './amqp-bus.js';
import { MemoryInvalidationHub, type InvalidationEvent } from './bus.js';
import { Cache } from './cache.js';
import { CacheUnavailableError } from './errors.js';
import { MemoryStore } from './memory-store.js';
import { eventually } from './testing.js';
import { TieredStore } from './tiered-store.js';

const rabbitmq = await requireService('rabbitmq');
const RUN = `${process.pid}.${Date.now().toString(36)}`;

describe('MemoryInvalidationHub', () => {
  it('delivers to every other member, not back to the sender, and validates keys', async () => {
    const hub = new MemoryInvalidationHub();
    const a = hub.connect('a');
    const b = hub.connect('b');
    const c = hub.connect('c');
    const seen: Record<string, InvalidationEvent[]> = { a: [], b: [], c: [] };
    a.subscribe((e) => seen['a']?.push(e));
    b.subscribe((e) => seen['b']?.push(e));
    c.subscribe((e) => seen['c']?.push(e));
    await a.publish(['k1', 'k2']);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(seen['a']).toEqual([]);
    expect(seen['b']).toEqual([{ kind: 'keys', keys: ['k1', 'k2'], origin: 'a' }]);
    expect(seen['c']).toEqual(seen['b']);
    await expect(a.publish([])).rejects.toBeInstanceOf(ValidationError);
    await expect(a.publish(['ok', ''])).rejects.toBeInstanceOf(ValidationError);
    await c.close();
    await expect(c.publish(['k'])).rejects.toBeInstanceOf(CacheUnavailableError);
  });
});

describe.skipIf(!rabbitmq.available)('AmqpInvalidationBus on the real RabbitMQ', () => {
  const exchange = `cdss.cache.test.${RUN}`;
  afterAll(async () => {
    const conn = await amqp.connect(rabbitmq.url);
    const ch = await conn.createChannel();
    await ch.deleteExchange(exchange);
    await conn.close();
  });

  it('a write on one instance drops the other instance’s L1 copy within one second', async () => {
    const shared = new MemoryStore({ tier: 'l2' }); // the shared L2 (MySQL in production); the bus is under test
    const busA = await AmqpInvalidationBus.open({ url: rabbitmq.url, exchange });
    const busB = await AmqpInvalidationBus.open({ url: rabbitmq.url, exchange });
    const a = new Cache({ store: new TieredStore({ l1: new MemoryStore(), l2: shared }), bus: busA, ttlMs: 60_000 });
    const b = new Cache({ store: new TieredStore({ l1: new MemoryStore(), l2: shared }), bus: busB, ttlMs: 60_000 });
    try {
      await a.getOrLoad('patient:1', () => Promise.resolve({ name: 'v1' }));
      expect(await b.getOrLoad('patient:1', () => Promise.resolve({ name: 'unused' }))).toMatchObject({ source: 'l2' });
      expect(await b.getOrLoad('patient:1', () => Promise.resolve({ name: 'unused' }))).toMatchObject({
        source: 'l1',
        value: { name: 'v1' },
      });

      await a.set('patient:1', { name: 'v2' });
      const seen = await eventually(async () => {
        const r = await b.getOrLoad('patient:1', () => Promise.resolve({ name: 'unused' }));
        return (r.value as { name: string }).name === 'v2';
      }, 1_000);
      expect(seen).toBe(true);
      expect(await b.getOrLoad('patient:1', () => Promise.resolve({ name: 'unused' }))).toMatchObject({ source: 'l1' });

      await b.invalidate('patient:1');
      const dropped = await eventually(async () => {
        const r = await a.getOrLoad('patient:1', () => Promise.resolve({ name: 'v3' }));
        return r.source === 'loader';
      }, 1_000);
      expect(dropped).toBe(true);
    } finally {
      await busA.close();
      await busB.close();
    }
  });

  it('ignores foreign or malformed messages on the exchange', async () => {
    const bus = await AmqpInvalidationBus.open({ url: rabbitmq.url, exchange });
    const events: InvalidationEvent[] = [];
    bus.subscribe((e) => events.push(e));
    const conn = await amqp.connect(rabbitmq.url);
    try {
      const ch = await conn.createConfirmChannel();
      const send = (body: string) =>
        new Promise<void>((resolve, reject) =>
          ch.publish(exchange, '', Buffer.from(body), {}, (err: unknown) =>
            err ? reject(new Error('nack')) : resolve(),
          ),
        );
      await send('not json');
      await send(JSON.stringify({ v: 2, origin: 'x', keys: ['k'] }));
      await send(JSON.stringify({ v: 1, origin: 'x', keys: [''] }));
      await send(JSON.stringify({ v: 1, origin: 'x', keys: ['good'] }));
      expect(await eventually(() => events.length > 0, 2_000)).toBe(true);
      expect(events).toEqual([{ kind: 'keys', keys: ['good'], origin: 'x' }]);
    } finally {
      await conn.close();
      await bus.close();
    }
  });

  it('fails clearly when the broker cannot be reached', async () => {
    await expect(
      AmqpInvalidationBus.open({ url: 'amqp://ci:ci-pass@127.0.0.1:1', exchange, initialRetries: 0 }),
    ).rejects.toBeInstanceOf(CacheUnavailableError);
  });
});
