/**
 * ai-jobs: jobs/s end to end (publish → consume → record → result event) vs raw amqplib doing the same round trip.
 *
 * Both sides run on the same RabbitMQ (CDSS_TEST_AMQP_URL or the default service URL), with persistent messages,
 * publisher confirms, manual acks and 256 jobs outstanding:
 * - value: `JobClient.send(RequestAnalysis)` (records the job in a `MemoryJobStore`, publishes the request) →
 *   `JobWorker` (no-op handler; validates, publishes `succeeded`, then acks; a job this quick publishes no
 *   `accepted`, see `JobWorkerOptions.acceptedAfterMs`) → `JobClient` records the event in the store and acks.
 *   A job counts when its `succeeded` change is recorded.
 * - baseline: raw amqplib, no protocol: publish the same request body (confirmed) → a consumer publishes one
 *   result message (confirmed) and acks → a result consumer acks. A job counts when its result is consumed.
 * Both sides are set up first, each warmed up (untimed), then timed in short rounds that alternate in ABBA order
 * (end to end, raw, raw, end to end, ...) so that the load of this shared machine drifting hits both alike; the
 * median round of each side is reported. Every round ends with its outstanding jobs finished.
 *
 * Settings (environment): BENCH_ROUND_MS (2000), BENCH_ROUNDS (5 per side), BENCH_WARMUP_MS (1000). About 25 s.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { requireService } from '@cdss/core/testing';
import { JobClient, JobWorker, MemoryJobStore, RequestAnalysis, encodeMessage } from '@cdss/ai-jobs';
import { AmqpTransport } from '@cdss/ai-jobs/amqp';
import { noopHandler, sampleRequest, sampleRequestInput } from '@cdss/ai-jobs/testing';
import { intEnv } from './_lib.js';

const WINDOW = 256;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const roundMs = intEnv('BENCH_ROUND_MS', 2_000, 20_000);
const rounds = intEnv('BENCH_ROUNDS', 5, 15);
const warmupMs = intEnv('BENCH_WARMUP_MS', 1_000, 10_000);

const svc = await requireService('rabbitmq', { ci: false });
if (!svc.available) {
  log(svc.reason ?? 'rabbitmq unavailable');
  process.exit(1);
}
const url = svc.url;

/** Counts completions; `wait()` takes one completion (now, or the next one): a semaphore of finished jobs. */
function completionCounter(): { count: number; wait: () => Promise<void>; done: () => void } {
  const waiters: (() => void)[] = [];
  let credits = 0;
  const c = {
    count: 0,
    wait: () => {
      if (credits > 0) {
        credits--;
        return Promise.resolve();
      }
      return new Promise<void>((r) => waiters.push(r));
    },
    done: () => {
      c.count++;
      const w = waiters.shift();
      if (w) w();
      else credits++;
    },
  };
  return c;
}

/** One side of the comparison, set up and ready to drive. */
interface Side {
  name: string;
  /** Starts one job; resolves when it is published (confirmed). */
  start: () => Promise<void>;
  completions: ReturnType<typeof completionCounter>;
  close: () => Promise<void>;
}

interface Round {
  /** Completed jobs per second. */
  rate: number;
  jobs: number;
  /** This process's CPU (user + system) per job, in µs. */
  cpuUs: number;
}

/**
 * Keeps `WINDOW` jobs outstanding for `ms`, then waits for the outstanding ones (each loop takes one completion per
 * job it started, so none is left in flight when it returns); returns completions/s over the whole time.
 */
async function drive(side: Side, ms: number): Promise<Round> {
  const { start, completions } = side;
  const count0 = completions.count;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + ms;
  const loops = Array.from({ length: WINDOW }, async () => {
    while (performance.now() < end) {
      await start();
      await completions.wait();
    }
  });
  await Promise.all(loops);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const jobs = completions.count - count0;
  return { rate: jobs / elapsed, jobs, cpuUs: (cpu.user + cpu.system) / jobs };
}

