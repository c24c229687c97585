/**
 * Fault test with a real process: a PRIVATE MariaDB (own folder and port, started by scripts/services/services.sh) is
 * stopped for real (SIGTERM to its recorded PID) while the cache serves reads and writes. Reads must fall through
 * to the loader and keep answering; writes must still reach the upstream; after a restart, the repair task must
 * clean the entry that could not be evicted during the outage.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, requireService } from '@cdss/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Cache } from './cache.js';
import { MySqlIdempotencyStore } from './mysql-idempotency.js';
import { MemoryStore } from './memory-store.js';
import { MySqlStore } from './mysql-store.js';
import { createCountingMetrics, eventually, FakeUpstream } from './testing.js';
import { TieredStore } from './tiered-store.js';
import { WriteCoordinator } from './write-coordinator.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/services/services.sh');
const run = promisify(execFile);
// The shared MariaDB answering means the server binaries are installed (and under CI=true its absence fails here).
const mariadb = await requireService('mariadb');

const patientSchema = z.object({ id: z.string(), name: z.string() });
type Patient = z.infer<typeof patientSchema>;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** False when the process is gone or a zombie (a killed daemon may wait to be reaped by PID 1). */
async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe.skipIf(!mariadb.available)('fault: a private MariaDB stopped for real under the cache', () => {
  let dir: string;
  let port: number;
  let url: string;
  let env: NodeJS.ProcessEnv;
  const services = (cmd: 'start' | 'stop') => run('bash', [SCRIPT, cmd, 'mariadb'], { env, timeout: 90_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdss-cache-fault-'));
    port = await freePort();
    env = { ...process.env, CDSS_SERVICES_DIR: dir, DB_PORT: String(port) };
    await services('start');
    url = `mysql://app:app-pass@127.0.0.1:${port}/appdb`;
  });

  afterAll(async () => {
    if (env) await services('stop').catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads fall through and keep answering, writes reach the upstream, and a repair cleans up after the restart', async () => {
    const { listener, counts } = createCountingMetrics();
    const bounds = { connectTimeoutMs: 1_000, queryTimeoutMs: 1_000, breakerCooldownMs: 200, connectionLimit: 4 };
    const l2 = await MySqlStore.open({ url, table: 'fault_cache', sweepIntervalMs: 0, ...bounds });
    const idempotency = await MySqlIdempotencyStore.open({ url, table: 'fault_idem', ...bounds });
    const newCache = () =>
      new Cache({
        store: new TieredStore({ l1: new MemoryStore(), l2 }),
        metrics: listener,
        ttlMs: 60_000,
        repair: { intervalMs: 50, baseDelayMs: 20, maxDelayMs: 200 },
      });
    const cache = newCache();
    const writes = new WriteCoordinator({ cache, idempotency, metrics: listener });
    const upstream = new FakeUpstream<Patient>();
    const load = (id: string) => () => upstream.read(id);
    const create = (p: Patient, idempotencyKey: string) => ({
      upstream: () => upstream.write(p.id, p),
      key: `patient:${p.id}`,
      toCache: (r: Patient) => r,
      idempotencyKey,
      request: p,
      resultSchema: patientSchema,
    });

    try {
      // Healthy: the write lands upstream and in MySQL; a cold instance reads it from L2.
      expect(await writes.write(create({ id: '1', name: 'Before' }, 'w1'))).toMatchObject({ cache: 'updated' });
      await upstream.write('2', { id: '2', name: 'Only upstream' });
      const cold = newCache();
      expect(await cold.getOrLoad('patient:1', load('1'))).toMatchObject({ source: 'l2', value: { name: 'Before' } });

      const pid = Number((await readFile(join(dir, 'mariadb', 'mariadb.pid'), 'utf8')).trim());
      expect(pid).toBeGreaterThan(0);

      // Hung, not dead (SIGSTOP to its PID): statements get no answer, so only the deadline ends them. Reads still
      // answer from the loader; once the breaker is open they fail over without waiting at all.
      process.kill(pid, 'SIGSTOP');
      try {
        const hung = newCache();
        for (let i = 0; i < 3; i++) {
          hung.evictLocal('patient:2');
          expect(await hung.getOrLoad('patient:2', load('2'))).toMatchObject({ source: 'loader', value: { id: '2' } });
        }
        expect(l2.degraded).toBe(true);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      // Resumed: the held statements complete and L2 answers again.
      expect(
        await eventually(async () => (await newCache().getOrLoad('patient:1', load('1'))).source === 'l2', 10_000, 50),
      ).toBe(true);

      // Stop the real server (SIGTERM to its PID via the script) and make sure it is gone.
      await services('stop');
      expect(await portOpen(port)).toBe(false);
      expect(await processAlive(pid)).toBe(false);

      // Reads: a cold instance (empty L1) answers every read from the loader; none hangs.
      const readsBefore = upstream.reads;
      const degraded = newCache();
      for (let i = 0; i < 5; i++) {
        const r = await degraded.getOrLoad('patient:2', load('2'));
        expect(r).toMatchObject({ value: { id: '2', name: 'Only upstream' }, stale: false });
        degraded.evictLocal('patient:2'); // force the L2 path on every round
      }
      expect(upstream.reads - readsBefore).toBe(5);
      expect(counts.storeErrors).toBeGreaterThanOrEqual(5);
      // With the upstream failing too, a read fails with the upstream's error instead of hanging.
      upstream.failWith = new Error('OpenEMR down as well');
      await expect(newCache().getOrLoad('patient:2', load('2'))).rejects.toThrow('OpenEMR down as well');
      upstream.failWith = undefined;

      // Writes: still reach the upstream; the cache can neither update nor evict, so a repair is scheduled.
      const writesBefore = upstream.writes;
      const out = await writes.write(create({ id: '1', name: 'During outage' }, 'w2'));
      expect(out).toEqual({ result: { id: '1', name: 'During outage' }, replayed: false, cache: 'repair-scheduled' });
      expect(upstream.records.get('1')?.name).toBe('During outage');
      // A client retry of that write is answered from this instance's records, not written twice.
      expect(await writes.write(create({ id: '1', name: 'During outage' }, 'w2'))).toMatchObject({ replayed: true });
      expect(upstream.writes - writesBefore).toBe(1);
      // The writer's own reads bypass the untrusted L2 entry while the repair is pending.
      expect(await cache.getOrLoad('patient:1', load('1'))).toMatchObject({ value: { name: 'During outage' } });

      // Restart on the same data: the old value is still in L2 until the repair evicts it.
      await services('start');
      const repaired = await eventually(() => cache.repairs.size === 0, 15_000);
      expect(repaired).toBe(true);
      expect(counts.repairs.succeeded).toBeGreaterThanOrEqual(1);
      const after = newCache();
      const healed = await eventually(async () => {
        try {
          return (await l2.get('patient:1')) === undefined;
        } catch {
          return false; // breaker still cooling down
        }
      }, 5_000);
      expect(healed).toBe(true);
      expect(await after.getOrLoad('patient:1', load('1'))).toMatchObject({
        source: 'loader',
        value: { name: 'During outage' },
      });
      expect(await newCache().getOrLoad('patient:1', load('1'))).toMatchObject({
        source: 'l2',
        value: { name: 'During outage' },
      });
    } finally {
      await cache.close(); // closes l2
      await idempotency.close();
    }
  });
});
