/**
 * Connected mode on MariaDB and RabbitMQ: cache-hit GET /api/patients/{id} req/s of CDSS_PROCESSES=2 (node:cluster) vs one process.
 *
 * Two reference servers run at once, each started as `npm start` would start it (`src/main.ts`, its own process
 * tree) in connected mode with the same configuration but for `CDSS_PROCESSES`: the cluster (2 processes, or
 * BENCH_PROCESSES) and one process. Both use the real MariaDB (cache L2, idempotency, jobs, outbox, audit table) and
 * RabbitMQ (jobs, cache invalidation, events) that `npm run services` started, the real Orthanc, the OpenEMR
 * emulator as its own process (OpenEMR cannot run here), and an embedded FHIR server in this process (the outbox
 * delivers the AuditEvent batches to it). Tokens are RS256, verified against a public key, as an identity provider's
 * would be. The patient is read once through each server before timing, so every timed read is a cache hit.
 *
 * One autocannon client in a child process keeps BENCH_CONCURRENCY (16) requests in flight on keep-alive connections;
 * the sides alternate in ABBA order, BENCH_ROUNDS (6) rounds of BENCH_ROUND_MS (2000) each after a warm-up; medians
 * reported, with p99 and the server process tree's CPU per request (from /proc). Every read is audited in the
 * shared MySQL table: after both servers stop gracefully, the rows of the bench's user are counted and must cover
 * every read the client saw answered.
 *
 * On a 2-core machine the client, MariaDB and RabbitMQ share the cores with the servers, so the cluster cannot
 * reach twice the throughput; the figure shows what a second process gains here. Needs MariaDB, RabbitMQ and
 * Orthanc (`npm run services -- start`). About 90 s, most of it starting the servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createPool, type RowDataPacket } from 'mysql2/promise';
import { freePort, requireService } from '@cdss/core/testing';
import { createEmbeddedFhirServer, SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { intEnv, median } from './_lib.js';
import { cpuMicros, formatRound, json, startLoadClient, withChildren, type LoadClient, type Round } from './_load.js';

const serverDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'reference-server');

/** A process started from the reference server's package, stopped by PID. */
interface Started {
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

async function startProcess(script: string, env: Record<string, string>, ready: RegExp): Promise<Started> {
  const child = spawn(process.execPath, ['--conditions=@cdss/source', '--import', 'tsx', join(serverDir, script)], {
    cwd: serverDir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready in 180 s:\n${output.slice(-2000)}`)), 180_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.length > 100_000) output = output.slice(-50_000);
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${output.slice(-2000)}`));
    });
  });
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(kill);
      return code;
    },
  };
}

