/**
 * Several server processes on one port (`CDSS_PROCESSES`, node:cluster): the primary process forks the workers, each
 * a whole server composed from the same configuration, and the primary hands incoming connections to them in turn.
 * Only connected mode allows it: every piece of state (cache L2, idempotency keys, jobs, reviews, audit, outbox,
 * rate limits, events) is in MySQL or RabbitMQ, so N processes answer as one, just as N instances behind nginx do.
 * A worker that dies is replaced; the primary stops when its workers keep dying at start. `/metrics`, whichever
 * process answers it, reports the whole cluster (prom-client's `AggregatorRegistry`, through the primary).
 * @see https://nodejs.org/api/cluster.html
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** Deaths within {@link CRASH_WINDOW_MS} after which the primary gives up instead of forking again. */
const MAX_QUICK_DEATHS = 5;
const CRASH_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 1_000;
const METRICS_REQUEST = 'cdss:metrics-request';
const METRICS_ANSWER = 'cdss:metrics-answer';

interface MetricsMessage {
  type: typeof METRICS_REQUEST | typeof METRICS_ANSWER;
  id: number;
  text?: string;
  error?: string;
}

const isMetricsMessage = (message: unknown, type: MetricsMessage['type']): message is MetricsMessage =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

/**
 * Runs the primary: forks `count` workers (they run this same entry point and start a server each), replaces any
 * that dies, and on SIGTERM/SIGINT stops them all gracefully, then exits.
 * @param count - processes to run
 * @param logger - the primary's logger
 * @param graceMs - how long a worker may take to finish its requests before it is killed
 */
export function runPrimary(count: number, logger: Logger, graceMs: number): void {
  let stopping = false;
  let exitCode = 0;
  let listening = 0;
  const deaths: number[] = [];
  const fork = (): Worker => cluster.fork();

  // A worker asked for /metrics: gather every worker's registry, summed.
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isMetricsMessage(message, METRICS_REQUEST)) return;
    const answer = (fields: Partial<MetricsMessage>): void => {
      if (worker.isConnected()) worker.send({ type: METRICS_ANSWER, id: message.id, ...fields });
    };
    aggregator.clusterMetrics().then(
      (text) => answer({ text }),
      (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
    );
  });

  cluster.on('listening', (worker, address) => {
    listening++;
    logger.debug({ pid: worker.process.pid }, 'server process listening');
    if (listening === count)
      logger.info({ processes: count, port: address.port }, 'CDSS reference server listening (cluster)');
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while ((deaths[0] ?? now) < now - CRASH_WINDOW_MS) deaths.shift();
    if (deaths.length >= MAX_QUICK_DEATHS) {
      logger.fatal({ deaths: deaths.length }, 'server processes keep dying: stopping');
      stop('crash loop', 1);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'a server process died: starting another');
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_DELAY_MS).unref();
  });

  const stop = (reason: string, status = 0): void => {
    if (stopping) return;
    stopping = true;
    exitCode = status;
    logger.info({ reason }, 'stopping the server processes');
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (workers.length === 0) process.exit(exitCode);
    for (const worker of workers) worker.process.kill('SIGTERM');
    setTimeout(() => {
      for (const worker of workers) worker.process.kill('SIGKILL');
      process.exit(1);
    }, graceMs + 5_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  for (let i = 0; i < count; i++) fork();
}

/**
 * The Prometheus text `/metrics` answers: in a cluster worker, the whole cluster's metrics (asked of the primary,
 * which gathers every worker's registry); otherwise this registry's.
 * @param registry - this process's registry
 */
export function clusterMetrics(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker || !process.send) return () => registry.metrics();
  // Answers the primary's requests for this process's metrics.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message, METRICS_ANSWER)) return;
    const request = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.text !== undefined) request?.resolve(message.text);
    else request?.reject(new Error(`cluster metrics: ${message.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('cluster metrics: the primary did not answer'));
      }, 10_000);
      waiting.set(id, {
        resolve: (text) => (clearTimeout(timer), resolve(text)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsMessage);
    });
}
