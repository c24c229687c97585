/**
 * Polling: for callers that cannot receive webhooks or events, wait for a job to end by asking for it.
 * @packageDocumentation
 */
import { CdssError, TimeoutError } from '@cdss/core';
import { TERMINAL_STATES, type JobRecord } from './job-state.js';

/** Options of {@link pollJob}. */
export interface PollJobOptions {
  /** First interval, ms (default 1000); grows by `backoff` up to `maxIntervalMs`. */
  intervalMs?: number;
  /** Growth factor per poll (default 1.5). */
  backoff?: number;
  /** Largest interval, ms (default 10 000). */
  maxIntervalMs?: number;
  /** Give up after this long, ms (default 30 min). */
  timeoutMs?: number;
  /** Stops polling; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with each record whose state or progress changed. */
  onUpdate?: (job: JobRecord) => void;
  /** Default: `setTimeout`, abortable. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** ms since the epoch; default `Date.now`. */
  now?: () => number;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Polls until the job reaches a final state.
 * @param getJob - reads the job (e.g. `(id) => client.send(new GetAnalysis({ jobId: id }))`, or an HTTP GET)
 * @param jobId - the job
 * @param options - see {@link PollJobOptions}
 * @returns the final record (succeeded, failed or cancelled)
 * @throws `TimeoutError` (`@cdss/core`) after `timeoutMs`; the signal's reason when aborted; `CdssError` `JOB_NOT_FOUND`
 */
export async function pollJob(
  getJob: (jobId: string) => Promise<JobRecord | undefined>,
  jobId: string,
  options: PollJobOptions = {},
): Promise<JobRecord> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const deadline = now() + timeoutMs;
  let interval = options.intervalMs ?? 1000;
  let lastKey = '';
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason as Error;
    const job = await getJob(jobId);
    if (!job) throw new CdssError(`no job ${jobId}`, { code: 'JOB_NOT_FOUND' });
    const key = `${job.state}:${job.progress?.stage ?? ''}:${job.progress?.percent ?? ''}`;
    if (key !== lastKey) {
      lastKey = key;
      options.onUpdate?.(job);
    }
    if (TERMINAL_STATES.has(job.state)) return job;
    const left = deadline - now();
    if (left <= 0) throw new TimeoutError(`job ${jobId} still ${job.state} after ${timeoutMs} ms`, timeoutMs);
    await sleep(Math.min(interval, left), options.signal);
    interval = Math.min(options.maxIntervalMs ?? 10_000, interval * (options.backoff ?? 1.5));
  }
}
