/**
 * Cache-hit GET /api/patients/{id} req/s and p99 through the reference server's full stack vs a bare Express 5 route.
 *
 * The reference server is composed in sandbox mode in this process exactly as its sandbox integration test does
 * (`loadConfig` + `composeServer` + `server.listen(0)`: embedded OpenEMR emulator, DICOM store and FHIR server, memory
 * cache and outbox, file audit store in a temporary CDSS_DATA_DIR), with CDSS_SANDBOX_STUDIES=0, CDSS_WORKER=off and
 * a rate limit far above what the bench sends. A physician token comes from POST /api/sandbox/token; the first seeded
 * patient is read once so that every timed read is a cache hit. The full stack per request is: request id, metrics
 * timer, helmet, CORS, JSON body parser, JWT verification (jose, HS256), two rate limiters, route matching, RBAC, zod
 * parameter validation, the cache read, JSON serialisation, and the audit record: one fail-closed `appendFile`
 * of a JSON line to `audit.jsonl` before the answer, plus an AuditEvent enqueued in the FHIR outbox (delivered to the
 * embedded FHIR server, in this process, by the outbox processor every second).
 *
 * The baseline is a bare Express 5 app in the same process with one route answering the same JSON body with
 * `res.json`. One client, autocannon in a child process (so its CPU is not the servers'), keeps BENCH_CONCURRENCY
 * requests in flight on keep-alive connections for the same time against each; each round runs the sides in another
 * order (full stack and bare alternate which goes first), after an untimed warm-up; the median round is reported with its p99, the client's CPU per
 * request and this (server) process's CPU per request. A third side, GET /healthz with the same token, shows what
 * the middleware alone costs (no route table, RBAC, cache or audit). Then the audit file append alone is timed at the
 * same concurrency, to show how much of the full stack's cost is audit I/O.
 *
 * Settings (environment): BENCH_CONCURRENCY (16, max 256), BENCH_ROUND_MS (1500, max 5000), BENCH_ROUNDS (6 per
 * side, max 10). With the defaults 27 s of timed load (6 × 3 × 1.5 s) after 2.5 s of warm-up; about 45 s in all on a
 * busy machine (composing the sandbox takes several seconds). At most 10 × 5 s of load per side.
 */
import { fork } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import express from 'express';
import { loadConfig } from '../examples/reference-server/src/config.js';
import { createLogger } from '../examples/reference-server/src/logger.js';
import { composeServer } from '../examples/reference-server/src/compose.js';
import { intEnv, median } from './_lib.js';

/** What the client is asked to do for one round. */
interface LoadRequest {
  url: string;
  headers: Record<string, string>;
  connections: number;
  ms: number;
}

/** One round's figures. */
interface Round {
  /** 2xx answers per second. */
  rps: number;
  /** 99th percentile latency, ms (autocannon's histogram, whole ms). */
  p99: number;
  /** Client CPU (user + system) per request, µs. */
  clientCpuUs: number;
  /** This process's CPU per request, µs: the server under test (plus, for the full stack, its embedded systems). */
  serverCpuUs: number;
  /** Requests answered with anything but 2xx, or failed. */
  bad: number;
  /** Requests completed. */
  total: number;
}

/** Client mode: the forked child runs autocannon for each round it is sent and answers with its figures. */
function client(): void {
  process.on('message', (message: LoadRequest) => {
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    autocannon(
      { url: message.url, headers: message.headers, connections: message.connections, duration: message.ms / 1000 },
      (error, result) => {
        if (error) {
          process.send?.({ error: error.message });
          return;
        }
        const elapsedS = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const total = result.requests.total;
        process.send?.({
          rps: result['2xx'] / elapsedS,
          p99: result.latency.p99,
          clientCpuUs: (cpu.user + cpu.system) / Math.max(total, 1),
          bad: result.non2xx + result.errors + result.timeouts,
          total,
        });
      },
    );
  });
  process.send?.({ ready: true });
}

/** The parent's handle on the client process. */
interface LoadClient {
  run(target: { url: string; headers: Record<string, string> }, ms: number): Promise<Round>;
  close(): void;
}

async function startClient(connections: number): Promise<LoadClient> {
  const child = fork(fileURLToPath(import.meta.url), ['client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((ok, fail) => {
    child.once('message', () => ok());
    child.once('exit', (code) => fail(new Error(`client exited with ${code}`)));
  });
  return {
    run(target, ms) {
      return new Promise((ok, fail) => {
        const cpu0 = process.cpuUsage();
        child.once('message', (answer: Omit<Round, 'serverCpuUs'> & { error?: string }) => {
          const cpu = process.cpuUsage(cpu0);
          if (answer.error) fail(new Error(answer.error));
          else ok({ ...answer, serverCpuUs: (cpu.user + cpu.system) / Math.max(answer.total, 1) });
        });
        child.send({ ...target, connections, ms } satisfies LoadRequest);
      });
    },
    close() {
      child.kill();
    },
  };
}

