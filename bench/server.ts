/**
 * Cache-hit GET /api/patients/{id} req/s and p99 through the reference server's full stack vs a bare Express 5 route.
 *
 * The reference server is composed in sandbox mode in this process exactly as its sandbox integration test does
 * (`loadConfig` + `composeServer` + `server.listen(port)`: embedded OpenEMR emulator, DICOM store and FHIR server, memory
 * cache and outbox, file audit trail in a temporary CDSS_DATA_DIR), with CDSS_SANDBOX_STUDIES=0, CDSS_WORKER=off and
 * a rate limit far above what the bench sends. A physician token comes from POST /api/sandbox/token; the first seeded
 * patient is read once so that every timed read is a cache hit. The full stack per request is: request id, metrics
 * timer, security headers, CORS, body parsers, the bearer token (jose, HS256, verified once then remembered), rate
 * limits, route matching, RBAC, zod parameter validation, the cache read, the JSON answer, and the audit record:
 * written before the answer by group commit (the records of concurrent requests appended to `audit.jsonl` with one
 * O_DSYNC write: a write and an fdatasync in one call), with their AuditEvents queued in the outbox as one FHIR batch Bundle per group (delivered
 * to the embedded FHIR server, which runs in a worker thread of this process, by the outbox processor: a round every
 * second, the next at once after a full batch). The outbox's backlog is printed when the full stack's load stops
 * (after the concurrency-16 rounds, and after its concurrency-64 run), so a reader sees that delivery kept up.
 *
 * The baseline is a bare Express 5 app in the same process with one route answering the same JSON body with
 * `res.json`. One client, autocannon in a child process (so its CPU is not the servers'), keeps BENCH_CONCURRENCY
 * requests in flight on keep-alive connections for the same time against each; each round runs the sides in another
 * order (full stack and bare alternate which goes first), after an untimed warm-up; the median round is reported with
 * its p99, the client's CPU per request and this (server) process's CPU per request. A third side, GET /healthz with
 * the same token, shows what the middleware alone costs (no route table, RBAC, cache or audit).
 *
 * Then a second line: the full stack and the bare route at concurrency 64 for BENCH_C64_MS (10 s) each, with no
 * errors allowed and the p99 recorded. Last, the server is closed (which writes the audit groups in flight and lets
 * the outbox deliver), and the audit trail is counted: every request the client saw answered 2xx must have its
 * record in the file, and the file must hold exactly as many records as the server counted.
 *
 * Settings (environment): BENCH_CONCURRENCY (16, max 256), BENCH_ROUND_MS (1500, max 5000), BENCH_ROUNDS (6 per
 * side, max 10), BENCH_C64_MS (10000, max 20000; 0 skips the second line). With the defaults 27 s of rounds
 * (6 × 3 × 1.5 s) after 2.5 s of warm-up, then 20 s at concurrency 64: about 70 s in all on a busy machine.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { loadConfig } from '../examples/reference-server/src/config.js';
import { createLogger } from '../examples/reference-server/src/logger.js';
import { composeServer } from '../examples/reference-server/src/compose.js';
import { intEnv, median } from './_lib.js';
import { cpuMicros, formatRound, json, startLoadClient, type LoadClient, type Round, type Target } from './_load.js';
import { freePort, listenOnFreePort } from '@cdss/core/testing';

/** A round with this process's CPU per request. */
interface ServerRound extends Round {
  serverCpuUs: number;
}

/** The FHIR outbox's backlog at one moment of the run. */
interface OutboxBacklog {
  when: string;
  pending: number;
  delivered: number;
  oldest_s: number;
}

/** Sum of a prom-client metric's samples matching the labels. */
async function metricSum(
  metric: { get(): Promise<{ values: Array<{ value: number; labels: object; metricName?: string }> }> },
  labels: Record<string, string>,
  name?: string,
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => name === undefined || v.metricName === name)
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

