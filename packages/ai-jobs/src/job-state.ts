/**
 * The job state machine: queued → accepted → running → succeeded | failed | cancelled.
 *
 * Events arrive at least once and may be redelivered, so applying one is idempotent: an event that repeats or
 * lags behind the job's state is a `duplicate` (nothing changes); an event that would leave a final state for a
 * different one, or any report on a cancelled job, is `refused`. Forward jumps (queued → succeeded, when a worker's `accepted` was lost to a
 * redelivery race) are allowed because every event carries the whole truth for its state.
 * @packageDocumentation
 */
import { z } from 'zod';
import { CdssError, ValidationError } from '@cdss/core';
import {
  analysisCancelledSchema,
  analysisRequestedSchema,
  analysisResultSchema,
  failureReasonSchema,
  jobStageSchema,
  timestampSchema,
  type JobEvent,
} from './protocol.js';

/** The states of a job. */
export const jobStateSchema = z.enum(['queued', 'accepted', 'running', 'succeeded', 'failed', 'cancelled']);
/** A job state. */
export type JobState = z.infer<typeof jobStateSchema>;

/** Final states: nothing leaves them. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set<JobState>(['succeeded', 'failed', 'cancelled']);

const RANK: Record<JobState, number> = { queued: 0, accepted: 1, running: 2, succeeded: 3, failed: 3, cancelled: 3 };

/** A job as the store keeps it. */
export const jobRecordSchema = z.object({
  jobId: z.uuid(),
  idempotencyKey: z.string(),
  state: jobStateSchema,
  /** The request message, as published. */
  request: analysisRequestedSchema,
  createdAt: timestampSchema,
  updatedAt: timestampSchema,
  /** When the broker confirmed the request message; null until then (the store is the outbox). */
  publishedAt: timestampSchema.nullable(),
  /** The highest attempt number a worker reported. */
  attempt: z.int().min(0),
  workerId: z.string().nullable(),
  progress: z.object({ stage: jobStageSchema, percent: z.number() }).nullable(),
  result: analysisResultSchema.nullable(),
  failure: z.object({ reason: failureReasonSchema, retryable: z.boolean(), detail: z.string() }).nullable(),
  cancellation: analysisCancelledSchema.pick({ cancelledBy: true, reason: true }).nullable(),
  /** How many times the request was re-published after its worker stopped reporting (see `JobClient.reap`). */
  reaps: z.int().min(0).default(0),
});
/** A job as the store keeps it. */
export type JobRecord = z.infer<typeof jobRecordSchema>;

/** One state change in a job's history. */
export interface JobTransition {
  /** The job. */
  jobId: string;
  /** State before. */
  from: JobState;
  /** State after. */
  to: JobState;
  /** The event's messageId. */
  messageId: string;
  /** When the store recorded it (the store's clock, ISO 8601). */
  at: string;
}

/** What applying an event did. */
export type ApplyOutcome = 'applied' | 'duplicate' | 'refused' | 'unknown-job';

/** The result of {@link JobStore.apply}. */
export interface ApplyResult {
  /** What happened. */
  outcome: ApplyOutcome;
  /** The job after the event (unchanged unless `applied`); absent for `unknown-job`. */
  job?: JobRecord;
  /** For `refused`: why. */
  reason?: string;
  /** For `applied`: the state change, if the state changed (progress within `running` changes none). */
  transition?: JobTransition;
}

/** Thrown by {@link assertTransition} for an illegal state change. */
export class IllegalTransitionError extends CdssError {
  /** The state the job is in. */
  readonly from: JobState;
  /** The state that was asked for. */
  readonly to: JobState;
  /**
   * @param from - the current state
   * @param to - the refused next state
   */
  constructor(from: JobState, to: JobState) {
    super(`illegal job transition ${from} → ${to}`, { code: 'ILLEGAL_TRANSITION' });
    this.from = from;
    this.to = to;
  }
}

/**
 * Whether `from → to` is a legal state change (progress within `running` is `running → running`).
 * @param from - current state
 * @param to - next state
 * @returns true when legal
 */
export function canTransition(from: JobState, to: JobState): boolean {
  if (TERMINAL_STATES.has(from)) return false;
  if (from === 'running' && to === 'running') return true;
  return RANK[to] > RANK[from];
}

/**
 * Throws unless `from → to` is legal.
 * @param from - current state
 * @param to - next state
 * @throws {@link IllegalTransitionError}
 */
