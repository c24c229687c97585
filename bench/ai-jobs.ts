/**
 * ai-jobs: jobs/s end to end (publish → consume → record → result event) vs raw amqplib doing the same round trip.
 *
 * Both sides run on the same RabbitMQ (CDSS_TEST_AMQP_URL or the default service URL), with persistent messages,
 * publisher confirms, manual acks and 256 jobs outstanding, for a bounded time each:
 * - value: `JobClient.send(RequestAnalysis)` (records the job in a `MemoryJobStore`, publishes the request) →
 *   `JobWorker` (no-op handler; validates, publishes `succeeded`, then acks; a job this quick publishes no
 *   `accepted`, see `JobWorkerOptions.acceptedAfterMs`) → `JobClient` records the event in the store and acks.
 *   A job counts when its `succeeded` change is recorded.
 * - baseline: raw amqplib, no protocol: publish the same request body (confirmed) → a consumer publishes one
 *   result message (confirmed) and acks → a result consumer acks. A job counts when its result is consumed.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { requireService } from '@cdss/core/testing';
import { AmqpTransport, JobClient, JobWorker, MemoryJobStore, RequestAnalysis, encodeMessage } from '@cdss/ai-jobs';
import { noopHandler, sampleRequest, sampleRequestInput } from '@cdss/ai-jobs/testing';

const WINDOW = 256;
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const svc = await requireService('rabbitmq', { ci: false });
if (!svc.available) {
  log(svc.reason ?? 'rabbitmq unavailable');
  process.exit(1);
}
const url = svc.url;

/** Keeps `WINDOW` jobs outstanding for `SECONDS`, then waits for the outstanding ones; returns completions/s. */
async function drive(
  start: () => Promise<void>,
  completions: { count: number; wait: () => Promise<void> },
): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  const loops = Array.from({ length: WINDOW }, async () => {
    while (performance.now() < end) {
      await start();
      await completions.wait();
    }
  });
  await Promise.all(loops);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  log(
    `  ${completions.count} jobs in ${elapsed.toFixed(1)} s; this process used ${((cpu.user + cpu.system) / completions.count).toFixed(0)} µs CPU per job`,
  );
  return completions.count / elapsed;
}

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

async function raw(): Promise<number> {
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
  const counter = completionCounter();
  await workCh.consume(`${prefix}.work`, (m) => {
    if (!m) return;
    workCh.sendToQueue(`${prefix}.results`, body.subarray(0, 400), { persistent: true }, (err: unknown) => {
      if (!err) workCh.ack(m);
    });
  });
  await resCh.consume(`${prefix}.results`, (m) => {
    if (!m) return;
    resCh.ack(m);
    counter.done();
  });
  const rate = await drive(
    () =>
      new Promise<void>(
        (resolve, reject) =>
          void pub.sendToQueue(`${prefix}.work`, body, { persistent: true, messageId: randomUUID() }, (err: unknown) =>
            err ? reject(new Error('nack')) : resolve(),
          ),
      ),
    counter,
  );
  await pub.deleteQueue(`${prefix}.work`);
  await pub.deleteQueue(`${prefix}.results`);
  for (const c of [pubConn, workConn, resConn]) await c.close();
  return rate;
}

async function endToEnd(): Promise<number> {
  const prefix = `bench.e2e.${randomUUID().slice(0, 8)}`;
  const serverT = new AmqpTransport({ url, prefix });
  const workerT = new AmqpTransport({ url, prefix });
  // one event per job (succeeded; a no-op job ends before `acceptedAfterMs`): the same prefetch as the raw result
  // consumer's
  const client = new JobClient({ transport: serverT, store: new MemoryJobStore(), prefetch: WINDOW });
  const worker = new JobWorker({ transport: workerT, handler: noopHandler, prefetch: WINDOW });
  await client.start();
  await worker.start();
  const counter = completionCounter();
  client.subscribe((c) => {
    if (c.transition?.to === 'succeeded') counter.done();
  });
  const rate = await drive(async () => void (await client.send(new RequestAnalysis(sampleRequestInput()))), counter);
  await worker.stop();
  await client.stop();
  await workerT.close();
  await serverT.deleteTopology();
  await serverT.close();
  return rate;
}

log(`ai-jobs bench on ${new URL(url).host}, ${WINDOW} jobs outstanding, ${SECONDS} s per side`);
const baseline = await raw();
log(`raw amqplib round trip: ${baseline.toFixed(0)} jobs/s`);
const value = await endToEnd();
log(`@cdss/ai-jobs end to end: ${value.toFixed(0)} jobs/s`);
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