async function listen(server: Server): Promise<number> {
  await listenOnFreePort(server);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function main(): Promise<void> {
  const concurrency = intEnv('BENCH_CONCURRENCY', 16, 256);
  const roundMs = intEnv('BENCH_ROUND_MS', 1_500, 5_000, 200);
  const rounds = intEnv('BENCH_ROUNDS', 6, 10);
  const c64Ms = intEnv('BENCH_C64_MS', 10_000, 20_000, 0);

  const dataDir = await mkdtemp(join(tmpdir(), 'cdss-bench-server-'));
  const config = loadConfig({
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '0',
    CDSS_WORKER: 'off',
    CDSS_LOG_LEVEL: 'silent',
    CDSS_RATE_LIMIT_PER_MINUTE: '100000000',
  });
  const composed = await composeServer(config, createLogger('silent'), 'bench');
  let closed = false;
  let bare: Server | undefined;
  let load: LoadClient | undefined;
  try {
    const base = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
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

    const full: Target = { url: fullUrl, headers };
    const baseline: Target = { url: bareUrl, headers };
    // A side figure, not the baseline: GET /healthz with the same token crosses the same middleware (request id,
    // metrics, headers, CORS, body parsers, token, rate limits) but no route table, RBAC, cache or audit.
    const middleware: Target = { url: `${base}/healthz`, headers };
    const { metrics } = composed;
    const loads0 = await metricSum(metrics.cacheEvents, { event: 'load' });

    load = await startLoadClient();
    const client = load;
    const measure = async (target: Target, connections: number, ms: number): Promise<ServerRound> => {
      const cpu0 = cpuMicros('self');
      const round = await client.run(target, connections, ms);
      return { ...round, serverCpuUs: (cpuMicros('self') - cpu0) / Math.max(round.total, 1) };
    };
    let answered = 0; // full-stack reads the client saw answered 2xx
    const warm = await measure(full, concurrency, 1_000); // warm-up, untimed
    answered += warm.ok;
    await measure(baseline, concurrency, 1_000);
    await measure(middleware, concurrency, 500);
    const sides = [
      { name: 'full stack', target: full, rounds: [] as ServerRound[] },
      { name: 'bare express', target: baseline, rounds: [] as ServerRound[] },
      { name: 'middleware only', target: middleware, rounds: [] as ServerRound[] },
    ];
    // Each round runs the three in one of the six orders, so none always follows another (full stack and bare
    // alternate which goes first).
    const orders = [
      [0, 1, 2],
      [1, 0, 2],
      [2, 0, 1],
      [1, 2, 0],
      [0, 2, 1],
      [2, 1, 0],
    ] as const;
    for (let r = 0; r < rounds; r++) {
      for (const i of orders[r % orders.length] ?? orders[0]) {
        const side = sides[i]!;
        const round = await measure(side.target, concurrency, roundMs);
        side.rounds.push(round);
        if (i === 0) answered += round.ok;
      }
      process.stdout.write(
        `round ${r + 1}: ${sides.map((s) => `${s.name} ${formatRound(s.rounds[r]!, s.rounds[r]!.serverCpuUs)}`).join(' | ')}\n`,
      );
      const bad = sides.map((s) => s.rounds[r]!.bad);
      if (bad.some((n) => n > 0)) throw new Error(`non-2xx answers or errors: ${bad.join(', ')}`);
    }

    // The FHIR copy of the audit trail must keep up: its backlog when the full stack's load stops.
    const backlog = async (when: string): Promise<OutboxBacklog> => {
      const stats = await composed.outbox.stats();
      const oldestS = stats.oldestPendingAt === undefined ? 0 : (Date.now() - stats.oldestPendingAt) / 1000;
      return { when, pending: stats.pending, delivered: stats.delivered, oldest_s: Number(oldestS.toFixed(2)) };
    };
    const backlogs = [await backlog('after the concurrency-16 rounds')];

    // The second line: concurrency 64, 10 s each, no errors allowed.
    let c64: { full: ServerRound; bare: ServerRound } | undefined;
    if (c64Ms > 0) {
      const fullC64 = await measure(full, 64, c64Ms);
      backlogs.push(await backlog('after the full stack at concurrency 64'));
      answered += fullC64.ok;
      const bareC64 = await measure(baseline, 64, c64Ms);
      c64 = { full: fullC64, bare: bareC64 };
      process.stdout.write(
        `concurrency 64 for ${c64Ms / 1000} s: full stack ${formatRound(fullC64, fullC64.serverCpuUs)}, ` +
          `${fullC64.bad} errors | bare express ${formatRound(bareC64, bareC64.serverCpuUs)}, ${bareC64.bad} errors\n`,
      );
      if (fullC64.bad > 0 || bareC64.bad > 0)
        throw new Error(`errors at concurrency 64: full stack ${fullC64.bad}, bare ${bareC64.bad}`);
    }
    load.close();
    load = undefined;

    // Nothing may have loaded from OpenEMR: every timed read was a cache hit.
    const loads = (await metricSum(metrics.cacheEvents, { event: 'load' })) - loads0;
    if (loads !== 0) throw new Error(`${loads} reads went to OpenEMR: not all were cache hits`);

    // Close the server: the audit groups in flight are written, the outbox's round finishes.
    const closing = performance.now();
    await composed.close();
    closed = true;
    const shutdownS = (performance.now() - closing) / 1000;
    const counted = await metricSum(metrics.auditEvents, {});
    const groups = await metricSum(metrics.auditGroupSize, {}, 'cdss_audit_group_size_count');
    const lines = (await readFile(join(dataDir, 'audit.jsonl'), 'utf8')).split('\n').filter(Boolean);
    const reads = lines.filter((l) => l.includes(`"resource":"Patient/${patientId}"`)).length;
    if (lines.length !== counted || reads < answered)
      throw new Error(
        `audit: ${lines.length} records in the file, ${counted} counted by the server, ${reads} reads of the patient for ${answered} answered`,
      );

    const [fullRounds, bareRounds, mwRounds] = sides.map((s) => s.rounds) as [
      ServerRound[],
      ServerRound[],
      ServerRound[],
    ];
    const med = (rs: ServerRound[], k: keyof ServerRound) => median(rs.map((x) => x[k]));
    const value = Math.round(med(fullRounds, 'rps'));
    const base_ = Math.round(med(bareRounds, 'rps'));
    const p99 = med(fullRounds, 'p99');
    const p99Bare = med(bareRounds, 'p99');
    process.stdout.write(
      `median of ${rounds} rounds of ${roundMs} ms per side, concurrency ${concurrency}, keep-alive: ` +
        `full stack ${value} req/s (p50 ${med(fullRounds, 'p50')} ms, p99 ${p99} ms) vs bare express ${base_} req/s ` +
        `(p50 ${med(bareRounds, 'p50')} ms, p99 ${p99Bare} ms): ratio ${(value / base_).toFixed(3)}, p99 ${(p99 / Math.max(p99Bare, 1)).toFixed(2)}× bare; ` +
        `client CPU/req ${med(fullRounds, 'clientCpuUs').toFixed(0)} vs ${med(bareRounds, 'clientCpuUs').toFixed(0)} µs; ` +
        `server-process CPU/req ${med(fullRounds, 'serverCpuUs').toFixed(0)} vs ${med(bareRounds, 'serverCpuUs').toFixed(0)} µs\n`,
    );
    process.stdout.write(
      `middleware only (GET /healthz with the token): ${Math.round(med(mwRounds, 'rps'))} req/s (p99 ${med(mwRounds, 'p99')} ms), ` +
        `server-process CPU/req ${med(mwRounds, 'serverCpuUs').toFixed(0)} µs\n`,
    );
    process.stdout.write(
      `FHIR AuditEvent outbox backlog (writes = audit groups): ${backlogs
        .map((b) => `${b.when}: ${b.pending} pending (oldest ${b.oldest_s} s), ${b.delivered} delivered`)
        .join('; ')}\n`,
    );
    process.stdout.write(
      `audit: ${lines.length} records (${reads} of them the ${answered} reads answered 2xx, and more in flight when ` +
        `rounds ended), all in the file, written in ${groups} groups (${(lines.length / Math.max(groups, 1)).toFixed(1)} ` +
        `records, one O_DSYNC write per group); server shutdown ${shutdownS.toFixed(1)} s\n`,
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
        p99_ms: p99,
        p99_baseline_ms: p99Bare,
        p99_ratio: Number((p99 / Math.max(p99Bare, 1)).toFixed(2)),
        ...(c64
          ? {
              c64: {
                ms: c64Ms,
                value: Math.round(c64.full.rps),
                p99_ms: c64.full.p99,
                errors: c64.full.bad,
                baseline: Math.round(c64.bare.rps),
                p99_baseline_ms: c64.bare.p99,
              },
            }
          : {}),
        audit_records: lines.length,
        outbox_backlog: backlogs,
      })}\n`,
    );
  } finally {
    load?.close();
    if (bare) {
      bare.closeAllConnections();
      await new Promise((ok) => bare?.close(ok));
    }
    if (!closed) await composed.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench server failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
