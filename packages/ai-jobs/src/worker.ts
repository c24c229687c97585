/**
 * The worker side of the protocol in TypeScript: takes requests off the work queue, reports progress, publishes the
 * result, and only then acknowledges the request. A worker in another language does the same with the same
 * messages (see the README).
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CdssError } from '@cdss/core';
import {
  checkWorkerId,
  createAccepted,
  createMessage,
  createSucceeded,
  decodeMessage,
  encodeValidated,
  type MessageInput,
} from './codec.js';
import { errorSummary, silentLogger, type JobLogger } from './logger.js';
import {
  type AnalysisRequested,
  type AnalysisResult,
  type FailureReason,
  type JobMessage,
  type JobStage,
} from './protocol.js';
import type { Consumer, Delivery, JobTransport } from './transport.js';
import type { WebhookSender } from './webhooks.js';

/**
 * Thrown by a job handler to fail the job with a reason from the fixed list.
 * Retryable failures are retried through the retry queues until the attempts run out.
 */
export class JobFailure extends CdssError {
  /** From the fixed list. */
  readonly reason: FailureReason;
  /** Whether another attempt could succeed. */
  readonly retryable: boolean;
  /** PHI-free detail for operators. */
  readonly detail: string;
  /**
   * @param reason - from the fixed list
   * @param detail - PHI-free text for operators
   * @param options - `retryable` (default false), `cause`
   */
  constructor(reason: FailureReason, detail: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(`${reason}: ${detail}`, { code: 'JOB_FAILURE', cause: options.cause });
    this.reason = reason;
    this.retryable = options.retryable ?? false;
    this.detail = detail;
  }
}

/** What a job handler receives. */
export interface JobContext {
  /** The validated request. */
  readonly request: AnalysisRequested;
  /** 1 for the first try; each retry adds one. */
  readonly attempt: number;
  /** True when the broker delivered this request before (its worker died or lost its connection). */
  readonly redelivered: boolean;
  /** Aborted when the job is cancelled, its deadline passes, or the worker stops and the grace period ends. */
  readonly signal: AbortSignal;
  /**
   * Reports progress (published as `analysis.progress`, confirmed by the broker). Also refreshes the heartbeat.
   * @param stage - the pipeline stage
   * @param percent - overall progress 0–100
   */
  progress(stage: JobStage, percent: number): Promise<void>;
}

/** Runs one analysis. Return the result, or throw {@link JobFailure}; any other error is a retryable `internal-error`. */
export type JobHandler = (context: JobContext) => Promise<AnalysisResult>;

/** Options of {@link JobWorker}. */
export interface JobWorkerOptions {
  /** The transport (started by the worker if needed; closed by you). Required. */
  transport: JobTransport;
  /** The analysis. Required. */
  handler: JobHandler;
  /** Names this worker in events (1–128 characters, checked at construction). Default `<hostname>-<random>`. */
  workerId?: string;
  /** Jobs in flight at once (AMQP prefetch). Default 1: inference saturates the machine. */
  prefetch?: number;
  /** Tries per job, the first included. Default: one more than the transport's retry delays. */
  maxAttempts?: number;
  /**
   * How long a job may hold its delivery unacknowledged. RabbitMQ closes the channel of a consumer that holds a
   * delivery longer than `consumer_timeout` (30 min by default) and redelivers it, which would restart a long
   * inference forever. So when a job runs past `ackTimeoutMs` the worker acknowledges the request early and
   * carries on; from then on the job is protected by its heartbeats instead: `JobClient.reap()` re-publishes
   * the request of an `accepted`/`running` job whose heartbeat is older than its lease. Default 25 min.
   */
  ackTimeoutMs?: number;
  /** How often a running job publishes a heartbeat (`analysis.progress` repeating the last progress). Default 30 s. */
  heartbeatMs?: number;
  /** Also POSTs each event, signed, to the request's `callbackUrl` when set. */
  webhooks?: WebhookSender;
  /** Default: silent. */
  logger?: JobLogger;
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

interface Running {
  controller: AbortController;
  jobId: string;
  cancelledBy?: string;
  cancelReason?: string;
  done: Promise<void>;
}

const CANCELLED_MEMORY = 10_000;

/**
 * A job worker.
 * @example
 * ```ts
 * const worker = new JobWorker({ transport, handler: async (ctx) => runSegmentation(ctx) });
 * await worker.start();
 * // ... on SIGTERM:
 * await worker.stop({ graceMs: 60_000 });
 * await transport.close();
 * ```
 */
export class JobWorker {
  /** This worker's id, as it appears in events. */
  readonly workerId: string;
  readonly #t: JobTransport;
  readonly #handler: JobHandler;
  readonly #prefetch: number;
  readonly #maxAttempts: number;
  readonly #ackTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #webhooks: WebhookSender | undefined;
  readonly #log: JobLogger;
  readonly #now: () => number;
  readonly #running = new Map<string, Running>();
  readonly #cancelled = new Map<string, { by: string; reason?: string }>();
  #requests: Consumer | undefined;
  #control: Consumer | undefined;
  #stopping = false;

