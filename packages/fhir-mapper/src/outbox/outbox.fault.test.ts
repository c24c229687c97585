/**
 * Fault test: with the FHIR server stopped (a private embedded FHIR server in its own process, stopped
 * by its PID), 200 syncs are queued; after it restarts on the same port, all 200 arrive exactly once.
 * Run with the memory outbox and, when MariaDB runs, the MySQL outbox.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from 'mysql2/promise';
import { freePort, requireService } from '@cdss/core/testing';
import type { Patient } from 'fhir/r4.js';
import { FhirAdapter } from '../adapter/fhir-adapter.js';
import { MemoryOutbox } from './memory-outbox.js';
import { MySqlOutbox } from './mysql-outbox.js';
import { OutboxProcessor } from './processor.js';
import type { SyncOutbox } from './types.js';

const mariadb = await requireService('mariadb');
const MAIN = fileURLToPath(new URL('../../../sandbox/src/fhir/main.ts', import.meta.url));

/** Starts the embedded FHIR server as a child process and waits for its `listening` line. */
async function startFhirProcess(port: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--conditions=@cdss/source', '--import', 'tsx', MAIN, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const m = /^listening (\S+)/.exec(line);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`FHIR server process exited (${String(code)}) before listening`)));
  });
  return { child, url };
}

/** Stops the process by its PID and waits until it has exited. */
async function stopByPid(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid as number, 'SIGTERM');
  await exited;
}

const pools: { pool: Pool; table: string }[] = [];
afterAll(async () => {
  for (const { pool, table } of pools) {
    await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
    await pool.end();
  }
});

const outboxes: { name: string; skip: boolean; make(): Promise<SyncOutbox> }[] = [
  { name: 'memory', skip: false, make: async () => new MemoryOutbox() },
  {
    name: 'MySQL',
    skip: !mariadb.available,
    async make() {
      const pool = createPool({ uri: mariadb.url, connectionLimit: 4 });
      const table = `fhir_outbox_fault_${randomUUID().slice(0, 8)}`;
      pools.push({ pool, table });
      const outbox = new MySqlOutbox({ pool, table });
      await outbox.ensureSchema();
      return outbox;
    },
  },
];

describe.each(outboxes)('sync outbox ($name) across a FHIR server outage', ({ skip, make }) => {
  it.skipIf(skip)(
    'queues 200 syncs while the server is down and delivers each exactly once after it restarts',
    async () => {
      const port = await freePort();
      let server = await startFhirProcess(port);
      const adapter = new FhirAdapter({ baseUrl: server.url, retry: false, timeoutMs: 5_000 });
      const outbox = await make();
      const processor = new OutboxProcessor({
        outbox,
        adapter,
        baseDelayMs: 20,
        maxDelayMs: 200,
        concurrency: 8,
        batchSize: 100,
      });
      try {
        await stopByPid(server.child);
        const run = randomUUID().slice(0, 8);
        const system = `urn:cdss:test:outbox:${run}`;
        const family = `Outbox${run}`;
        for (let i = 0; i < 200; i++) {
          const identifier = { system, value: `p-${i}` };
          const resource: Patient = {
            resourceType: 'Patient',
            identifier: [identifier],
            name: [{ family, given: [`N${i}`] }],
          };
          await outbox.enqueue({ kind: 'upsert', resource, identifier });
        }
        // While the server is down every attempt fails and is kept for a retry; nothing is lost or dead.
        const down = await processor.drainUntilEmpty(1_500);
        expect(down.empty).toBe(false);
        expect(down.delivered).toBe(0);
        expect(down.failed).toBeGreaterThanOrEqual(200);
        expect(await outbox.stats()).toMatchObject({ pending: 200, delivered: 0, dead: 0 });

        server = await startFhirProcess(port);
        const up = await processor.drainUntilEmpty(60_000);
        expect(up.empty).toBe(true);
        expect(await outbox.stats()).toMatchObject({ pending: 0, delivered: 200, dead: 0 });

        const stored: Patient[] = [];
        for await (const p of adapter.searchAll<Patient>('Patient', { family, _count: 100 })) stored.push(p);
        const values = stored.map((p) => p.identifier?.[0]?.value);
        expect(stored).toHaveLength(200);
        expect(new Set(values).size).toBe(200);
        // Draining again changes nothing.
        expect((await processor.drainOnce()).claimed).toBe(0);
      } finally {
        await stopByPid(server.child);
      }
    },
    120_000,
  );
});
