/**
 * The in-memory job store: for the sandbox, for tests, and as the reference the MySQL store is held to.
 * @packageDocumentation
 */
import { checkedMessage, isoTime } from './codec.js';
import { jobEventSchema, analysisRequestedSchema, type AnalysisRequested, type JobEvent } from './protocol.js';
import {
  decide,
  newJobRecord,
  type ApplyResult,
  type JobQuery,
  type JobRecord,
  type JobStore,
  type JobTransition,
} from './job-state.js';

/** Options of {@link MemoryJobStore}. */
export interface MemoryJobStoreOptions {
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/**
 * Records are frozen when stored, so they can be handed out without copying. Parts already frozen (the request and
 * result of a record's earlier version) are not walked again; `for…in` rather than `Object.values` allocates nothing.
 */
function frozen<T extends object>(value: T): T {
  Object.freeze(value);
  for (const key in value) {
    const v: unknown = value[key];
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) frozen(v);
  }
  return value;
}

/**
 * A {@link JobStore} in a `Map`. Operations are synchronous underneath, so each is atomic. The records it returns
 * are deep-frozen snapshots (shared, not copied): treat them as read-only.
 * @example
 * ```ts
 * const store = new MemoryJobStore();
 * ```
 */
export class MemoryJobStore implements JobStore {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #byKey = new Map<string, string>();
  readonly #history = new Map<string, JobTransition[]>();
  readonly #now: () => number;

  /** @param options - see {@link MemoryJobStoreOptions} */
  constructor(options: MemoryJobStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  #iso(): string {
    return isoTime(this.#now());
  }

  /** {@inheritDoc JobStore.create} */
  async create(request: AnalysisRequested): Promise<{ job: JobRecord; created: boolean }> {
    const valid = checkedMessage(analysisRequestedSchema, request, 'invalid analysis request');
    const existingId = this.#byKey.get(valid.idempotencyKey) ?? (this.#jobs.has(valid.jobId) ? valid.jobId : undefined);
    const existing = existingId === undefined ? undefined : this.#jobs.get(existingId);
    if (existing) return { job: existing, created: false };
    const job = frozen(newJobRecord(valid, this.#iso()));
    this.#jobs.set(job.jobId, job);
    this.#byKey.set(job.idempotencyKey, job.jobId);
    return { job, created: true };
  }

  /** {@inheritDoc JobStore.get} */
  async get(jobId: string): Promise<JobRecord | undefined> {
    return this.#jobs.get(jobId);
  }

  /** {@inheritDoc JobStore.findByIdempotencyKey} */
  async findByIdempotencyKey(key: string): Promise<JobRecord | undefined> {
    const id = this.#byKey.get(key);
    return id === undefined ? undefined : this.get(id);
  }

  /** {@inheritDoc JobStore.apply} */
  async apply(event: JobEvent): Promise<ApplyResult> {
    const valid = checkedMessage(jobEventSchema, event, 'invalid job event');
    const job = this.#jobs.get(valid.jobId);
    if (!job) return { outcome: 'unknown-job' };
    const now = this.#iso();
    const decision = decide(job, valid, now);
    switch (decision.outcome) {
      case 'duplicate': {
        const current = decision.touch ? frozen({ ...job, updatedAt: now }) : job;
        this.#jobs.set(job.jobId, current);
        return { outcome: 'duplicate', job: current };
      }
      case 'refused':
        return { outcome: 'refused', job, reason: decision.reason };
      case 'applied':
        this.#jobs.set(job.jobId, frozen(decision.next));
        if (decision.transition) {
          // frozen like the records, so the stored transition can be handed out as it is
          const transition = frozen(decision.transition);
          const history = this.#history.get(job.jobId);
          if (history) history.push(transition);
          else this.#history.set(job.jobId, [transition]);
          return { outcome: 'applied', job: decision.next, transition };
        }
        return { outcome: 'applied', job: decision.next };
    }
  }

  /** {@inheritDoc JobStore.markPublished} */
  async markPublished(jobId: string, at: string): Promise<void> {
    const job = this.#jobs.get(jobId);
    if (job && job.publishedAt === null) this.#jobs.set(jobId, frozen({ ...job, publishedAt: at }));
  }

  /** {@inheritDoc JobStore.list} */
  async list(query: JobQuery = {}): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const job of this.#jobs.values()) {
      if (query.states && !query.states.includes(job.state)) continue;
      if (query.unpublished && job.publishedAt !== null) continue;
      if (query.updatedBefore !== undefined && !(Date.parse(job.updatedAt) < Date.parse(query.updatedBefore))) continue;
      out.push(job);
    }
    out.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
    return out.slice(0, query.limit ?? 1000);
  }

  /** {@inheritDoc JobStore.history} */
  async history(jobId: string): Promise<JobTransition[]> {
    return [...(this.#history.get(jobId) ?? [])];
  }

  /** {@inheritDoc JobStore.close} */
  async close(): Promise<void> {}
}
