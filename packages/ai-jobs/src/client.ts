/**
 * The server side of the protocol: asks for analyses, records every event in the job store (acknowledging the
 * event only after the store has it), cancels jobs, and re-publishes what could have been lost.
 *
 * Commands follow the command-object style (one `send()` choke point, AWS SDK v3): {@link RequestAnalysis},
 * {@link CancelAnalysis}, {@link GetAnalysis}.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CdssError, ValidationError } from '@cdss/core';
import { createMessage, createRequested, decodeMessage, encodeValidated, isoTime, parseOrThrow } from './codec.js';
import {
  TERMINAL_STATES,
  type ApplyOptions,
  type ApplyResult,
  type JobRecord,
  type JobStore,
  type JobStoreTransaction,
  type JobTransition,
} from './job-state.js';
import { errorSummary, silentLogger, type JobLogger } from './logger.js';
import {
  AMQP_PRIORITY,
  analysisRequestedSchema,
  jobIdSchema,
  jobPrioritySchema,
  type AnalysisCancelled,
  type AnalysisRequested,
  type JobEvent,
} from './protocol.js';
import { CONTROL_CANCEL_ROUTING_KEY, type Consumer, type Delivery, type JobTransport } from './transport.js';
import { SIGNATURE_HEADER, verifyWebhook, type ReplayCache } from './webhooks.js';

const requested = analysisRequestedSchema.shape;

/**
 * Input of {@link RequestAnalysis}. Every field but `jobId` and `priority` is checked with the message schema's own
 * field schema, so the `analysis.requested` built from the parsed input needs no second parse.
 */
export const requestAnalysisInputSchema = z.strictObject({
  /** Default: a new UUID. */
  jobId: jobIdSchema.optional(),
  idempotencyKey: requested.idempotencyKey,
  patientRef: requested.patientRef,
  studyInstanceUid: requested.studyInstanceUid,
  series: requested.series,
  model: requested.model,
  /** Default `routine`. */
  priority: jobPrioritySchema.default('routine'),
  requestedBy: requested.requestedBy,
  deadline: requested.deadline,
  callbackUrl: requested.callbackUrl,
});

/** Input of {@link CancelAnalysis}. */
export const cancelAnalysisInputSchema = z.strictObject({
  jobId: jobIdSchema,
  cancelledBy: z.string().min(1).max(128),
  reason: z.string().max(500).optional(),
});

/** Input of {@link GetAnalysis}. */
export const getAnalysisInputSchema = z.strictObject({ jobId: jobIdSchema });

/** Thrown when a command names a job the store does not have. */
export class JobNotFoundError extends CdssError {
  /** The job asked for. */
  readonly jobId: string;
  /** @param jobId - the missing job */
  constructor(jobId: string) {
    super(`no job ${jobId}`, { code: 'JOB_NOT_FOUND' });
    this.jobId = jobId;
  }
}

/**
 * Asks for an analysis: records the job (`queued`), then publishes the request and waits for the broker's
 * confirm. The same `idempotencyKey` again returns the first job and publishes nothing new.
 * Output: the job record.
 */
export class RequestAnalysis {
  /** The command's name (what `send()` dispatches on). */
  readonly name = 'RequestAnalysis';
  /** The zod schema `send()` validates the input with. */
  static readonly inputSchema = requestAnalysisInputSchema;
  /** The input as given. */
  readonly input: z.input<typeof requestAnalysisInputSchema>;
  /** @param input - the request; validated by `send()` */
  constructor(input: z.input<typeof requestAnalysisInputSchema>) {
    this.input = input;
  }
  /** The input with identifiers masked, for logs. */
  redact(): Record<string, unknown> {
    return { ...this.input, patientRef: 'Patient/***', requestedBy: '***' };
  }
}

/**
 * Cancels a job: a queued job will not run; a running one is aborted by its worker. A job that already ended is
 * returned unchanged. Output: the job record.
 */
