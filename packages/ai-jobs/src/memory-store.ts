/**
 * The in-memory job store: for the sandbox, for tests, and as the reference the MySQL store is held to.
 * @packageDocumentation
 */
import { checkedMessage, isoTime } from './codec.js';
import { jobEventSchema, analysisRequestedSchema, type AnalysisRequested, type JobEvent } from './protocol.js';
import {
  decide,
  decodeJobCursor,
  encodeJobCursor,
  newJobRecord,
  type ApplyOptions,
  type ApplyResult,
  type JobPage,
  type JobPageQuery,
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
  /** Job ids by patient and by study, in creation order. */
  readonly #byPatient = new Map<string, string[]>();
  readonly #byStudy = new Map<string, string[]>();
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
    for (const [index, key] of [
      [this.#byPatient, job.request.patientRef],
      [this.#byStudy, job.request.studyInstanceUid],
    ] as const) {
      const ids = index.get(key);
      if (ids) ids.push(job.jobId);
      else index.set(key, [job.jobId]);
    }
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
  async apply(event: JobEvent, options: ApplyOptions = {}): Promise<ApplyResult> {
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
        // the caller's writes first: if they fail, nothing changes here either
        await options.within?.(
          decision.transition
            ? { outcome: 'applied', job: decision.next, transition: decision.transition }
            : { outcome: 'applied', job: decision.next },
          {},
        );
        if (this.#jobs.get(job.jobId) !== job) return this.apply(valid, options); // changed meanwhile: decide again
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

  /** The jobs a query can match, narrowed by the patient or study index. */
  #candidates(query: JobQuery): Iterable<JobRecord> {
    const ids = query.patientRef
      ? (this.#byPatient.get(query.patientRef) ?? [])
      : query.studyInstanceUid
        ? (this.#byStudy.get(query.studyInstanceUid) ?? [])
        : undefined;
    if (!ids) return this.#jobs.values();
    return ids.map((id) => this.#jobs.get(id)!);
  }

  #matches(job: JobRecord, query: JobQuery): boolean {
    if (query.states && !query.states.includes(job.state)) return false;
    if (query.unpublished && job.publishedAt !== null) return false;
    if (query.updatedBefore !== undefined && !(Date.parse(job.updatedAt) < Date.parse(query.updatedBefore)))
      return false;
    if (query.patientRef !== undefined && job.request.patientRef !== query.patientRef) return false;
    if (query.studyInstanceUid !== undefined && job.request.studyInstanceUid !== query.studyInstanceUid) return false;
    return true;
  }

  /** {@inheritDoc JobStore.list} */
  async list(query: JobQuery = {}): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const job of this.#candidates(query)) if (this.#matches(job, query)) out.push(job);
    out.sort(byCreation);
    return out.slice(0, query.limit ?? 1000);
  }

  /** {@inheritDoc JobStore.page} */
  async page(query: JobPageQuery = {}): Promise<JobPage> {
    const newest = (query.order ?? 'newest') === 'newest';
    const after = query.cursor === undefined ? undefined : decodeJobCursor(query.cursor);
    const limit = Math.max(1, Math.min(1000, query.limit ?? 100));
    const out: JobRecord[] = [];
    for (const job of this.#candidates(query)) {
      if (!this.#matches(job, query)) continue;
      if (after && (newest ? byCreation(job, after) >= 0 : byCreation(job, after) <= 0)) continue;
      out.push(job);
    }
    out.sort(newest ? (a, b) => byCreation(b, a) : byCreation);
    const jobs = out.slice(0, limit);
    const last = jobs.at(-1);
    return out.length > limit && last ? { jobs, nextCursor: encodeJobCursor(last) } : { jobs };
  }

  /** {@inheritDoc JobStore.count} */
  async count(query: JobQuery = {}): Promise<number> {
    let n = 0;
    for (const job of this.#candidates(query)) if (this.#matches(job, query)) n++;
    return n;
  }

  /** {@inheritDoc JobStore.getMany} */
  async getMany(jobIds: readonly string[]): Promise<JobRecord[]> {
    return jobIds.flatMap((id) => this.#jobs.get(id) ?? []);
  }

  /** {@inheritDoc JobStore.markReaped} */
  async markReaped(jobId: string, staleBefore: string): Promise<JobRecord | undefined> {
    const job = this.#jobs.get(jobId);
    const unconfirmed = job?.state === 'queued' && job.publishedAt === null;
    if (!job || (job.state !== 'accepted' && job.state !== 'running' && !unconfirmed)) return undefined;
    if (!(Date.parse(job.updatedAt) < Date.parse(staleBefore))) return undefined;
    const next = frozen({ ...job, updatedAt: this.#iso(), reaps: job.reaps + 1 });
    this.#jobs.set(jobId, next);
    return next;
  }

  /** {@inheritDoc JobStore.history} */
  async history(jobId: string): Promise<JobTransition[]> {
    return [...(this.#history.get(jobId) ?? [])];
  }

  /** {@inheritDoc JobStore.close} */
  async close(): Promise<void> {}
}

/** Creation order: `createdAt`, then `jobId`. */
function byCreation(a: Pick<JobRecord, 'createdAt' | 'jobId'>, b: Pick<JobRecord, 'createdAt' | 'jobId'>): number {
  const t = Date.parse(a.createdAt) - Date.parse(b.createdAt);
  return t !== 0 ? t : a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0;
}