  /**
   * @param options - see {@link JobWorkerOptions}
   * @throws `ValidationError` (`@cdss/core`) for a `workerId` the protocol does not accept (1–128 characters)
   */
  constructor(options: JobWorkerOptions) {
    this.#t = options.transport;
    this.#handler = options.handler;
    this.workerId = checkWorkerId(options.workerId ?? `${hostname()}-${randomUUID().slice(0, 8)}`);
    this.#prefetch = options.prefetch ?? 1;
    this.#maxAttempts = options.maxAttempts ?? options.transport.retryDelaysMs.length + 1;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 25 * 60_000;
    this.#heartbeatMs = options.heartbeatMs ?? 30_000;
    this.#webhooks = options.webhooks;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  /** Jobs running now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** Starts the transport (if needed) and consuming. */
  async start(): Promise<void> {
    await this.#t.start();
    this.#control = await this.#t.consumeControl((d) => this.#onControl(d));
    this.#requests = await this.#t.consumeRequests((d) => this.#onRequest(d), { prefetch: this.#prefetch });
  }

  /**
   * Graceful shutdown: stop taking requests, let running jobs finish for up to `graceMs` (default 30 s), then
   * abort the rest and hand their requests back to the queue for another worker. Does not close the transport.
   * @param options - `graceMs`
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    this.#stopping = true;
    await this.#requests?.cancel();
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), options.graceMs ?? 30_000))),
    ]);
    clearTimeout(timer);
    if (graceOver) {
      for (const r of this.#running.values())
        r.controller.abort(new CdssError('worker stopping', { code: 'WORKER_STOPPING' }));
      await Promise.all([...this.#running.values()].map((r) => r.done));
    }
    await this.#control?.cancel();
  }

  async #onControl(delivery: Delivery): Promise<void> {
    const decoded = decodeMessage(delivery.body);
    await delivery.ack();
    if (!decoded.ok || decoded.message.type !== 'analysis.cancelled') return;
    const { jobId, cancelledBy, reason } = decoded.message;
    this.#cancelled.set(jobId, reason === undefined ? { by: cancelledBy } : { by: cancelledBy, reason });
    if (this.#cancelled.size > CANCELLED_MEMORY) this.#cancelled.delete(this.#cancelled.keys().next().value!);
    const running = this.#running.get(jobId);
    if (running) {
      running.cancelledBy = cancelledBy;
      if (reason !== undefined) running.cancelReason = reason;
      running.controller.abort(new CdssError('job cancelled', { code: 'JOB_CANCELLED' }));
    }
  }

  async #emit(input: MessageInput, request: AnalysisRequested): Promise<void> {
    await this.#publishEvent(createMessage(input, this.#now()), request);
  }

  async #publishEvent(message: JobMessage, request: AnalysisRequested): Promise<void> {
    await this.#t.publishEvent(`job.${message.type.slice('analysis.'.length)}`, {
      body: encodeValidated(message),
      messageId: message.messageId,
      type: message.type,
      correlationId: message.jobId,
    });
    if (this.#webhooks && request.callbackUrl) {
      // best effort beside the broker: the AMQP event is the durable path
      this.#webhooks.deliver(request.callbackUrl, message).catch((error: unknown) => {
        this.#log.warn({ jobId: message.jobId, err: errorSummary(error) }, 'webhook delivery failed');
      });
    }
  }

  async #onRequest(delivery: Delivery): Promise<void> {
    if (this.#stopping) {
      // arrived while the consumer was being cancelled: hand it back for another worker
      await delivery.requeue();
      return;
    }
    const decoded = decodeMessage(delivery.body);
    if (!decoded.ok) {
      this.#log.warn(
        { messageId: delivery.messageId, reason: decoded.reason, detail: decoded.detail },
        'invalid request dead-lettered',
      );
      await delivery.deadLetter(decoded.reason, decoded.detail);
      return;
    }
    if (decoded.message.type !== 'analysis.requested') {
      await delivery.deadLetter('unexpected-type', `work queue got ${decoded.message.type}`);
      return;
    }
    const request = decoded.message;
    if (this.#running.has(request.jobId)) {
      // the same job twice in this worker (a duplicate publish): the running copy will report
      await delivery.ack();
      return;
    }
    let finish!: () => void;
    const running: Running = {
      controller: new AbortController(),
      jobId: request.jobId,
      done: new Promise<void>((r) => (finish = r)),
    };
    this.#running.set(request.jobId, running);
    try {
      await this.#run(delivery, request, running);
    } finally {
      this.#running.delete(request.jobId);
      finish();
    }
  }

  async #run(delivery: Delivery, request: AnalysisRequested, running: Running): Promise<void> {
    const { jobId } = request;
    const base = { jobId, workerId: this.workerId };
    const cancelled = this.#cancelled.get(jobId);
    if (cancelled) {
      await this.#emit(
        {
          type: 'analysis.cancelled',
          jobId,
          cancelledBy: cancelled.by,
          ...(cancelled.reason === undefined ? {} : { reason: cancelled.reason }),
        },
        request,
      );
      await delivery.ack();
      return;
    }
    if (request.deadline && Date.parse(request.deadline) <= this.#now()) {
      await this.#emit(
        {
          type: 'analysis.failed',
          ...base,
          reason: 'deadline-exceeded',
          retryable: false,
          detail: 'deadline passed before the job started',
        },
        request,
      );
      await delivery.ack();
      return;
    }
    // not awaited here: the handler starts at once, and the confirm is awaited before the request is settled.
    // Events of one job leave on one channel in order, so `accepted` still reaches the server first.
    const accepted = this.#publishEvent(createAccepted(request, this.workerId, delivery.attempt, this.#now()), request);
    accepted.catch(() => {});

    let last: { stage: JobStage; percent: number } = { stage: 'fetch', percent: 0 };
    let acked = false;
    const heartbeat = setInterval(() => {
      this.#emit({ type: 'analysis.progress', ...base, ...last }, request).catch(() => {});
    }, this.#heartbeatMs);
    const lease = setTimeout(() => {
      acked = true;
      this.#log.info(
        { jobId, ackTimeoutMs: this.#ackTimeoutMs },
        'long job: acknowledging early, heartbeats keep the lease',
      );
      void accepted.then(() => delivery.ack());
    }, this.#ackTimeoutMs);
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (request.deadline) {
      deadlineTimer = setTimeout(
        () => running.controller.abort(new JobFailure('deadline-exceeded', 'deadline passed while running')),
        Math.max(0, Date.parse(request.deadline) - this.#now()),
      );
    }
    const settle = async (): Promise<void> => {
      await accepted;
      if (!acked) {
        acked = true;
        await delivery.ack();
      }
    };
    try {
      const context: JobContext = {
        request,
        attempt: delivery.attempt,
        redelivered: delivery.redelivered,
        signal: running.controller.signal,
        progress: async (stage, percent) => {
          last = { stage, percent: Math.max(0, Math.min(100, percent)) };
          await this.#emit({ type: 'analysis.progress', ...base, ...last }, request);
        },
      };
      const result = await abortable(this.#handler(context), running.controller.signal);
      let succeeded;
      try {
        succeeded = createSucceeded(request, this.workerId, result, this.#now());
      } catch (error) {
        throw new JobFailure('internal-error', 'handler returned an invalid result', { cause: error });
      }
      await this.#publishEvent(succeeded, request);
      await settle();
    } catch (error) {
      const signal = running.controller.signal;
      const reason: unknown = signal.aborted ? signal.reason : error;
      if (CdssError.isInstance(reason) && reason.code === 'WORKER_STOPPING') {
        if (!acked) await delivery.requeue();
        return;
      }
      await accepted;
      if (CdssError.isInstance(reason) && reason.code === 'JOB_CANCELLED') {
        await this.#emit(
          {
            type: 'analysis.cancelled',
            jobId,
            cancelledBy: running.cancelledBy ?? 'unknown',
            ...(running.cancelReason === undefined ? {} : { reason: running.cancelReason }),
          },
          request,
        );
        await settle();
        return;
      }
      if (!(reason instanceof JobFailure)) {
        // the message stays in the (injected, redacting) log; the event that is stored and shown carries only the
        // error's name, because a library's message may quote data
        this.#log.warn({ jobId, attempt: delivery.attempt, err: errorSummary(reason) }, 'job handler threw');
      }
      const failure =
        reason instanceof JobFailure
          ? reason
          : new JobFailure('internal-error', `unexpected ${errorSummary(reason).name} in the job handler`, {
              retryable: true,
              cause: reason,
            });
      if (failure.retryable && !acked && delivery.attempt < this.#maxAttempts) {
        this.#log.info({ jobId, attempt: delivery.attempt, reason: failure.reason }, 'retrying job');
        await delivery.retry(delivery.attempt - 1);
        return;
      }
      const exhausted = failure.retryable && delivery.attempt >= this.#maxAttempts;
      await this.#emit(
        {
          type: 'analysis.failed',
          ...base,
          reason: failure.reason,
          retryable: failure.retryable,
          detail: exhausted ? `${failure.detail} (after ${delivery.attempt} attempts)` : failure.detail,
        },
        request,
      );
      await settle();
    } finally {
      clearInterval(heartbeat);
      clearTimeout(lease);
      clearTimeout(deadlineTimer);
    }
  }
}

/** Rejects with the signal's reason as soon as it aborts, even if the handler ignores the signal. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
