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

/** What a {@link JobRun} needs from its worker: its settings and its way of publishing events. */
interface WorkerHost {
  readonly workerId: string;
  readonly handler: JobHandler;
  readonly maxAttempts: number;
  readonly ackTimeoutMs: number;
  readonly heartbeatMs: number;
  /** `min(acceptedAfterMs, heartbeatMs, ackTimeoutMs)`: when a job still running counts as a long one. */
  readonly longAfterMs: number;
  readonly log: JobLogger;
  readonly now: () => number;
  publishEvent(message: JobMessage, request: AnalysisRequested): Promise<void>;
  emit(input: MessageInput, request: AnalysisRequested): Promise<void>;
}

const CANCELLED_MEMORY = 10_000;

/** The `analysis.cancelled` a worker publishes for a job that `by` cancelled (queued or running). */
function cancelledInput(jobId: string, by: string, reason: string | undefined): MessageInput {
  return { type: 'analysis.cancelled', jobId, cancelledBy: by, ...(reason === undefined ? {} : { reason }) };
}

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
  readonly #prefetch: number;
  readonly #webhooks: WebhookSender | undefined;
  readonly #log: JobLogger;
  readonly #now: () => number;
  readonly #host: WorkerHost;
  readonly #running = new Map<string, JobRun>();
  readonly #cancelled = new Map<string, { by: string; reason?: string }>();
  #requests: Consumer | undefined;
  #control: Consumer | undefined;
  #stopping = false;
  /** Resolved when the last running job ends; made only while someone waits ({@link JobWorker.stop}). */
  #idle: { promise: Promise<void>; resolve: () => void } | undefined;

  /**
   * @param options - see {@link JobWorkerOptions}
   * @throws `ValidationError` (`@cdss/core`) for a `workerId` the protocol does not accept (1–128 characters), or an
   *   `acceptedAfterMs` that is not a finite number ≥ 0
   */
  constructor(options: JobWorkerOptions) {
    this.#t = options.transport;
    this.workerId = checkWorkerId(options.workerId ?? `${hostname()}-${randomUUID().slice(0, 8)}`);
    this.#prefetch = options.prefetch ?? 1;
    const ackTimeoutMs = options.ackTimeoutMs ?? 25 * 60_000;
    const heartbeatMs = options.heartbeatMs ?? 30_000;
    const acceptedAfterMs = options.acceptedAfterMs ?? 200;
    if (!Number.isFinite(acceptedAfterMs) || acceptedAfterMs < 0)
      throw new ValidationError('invalid JobWorker options', [
        { path: 'acceptedAfterMs', message: 'must be a finite number ≥ 0', code: 'too_small' },
      ]);
    this.#webhooks = options.webhooks;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#host = {
      workerId: this.workerId,
      handler: options.handler,
      maxAttempts: options.maxAttempts ?? options.transport.retryDelaysMs.length + 1,
      ackTimeoutMs,
      heartbeatMs,
      longAfterMs: Math.min(acceptedAfterMs, heartbeatMs, ackTimeoutMs),
      log: this.#log,
      now: this.#now,
      publishEvent: (message, request) => this.#publishEvent(message, request),
      emit: (input, request) => this.#publishEvent(createMessage(input, this.#now()), request),
    };
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
    let timer: NodeJS.Timeout | undefined;
    const graceOver = await Promise.race([
      this.#allDone().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), options.graceMs ?? 30_000))),
    ]);
    clearTimeout(timer);
    if (graceOver) {
      for (const r of this.#running.values()) r.abort(new CdssError('worker stopping', { code: 'WORKER_STOPPING' }));
      await this.#allDone();
    }
    await this.#control?.cancel();
  }

  /** Resolves once no job is running. */
  #allDone(): Promise<void> {
    if (this.#running.size === 0) return Promise.resolve();
    if (!this.#idle) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#idle = { promise, resolve };
    }
    return this.#idle.promise;
  }

  async #onControl(delivery: Delivery): Promise<void> {
    const decoded = decodeMessage(delivery.body);
    await delivery.ack();
    if (!decoded.ok || decoded.message.type !== 'analysis.cancelled') return;
    const { jobId, cancelledBy, reason } = decoded.message;
    this.#cancelled.set(jobId, reason === undefined ? { by: cancelledBy } : { by: cancelledBy, reason });
    if (this.#cancelled.size > CANCELLED_MEMORY) this.#cancelled.delete(this.#cancelled.keys().next().value!);
    this.#running.get(jobId)?.cancel(cancelledBy, reason);
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
    const { jobId } = request;
    if (this.#running.has(jobId)) {
      // the same job twice in this worker (a duplicate publish): the running copy will report
      await delivery.ack();
      return;
    }
    const cancelled = this.#cancelled.get(jobId);
    if (cancelled) {
      // cancelled while queued: report it, do not run it
      await this.#host.emit(cancelledInput(jobId, cancelled.by, cancelled.reason), request);
      await delivery.ack();
      return;
    }
    const run = new JobRun(this.#host, delivery, request);
    this.#running.set(jobId, run);
    try {
      await run.run();
    } finally {
      this.#running.delete(jobId);
      if (this.#idle && this.#running.size === 0) {
        this.#idle.resolve();
        this.#idle = undefined;
      }
    }
  }
}