export function assertTransition(from: JobState, to: JobState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

/**
 * The state an event moves a job to.
 * @param event - the event
 * @returns its state
 */
export function stateOfEvent(event: JobEvent): JobState {
  switch (event.type) {
    case 'analysis.accepted':
      return 'accepted';
    case 'analysis.progress':
      return 'running';
    case 'analysis.succeeded':
      return 'succeeded';
    case 'analysis.failed':
      return 'failed';
    case 'analysis.cancelled':
      return 'cancelled';
  }
}

/** What {@link decide} says to do with an event. */
export type Decision =
  | { outcome: 'applied'; next: JobRecord; transition?: JobTransition }
  | { outcome: 'duplicate'; touch: boolean }
  | { outcome: 'refused'; reason: string };

/**
 * The pure core of every store: given a job and an event, what changes. Shared by the memory and MySQL stores so
 * both obey the same rules.
 * @param job - the job now
 * @param event - the event (already validated)
 * @param now - the store's time, ISO 8601 (updatedAt; events carry the sender's clock, not ours)
 * @returns the decision; `touch` on a duplicate heartbeat means "refresh updatedAt"
 */
export function decide(job: JobRecord, event: JobEvent, now: string): Decision {
  const to = stateOfEvent(event);
  const from = job.state;
  const at = now;
  if (TERMINAL_STATES.has(from)) {
    if (from === to) return { outcome: 'duplicate', touch: false };
    // a late report of an earlier stage of a finished job is stale, not a conflict; but a worker still reporting
    // on a cancelled job must be told to stop (the client re-sends the cancellation on `refused`)
    if (!TERMINAL_STATES.has(to) && from !== 'cancelled') return { outcome: 'duplicate', touch: false };
    return { outcome: 'refused', reason: `job is ${from}; ${event.type} ignored` };
  }
  if (from === 'running' && to === 'running' && event.type === 'analysis.progress') {
    const p = job.progress;
    if (p && p.stage === event.stage && p.percent >= event.percent) return { outcome: 'duplicate', touch: true };
    if (p && p.percent > event.percent) return { outcome: 'duplicate', touch: true };
    return {
      outcome: 'applied',
      next: {
        ...job,
        updatedAt: at,
        progress: { stage: event.stage, percent: event.percent },
        workerId: event.workerId,
      },
    };
  }
  if (event.type === 'analysis.accepted' && from !== 'queued' && event.attempt > job.attempt) {
    // a retry (or a redelivery) of a job that had started: same state, a new attempt
    return { outcome: 'applied', next: { ...job, updatedAt: at, attempt: event.attempt, workerId: event.workerId } };
  }
  if (!canTransition(from, to)) return { outcome: 'duplicate', touch: to === 'running' || to === 'accepted' };
  const next: JobRecord = { ...job, state: to, updatedAt: at };
  switch (event.type) {
    case 'analysis.accepted':
      next.workerId = event.workerId;
      next.attempt = Math.max(job.attempt, event.attempt);
      break;
    case 'analysis.progress':
      next.workerId = event.workerId;
      next.progress = { stage: event.stage, percent: event.percent };
      break;
    case 'analysis.succeeded':
      next.workerId = event.workerId;
      // a job that ended quickly may have had no `accepted`: its final event names the attempt
      if (event.attempt !== undefined) next.attempt = Math.max(job.attempt, event.attempt);
      next.result = event.result;
      next.progress = job.progress ? { ...job.progress, percent: 100 } : null;
      break;
    case 'analysis.failed':
      next.workerId = event.workerId ?? job.workerId;
      if (event.attempt !== undefined) next.attempt = Math.max(job.attempt, event.attempt);
      next.failure = { reason: event.reason, retryable: event.retryable, detail: event.detail };
      break;
    case 'analysis.cancelled':
      next.cancellation =
        event.reason === undefined
          ? { cancelledBy: event.cancelledBy }
          : { cancelledBy: event.cancelledBy, reason: event.reason };
      break;
  }
  return { outcome: 'applied', next, transition: { jobId: job.jobId, from, to, messageId: event.messageId, at } };
}

/** Filters for {@link JobStore.list}, {@link JobStore.page} and {@link JobStore.count}. */
export interface JobQuery {
  /** Only jobs in these states. */
  states?: readonly JobState[];
  /** Only jobs whose request the broker has not confirmed yet (the outbox). */
  unpublished?: boolean;
  /** Only jobs last updated before this time (stale heartbeats). */
  updatedBefore?: string;
  /** Only the jobs of this patient (the request's `patientRef`, e.g. `Patient/42`). */
  patientRef?: string;
  /** Only the jobs of this study. */
  studyInstanceUid?: string;
  /** At most this many (default 1000). */
  limit?: number;
}

/** A {@link JobQuery} read page by page, by creation time. */
export interface JobPageQuery extends Omit<JobQuery, 'unpublished' | 'updatedBefore'> {
  /** `newest` first (default) or `oldest` first. */
  order?: 'newest' | 'oldest';
  /** Where the previous page ended (its `nextCursor`); opaque. */
  cursor?: string;
}

/** One page of jobs. */
export interface JobPage {
  /** The jobs, in the page's order. */
  jobs: JobRecord[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

/**
 * A transaction of the store (MySQL: the connection whose transaction applies the event), for writes that must
 * commit with a job's change, e.g. the outbox rows of its FHIR report. Absent in memory.
 */
export interface JobStoreTransaction {
  /** The connection of the open transaction (mysql2); absent for the memory store. */
  connection?: { execute(sql: string, values: (string | number | null)[]): Promise<unknown> };
}

/** Options of {@link JobStore.apply}. */
export interface ApplyOptions {
  /**
   * Runs when the event changes the job, inside the same transaction: if it throws, the change is not recorded and
   * the error is rethrown (the event is then handed back and redelivered).
   */
  within?: (result: ApplyResult & { job: JobRecord }, transaction: JobStoreTransaction) => Promise<void>;
}

/**
 * The form of a page cursor: `<epoch ms>.<id>` (the position after which the next page starts). Every string of this
 * form is a valid cursor, so an API can declare it exactly (an OpenAPI `pattern`).
 */
export const PAGE_CURSOR_PATTERN = /^[0-9]{1,13}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A page cursor: the time and id of the last item of a page.
 * @param time - ISO 8601 date-time
 * @param id - a lowercase UUID
 */
export function encodePageCursor(time: string, id: string): string {
  return `${Date.parse(time)}.${id}`;
}

/**
 * Reads a page cursor.
 * @returns the time (ISO 8601, milliseconds) and id of the item after which the page starts
 * @throws `ValidationError` (`@cdss/core`) for a string not of {@link PAGE_CURSOR_PATTERN}'s form
 */
export function decodePageCursor(cursor: string): { time: string; id: string } {
  if (!PAGE_CURSOR_PATTERN.test(cursor))
    throw new ValidationError('invalid page cursor', [{ path: 'cursor', message: 'not a cursor', code: 'invalid' }]);
  const dot = cursor.indexOf('.');
  return { time: new Date(Number(cursor.slice(0, dot))).toISOString(), id: cursor.slice(dot + 1) };
}

/** `createdAt` and `jobId` of a page's last job as the cursor of the next. */
export function encodeJobCursor(job: Pick<JobRecord, 'createdAt' | 'jobId'>): string {
  return encodePageCursor(job.createdAt, job.jobId);
}

/**
 * Reads a job page cursor.
 * @throws `ValidationError` (`@cdss/core`) for a string not of {@link PAGE_CURSOR_PATTERN}'s form
 */
export function decodeJobCursor(cursor: string): { createdAt: string; jobId: string } {
  const { time, id } = decodePageCursor(cursor);
  return { createdAt: time, jobId: id };
}

/**
 * Where jobs live. Every implementation applies events through {@link decide}, atomically per job, so duplicate
 * deliveries and duplicate results are applied once.
 */
export interface JobStore {
  /**
   * Records a new job in state `queued`. The same `jobId` or `idempotencyKey` again returns the existing job.
   * @param request - the validated request message
   * @returns the job, and whether this call created it
   */
  create(request: z.infer<typeof analysisRequestedSchema>): Promise<{ job: JobRecord; created: boolean }>;
  /** The job, or undefined. */
  get(jobId: string): Promise<JobRecord | undefined>;
  /** The job with this idempotency key, or undefined. */
  findByIdempotencyKey(key: string): Promise<JobRecord | undefined>;
  /** Applies an event (idempotently); `options.within` commits with the change. */
  apply(event: JobEvent, options?: ApplyOptions): Promise<ApplyResult>;
  /** Records that the broker confirmed the job's request message. */
  markPublished(jobId: string, at: string): Promise<void>;
  /** Jobs matching the query, oldest first (at most `limit`). */
  list(query?: JobQuery): Promise<JobRecord[]>;
  /** One page of the jobs matching the query, newest first by default (indexed by patient, study and state). */
  page(query?: JobPageQuery): Promise<JobPage>;
  /** How many jobs match the query (no limit). */
  count(query?: Omit<JobQuery, 'limit'>): Promise<number>;
  /** The jobs with these ids, in that order (unknown ids are skipped). */
  getMany(jobIds: readonly string[]): Promise<JobRecord[]>;
  /**
   * Records that a stale job's request is re-published: `reaps` + 1 and `updatedAt` now, only if the job is still
   * `accepted`/`running` (or `queued` and never confirmed by the broker) and last updated before `staleBefore` (so two
   * reapers never both take it).
   * @returns the job after the change, or undefined when it was not stale (any more)
   */
  markReaped(jobId: string, staleBefore: string): Promise<JobRecord | undefined>;
  /** The job's state changes, oldest first. */
  history(jobId: string): Promise<JobTransition[]>;
  /** Releases connections (the memory store has none). */
  close(): Promise<void>;
}

/** Builds the `queued` record of a new request. */
export function newJobRecord(request: z.infer<typeof analysisRequestedSchema>, now: string): JobRecord {
  return {
    jobId: request.jobId,
    idempotencyKey: request.idempotencyKey,
    state: 'queued',
    request,
    createdAt: now,
    updatedAt: now,
    publishedAt: null,
    attempt: 0,
    workerId: null,
    progress: null,
    result: null,
    failure: null,
    cancellation: null,
    reaps: 0,
  };
}
