/**
 * No answered request loses its audit record when the server process dies: the server is killed with SIGKILL in the
 * middle of a stream of audited reads, and every read that got its 200 must have its record (found by the request id
 * the client sent). Sandbox mode (one process, the JSON-lines file), and connected mode with CDSS_PROCESSES=2 (the
 * MySQL table; one of the two processes is killed, the primary replaces it and the service goes on).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool, type RowDataPacket } from 'mysql2/promise';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { requireService } from '@cdss/core/testing';
import { createEmbeddedFhirServer, SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { FileAuditStore } from '../src/audit/file-store.js';
import type { AuditRecord } from '../src/audit.js';
import { freePort, startTsProcess, type Child } from './processes.js';

const children: Child[] = [];
const folders: string[] = [];
afterAll(async () => {
  for (const child of children) await child.stop();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});
const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.push(dir);
  return dir;
};

/**
 * Keeps `concurrency` reads in flight, each with its own `X-Request-Id`, until `stop()`; collects the ids of the
 * reads that were answered 200. Failures (the server gone) are counted, not thrown.
 */
function readLoad(url: string, token: string, concurrency = 12) {
  const answered: string[] = [];
  let failed = 0;
  let running = true;
  let n = 0;
  const run = Date.now().toString(36);
  const loop = async (): Promise<void> => {
    while (running) {
      const id = `kill-${run}-${n++}`;
      try {
        const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, 'x-request-id': id } });
        await response.arrayBuffer();
        if (response.status === 200) answered.push(id);
        else failed++;
      } catch {
        failed++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    answered,
    failed: () => failed,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

const services = await Promise.all((['orthanc', 'rabbitmq', 'mariadb'] as const).map((name) => requireService(name)));
const [orthancSvc, rabbitSvc, mariaSvc] = services;

describe('the audit trail survives SIGKILL', () => {
  it('sandbox: every read answered before the kill has its record in audit.jsonl', async () => {
    const dataDir = tempDir('cdss-kill-sandbox-');
    const port = await freePort();
    const server = await startTsProcess(
      'src/main.ts',
      {
        PORT: String(port),
        CDSS_DATA_DIR: dataDir,
        CDSS_SANDBOX_STUDIES: '0',
        CDSS_WORKER: 'off',
        CDSS_LOG_LEVEL: 'warn',
        CDSS_RATE_LIMIT_PER_MINUTE: '1000000',
      },
      /sandbox mode\) at/,
      120_000,
    );
    children.push(server);
    const base = `http://127.0.0.1:${port}`;
    const { access_token: token } = (await (
      await fetch(`${base}/api/sandbox/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'demo-nurse' }),
      })
    ).json()) as { access_token: string };
    const page = (await (
      await fetch(`${base}/api/patients?limit=1`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { items: Array<{ id: string }> };
    const load = readLoad(`${base}/api/patients/${page.items[0]!.id}`, token);
    await expect.poll(() => load.answered.length, { timeout: 60_000, interval: 50 }).toBeGreaterThan(300);
    server.process.kill('SIGKILL');
    await new Promise((resolve) => server.process.once('exit', resolve));
    await load.stop();
    expect(load.failed()).toBeGreaterThan(0); // the kill did land during the load

    // Read the file as the next start would (a torn last line is cut off), then check every answered id.
    const store = new FileAuditStore(join(dataDir, 'audit.jsonl'));
    const recorded = new Set<string>();
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const next: { items: AuditRecord[]; nextCursor?: string } = await store.list({
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const record of next.items) recorded.add(record.requestId);
      cursor = next.nextCursor;
    }
    await store.close();
    const missing = load.answered.filter((id) => !recorded.has(id));
    expect(missing).toEqual([]);
    expect(readFileSync(join(dataDir, 'audit.jsonl'), 'utf8').endsWith('\n')).toBe(true);
  }, 240_000);

  it.skipIf(!services.every((s) => s.available))(
    'connected, CDSS_PROCESSES=2: a worker killed mid-load loses no record in the MySQL table, and is replaced',
    async () => {
      const fhir = await createEmbeddedFhirServer().listen(await freePort(), '127.0.0.1');
      try {
        const emulatorPort = await freePort();
        children.push(
          await startTsProcess(
            'test/openemr-emulator-process.ts',
            { PORT: String(emulatorPort), DATA_DIR: tempDir('cdss-kill-openemr-') },
            /^ready/m,
          ),
        );
        const { publicKey, privateKey } = await generateKeyPair('RS256');
        const user = `kill-test-${randomUUID().slice(0, 8)}`;
        const token = await new SignJWT({ name: 'Kill Test', roles: ['nurse'] })
          .setProtectedHeader({ alg: 'RS256' })
          .setSubject(user)
          .setIssuer('https://idp.hospital.test')
          .setAudience('cdss')
          .setExpirationTime('10m')
          .sign(privateKey);
        const orthancUrl = new URL(orthancSvc!.url);
        const port = await freePort();
        const server = await startTsProcess(
          'src/main.ts',
          {
            CDSS_MODE: 'connected',
            CDSS_PROCESSES: '2',
            PORT: String(port),
            CDSS_DATA_DIR: tempDir('cdss-kill-connected-'),
            CDSS_WORKER: 'off',
            CDSS_LOG_LEVEL: 'info',
            CDSS_RATE_LIMIT_PER_MINUTE: '1000000',
            CDSS_AUTH_PUBLIC_KEY: await exportSPKI(publicKey),
            CDSS_AUTH_ISSUER: 'https://idp.hospital.test',
            CDSS_WEBHOOK_SECRET: 'x'.repeat(40),
            OPENEMR_URL: `http://127.0.0.1:${emulatorPort}`,
            OPENEMR_CLIENT_ID: SEED_CLIENT.clientId,
            OPENEMR_CLIENT_SECRET: SEED_CLIENT.clientSecret,
            OPENEMR_USERNAME: SEED_ADMIN.username,
            OPENEMR_PASSWORD: SEED_ADMIN.password,
            FHIR_URL: fhir.url,
            ORTHANC_URL: `${orthancUrl.protocol}//${orthancUrl.host}`,
            ORTHANC_USERNAME: decodeURIComponent(orthancUrl.username),
            ORTHANC_PASSWORD: decodeURIComponent(orthancUrl.password),
            AMQP_URL: rabbitSvc!.url,
            MYSQL_URL: mariaSvc!.url,
          },
          /listening \(cluster\)/,
          180_000,
        );
        children.push(server);
        const workers = (): number[] =>
          readFileSync(`/proc/${server.process.pid}/task/${server.process.pid}/children`, 'utf8')
            .trim()
            .split(/\s+/)
            .filter(Boolean)
            .map(Number);
        expect(workers()).toHaveLength(2);
        const base = `http://127.0.0.1:${port}`;
        const page = (await (
          await fetch(`${base}/api/patients?limit=1`, { headers: { authorization: `Bearer ${token}` } })
        ).json()) as { items: Array<{ id: string }> };
        const load = readLoad(`${base}/api/patients/${page.items[0]!.id}`, token);
        await expect.poll(() => load.answered.length, { timeout: 60_000, interval: 50 }).toBeGreaterThan(300);
        // /metrics, whichever process answers, counts the reads of both (aggregated through the primary).
        for (let i = 0; i < 4; i++) {
          const answeredBefore = load.answered.length;
          const text = await (await fetch(`${base}/metrics`)).text();
          const reads = /^cdss_audit_events_total\{action="read",outcome="success"\} (\d+)/m.exec(text)?.[1];
          expect(Number(reads)).toBeGreaterThanOrEqual(answeredBefore);
        }
        const [victim, survivor] = workers() as [number, number];
        process.kill(victim, 'SIGKILL');
        // The other process goes on answering, and the primary starts a replacement.
        const answeredAtKill = load.answered.length;
        await expect.poll(() => load.answered.length, { timeout: 30_000 }).toBeGreaterThan(answeredAtKill + 200);
        await expect
          .poll(() => workers().filter((pid) => pid !== victim).length, { timeout: 120_000, interval: 500 })
          .toBe(2);
        expect(workers()).toContain(survivor);
        await load.stop();

        const pool = createPool({ uri: mariaSvc!.url, connectionLimit: 1 });
        try {
          const [rows] = await pool.query<RowDataPacket[]>('SELECT request_id FROM cdss_audit WHERE user_id = ?', [
            user,
          ]);
          const recorded = new Set(rows.map((r) => r['request_id'] as string));
          expect(load.answered.filter((id) => !recorded.has(id))).toEqual([]);
        } finally {
          await pool.end();
        }
        // The primary stops its processes and exits cleanly.
        const exited = new Promise<number | null>((resolve) => server.process.once('exit', resolve));
        server.process.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        await fhir.close();
      }
    },
    400_000,
  );
});