/**
 * One job in a worker: its events, timers and abort state, as fields and methods rather than a dozen closures per job
 * (they showed up in profiles as allocation and garbage collection).
 *
 * `analysis.accepted` is published only for a job that is still running after `longAfterMs` (or that reports
 * progress sooner): a job that ends before then publishes only its final event, which carries the attempt. Once
 * published, its confirm is awaited before the request is settled. Events of one job leave on one channel in order,
 * so `accepted` reaches the server before the job's progress and final event. The heartbeat and the early-ack lease
 * are armed only for a long job; the deadline timer only for a request with a deadline; the `AbortController` only
 * when the handler reads `signal`.
 */
class JobRun {
  readonly #host: WorkerHost;
  readonly #delivery: Delivery;
  readonly #request: AnalysisRequested;
  /** The confirm of this job's `analysis.accepted`, once published. */
  #accepted: Promise<void> | undefined;
  #stage: JobStage = 'fetch';
  #percent = 0;
  #acked = false;
  /** The handler has settled (or the job was aborted): no more `accepted` or heartbeats. */
  #handlerDone = false;
  #starter: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lease: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #aborted = false;
  #abortReason: unknown;
  #controller: AbortController | undefined;
  #reject: ((reason: unknown) => void) | undefined;
  #cancelledBy: string | undefined;
  #cancelReason: string | undefined;

  constructor(host: WorkerHost, delivery: Delivery, request: AnalysisRequested) {
    this.#host = host;
    this.#delivery = delivery;
    this.#request = request;
  }

  /** The job's abort signal, made on first use (most handlers that finish quickly never read it). */
  signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Aborts the job: its signal (if made) and the wait for its handler. Later calls change nothing. */
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  /** A cancellation from the server: abort, and report who cancelled. */
  cancel(by: string, reason: string | undefined): void {
    if (this.#aborted) return;
    this.#cancelledBy = by;
    this.#cancelReason = reason;
    this.abort(new CdssError('job cancelled', { code: 'JOB_CANCELLED' }));
  }

  /** Publishes `accepted` unless it was (not awaited: the publish is queued on the channel before later events). */
  #accept(): Promise<void> {
    if (this.#accepted === undefined) {
      const h = this.#host;
      this.#accepted = h.publishEvent(
        createAccepted(this.#request, h.workerId, this.#delivery.attempt, h.now()),
        this.#request,
      );
      this.#accepted.catch(() => {});
    }
    return this.#accepted;
  }