export class CancelAnalysis {
  /** The command's name (what `send()` dispatches on). */
  readonly name = 'CancelAnalysis';
  /** The zod schema `send()` validates the input with. */
  static readonly inputSchema = cancelAnalysisInputSchema;
  /** The input as given. */
  readonly input: z.input<typeof cancelAnalysisInputSchema>;
  /** @param input - which job, and who cancels */
  constructor(input: z.input<typeof cancelAnalysisInputSchema>) {
    this.input = input;
  }
  /** The input with identifiers masked, for logs. */
  redact(): Record<string, unknown> {
    return { jobId: this.input.jobId, cancelledBy: '***' };
  }
}

/** Reads a job. Output: the job record. */
export class GetAnalysis {
  /** The command's name (what `send()` dispatches on). */
  readonly name = 'GetAnalysis';
  /** The zod schema `send()` validates the input with. */
  static readonly inputSchema = getAnalysisInputSchema;
  /** The input as given. */
  readonly input: z.input<typeof getAnalysisInputSchema>;
  /** @param input - which job */
  constructor(input: z.input<typeof getAnalysisInputSchema>) {
    this.input = input;
  }
  /** The input, for logs. */
  redact(): Record<string, unknown> {
    return { ...this.input };
  }
}

/** Every command {@link JobClient.send} takes. */
export type JobCommand = RequestAnalysis | CancelAnalysis | GetAnalysis;

/** A change the client recorded, as its listeners see it (once per change, never for duplicates). */
export interface JobChange {
  /** The job after the change. */
  job: JobRecord;
  /** The event that changed it. */
  event: JobEvent;
  /** The state change, when the state changed (progress within `running` has none). */
  transition?: JobTransition;
}

/** Options of {@link JobClient}. */
export interface JobClientOptions {
  /** The transport (started by `start()`; closed by you). Required. */
  transport: JobTransport;
  /** The job store. Required. */
  store: JobStore;
  /** Events recorded concurrently (AMQP prefetch of the events queue). Default 32. */
  prefetch?: number;
  /** Secrets accepted on webhooks handed to {@link JobClient.handleWebhook}. */
  webhookSecrets?: readonly string[];
  /** Replay protection for webhooks. Default: none (pass one!). */
  replayCache?: ReplayCache;
  /**
   * Runs for each change, inside the store's transaction that records it (before the event is acknowledged): the
   * place for writes that must never be lost with the change, e.g. the outbox rows of a result's FHIR report. If it
   * throws, the change is not recorded and the event is redelivered.
   */
  onChange?: (change: JobChange, transaction: JobStoreTransaction) => Promise<void>;
  /** Default: silent. */
  logger?: JobLogger;
  /** ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/**
 * The job client, for the server.
 * @example
 * ```ts
 * const client = new JobClient({ transport, store });
 * await client.start();
 * const job = await client.send(new RequestAnalysis({ idempotencyKey, patientRef: 'Patient/42', ... }));
 * client.subscribe(({ job }) => notifyDashboard(job));
 * ```
 */
export class JobClient {
  readonly #t: JobTransport;
  readonly #store: JobStore;
  readonly #prefetch: number;
  readonly #log: JobLogger;
  readonly #now: () => number;
  readonly #listeners = new Set<(change: JobChange) => void>();
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #webhookSecrets: readonly string[];
  readonly #replayCache: ReplayCache | undefined;
  readonly #onChange: JobClientOptions['onChange'];
  #events: Consumer | undefined;

  /** @param options - see {@link JobClientOptions} */
  constructor(options: JobClientOptions) {
    this.#t = options.transport;
    this.#store = options.store;
    this.#prefetch = options.prefetch ?? 32;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#webhookSecrets = options.webhookSecrets ?? [];
    this.#replayCache = options.replayCache;
    this.#onChange = options.onChange;
  }

  /**
   * Starts the transport, consumes the events queue, and publishes the requests of queued jobs that the broker
   * never confirmed (a crash between recording and publishing: the store is the outbox).
   * @returns how many requests were re-published
   */
  async start(): Promise<number> {
    await this.#t.start();
    this.#events = await this.#t.consumeEvents((d) => this.#onEvent(d), { prefetch: this.#prefetch });
    let republished = 0;
    for (const job of await this.#store.list({ states: ['queued'], unpublished: true })) {
      await this.#publish(job.request);
      republished++;
    }
    return republished;
  }