async function raw(): Promise<Side> {
  const prefix = `bench.raw.${randomUUID().slice(0, 8)}`;
  const pubConn = await amqp.connect(url);
  const workConn = await amqp.connect(url);
  const resConn = await amqp.connect(url);
  const pub = await pubConn.createConfirmChannel();
  await pub.assertQueue(`${prefix}.work`, { durable: true });
  await pub.assertQueue(`${prefix}.results`, { durable: true });
  const workCh = await workConn.createConfirmChannel();
  await workCh.prefetch(WINDOW);
  const resCh = await resConn.createChannel();
  await resCh.prefetch(WINDOW);
  const body = encodeMessage(sampleRequest());
  const completions = completionCounter();
  await workCh.consume(`${prefix}.work`, (m) => {
    if (!m) return;
    workCh.sendToQueue(`${prefix}.results`, body.subarray(0, 400), { persistent: true }, (err: unknown) => {
      if (!err) workCh.ack(m);
    });
  });
  await resCh.consume(`${prefix}.results`, (m) => {
    if (!m) return;
    resCh.ack(m);
    completions.done();
  });
  return {
    name: 'raw',
    start: () =>
      new Promise<void>(
        (resolve, reject) =>
          void pub.sendToQueue(`${prefix}.work`, body, { persistent: true, messageId: randomUUID() }, (err: unknown) =>
            err ? reject(new Error('nack')) : resolve(),
          ),
      ),
    completions,
    close: async () => {
      await pub.deleteQueue(`${prefix}.work`);
      await pub.deleteQueue(`${prefix}.results`);
      for (const c of [pubConn, workConn, resConn]) await c.close();
    },
  };
}

async function endToEnd(): Promise<Side> {
  const prefix = `bench.e2e.${randomUUID().slice(0, 8)}`;
  const serverT = new AmqpTransport({ url, prefix });
  const workerT = new AmqpTransport({ url, prefix });
  // one event per job (succeeded; a no-op job ends before `acceptedAfterMs`): the same prefetch as the raw result
  // consumer's
  const client = new JobClient({ transport: serverT, store: new MemoryJobStore(), prefetch: WINDOW });
  const worker = new JobWorker({ transport: workerT, handler: noopHandler, prefetch: WINDOW });
  await client.start();
  await worker.start();
  const completions = completionCounter();
  client.subscribe((c) => {
    if (c.transition?.to === 'succeeded') completions.done();
  });
  return {
    name: 'e2e',
    start: async () => void (await client.send(new RequestAnalysis(sampleRequestInput()))),
    completions,
    close: async () => {
      await worker.stop();
      await client.stop();
      await workerT.close();
      await serverT.deleteTopology();
      await serverT.close();
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

log(
  `ai-jobs bench on ${new URL(url).host}, ${WINDOW} jobs outstanding, ${rounds} rounds of ${roundMs} ms per side ` +
    `(ABBA) after ${warmupMs} ms of warm-up each`,
);
const e2e = await endToEnd();
const base = await raw();
for (const side of [e2e, base]) await drive(side, warmupMs);
const results: Record<string, Round[]> = { e2e: [], raw: [] };
for (let i = 0; i < rounds; i++) {
  const order = i % 2 === 0 ? [e2e, base] : [base, e2e];
  for (const side of order) {
    const r = await drive(side, roundMs);
    results[side.name]!.push(r);
    log(
      `  round ${i + 1} ${side.name.padEnd(3)}: ${r.rate.toFixed(0).padStart(6)} jobs/s (${r.jobs} jobs), this process ${r.cpuUs.toFixed(0)} µs CPU per job`,
    );
  }
}
await e2e.close();
await base.close();
const value = median(results['e2e']!.map((r) => r.rate));
const baseline = median(results['raw']!.map((r) => r.rate));
log(
  `raw amqplib round trip: median ${baseline.toFixed(0)} jobs/s, ${median(results['raw']!.map((r) => r.cpuUs)).toFixed(0)} µs CPU per job`,
);
log(
  `@cdss/ai-jobs end to end: median ${value.toFixed(0)} jobs/s, ${median(results['e2e']!.map((r) => r.cpuUs)).toFixed(0)} µs CPU per job`,
);
process.stdout.write(
  `${JSON.stringify({
    bench: 'ai-jobs',
    unit: 'jobs/s',
    value: Math.round(value),
    baseline: Math.round(baseline),
    baseline_name: 'raw amqplib publish → consume → result publish → consume, confirms and acks',
    ratio: Number((value / baseline).toFixed(3)),
  })}\n`,
);
