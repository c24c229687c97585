/**
 * Requests/s through @cdss/core HttpTransport (bearer auth + retry policy + zod parse) vs bare axios, same local server.
 *
 * A node:http server in a child process on 127.0.0.1:0 answers a small FHIR-like JSON body. Both clients
 * keep `BENCH_CONCURRENCY` requests in flight for the same time, in interleaved rounds (the order
 * alternating each round) so drift of the machine affects both alike, after an untimed warm-up of each.
 * The medians of the rounds are reported; the last line is the JSON result.
 *
 * Settings (environment): BENCH_CONCURRENCY (default 16, max 1024), BENCH_ROUND_MS (default 1000, max
 * 10 000), BENCH_ROUNDS (default 6, max 10, per client: about 15 s in all with the defaults).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import axios from 'axios';
import { z } from 'zod';
import { bearerAuth, createRetryPolicy, HttpTransport } from '@cdss/core';
import { intEnv } from './_lib.js';
import { listenOnFreePort } from '@cdss/core/testing';

const BODY = JSON.stringify({
  resourceType: 'Observation',
  id: 'obs-1',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8302-2', display: 'Body height' }] },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value: 172.5, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' },
});

const observationSchema = z.object({
  resourceType: z.literal('Observation'),
  id: z.string(),
  status: z.string(),
  code: z.object({
    coding: z.array(z.object({ system: z.string(), code: z.string(), display: z.string().optional() })),
  }),
  subject: z.object({ reference: z.string() }),
  valueQuantity: z.object({ value: z.number(), unit: z.string(), system: z.string(), code: z.string() }),
});

/** Server mode: the child process answers every request with BODY and reports its port. */
function serve(): void {
  const server = createServer((req, res) => {
    if (req.headers['authorization'] === undefined && req.url?.startsWith('/auth')) {
      res.statusCode = 401;
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  server.keepAliveTimeout = 30_000;
  void listenOnFreePort(server).then(() => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    process.send?.({ port: address.port });
  });
  process.on('disconnect', () => server.close(() => process.exit(0)));
}

async function startServer(): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { port, child };
}

/** What one timed round measured. */
interface Round {
  /** Completed requests per second (wall clock). */
  rps: number;
  /** CPU time of this (client) process per request, in microseconds: less sensitive to a busy machine. */
  cpuUs: number;
}

/** Keeps `concurrency` calls of `once` in flight for `ms`. */
async function measure(once: () => Promise<unknown>, concurrency: number, ms: number): Promise<Round> {
  const deadline = performance.now() + ms;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await once();
      done++;
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { rps: done / elapsed, cpuUs: (used.user + used.system) / done };
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const concurrency = intEnv('BENCH_CONCURRENCY', 16, 1024);
  const roundMs = intEnv('BENCH_ROUND_MS', 1000, 10_000);
  const rounds = intEnv('BENCH_ROUNDS', 6, 10);
  const { port, child } = await startServer();
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    const transport = new HttpTransport({
      baseUrl,
      auth: bearerAuth('bench-token'),
      retry: createRetryPolicy({ maxRetries: 2 }),
      timeoutMs: 10_000,
    });
    const bare = axios.create({ baseURL: baseUrl });
    const viaTransport = async (): Promise<unknown> =>
      (await transport.request({ method: 'GET', path: 'auth/Observation/obs-1', schema: observationSchema })).data;
    const viaAxios = async (): Promise<unknown> =>
      (await bare.get('/auth/Observation/obs-1', { headers: { Authorization: 'Bearer bench-token' } })).data;

    // Sanity: both clients get the same parsed body before anything is timed.
    const [a, b] = await Promise.all([viaTransport(), viaAxios()]);
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error('the two clients disagree about the body');

    // Warm-up (JIT, sockets) for both, not counted.
    await measure(viaTransport, concurrency, 1500);
    await measure(viaAxios, concurrency, 1500);

    const results = { transport: [] as Round[], axios: [] as Round[] };
    for (let round = 1; round <= rounds; round++) {
      // Alternate which client goes first, so neither always runs on the warmer (or busier) half.
      let t: Round;
      let x: Round;
      if (round % 2 === 1) {
        t = await measure(viaTransport, concurrency, roundMs);
        x = await measure(viaAxios, concurrency, roundMs);
      } else {
        x = await measure(viaAxios, concurrency, roundMs);
        t = await measure(viaTransport, concurrency, roundMs);
      }
      results.transport.push(t);
      results.axios.push(x);
      process.stdout.write(
        `round ${round}: HttpTransport ${t.rps.toFixed(0)} req/s (${t.cpuUs.toFixed(0)} µs CPU/req), ` +
          `bare axios ${x.rps.toFixed(0)} req/s (${x.cpuUs.toFixed(0)} µs CPU/req)\n`,
      );
    }
    const value = Math.round(median(results.transport.map((r) => r.rps)));
    const baseline = Math.round(median(results.axios.map((r) => r.rps)));
    const cpuT = median(results.transport.map((r) => r.cpuUs));
    const cpuX = median(results.axios.map((r) => r.cpuUs));
    process.stdout.write(
      `median of ${rounds} rounds of ${roundMs} ms at concurrency ${concurrency}: transport ${value} req/s, ` +
        `axios ${baseline} req/s; client CPU per request ${cpuT.toFixed(0)} µs vs ${cpuX.toFixed(0)} µs ` +
        `(+${(cpuT - cpuX).toFixed(0)} µs, x${(cpuT / cpuX).toFixed(2)})\n`,
    );
    process.stdout.write(
      `${JSON.stringify({ bench: 'core-transport', unit: 'req/s', value, baseline, baseline_name: 'bare axios', ratio: Number((value / baseline).toFixed(3)) })}\n`,
    );
  } finally {
    child.disconnect();
  }
}

if (process.argv.includes('--serve')) serve();
else await main();