  /** Stops consuming events (in-flight ones finish) and waits for them. Does not close the transport or store. */
  async stop(): Promise<void> {
    await this.#events?.cancel();
    await Promise.allSettled([...this.#chains.values()]);
  }

  /**
   * Calls `listener` once for every change recorded (not for duplicates).
   * @param listener - must not throw (errors are logged and swallowed)
   * @returns unsubscribe
   */
  subscribe(listener: (change: JobChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs a command.
   * @param command - {@link RequestAnalysis}, {@link CancelAnalysis} or {@link GetAnalysis}
   * @returns the job record
   * @throws `ValidationError` (`@cdss/core`) for invalid input (nothing changes), {@link JobNotFoundError}, transport errors
   */
  async send(command: JobCommand): Promise<JobRecord> {
    switch (command.name) {
      case 'RequestAnalysis':
        return this.#request(command);
      case 'CancelAnalysis':
        return this.#cancel(command);
      case 'GetAnalysis': {
        const { jobId } = parseOrThrow(getAnalysisInputSchema, command.input, 'invalid GetAnalysis input');
        const job = await this.#store.get(jobId);
        if (!job) throw new JobNotFoundError(jobId);
        return job;
      }
    }
  }

  async #request(command: RequestAnalysis): Promise<JobRecord> {
    const input = parseOrThrow(requestAnalysisInputSchema, command.input, 'invalid RequestAnalysis input');
    // no look-up by idempotency key first: `store.create` is the one atomic check (it returns the first job for a
    // key it has seen), and a separate read would cost every request a store round trip
    const message = createRequested(
      {
        jobId: input.jobId ?? randomUUID(),
        idempotencyKey: input.idempotencyKey,
        patientRef: input.patientRef,
        studyInstanceUid: input.studyInstanceUid,
        series: input.series,
        model: input.model,
        priority: input.priority,
        requestedBy: input.requestedBy,
        ...(input.deadline === undefined ? {} : { deadline: input.deadline }),
        ...(input.callbackUrl === undefined ? {} : { callbackUrl: input.callbackUrl }),
      },
      this.#now(),
    );
    const { job, created } = await this.#store.create(message);
    if (!created && job.publishedAt !== null) return job;
    return { ...job, publishedAt: await this.#publish(job.request) };
  }

  /** Publishes a request, waits for the broker's confirm, records it; returns when (ISO 8601). */
  async #publish(request: AnalysisRequested): Promise<string> {
    await this.#t.publishRequest({
      body: encodeValidated(request),
      messageId: request.messageId,
      type: request.type,
      correlationId: request.jobId,
      priority: AMQP_PRIORITY[request.priority],
    });
    const at = isoTime(this.#now());
    await this.#store.markPublished(request.jobId, at);
    return at;
  }

  async #cancel(command: CancelAnalysis): Promise<JobRecord> {
    const input = parseOrThrow(cancelAnalysisInputSchema, command.input, 'invalid CancelAnalysis input');
    const job = await this.#store.get(input.jobId);
    if (!job) throw new JobNotFoundError(input.jobId);
    if (TERMINAL_STATES.has(job.state)) return job;
    const message = createMessage(
      {
        type: 'analysis.cancelled',
        jobId: input.jobId,
        cancelledBy: input.cancelledBy,
        ...(input.reason === undefined ? {} : { reason: input.reason }),
      },
      this.#now(),
    );
    const result = await this.#serial(input.jobId, () => this.#store.apply(message, this.#applyOptions(message)));
    if (result.outcome === 'applied') this.#notify(result, message);
    // tell the workers: a running job is aborted; a queued one is skipped when it comes up
    await this.#tellWorkers(message);
    return result.job ?? job;
  }

  /** Publishes a cancellation to every worker (`control.cancel`) and waits for the broker's confirm. */
  async #tellWorkers(cancel: AnalysisCancelled): Promise<void> {
    await this.#t.publishEvent(CONTROL_CANCEL_ROUTING_KEY, {
      body: encodeValidated(cancel),
      messageId: cancel.messageId,
      type: cancel.type,
      correlationId: cancel.jobId,
    });
  }

  /**
   * Re-publishes the requests of jobs that a worker took but stopped reporting on (no heartbeat for `staleMs`):
   * the safety net for long jobs acknowledged early (see `JobWorkerOptions.ackTimeoutMs`) whose worker died. A job
   * already re-published `maxReaps` times fails instead, with reason `worker-lost`. Requests the broker never
   * confirmed (it was down) and that are older than `staleMs` are published again too. Each stale job is taken by one
   * reaper only (`JobStore.markReaped`), so every server instance may run this on a schedule (see
   * {@link JobClient.startReaper}).
   * @param options - `staleMs`: heartbeat age that counts as lost; `maxReaps`: re-publications before failing (default 2)
   * @returns the job ids re-published, and those failed
   */
  async reap(options: { staleMs: number; maxReaps?: number }): Promise<{ republished: string[]; failed: string[] }> {
    const maxReaps = options.maxReaps ?? 2;
    const before = new Date(this.#now() - options.staleMs).toISOString();
    const stale = await this.#store.list({ states: ['accepted', 'running'], updatedBefore: before, limit: 100 });
    const republished: string[] = [];
    const failed: string[] = [];
    for (const candidate of stale) {
      if (candidate.reaps >= maxReaps) {
        const failure = createMessage(
          {
            type: 'analysis.failed',
            jobId: candidate.jobId,
            reason: 'worker-lost',
            retryable: true,
            detail: `no heartbeat for ${Math.round(options.staleMs / 1000)} s after ${candidate.reaps} re-publication(s): the worker was lost`,
          },
          this.#now(),
        );
        const result = await this.#record(failure);
        if (result.outcome === 'applied') {
          this.#log.warn({ jobId: candidate.jobId, reaps: candidate.reaps }, 'job heartbeat lost again; failed');
          failed.push(candidate.jobId);
        }
        continue;
      }
      const job = await this.#store.markReaped(candidate.jobId, before);
      if (!job) continue; // another reaper took it, or it reported meanwhile
      this.#log.warn({ jobId: job.jobId, state: job.state, reaps: job.reaps }, 'job heartbeat lost; re-publishing');
      await this.#publish(job.request);
      republished.push(job.jobId);
    }
    // Requests the broker never confirmed (it was down when they were made): published again, however long it takes.
    const unconfirmed = await this.#store.list({
      states: ['queued'],
      unpublished: true,
      updatedBefore: before,
      limit: 100,
    });
    for (const candidate of unconfirmed) {
      const job = await this.#store.markReaped(candidate.jobId, before);
      if (!job) continue;
      await this.#publish(job.request);
      republished.push(job.jobId);
    }
    return { republished, failed };
  }

  /**
   * Runs {@link JobClient.reap} every `intervalMs` until the returned function is called. Errors (a store that is
   * down) are logged and the next round tries again.
   * @param options - `intervalMs` between rounds, and {@link JobClient.reap}'s options
   * @returns stop
   */
  startReaper(options: { intervalMs: number; staleMs: number; maxReaps?: number }): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.reap(options)
        .catch((error: unknown) => this.#log.warn({ err: errorSummary(error) }, 'reaping stale jobs failed'))
        .finally(() => (running = false));
    }, options.intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Records an event that arrived by webhook instead of the broker: verifies the signature first.
   * @param rawBody - the request body, exactly as received
   * @param headers - the request headers (lower-case names, as Node gives them)
   * @returns what the store did
   * @throws {@link WebhookVerificationError} for a forged, altered, stale or replayed webhook (nothing changes);
   *   `ValidationError` (`@cdss/core`) for a body that is not a protocol event
   */
  async handleWebhook(
    rawBody: string | Uint8Array,
    headers: Readonly<Record<string, string | string[] | undefined>>,
  ): Promise<ApplyResult> {
    if (this.#webhookSecrets.length === 0)
      throw new CdssError('no webhookSecrets configured', { code: 'WEBHOOK_SECRET' });
    // Remember which signature the replay cache took, to forget it if the event cannot be recorded: the sender's
    // retry of the same request is then accepted instead of refused as a replay.
    const cache = this.#replayCache;
    let remembered: string | undefined;
    await verifyWebhook({
      body: rawBody,
      signature: headers[SIGNATURE_HEADER],
      secrets: this.#webhookSecrets,
      now: this.#now,
      ...(cache
        ? {
            replayCache: {
              remember: async (key: string, expiresAtMs: number) => {
                const fresh = await cache.remember(key, expiresAtMs);
                if (fresh) remembered = key;
                return fresh;
              },
            },
          }
        : {}),
    });
    try {
      const decoded = decodeMessage(rawBody);
      if (!decoded.ok)
        throw decoded.error instanceof ValidationError
          ? decoded.error
          : new ValidationError('webhook body is not JSON', [{ path: '', message: decoded.detail, code: 'malformed' }]);
      if (decoded.message.type === 'analysis.requested')
        throw new ValidationError('webhooks carry events, not requests', [
          { path: 'type', message: 'unexpected type', code: 'invalid_value' },
        ]);
      return await this.#record(decoded.message);
    } catch (error) {
      if (remembered !== undefined) await Promise.resolve(cache?.forget?.(remembered)).catch(() => undefined);
      throw error;
    }
  }

  /** Runs `fn` after every earlier operation on the same job: events of one job are applied in arrival order. */
  #serial<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(jobId);
    let next: Promise<T>;
    if (previous === undefined) {
      // nothing pending for this job (the usual case): start now rather than a microtask later
      try {
        next = fn();
      } catch (error) {
        next = Promise.reject(error);
      }
    } else {
      next = previous.then(fn, fn);
    }
    // one settled-either-way tail per operation, which also forgets the job once nothing is queued behind it
    const chains = this.#chains;
    const forget = (): void => {
      if (chains.get(jobId) === tail) chains.delete(jobId);
    };
    const tail: Promise<unknown> = next.then(forget, forget);
    chains.set(jobId, tail);
    return next;
  }

  /** `onChange` as the store's `within`: it commits with the change. */
  #applyOptions(event: JobEvent): ApplyOptions {
    const onChange = this.#onChange;
    return onChange ? { within: (applied, transaction) => onChange(this.#change(applied, event), transaction) } : {};
  }

  #change(result: ApplyResult & { job: JobRecord }, event: JobEvent): JobChange {
    return result.transition ? { job: result.job, event, transition: result.transition } : { job: result.job, event };
  }

  #notify(result: ApplyResult, event: JobEvent): void {
    if (!result.job) return;
    const change = this.#change({ ...result, job: result.job }, event);
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        this.#log.error({ err: errorSummary(error) }, 'job change listener threw');
      }
    }
  }

  async #record(event: JobEvent): Promise<ApplyResult> {
    const result = await this.#serial(event.jobId, () => this.#store.apply(event, this.#applyOptions(event)));
    if (result.outcome === 'applied') this.#notify(result, event);
    else if (
      result.outcome === 'refused' &&
      result.job?.state === 'cancelled' &&
      (event.type === 'analysis.accepted' || event.type === 'analysis.progress')
    ) {
      // a worker started a job cancelled while queued: tell it again so it stops
      const cancel = createMessage(
        {
          type: 'analysis.cancelled',
          jobId: event.jobId,
          cancelledBy: result.job.cancellation?.cancelledBy ?? 'server',
          reason: 'cancelled while queued',
        },
        this.#now(),
      );
      await this.#tellWorkers(cancel);
    } else {
      this.#log.debug({ jobId: event.jobId, type: event.type, outcome: result.outcome }, 'event not applied');
    }
    return result;
  }

  async #onEvent(delivery: Delivery): Promise<void> {
    const decoded = decodeMessage(delivery.body);
    if (!decoded.ok) {
      this.#log.warn({ messageId: delivery.messageId, reason: decoded.reason }, 'invalid event dead-lettered');
      await delivery.deadLetter(decoded.reason, decoded.detail);
      return;
    }
    if (decoded.message.type === 'analysis.requested') {
      await delivery.deadLetter('unexpected-type', 'events queue got analysis.requested');
      return;
    }
    try {
      await this.#record(decoded.message);
    } catch (error) {
      // the store is down: keep the event (no ack), back off a little so we do not spin
      this.#log.warn(
        { jobId: decoded.message.jobId, err: errorSummary(error) },
        'recording an event failed; handing it back',
      );
      await new Promise((r) => setTimeout(r, 500));
      await delivery.requeue();
      return;
    }
    await delivery.ack();
  }
}