async function json(url: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${new URL(url).pathname} answered ${response.status}`);
  return response.json();
}

/** Sum of a prom-client counter's samples matching the labels. */
async function counterSum(
  metric: { get(): Promise<{ values: Array<{ value: number; labels: object }> }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** The audit append alone: `concurrency` appends of `line` in flight for `ms`; appends/s and CPU per append. */
async function auditAppendOnly(
  path: string,
  line: string,
  concurrency: number,
  ms: number,
): Promise<{ perS: number; cpuUs: number }> {
  let done = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      await appendFile(path, line, { encoding: 'utf8', mode: 0o600 });
      done++;
    }
  };
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpu0);
  return { perS: (done * 1000) / (performance.now() - started), cpuUs: (cpu.user + cpu.system) / done };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', () => ok()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function main(): Promise<void> {
  const concurrency = intEnv('BENCH_CONCURRENCY', 16, 256);
  const roundMs = intEnv('BENCH_ROUND_MS', 1_500, 5_000, 200);
  const rounds = intEnv('BENCH_ROUNDS', 6, 10);

  const dataDir = await mkdtemp(join(tmpdir(), 'cdss-bench-server-'));
  const config = loadConfig({
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '0',
    CDSS_WORKER: 'off',
    CDSS_LOG_LEVEL: 'silent',
    CDSS_RATE_LIMIT_PER_MINUTE: '100000000',
  });
  const composed = await composeServer(config, createLogger('silent'), 'bench');
  let bare: Server | undefined;
  let load: LoadClient | undefined;
  try {
    const base = `http://127.0.0.1:${await composed.server.listen(0, '127.0.0.1')}`;
    const token = (await json(`${base}/api/sandbox/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'demo-physician' }),
    })) as { access_token: string };
    const headers = { authorization: `Bearer ${token.access_token}`, accept: 'application/json' };
    const page = (await json(`${base}/api/patients?limit=1`, { headers })) as { items: Array<{ id: string }> };
    const patientId = page.items[0]?.id;
    if (!patientId) throw new Error('the sandbox has no seeded patient');
    const fullUrl = `${base}/api/patients/${encodeURIComponent(patientId)}`;
    // The first read loads from the OpenEMR emulator into the cache; every later read is a hit.
    const first = await json(fullUrl, { headers });
    const body = (await json(fullUrl, { headers })) as { data: unknown; stale: boolean };
    if (JSON.stringify(first) !== JSON.stringify(body) || body.stale)
      throw new Error('the cached read differs from the loaded one, or is stale');

    // The baseline: the same JSON body from one bare Express 5 route.
    const app = express();
    app.get('/api/patients/:id', (_req, res) => {
      res.json(body);
    });
    bare = createServer(app);
    bare.keepAliveTimeout = composed.server.server.keepAliveTimeout;
    const bareUrl = `http://127.0.0.1:${await listen(bare)}/api/patients/${encodeURIComponent(patientId)}`;
    const fromBare = await json(bareUrl, { headers });
    if (JSON.stringify(fromBare) !== JSON.stringify(body)) throw new Error('the bare route answers a different body');

    const full = { url: fullUrl, headers };
    const baseline = { url: bareUrl, headers };
    const hits0 = await counterSum(composed.metrics.cacheEvents, { event: 'hit' });
    const loads0 = await counterSum(composed.metrics.cacheEvents, { event: 'load' });
    const audits0 = await counterSum(composed.metrics.auditEvents, { action: 'read', outcome: 'success' });

    // A side figure, not the baseline: GET /healthz with the same token crosses the same middleware (request id,
    // metrics, helmet, CORS, body parser, JWT verification, both rate limits) but no route table, RBAC, cache or audit.
    const middleware = { url: `${base}/healthz`, headers };

    load = await startClient(concurrency);
    const warmFull = await load.run(full, 1_000); // warm-up, untimed
    await load.run(baseline, 1_000);
    await load.run(middleware, 500);
    const fullRounds: Round[] = [];
    const bareRounds: Round[] = [];
    const mwRounds: Round[] = [];
    const fmt = (r: Round) =>
      `${Math.round(r.rps)} req/s, p99 ${r.p99} ms, CPU/req client ${r.clientCpuUs.toFixed(0)} µs server ${r.serverCpuUs.toFixed(0)} µs`;
    // Each round runs the three in one of the six orders, so none always follows another (full stack and bare
    // alternate ABBA-fashion).
    const orders = [
      [0, 1, 2],
      [1, 0, 2],
      [2, 0, 1],
      [1, 2, 0],
      [0, 2, 1],
      [2, 1, 0],
    ] as const;
    const sides = [
      { target: full, rounds: fullRounds },
      { target: baseline, rounds: bareRounds },
      { target: middleware, rounds: mwRounds },
    ];
    for (let r = 0; r < rounds; r++) {
      for (const i of orders[r % orders.length] ?? orders[0]) {
        const side = sides[i];
        if (side) side.rounds.push(await load.run(side.target, roundMs));
      }
      const f = fullRounds[r] as Round;
      const b = bareRounds[r] as Round;
      const m = mwRounds[r] as Round;
      process.stdout.write(
        `round ${r + 1}: full stack ${fmt(f)} | bare express ${fmt(b)} | middleware only ${fmt(m)}\n`,
      );
      if (f.bad > 0 || b.bad > 0 || m.bad > 0)
        throw new Error(`non-2xx answers or errors: full stack ${f.bad}, bare ${b.bad}, /healthz ${m.bad}`);
    }

    // Every timed read must have been an audited cache hit, and nothing loaded from OpenEMR.
    const hits = (await counterSum(composed.metrics.cacheEvents, { event: 'hit' })) - hits0;
    const loads = (await counterSum(composed.metrics.cacheEvents, { event: 'load' })) - loads0;
    const audits = (await counterSum(composed.metrics.auditEvents, { action: 'read', outcome: 'success' })) - audits0;
    if (loads !== 0) throw new Error(`${loads} reads went to OpenEMR: not all were cache hits`);
    const auditPath = join(dataDir, 'audit.jsonl');
    const auditText = await readFile(auditPath, 'utf8');
    const auditLines = auditText.split('\n').filter(Boolean);
    // Every 2xx the client counted was audited and a cache hit (a few more may have completed after a round ended).
    const answered = warmFull.total + fullRounds.reduce((sum, x) => sum + x.total, 0);
    if (warmFull.bad > 0 || audits < answered || hits < answered || auditLines.length < audits)
      throw new Error(
        `answered ${answered}, cache hits ${hits}, audit records ${audits}, audit lines ${auditLines.length}`,
      );
    const bytesPerRecord = (await stat(auditPath)).size / auditLines.length;

    // Audit I/O alone: the same line appended the same way, same concurrency, to a fresh file.
    const appendOnly = await auditAppendOnly(
      join(dataDir, 'append-only.jsonl'),
      `${auditLines.at(-1) ?? ''}\n`,
      concurrency,
      Math.min(roundMs, 2_000),
    );

    const value = Math.round(median(fullRounds.map((x) => x.rps)));
    const base_ = Math.round(median(bareRounds.map((x) => x.rps)));
    const med = (rs: Round[], k: keyof Round) => median(rs.map((x) => x[k]));
    process.stdout.write(
      `median of ${rounds} rounds of ${roundMs} ms per side, concurrency ${concurrency}, keep-alive: ` +
        `full stack ${value} req/s (p99 ${med(fullRounds, 'p99')} ms) vs bare express ${base_} req/s (p99 ${med(bareRounds, 'p99')} ms), ` +
        `${((100 * value) / base_).toFixed(1)}%; ` +
        `client CPU/req ${med(fullRounds, 'clientCpuUs').toFixed(0)} vs ${med(bareRounds, 'clientCpuUs').toFixed(0)} µs; ` +
        `server-process CPU/req ${med(fullRounds, 'serverCpuUs').toFixed(0)} vs ${med(bareRounds, 'serverCpuUs').toFixed(0)} µs\n`,
    );
    process.stdout.write(
      `middleware only (GET /healthz with the token): ${Math.round(med(mwRounds, 'rps'))} req/s (p99 ${med(mwRounds, 'p99')} ms), ` +
        `server-process CPU/req ${med(mwRounds, 'serverCpuUs').toFixed(0)} µs\n`,
    );
    process.stdout.write(
      `audit: ${audits} read records written during the load (${Math.round(bytesPerRecord)} bytes each, fail-closed appendFile before each answer, ` +
        `plus one AuditEvent per read into the FHIR outbox); appendFile alone at concurrency ${concurrency}: ` +
        `${Math.round(appendOnly.perS)} appends/s, ${appendOnly.cpuUs.toFixed(0)} µs CPU per append\n`,
    );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'server',
        unit: 'req/s',
        value,
        baseline: base_,
        baseline_name:
          'bare Express 5 route answering the same JSON body (same process, same client, same concurrency)',
        ratio: Number((value / base_).toFixed(3)),
      })}\n`,
    );
  } finally {
    load?.close();
    if (bare) {
      bare.closeAllConnections();
      await new Promise((ok) => bare?.close(ok));
    }
    // Closing waits for the outbox processor's round, which delivers the AuditEvent backlog the load left behind.
    const closing = performance.now();
    await composed.close();
    process.stderr.write(
      `server shutdown (incl. the outbox round in progress) took ${((performance.now() - closing) / 1000).toFixed(1)} s\n`,
    );
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'client') client();
else
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`bench server failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