async function main(): Promise<void> {
  const concurrency = intEnv('BENCH_CONCURRENCY', 16, 256);
  const roundMs = intEnv('BENCH_ROUND_MS', 2_000, 5_000, 200);
  const rounds = intEnv('BENCH_ROUNDS', 6, 10);
  const processes = intEnv('BENCH_PROCESSES', 2, 16, 2);
  const services = await Promise.all(
    (['mariadb', 'rabbitmq', 'orthanc'] as const).map((name) => requireService(name, { ci: false })),
  );
  const missing = services.filter((s) => !s.available);
  if (missing.length > 0) throw new Error(missing.map((s) => s.reason).join('; '));
  const [maria, rabbit, orthanc] = services as [(typeof services)[0], (typeof services)[0], (typeof services)[0]];

  const run = randomUUID().slice(0, 8);
  const user = `bench-${run}`;
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const token = await new SignJWT({ name: 'Bench Physician', roles: ['physician'] })
    .setProtectedHeader({ alg: 'RS256' })
    .setSubject(user)
    .setIssuer('https://idp.bench.test')
    .setAudience('cdss')
    .setExpirationTime('30m')
    .sign(privateKey);
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };

  const dirs = await Promise.all(
    ['openemr', 'single', 'cluster'].map((d) => mkdtemp(join(tmpdir(), `cdss-bench-${d}-`))),
  );
  const started: Started[] = [];
  const fhir = await createEmbeddedFhirServer().listen(await freePort(), '127.0.0.1');
  let load: LoadClient | undefined;
  try {
    const emulatorPort = await freePort();
    started.push(
      await startProcess(
        'test/openemr-emulator-process.ts',
        { PORT: String(emulatorPort), DATA_DIR: dirs[0]! },
        /^ready/m,
      ),
    );
    const orthancUrl = new URL(orthanc.url);
    const env = async (count: number, dataDir: string) => ({
      CDSS_MODE: 'connected',
      CDSS_PROCESSES: String(count),
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      CDSS_DATA_DIR: dataDir,
      CDSS_WORKER: 'off',
      CDSS_LOG_LEVEL: 'info',
      CDSS_RATE_LIMIT_PER_MINUTE: '100000000',
      CDSS_AUTH_PUBLIC_KEY: await exportSPKI(publicKey),
      CDSS_AUTH_ISSUER: 'https://idp.bench.test',
      CDSS_WEBHOOK_SECRET: 'b'.repeat(40),
      OPENEMR_URL: `http://127.0.0.1:${emulatorPort}`,
      OPENEMR_CLIENT_ID: SEED_CLIENT.clientId,
      OPENEMR_CLIENT_SECRET: SEED_CLIENT.clientSecret,
      OPENEMR_USERNAME: SEED_ADMIN.username,
      OPENEMR_PASSWORD: SEED_ADMIN.password,
      FHIR_URL: fhir.url,
      ORTHANC_URL: `${orthancUrl.protocol}//${orthancUrl.host}`,
      ORTHANC_USERNAME: decodeURIComponent(orthancUrl.username),
      ORTHANC_PASSWORD: decodeURIComponent(orthancUrl.password),
      AMQP_URL: rabbit.url,
      MYSQL_URL: maria.url,
    });
    // One after the other: both create the same tables at start.
    const singleEnv = await env(1, dirs[1]!);
    const single = await startProcess('src/main.ts', singleEnv, /"msg":"CDSS reference server listening"/);
    started.push(single);
    const clusterEnv = await env(processes, dirs[2]!);
    const cluster = await startProcess('src/main.ts', clusterEnv, /listening \(cluster\)/);
    started.push(cluster);
    const sides = [
      {
        name: `cluster (${processes} processes)`,
        base: `http://127.0.0.1:${clusterEnv.PORT}`,
        pid: cluster.child.pid!,
      },
      { name: 'one process', base: `http://127.0.0.1:${singleEnv.PORT}`, pid: single.child.pid! },
    ];
    const clusterPids = withChildren(sides[0]!.pid);
    if (clusterPids.length !== processes + 1)
      throw new Error(`the cluster runs ${clusterPids.length - 1} server processes, not ${processes}`);

    // One patient, read once through each (the first read fills the shared L2, later ones hit L1).
    const page = (await json(`${sides[1]!.base}/api/patients?limit=1`, { headers })) as {
      items: Array<{ id: string }>;
    };
    const patientId = page.items[0]?.id;
    if (!patientId) throw new Error('the OpenEMR emulator has no seeded patient');
    const path = `/api/patients/${encodeURIComponent(patientId)}`;
    const bodies = await Promise.all(sides.map((s) => json(`${s.base}${path}`, { headers })));
    if (JSON.stringify(bodies[0]) !== JSON.stringify(bodies[1])) throw new Error('the two servers answer differently');

    load = await startLoadClient();
    const client = load;
    let answered = 0;
    const measure = async (side: (typeof sides)[number], ms: number): Promise<Round & { serverCpuUs: number }> => {
      const pids = withChildren(side.pid);
      const cpu0 = cpuMicros(pids);
      const round = await client.run({ url: `${side.base}${path}`, headers }, concurrency, ms);
      answered += round.ok;
      if (round.bad > 0) throw new Error(`${side.name}: ${round.bad} non-2xx answers or errors`);
      return { ...round, serverCpuUs: (cpuMicros(pids) - cpu0) / Math.max(round.total, 1) };
    };
    for (const side of sides) await measure(side, 1_500); // warm-up, untimed
    const results = sides.map(() => [] as Array<Round & { serverCpuUs: number }>);
    for (let r = 0; r < rounds; r++) {
      const order = r % 4 === 0 || r % 4 === 3 ? [0, 1] : [1, 0];
      for (const i of order) results[i]!.push(await measure(sides[i]!, roundMs));
      process.stdout.write(
        `round ${r + 1}: ${sides.map((s, i) => `${s.name} ${formatRound(results[i]![r]!, results[i]![r]!.serverCpuUs)}`).join(' | ')}\n`,
      );
    }
    load.close();
    load = undefined;

    // Stop both gracefully (the audit groups in flight are written), then count the bench user's audit rows.
    for (const s of [cluster, single]) {
      const code = await s.stop();
      if (code !== 0) throw new Error(`a server exited with ${code}:\n${s.output().slice(-1000)}`);
    }
    const pool = createPool({ uri: maria.url, connectionLimit: 1 });
    let rows: number;
    try {
      const [result] = await pool.query<RowDataPacket[]>(
        'SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS ids FROM cdss_audit WHERE user_id = ?',
        [user],
      );
      rows = Number(result[0]?.['n']);
      if (Number(result[0]?.['ids']) !== rows) throw new Error('audit rows with the same request id');
    } finally {
      await pool.end();
    }
    if (rows < answered) throw new Error(`audit: ${rows} rows for ${answered} reads answered`);

    const clusterRounds = results[0]!;
    const singleRounds = results[1]!;
    const med = (rs: Array<Round & { serverCpuUs: number }>, k: 'rps' | 'p99' | 'serverCpuUs') =>
      median(rs.map((x) => x[k]));
    const value = Math.round(med(clusterRounds, 'rps'));
    const baseline = Math.round(med(singleRounds, 'rps'));
    process.stdout.write(
      `median of ${rounds} rounds of ${roundMs} ms per side, concurrency ${concurrency}: cluster of ${processes} ` +
        `${value} req/s (p99 ${med(clusterRounds, 'p99')} ms, ${med(clusterRounds, 'serverCpuUs').toFixed(0)} µs CPU/req) vs one process ` +
        `${baseline} req/s (p99 ${med(singleRounds, 'p99')} ms, ${med(singleRounds, 'serverCpuUs').toFixed(0)} µs CPU/req): ` +
        `${(value / baseline).toFixed(2)}×; audit: ${rows} rows in cdss_audit for the ${answered} reads answered\n`,
    );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'server-connected',
        unit: 'req/s',
        value,
        baseline,
        baseline_name: 'the same server as one process (CDSS_PROCESSES=1), same services, client and concurrency',
        ratio: Number((value / baseline).toFixed(3)),
        processes,
        p99_ms: med(clusterRounds, 'p99'),
        p99_baseline_ms: med(singleRounds, 'p99'),
        audit_rows: rows,
      })}\n`,
    );
  } finally {
    load?.close();
    for (const s of started.reverse()) await s.stop();
    await fhir.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench server-connected failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
