/**
 * The worker side of the protocol in TypeScript: takes requests off the work queue, reports progress, publishes the
 * result, and only then acknowledges the request. A worker in another language does the same with the same
 * messages (see the README).
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CdssError, ValidationError } from '@cdss/core';
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
  /**
   * How long a job runs before the worker publishes `analysis.accepted` for it. A job that ends sooner publishes
   * only its final event (`succeeded`, `failed` or `cancelled`; the first two carry the attempt and worker id), so
   * a quick job costs the broker two messages (its request and its result) instead of three. A job still running
   * after this delay publishes `accepted` then, and from there on is tracked as before (heartbeats every
   * `heartbeatMs` after it, the early acknowledgement at `ackTimeoutMs`). A job that reports progress sooner
   * publishes `accepted` just before its first progress; the delay is never longer than `heartbeatMs` or
   * `ackTimeoutMs`. 0 publishes `accepted` as soon as each job starts. Default 200 ms.
   */
  acceptedAfterMs?: number;
  /** Also POSTs each event, signed, to the request's `callbackUrl` when set. */
  webhooks?: WebhookSender;
  /** Default: silent. */
  logger?: JobLogger;
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

interface Running {
  jobId: string;
  cancelledBy?: string;
  cancelReason?: string;
  done: Promise<void>;
  /** Set once the job is cancelled, passes its deadline, or the worker stops ({@link abortRun}). */
  aborted: boolean;
  abortReason: unknown;
  /** Made when the handler first reads `signal` ({@link signalOf}). */
  controller: AbortController | undefined;
  /** Rejects the wait for the handler ({@link untilAborted}). */
  reject: ((reason: unknown) => void) | undefined;
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
  readonly #acceptedAfterMs: number;
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
   * @throws `ValidationError` (`@cdss/core`) for a `workerId` the protocol does not accept (1–128 characters), or an
   *   `acceptedAfterMs` that is not a finite number ≥ 0
   */
  constructor(options: JobWorkerOptions) {
    this.#t = options.transport;
    this.#handler = options.handler;
    this.workerId = checkWorkerId(options.workerId ?? `${hostname()}-${randomUUID().slice(0, 8)}`);
    this.#prefetch = options.prefetch ?? 1;
    this.#maxAttempts = options.maxAttempts ?? options.transport.retryDelaysMs.length + 1;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 25 * 60_000;
    this.#heartbeatMs = options.heartbeatMs ?? 30_000;
    const acceptedAfterMs = options.acceptedAfterMs ?? 200;
    if (!Number.isFinite(acceptedAfterMs) || acceptedAfterMs < 0)
      throw new ValidationError('invalid JobWorker options', [
        { path: 'acceptedAfterMs', message: 'must be a finite number ≥ 0', code: 'too_small' },
      ]);
    this.#acceptedAfterMs = acceptedAfterMs;
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
        abortRun(r, new CdssError('worker stopping', { code: 'WORKER_STOPPING' }));
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
      abortRun(running, new CdssError('job cancelled', { code: 'JOB_CANCELLED' }));
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
      jobId: request.jobId,
      done: new Promise<void>((r) => (finish = r)),
      aborted: false,
      abortReason: undefined,
      controller: undefined,
      reject: undefined,
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
    const { attempt } = delivery;
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
          attempt,
          reason: 'deadline-exceeded',
          retryable: false,
          detail: 'deadline passed before the job started',
        },
        request,
      );
      await delivery.ack();
      return;
    }

    // `analysis.accepted` is published only for a job that is still running after `acceptedAfterMs` (or that
    // reports progress, or reaches its first heartbeat or the early-ack lease sooner): a job that ends before then
    // publishes only its final event, which carries the attempt. Once published, its confirm is awaited before the
    // request is settled. Events of one job leave on one channel in order, so `accepted` reaches the server before
    // the job's progress and final event.
    let accepted: Promise<void> | undefined;
    const accept = (): Promise<void> => {
      if (accepted === undefined) {
        accepted = this.#publishEvent(createAccepted(request, this.workerId, attempt, this.#now()), request);
        accepted.catch(() => {});
      }
      return accepted;
    };
    let last: { stage: JobStage; percent: number } = { stage: 'fetch', percent: 0 };
    let acked = false;
    let handlerDone = false;
    // timers only for jobs that need them: a fast job arms one (the accepted delay), plus its deadline if it has one
    let heartbeat: NodeJS.Timeout | undefined;
    let lease: NodeJS.Timeout | undefined;
    let starter: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    const beat = (): void => {
      this.#emit({ type: 'analysis.progress', ...base, ...last }, request).catch(() => {});
    };
    const delay = Math.min(this.#acceptedAfterMs, this.#heartbeatMs, this.#ackTimeoutMs);
    // a long job: from here on it is tracked as before (accepted, heartbeats, the early-ack lease at ackTimeoutMs)
    const onLong = (): void => {
      starter = undefined;
      if (handlerDone) return;
      void accept();
      if (delay > 0 && delay === this.#heartbeatMs) beat(); // the first heartbeat is due now
      heartbeat = setInterval(beat, this.#heartbeatMs);
      lease = setTimeout(() => {
        lease = undefined;
        acked = true;
        this.#log.info(
          { jobId, ackTimeoutMs: this.#ackTimeoutMs },
          'long job: acknowledging early, heartbeats keep the lease',
        );
        accept()
          .then(() => delivery.ack())
          .catch(() => {});
      }, this.#ackTimeoutMs - delay);
    };
    const stopTimers = (): void => {
      handlerDone = true;
      clearTimeout(starter);
      clearInterval(heartbeat);
      clearTimeout(lease);
      clearTimeout(deadlineTimer);
    };
    if (delay > 0) starter = setTimeout(onLong, delay);
    else onLong();
    if (request.deadline) {
      deadlineTimer = setTimeout(
        () => abortRun(running, new JobFailure('deadline-exceeded', 'deadline passed while running')),
        Math.max(0, Date.parse(request.deadline) - this.#now()),
      );
    }
    const settle = async (): Promise<void> => {
      if (accepted) await accepted;
      if (!acked) {
        acked = true;
        await delivery.ack();
      }
    };
    try {
      const context: JobContext = {
        request,
        attempt,
        redelivered: delivery.redelivered,
        get signal() {
          return signalOf(running);
        },
        progress: async (stage, percent) => {
          last = { stage, percent: Math.max(0, Math.min(100, percent)) };
          if (!handlerDone) void accept();
          await this.#emit({ type: 'analysis.progress', ...base, ...last }, request);
        },
      };
      let result: AnalysisResult;
      try {
        result = await untilAborted(running, () => this.#handler(context));
      } finally {
        stopTimers();
      }
      let succeeded;
      try {
        succeeded = createSucceeded(request, this.workerId, result, this.#now(), attempt);
      } catch (error) {
        throw new JobFailure('internal-error', 'handler returned an invalid result', { cause: error });
      }
      await this.#publishEvent(succeeded, request);
      await settle();
    } catch (error) {
      stopTimers();
      const reason: unknown = running.aborted ? running.abortReason : error;
      if (CdssError.isInstance(reason) && reason.code === 'WORKER_STOPPING') {
        if (!acked) await delivery.requeue();
        return;
      }
      if (accepted) await accepted;
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
        this.#log.warn({ jobId, attempt, err: errorSummary(reason) }, 'job handler threw');
      }
      const failure =
        reason instanceof JobFailure
          ? reason
          : new JobFailure('internal-error', `unexpected ${errorSummary(reason).name} in the job handler`, {
              retryable: true,
              cause: reason,
            });
      if (failure.retryable && !acked && attempt < this.#maxAttempts) {
        this.#log.info({ jobId, attempt, reason: failure.reason }, 'retrying job');
        await delivery.retry(attempt - 1);
        return;
      }
      const exhausted = failure.retryable && attempt >= this.#maxAttempts;
      await this.#emit(
        {
          type: 'analysis.failed',
          ...base,
          attempt,
          reason: failure.reason,
          retryable: failure.retryable,
          detail: exhausted ? `${failure.detail} (after ${attempt} attempts)` : failure.detail,
        },
        request,
      );
      await settle();
    } finally {
      stopTimers();
    }
  }
}

/** Aborts a job: its signal (if the handler asked for it) and the wait for its handler. Later calls do nothing. */
function abortRun(running: Running, reason: Error): void {
  if (running.aborted) return;
  running.aborted = true;
  running.abortReason = reason;
  running.controller?.abort(reason);
  running.reject?.(reason);
}

/** The job's abort signal, made on first use (most handlers that finish quickly never read it). */
function signalOf(running: Running): AbortSignal {
  if (running.controller === undefined) {
    running.controller = new AbortController();
    if (running.aborted) running.controller.abort(running.abortReason);
  }
  return running.controller.signal;
}

/** Runs the handler; rejects with the abort reason as soon as the job is aborted, even if the handler ignores it. */
function untilAborted<T>(running: Running, handler: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const promise = handler();
    if (running.aborted) {
      reject(running.abortReason);
      return;
    }
    running.reject = reject;
    promise.then(
      (v) => {
        running.reject = undefined;
        resolve(v);
      },
      (e: unknown) => {
        running.reject = undefined;
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