  /** Publishes `analysis.progress` with the last stage and percent reported. */
  #emitProgress(): Promise<void> {
    return this.#host.emit(
      {
        type: 'analysis.progress',
        jobId: this.#request.jobId,
        workerId: this.#host.workerId,
        stage: this.#stage,
        percent: this.#percent,
      },
      this.#request,
    );
  }

  /** Publishes a heartbeat: `analysis.progress` repeating the last progress. */
  beat(): void {
    this.#emitProgress().catch(() => {});
  }

  /** The job is still running after `longAfterMs`: from here on it is tracked as before (accepted, heartbeats, lease). */
  onLong(): void {
    this.#starter = undefined;
    if (this.#handlerDone) return;
    const h = this.#host;
    void this.#accept();
    if (h.longAfterMs > 0 && h.longAfterMs === h.heartbeatMs) this.beat(); // the first heartbeat is due now
    this.#heartbeat = setInterval(beatTimer, h.heartbeatMs, this);
    this.#lease = setTimeout(leaseTimer, h.ackTimeoutMs - h.longAfterMs, this);
  }

  /** Past `ackTimeoutMs`: acknowledge the request early (after `accepted` is confirmed); heartbeats keep the lease. */
  onLease(): void {
    this.#lease = undefined;
    this.#acked = true;
    this.#host.log.info(
      { jobId: this.#request.jobId, ackTimeoutMs: this.#host.ackTimeoutMs },
      'long job: acknowledging early, heartbeats keep the lease',
    );
    this.#accept()
      .then(() => this.#delivery.ack())
      .catch(() => {});
  }

  onDeadline(): void {
    this.#deadline = undefined;
    this.abort(new JobFailure('deadline-exceeded', 'deadline passed while running'));
  }

  #stopTimers(): void {
    this.#handlerDone = true;
    clearTimeout(this.#starter);
    clearInterval(this.#heartbeat);
    clearTimeout(this.#lease);
    clearTimeout(this.#deadline);
  }

  /** Reports progress for the handler: `accepted` first if it was not published yet. */
  async progress(stage: JobStage, percent: number): Promise<void> {
    this.#stage = stage;
    this.#percent = Math.max(0, Math.min(100, percent));
    if (!this.#handlerDone) void this.#accept();
    await this.#emitProgress();
  }

  async #settle(): Promise<void> {
    if (this.#accepted) await this.#accepted;
    if (!this.#acked) {
      this.#acked = true;
      await this.#delivery.ack();
    }
  }

  /** Runs the handler; rejects with the abort reason as soon as the job is aborted, even if the handler ignores it. */
  #runHandler(): Promise<AnalysisResult> {
    return new Promise<AnalysisResult>((resolve, reject) => {
      const promise = this.#host.handler(new HandlerContext(this, this.#request, this.#delivery));
      if (this.#aborted) {
        reject(this.#abortReason);
        return;
      }
      this.#reject = reject;
      promise.then(resolve, reject);
    });
  }

  async run(): Promise<void> {
    const h = this.#host;
    const request = this.#request;
    const delivery = this.#delivery;
    const { jobId } = request;
    const { attempt } = delivery;
    const deadlineMs = request.deadline === undefined ? undefined : Date.parse(request.deadline);
    if (deadlineMs !== undefined && deadlineMs <= h.now()) {
      await h.emit(
        {
          type: 'analysis.failed',
          jobId,
          workerId: h.workerId,
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
    if (h.longAfterMs > 0) this.#starter = setTimeout(longTimer, h.longAfterMs, this);
    else this.onLong();
    if (deadlineMs !== undefined) this.#deadline = setTimeout(deadlineTimer, Math.max(0, deadlineMs - h.now()), this);
    try {
      let result: AnalysisResult;
      try {
        result = await this.#runHandler();
      } finally {
        // every way out of the handler passes here (the catch below and what follows only run after it)
        this.#stopTimers();
      }
      let succeeded;
      try {
        succeeded = createSucceeded(request, h.workerId, result, h.now(), attempt);
      } catch (error) {
        throw new JobFailure('internal-error', 'handler returned an invalid result', { cause: error });
      }
      await h.publishEvent(succeeded, request);
      await this.#settle();
    } catch (thrown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      const reason: unknown = this.#aborted ? this.#abortReason : error;
      if (CdssError.isInstance(reason) && reason.code === 'WORKER_STOPPING') {
        if (!this.#acked) await delivery.requeue();
        return;
      }
      if (this.#accepted) await this.#accepted;
      if (CdssError.isInstance(reason) && reason.code === 'JOB_CANCELLED') {
        await h.emit(cancelledInput(jobId, this.#cancelledBy ?? 'unknown', this.#cancelReason), request);
        await this.#settle();
        return;
      }
      if (!(reason instanceof JobFailure)) {
        // the message stays in the (injected, redacting) log; the event that is stored and shown carries only the
        // error's name, because a library's message may quote data
        h.log.warn({ jobId, attempt, err: errorSummary(reason) }, 'job handler threw');
      }
      const failure =
        reason instanceof JobFailure
          ? reason
          : new JobFailure('internal-error', `unexpected ${errorSummary(reason).name} in the job handler`, {
              retryable: true,
              cause: reason,
            });
      if (failure.retryable && !this.#acked && attempt < h.maxAttempts) {
        h.log.info({ jobId, attempt, reason: failure.reason }, 'retrying job');
        await delivery.retry(attempt - 1);
        return;
      }
      const exhausted = failure.retryable && attempt >= h.maxAttempts;
      await h.emit(
        {
          type: 'analysis.failed',
          jobId,
          workerId: h.workerId,
          attempt,
          reason: failure.reason,
          retryable: failure.retryable,
          detail: exhausted ? `${failure.detail} (after ${attempt} attempts)` : failure.detail,
        },
        request,
      );
      await this.#settle();
    }
  }
}

// timer callbacks that take their job as an argument: no closure per job
function longTimer(run: JobRun): void {
  run.onLong();
}
function beatTimer(run: JobRun): void {
  run.beat();
}
function leaseTimer(run: JobRun): void {
  run.onLease();
}
function deadlineTimer(run: JobRun): void {
  run.onDeadline();
}

/** What the handler sees of its job. */
class HandlerContext implements JobContext {
  readonly request: AnalysisRequested;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly #run: JobRun;
  /** An own, bound function: handlers may destructure `{ progress }`. */
  readonly progress: (stage: JobStage, percent: number) => Promise<void>;

  constructor(run: JobRun, request: AnalysisRequested, delivery: Delivery) {
    this.#run = run;
    this.request = request;
    this.attempt = delivery.attempt;
    this.redelivered = delivery.redelivered;
    this.progress = (stage, percent) => run.progress(stage, percent);
  }

  get signal(): AbortSignal {
    return this.#run.signal();
  }
}
