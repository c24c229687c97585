/**
 * The MySQL / MariaDB job store (mysql2). Each event is applied in a transaction that locks the job's row
 * (`SELECT … FOR UPDATE`), runs the shared {@link decide} rules and writes the new record plus a history row, so
 * concurrent duplicates are applied once.
 * @packageDocumentation
 */
import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, RowDataPacket, ResultSetHeader } from 'mysql2/promise';
import { z } from 'zod';
import { CdssError, ValidationError } from '@cdss/core';
import { checkedMessage, parseOrThrow } from './codec.js';
import { analysisRequestedSchema, jobEventSchema, type AnalysisRequested, type JobEvent } from './protocol.js';
import {
  decide,
  decodeJobCursor,
  encodeJobCursor,
  jobRecordSchema,
  jobStateSchema,
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

/** Options of {@link MySqlJobStore.open}. */
export interface MySqlJobStoreOptions {
  /** `mysql://user:pass@host:port/db`; or pass `pool`. */
  url?: string;
  /** An existing mysql2 promise pool (not closed by {@link MySqlJobStore.close}). */
  pool?: Pool;
  /** Prefix of the two table names (`<prefix>jobs`, `<prefix>job_transitions`). Default `cdss_ai_`. */
  tablePrefix?: string;
  /** Connections when the store creates the pool. Default 8. */
  connectionLimit?: number;
  /** ms since the epoch; default `Date.now`. */
  now?: () => number;
}

const optionsSchema = z.object({
  url: z
    .string()
    .regex(/^mysql:\/\//, 'must be a mysql:// URL')
    .optional(),
  tablePrefix: z
    .string()
    .regex(/^[A-Za-z0-9_]{0,40}$/, 'letters, digits and underscores only')
    .default('cdss_ai_'),
  connectionLimit: z.int().min(1).max(100).default(8),
});

/** `2026-11-26T06:00:00.123Z` → `2026-11-26 06:00:00.123` (UTC, DATETIME(3)). */
function sqlTime(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace('Z', '');
}

interface RecordRow extends RowDataPacket {
  record: string;
}

/**
 * A {@link JobStore} in MySQL or MariaDB.
 * @example
 * ```ts
 * const store = await MySqlJobStore.open({ url: 'mysql://app:app-pass@127.0.0.1:23306/appdb' });
 * ```
 */
export class MySqlJobStore implements JobStore {
  readonly #pool: Pool;
  readonly #ownsPool: boolean;
  readonly #jobs: string;
  readonly #transitions: string;
  readonly #now: () => number;

  private constructor(pool: Pool, ownsPool: boolean, prefix: string, now: () => number) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#jobs = `\`${prefix}jobs\``;
    this.#transitions = `\`${prefix}job_transitions\``;
    this.#now = now;
  }

  /**
   * Connects and creates the tables if missing.
   * @param options - see {@link MySqlJobStoreOptions}
   * @returns the store
   * @throws `ValidationError` (`@cdss/core`) for bad options; the driver's error when the database is unreachable
   */
  static async open(options: MySqlJobStoreOptions): Promise<MySqlJobStore> {
    const opts = parseOrThrow(optionsSchema, options, 'invalid MySqlJobStore options');
    if (!options.pool && !opts.url)
      throw new ValidationError('MySqlJobStore needs url or pool', [
        { path: 'url', message: 'required', code: 'invalid_type' },
      ]);
    const pool =
      options.pool ??
      mysql.createPool({
        uri: opts.url!,
        connectionLimit: opts.connectionLimit,
        // The store's own statements are plain queries; only the callers' writes inside `apply`'s transaction are
        // prepared, a handful. mysql2's default statement cache (16,000 entries per connection, allocated up front:
        // about 0.5 MiB of heap each) would only cost memory, and MySQL's prepared statements of all sessions
        // together are limited (max_prepared_stmt_count, 16,382 by default).
        maxPreparedStatements: 64,
        timezone: 'Z',
        supportBigNumbers: true,
      });
    const store = new MySqlJobStore(pool, !options.pool, opts.tablePrefix, options.now ?? Date.now);
    try {
      await store.#migrate();
    } catch (error) {
      if (!options.pool) await pool.end().catch(() => {});
      throw error;
    }
    return store;
  }

  async #migrate(): Promise<void> {
    const conn = await this.#pool.getConnection();
    try {
      // instances starting together migrate one after the other
      const [lock] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 30) AS got', [`cdss_migrate_${this.#jobs}`]);
      if (lock[0]?.['got'] !== 1) throw new CdssError('could not take the migration lock', { code: 'STORE_LOCK' });
      try {
        await conn.query(`CREATE TABLE IF NOT EXISTS ${this.#jobs} (
          job_id CHAR(36) NOT NULL PRIMARY KEY,
          idempotency_key VARCHAR(128) NOT NULL,
          state VARCHAR(16) NOT NULL,
          record LONGTEXT NOT NULL,
          created_at DATETIME(3) NOT NULL,
          updated_at DATETIME(3) NOT NULL,
          published_at DATETIME(3) NULL,
          UNIQUE KEY uk_idempotency_key (idempotency_key),
          KEY k_state_updated (state, updated_at),
          KEY k_created (created_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
        await conn.query(`CREATE TABLE IF NOT EXISTS ${this.#transitions} (
          id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          job_id CHAR(36) NOT NULL,
          from_state VARCHAR(16) NOT NULL,
          to_state VARCHAR(16) NOT NULL,
          message_id CHAR(36) NOT NULL,
          at DATETIME(3) NOT NULL,
          KEY k_job (job_id, id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
        // v2: the patient and study as indexed columns, so pages by patient, study and state never scan
        const [columns] = await conn.query<RowDataPacket[]>(
          `SELECT COUNT(*) AS n FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'patient_ref'`,
          [this.#jobs.slice(1, -1)],
        );
        if (Number(columns[0]?.['n']) === 0) {
          await conn.query(`ALTER TABLE ${this.#jobs}
            ADD COLUMN patient_ref VARCHAR(128) NULL,
            ADD COLUMN study_uid VARCHAR(64) NULL,
            ADD KEY k_patient_created (patient_ref, created_at, job_id),
            ADD KEY k_study_created (study_uid, created_at, job_id),
            ADD KEY k_state_created (state, created_at, job_id)`);
          await conn.query(`UPDATE ${this.#jobs}
            SET patient_ref = JSON_UNQUOTE(JSON_EXTRACT(record, '$.request.patientRef')),
                study_uid = JSON_UNQUOTE(JSON_EXTRACT(record, '$.request.studyInstanceUid'))
            WHERE patient_ref IS NULL`);
        }
      } finally {
        await conn.query('SELECT RELEASE_LOCK(?)', [`cdss_migrate_${this.#jobs}`]);
      }
    } finally {
      conn.release();
    }
  }

  /** Drops this store's tables (tests only). */
  async dropTables(): Promise<void> {
    await this.#pool.query(`DROP TABLE IF EXISTS ${this.#jobs}, ${this.#transitions}`);
  }

  #parse(row: RecordRow | undefined): JobRecord | undefined {
    if (!row) return undefined;
    const result = jobRecordSchema.safeParse(JSON.parse(row.record));
    if (!result.success)
      throw new CdssError('a stored job record does not match the schema', {
        code: 'STORE_CORRUPT',
        cause: result.error,
      });
    return result.data;
  }

  /** {@inheritDoc JobStore.create} */
  async create(request: AnalysisRequested): Promise<{ job: JobRecord; created: boolean }> {
    const valid = checkedMessage(analysisRequestedSchema, request, 'invalid analysis request');
    const job = newJobRecord(valid, new Date(this.#now()).toISOString());
    const [res] = await this.#pool.query<ResultSetHeader>(
      `INSERT IGNORE INTO ${this.#jobs} (job_id, idempotency_key, state, record, created_at, updated_at, patient_ref, study_uid)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        job.jobId,
        job.idempotencyKey,
        job.state,
        JSON.stringify(job),
        sqlTime(job.createdAt),
        sqlTime(job.updatedAt),
        job.request.patientRef,
        job.request.studyInstanceUid,
      ],
    );
    if (res.affectedRows === 1) return { job, created: true };
    const [rows] = await this.#pool.query<RecordRow[]>(
      `SELECT record FROM ${this.#jobs} WHERE idempotency_key = ? OR job_id = ? LIMIT 1`,
      [job.idempotencyKey, job.jobId],
    );
    const existing = this.#parse(rows[0]);
    if (!existing) throw new CdssError('job insert ignored but no row found', { code: 'STORE_CONFLICT' });
    return { job: existing, created: false };
  }

  /** {@inheritDoc JobStore.get} */
  async get(jobId: string): Promise<JobRecord | undefined> {
    const [rows] = await this.#pool.query<RecordRow[]>(`SELECT record FROM ${this.#jobs} WHERE job_id = ?`, [jobId]);
    return this.#parse(rows[0]);
  }

  /** {@inheritDoc JobStore.findByIdempotencyKey} */
  async findByIdempotencyKey(key: string): Promise<JobRecord | undefined> {
    const [rows] = await this.#pool.query<RecordRow[]>(`SELECT record FROM ${this.#jobs} WHERE idempotency_key = ?`, [
      key,
    ]);
    return this.#parse(rows[0]);
  }

  /** {@inheritDoc JobStore.apply} */
  async apply(event: JobEvent, options: ApplyOptions = {}): Promise<ApplyResult> {
    const valid = checkedMessage(jobEventSchema, event, 'invalid job event');
    const conn: PoolConnection = await this.#pool.getConnection();
    try {
      await conn.beginTransaction();
      const [rows] = await conn.query<RecordRow[]>(`SELECT record FROM ${this.#jobs} WHERE job_id = ? FOR UPDATE`, [
        valid.jobId,
      ]);
      const job = this.#parse(rows[0]);
      if (!job) {
        await conn.rollback();
        return { outcome: 'unknown-job' };
      }
      const now = new Date(this.#now()).toISOString();
      const decision = decide(job, valid, now);
      let result: ApplyResult;
      switch (decision.outcome) {
        case 'duplicate': {
          if (decision.touch) {
            job.updatedAt = now;
            await conn.query(`UPDATE ${this.#jobs} SET record = ?, updated_at = ? WHERE job_id = ?`, [
              JSON.stringify(job),
              sqlTime(now),
              job.jobId,
            ]);
          }
          result = { outcome: 'duplicate', job };
          break;
        }
        case 'refused':
          result = { outcome: 'refused', job, reason: decision.reason };
          break;
        case 'applied': {
          const next = decision.next;
          await conn.query(`UPDATE ${this.#jobs} SET state = ?, record = ?, updated_at = ? WHERE job_id = ?`, [
            next.state,
            JSON.stringify(next),
            sqlTime(next.updatedAt),
            next.jobId,
          ]);
          const t = decision.transition;
          if (t) {
            await conn.query(
              `INSERT INTO ${this.#transitions} (job_id, from_state, to_state, message_id, at) VALUES (?, ?, ?, ?, ?)`,
              [t.jobId, t.from, t.to, t.messageId, sqlTime(t.at)],
            );
          }
          const applied = t
            ? { outcome: 'applied' as const, job: next, transition: t }
            : { outcome: 'applied' as const, job: next };
          // the caller's writes (e.g. outbox rows) commit with the change, or neither does
          await options.within?.(applied, { connection: conn });
          result = applied;
          break;
        }
      }
      await conn.commit();
      return result;
    } catch (error) {
      await conn.rollback().catch(() => {});
      throw error;
    } finally {
      conn.release();
    }
  }

  /** {@inheritDoc JobStore.markPublished} */
  async markPublished(jobId: string, at: string): Promise<void> {
    const conn = await this.#pool.getConnection();
    try {
      await conn.beginTransaction();
      const [rows] = await conn.query<RecordRow[]>(`SELECT record FROM ${this.#jobs} WHERE job_id = ? FOR UPDATE`, [
        jobId,
      ]);
      const job = this.#parse(rows[0]);
      if (job && job.publishedAt === null) {
        job.publishedAt = at;
        await conn.query(`UPDATE ${this.#jobs} SET record = ?, published_at = ? WHERE job_id = ?`, [
          JSON.stringify(job),
          sqlTime(at),
          jobId,
        ]);
      }
      await conn.commit();
    } catch (error) {
      await conn.rollback().catch(() => {});
      throw error;
    } finally {
      conn.release();
    }
  }

  /** The WHERE clause of a query. */
  #where(query: JobQuery): { sql: string; params: unknown[] } {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.states) {
      const states = query.states.map((s) => jobStateSchema.parse(s));
      where.push(states.length === 0 ? 'FALSE' : `state IN (${states.map(() => '?').join(', ')})`);
      params.push(...states);
    }
    if (query.unpublished) where.push('published_at IS NULL');
    if (query.updatedBefore !== undefined) {
      where.push('updated_at < ?');
      params.push(sqlTime(query.updatedBefore));
    }
    if (query.patientRef !== undefined) {
      where.push('patient_ref = ?');
      params.push(query.patientRef);
    }
    if (query.studyInstanceUid !== undefined) {
      where.push('study_uid = ?');
      params.push(query.studyInstanceUid);
    }
    return { sql: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', params };
  }

  /** {@inheritDoc JobStore.list} */
  async list(query: JobQuery = {}): Promise<JobRecord[]> {
    const { sql, params } = this.#where(query);
    const limit = Math.max(0, Math.min(100_000, Math.floor(query.limit ?? 1000)));
    const [rows] = await this.#pool.query<RecordRow[]>(
      `SELECT record FROM ${this.#jobs} ${sql} ORDER BY created_at, job_id LIMIT ${limit}`,
      params,
    );
    return rows.map((r) => this.#parse(r)!);
  }

  /** {@inheritDoc JobStore.page} */
  async page(query: JobPageQuery = {}): Promise<JobPage> {
    const newest = (query.order ?? 'newest') === 'newest';
    const { sql, params } = this.#where(query);
    const clauses = sql ? [sql.slice('WHERE '.length)] : [];
    if (query.cursor !== undefined) {
      const after = decodeJobCursor(query.cursor);
      const op = newest ? '<' : '>';
      clauses.push(`(created_at ${op} ? OR (created_at = ? AND job_id ${op} ?))`);
      params.push(sqlTime(after.createdAt), sqlTime(after.createdAt), after.jobId);
    }
    const limit = Math.max(1, Math.min(1000, Math.floor(query.limit ?? 100)));
    const dir = newest ? 'DESC' : 'ASC';
    const [rows] = await this.#pool.query<RecordRow[]>(
      `SELECT record FROM ${this.#jobs} ${clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : ''}
        ORDER BY created_at ${dir}, job_id ${dir} LIMIT ${limit + 1}`,
      params,
    );
    const jobs = rows.slice(0, limit).map((r) => this.#parse(r)!);
    const last = jobs.at(-1);
    return rows.length > limit && last ? { jobs, nextCursor: encodeJobCursor(last) } : { jobs };
  }

  /** {@inheritDoc JobStore.count} */
  async count(query: JobQuery = {}): Promise<number> {
    const { sql, params } = this.#where(query);
    const [rows] = await this.#pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${this.#jobs} ${sql}`, params);
    return Number(rows[0]?.['n'] ?? 0);
  }

  /** {@inheritDoc JobStore.getMany} */
  async getMany(jobIds: readonly string[]): Promise<JobRecord[]> {
    if (jobIds.length === 0) return [];
    const [rows] = await this.#pool.query<RecordRow[]>(`SELECT record FROM ${this.#jobs} WHERE job_id IN (?)`, [
      [...jobIds],
    ]);
    const byId = new Map(rows.map((r) => this.#parse(r)!).map((job) => [job.jobId, job]));
    return jobIds.flatMap((id) => byId.get(id) ?? []);
  }

  /** {@inheritDoc JobStore.markReaped} */
  async markReaped(jobId: string, staleBefore: string): Promise<JobRecord | undefined> {
    const conn = await this.#pool.getConnection();
    try {
      await conn.beginTransaction();
      const [rows] = await conn.query<RecordRow[]>(
        `SELECT record FROM ${this.#jobs}
          WHERE job_id = ? AND (state IN ('accepted', 'running') OR (state = 'queued' AND published_at IS NULL))
            AND updated_at < ? FOR UPDATE`,
        [jobId, sqlTime(staleBefore)],
      );
      const job = this.#parse(rows[0]);
      if (!job) {
        await conn.rollback();
        return undefined;
      }
      const next: JobRecord = { ...job, updatedAt: new Date(this.#now()).toISOString(), reaps: job.reaps + 1 };
      await conn.query(`UPDATE ${this.#jobs} SET record = ?, updated_at = ? WHERE job_id = ?`, [
        JSON.stringify(next),
        sqlTime(next.updatedAt),
        jobId,
      ]);
      await conn.commit();
      return next;
    } catch (error) {
      await conn.rollback().catch(() => {});
      throw error;
    } finally {
      conn.release();
    }
  }

  /** {@inheritDoc JobStore.history} */
  async history(jobId: string): Promise<JobTransition[]> {
    const [rows] = await this.#pool.query<
      (RowDataPacket & { from_state: string; to_state: string; message_id: string; at: Date })[]
    >(`SELECT from_state, to_state, message_id, at FROM ${this.#transitions} WHERE job_id = ? ORDER BY id`, [jobId]);
    return rows.map((r) => ({
      jobId,
      from: jobStateSchema.parse(r.from_state),
      to: jobStateSchema.parse(r.to_state),
      messageId: r.message_id,
      at: r.at instanceof Date ? r.at.toISOString() : new Date(`${String(r.at)}Z`).toISOString(),
    }));
  }

  /** Ends the pool if the store created it. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}
