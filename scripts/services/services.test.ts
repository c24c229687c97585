/**
 * The real services answer real protocol requests, and services.sh can run a private instance that a fault
 * test stops for real (by PID) and restarts on the same data, without touching the shared one.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, listenOnFreePort, requireService } from '@cdss/core/testing';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'services.sh');
const run = promisify(execFile);

const orthanc = await requireService('orthanc');
const rabbitmq = await requireService('rabbitmq');
const mariadb = await requireService('mariadb');
const prometheus = await requireService('prometheus');
const alertmanager = await requireService('alertmanager');
const nginx = await requireService('nginx');

/** Basic auth header and credential-free base URL from a URL that carries user:password. */
function splitCredentials(url: string): { base: string; authorization: string } {
  const parsed = new URL(url);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`;
  parsed.username = '';
  parsed.password = '';
  return { base: parsed.toString().replace(/\/$/, ''), authorization };
}

describe.skipIf(!orthanc.available)('Orthanc (real)', () => {
  const { base, authorization } = splitCredentials(orthanc.url);

  it('answers GET /system with the configured credentials, with the DICOMweb plugin loaded', async () => {
    const system = await fetch(`${base}/system`, { headers: { authorization } });
    expect(system.status).toBe(200);
    const body = (await system.json()) as { Version?: unknown; ApiVersion?: unknown; PluginsEnabled?: unknown };
    expect(typeof body.Version).toBe('string');
    expect(typeof body.ApiVersion).toBe('number');
    expect(body.PluginsEnabled).toBe(true);
    const plugins = await fetch(`${base}/plugins`, { headers: { authorization } });
    expect(await plugins.json()).toContain('dicom-web');
  });

  it('refuses a request without credentials (authentication is on, even on loopback)', async () => {
    const res = await fetch(`${base}/system`);
    expect(res.status).toBe(401);
    await res.arrayBuffer();
  });
});

describe.skipIf(!rabbitmq.available)('RabbitMQ (real)', () => {
  it('accepts an AMQP connection and routes a message through a queue', async () => {
    const conn = await amqp.connect(rabbitmq.url);
    try {
      const ch = await conn.createConfirmChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
      const payload = Buffer.from(`probe ${process.pid} ${Date.now()}`);
      ch.sendToQueue(queue, payload);
      await ch.waitForConfirms();
      let message: amqp.GetMessage | false = false;
      for (let i = 0; i < 50 && !message; i += 1) {
        message = await ch.get(queue, { noAck: true });
        if (!message) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(message && message.content.equals(payload)).toBe(true);
      await ch.close();
    } finally {
      await conn.close();
    }
  });

  it('rejects wrong credentials', async () => {
    const url = new URL(rabbitmq.url);
    url.password = 'not-the-password';
    await expect(amqp.connect(url.toString())).rejects.toThrow(/ACCESS_REFUSED|403/);
  });
});

describe.skipIf(!mariadb.available)('MariaDB (real)', () => {
  it('answers SELECT 1 for the app user on the app database', async () => {
    const conn = await mysql.createConnection(mariadb.url);
    try {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 AS one, DATABASE() AS db');
      expect(rows[0]).toEqual({ one: 1, db: new URL(mariadb.url).pathname.slice(1) });
    } finally {
      await conn.end();
    }
  });
});

describe.skipIf(!prometheus.available)('Prometheus (real)', () => {
  it('is ready and reports its build', async () => {
    expect((await fetch(`${prometheus.url}/-/ready`)).status).toBe(200);
    const info = (await (await fetch(`${prometheus.url}/api/v1/status/buildinfo`)).json()) as {
      status?: string;
      data?: { version?: unknown };
    };
    expect(info.status).toBe('success');
    expect(typeof info.data?.version).toBe('string');
  });
});

describe.skipIf(!alertmanager.available)('Alertmanager (real)', () => {
  it('is ready and answers its v2 status API', async () => {
    expect((await fetch(`${alertmanager.url}/-/ready`)).status).toBe(200);
    const status = (await (await fetch(`${alertmanager.url}/api/v2/status`)).json()) as { versionInfo?: unknown };
    expect(status.versionInfo).toBeTypeOf('object');
  });
});

describe.skipIf(!nginx.available)('nginx (real)', () => {
  it('terminates TLS with the certificate services.sh generated (any upstream answer, 502 without the app)', async () => {
    const ca = await readFile(join(process.env['CDSS_SERVICES_DIR'] ?? '/tmp/cdss-services', 'nginx', 'cert.pem'));
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`${nginx.url}/healthz`, { ca, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(600);
  });

  it('refuses a client that does not trust that certificate', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = httpsRequest(`${nginx.url}/`, { ca: [], servername: 'localhost' }, (res) => {
        res.resume();
        resolve('connected');
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end();
    });
    expect(outcome).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
  });
});

/** True when a TCP connection to 127.0.0.1:port succeeds. */
function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const hasMariadbd = await run('bash', ['-c', 'command -v mariadbd && command -v mariadb-install-db']).then(
  () => true,
  () => false,
);
if (!hasMariadbd && process.env['CI'] === 'true') {
  throw new Error('CI=true and mariadbd is not installed: run `npm run services -- install mariadb`');
}
if (!hasMariadbd)
  process.stderr.write(
    '[skip] private-instance test: mariadbd not installed (`npm run services -- install mariadb`)\n',
  );

describe.skipIf(!hasMariadbd)('services.sh private instance (MariaDB)', () => {
  let dir = '';
  let port = 0;
  let env: NodeJS.ProcessEnv = {};
  const services = (...args: string[]) => run('bash', [SCRIPT, ...args], { env, timeout: 90_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdss-services-test-'));
    port = await freePort(); // below 32768: the script needs a fixed port (port 0 would pick an ephemeral one)
    env = {
      ...process.env,
      CDSS_SERVICES_DIR: dir,
      DB_PORT: String(port),
      DB_NAME: 'faultdb',
      DB_USER: 'fault',
      DB_PASS: 'fault-pass',
    };
  });

  afterAll(async () => {
    if (dir) {
      await services('stop', 'mariadb').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts in its own folder, is stopped for real by PID, and restarts with its data intact', async () => {
    const url = `mysql://fault:fault-pass@127.0.0.1:${port}/faultdb`;
    expect((await services('env', 'mariadb')).stdout.trim()).toBe(`export CDSS_TEST_MYSQL_URL=${url}`);

    await services('start', 'mariadb');
    const pid = Number(await readFile(join(dir, 'mariadb', 'mariadb.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(1);
    expect((await services('status', 'mariadb')).stdout).toContain(`running, pid ${pid}, 127.0.0.1:${port}`);

    let conn = await mysql.createConnection(url);
    await conn.query('CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(40))');
    await conn.query('INSERT INTO kept VALUES (1, ?)', ['survives a restart']);
    await conn.end();

    await services('stop', 'mariadb');
    expect(await tcpOpen(port)).toBe(false);
    await expect(services('status', 'mariadb')).rejects.toMatchObject({ code: 3 });
    await expect(mysql.createConnection(url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await services('start', 'mariadb');
    const newPid = Number(await readFile(join(dir, 'mariadb', 'mariadb.pid'), 'utf8'));
    expect(newPid).not.toBe(pid);
    conn = await mysql.createConnection(url);
    const [rows] = await conn.query<RowDataPacket[]>('SELECT note FROM kept WHERE id = 1');
    await conn.end();
    expect(rows.map((row) => row['note'])).toEqual(['survives a restart']);
  });

  it('refuses to start over a port that is already taken, and records no PID', async () => {
    const holder = createServer();
    await listenOnFreePort(holder);
    const taken = (holder.address() as AddressInfo).port;
    const otherDir = await mkdtemp(join(tmpdir(), 'cdss-services-taken-'));
    try {
      const failing = run('bash', [SCRIPT, 'start', 'mariadb'], {
        env: { ...process.env, CDSS_SERVICES_DIR: otherDir, DB_PORT: String(taken) },
        timeout: 30_000,
      });
      await expect(failing).rejects.toMatchObject({
        stderr: expect.stringContaining(`127.0.0.1:${taken} is already in use`),
      });
      await expect(readFile(join(otherDir, 'mariadb', 'mariadb.pid'), 'utf8')).rejects.toMatchObject({
        code: 'ENOENT',
      });
    } finally {
      holder.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown service name with usage and exit code 2', async () => {
    await expect(services('start', 'no-such-service')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });
});
