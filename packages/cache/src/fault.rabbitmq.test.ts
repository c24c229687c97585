/**
 * Fault test with a real process: a PRIVATE RabbitMQ (own folder and ports, started by scripts/services/services.sh)
 * is stopped for real (SIGTERM to its recorded PID) under two instances' invalidation buses. Publishing must fail
 * clearly while it is down (the write path counts it and carries on); after the restart both buses reconnect by
 * themselves, subscribers are told to drop their whole L1, and invalidations flow again.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, requireService } from '@cdss/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpInvalidationBus } from './amqp-bus.js';
import type { InvalidationEvent } from './bus.js';
import { Cache } from './cache.js';
import { CacheUnavailableError } from './errors.js';
import { MemoryStore } from './memory-store.js';
import { createCountingMetrics, eventually } from './testing.js';
import { TieredStore } from './tiered-store.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/services/services.sh');
const run = promisify(execFile);
// The shared RabbitMQ answering means the broker is installed (and under CI=true its absence fails here).
const rabbitmq = await requireService('rabbitmq');

describe.skipIf(!rabbitmq.available)('fault: a private RabbitMQ stopped for real under the invalidation bus', () => {
  let dir: string;
  let url: string;
  let env: NodeJS.ProcessEnv;
  const services = (cmd: 'start' | 'stop') => run('bash', [SCRIPT, cmd, 'rabbitmq'], { env, timeout: 120_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdss-cache-amqp-fault-'));
    const ports = new Set<number>();
    while (ports.size < 3) ports.add(await freePort());
    const [amqpPort, epmdPort, distPort] = [...ports];
    env = {
      ...process.env,
      CDSS_SERVICES_DIR: dir,
      AMQP_PORT: String(amqpPort),
      EPMD_PORT: String(epmdPort),
      RMQ_DIST_PORT: String(distPort),
      RMQ_MANAGEMENT: '0',
    };
    await services('start');
    url = `amqp://ci:ci-pass@127.0.0.1:${amqpPort}`;
  });

  afterAll(async () => {
    if (env) await services('stop').catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishing fails clearly while the broker is down; after a restart the buses reconnect and flush L1', async () => {
    const options = { url, exchange: 'cdss.cache.fault', maxReconnectDelayMs: 300 };
    const busA = await AmqpInvalidationBus.open(options);
    const busB = await AmqpInvalidationBus.open(options);
    const { listener, counts } = createCountingMetrics();
    const shared = new MemoryStore({ tier: 'l2' });
    const a = new Cache({
      store: new TieredStore({ l1: new MemoryStore(), l2: shared }),
      bus: busA,
      metrics: listener,
    });
    const b = new Cache({ store: new TieredStore({ l1: new MemoryStore(), l2: shared }), bus: busB });
    const events: InvalidationEvent[] = [];
    busB.subscribe((e) => events.push(e));
    try {
      await busA.publish(['before']);
      expect(await eventually(() => events.some((e) => e.kind === 'keys' && e.keys[0] === 'before'), 5_000)).toBe(true);

      await services('stop');
      expect(await eventually(() => !busA.connected && !busB.connected, 10_000)).toBe(true);
      await expect(busA.publish(['during'])).rejects.toBeInstanceOf(CacheUnavailableError);
      // A cache write during the outage still succeeds; only the message is lost (counted).
      await b.getOrLoad('patient:1', () => Promise.resolve('old'));
      await a.set('patient:1', 'new');
      expect(counts.busErrors).toBe(1);
      expect(await b.getOrLoad('patient:1', () => Promise.resolve('unused'))).toMatchObject({
        value: 'old',
        source: 'l1',
      });

      await services('start');
      expect(await eventually(() => busA.connected && busB.connected, 30_000, 50)).toBe(true);
      // The reconnect told B that messages may have been missed: its whole L1 is gone, so it sees the new value.
      expect(events.some((e) => e.kind === 'all')).toBe(true);
      expect(await b.getOrLoad('patient:1', () => Promise.resolve('unused'))).toMatchObject({
        value: 'new',
        source: 'l2',
      });

      await busA.publish(['after']);
      expect(await eventually(() => events.some((e) => e.kind === 'keys' && e.keys[0] === 'after'), 5_000)).toBe(true);
    } finally {
      await busA.close();
      await busB.close();
    }
  });
});
