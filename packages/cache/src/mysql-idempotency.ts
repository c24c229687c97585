/**
 * The {@link IdempotencyStore} on MySQL/MariaDB (`@cdss/cache/mysql`), shared by every server instance.
 * @packageDocumentation
 */
import type { ResultSetHeader } from 'mysql2/promise';
import { z } from 'zod';
import { CacheUnavailableError, parseOrThrow } from './errors.js';
import {
  claimInputSchema,
  completeInputSchema,
  idempotencyKeySchema,
  markUnknownInputSchema,
  type ClaimInput,
  type CompleteInput,
  type CompleteOptions,
  type IdempotencyClaim,
  type IdempotencyStore,
  type MarkUnknownInput,
} from './idempotency.js';
import { migrate, MySqlRunner, tableNameSchema, type MySqlConnectionOptions } from './mysql-shared.js';

/** Schema of {@link MySqlIdempotencyStoreOptions}' plain fields. */
export const mySqlIdempotencyStoreOptionsSchema = z.object({
  /** Table of the records; created on start. */
  table: tableNameSchema.default('cdss_idempotency'),
});

/** Options of {@link MySqlIdempotencyStore.open}. */
export interface MySqlIdempotencyStoreOptions
  extends MySqlConnectionOptions, Partial<z.input<typeof mySqlIdempotencyStoreOptionsSchema>> {}

const IDEMPOTENCY_MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS {table} (
     idem_key VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
     fingerprint CHAR(64) CHARACTER SET ascii NOT NULL,
     state ENUM('pending', 'done') NOT NULL,
     owner VARCHAR(64) CHARACTER SET ascii NOT NULL,
     response LONGTEXT CHARACTER SET utf8mb4 NULL,
     created_at BIGINT NOT NULL,
     until_at BIGINT NOT NULL,
     PRIMARY KEY (idem_key),
     KEY idx_until (until_at)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  // v2: unknown outcomes, the writer's context, and a retention separate from the lease
  `ALTER TABLE {table}
     MODIFY state ENUM('pending', 'unknown', 'done') NOT NULL,
     ADD COLUMN context LONGTEXT CHARACTER SET utf8mb4 NULL,
     ADD COLUMN forget_at BIGINT NULL,
     ADD KEY idx_forget (forget_at)`,
  `UPDATE {table} SET forget_at = until_at WHERE forget_at IS NULL`,
] as const;

const recordRowSchema = z.object({
  fingerprint: z.string(),
  state: z.enum(['pending', 'unknown', 'done']),
  response: z.string().nullable(),
  context: z.string().nullable(),
  until_at: z.coerce.number().int(),
  forget_at: z.coerce.number().int().nullable(),
});

type StatementName = 'insert' | 'takeover' | 'recover' | 'select' | 'complete' | 'unknown' | 'release' | 'sweep';

/**
 * The {@link IdempotencyStore} on MySQL/MariaDB, shared by every instance: a duplicate request arriving at another
 * instance sees the first one's claim or answer. Create it with {@link MySqlIdempotencyStore.open}.
 */
export class MySqlIdempotencyStore implements IdempotencyStore {
  /** The records table. */
  readonly table: string;
  private readonly runner: MySqlRunner;
  private readonly sql: Readonly<Record<StatementName, string>>;

  private constructor(options: MySqlIdempotencyStoreOptions) {
    const { pool, url, connectionLimit, connectTimeoutMs, queryTimeoutMs, breakerCooldownMs, ...plain } = options;
    this.table = parseOrThrow(mySqlIdempotencyStoreOptionsSchema, plain, 'Invalid MySqlIdempotencyStore options').table;
    this.runner = new MySqlRunner(
      { pool, url, connectionLimit, connectTimeoutMs, queryTimeoutMs, breakerCooldownMs },
      'MySqlIdempotencyStore',
    );
    const t = this.runner.pool.escapeId(this.table);
    this.sql = {
      // A plain INSERT: a duplicate key fails with ER_DUP_ENTRY (INSERT IGNORE would hide other errors too, and
      // ON DUPLICATE KEY UPDATE reports 1 row under mysql2's default FOUND_ROWS flag, like a real insert).
      insert: `INSERT INTO ${t} (idem_key, fingerprint, state, owner, response, context, created_at, until_at, forget_at)
               VALUES (?, ?, 'pending', ?, NULL, ?, ?, ?, ?)`,
      // an answer past its expiry, or a record past its retention, is forgotten: claim it afresh
      takeover: `UPDATE ${t} SET fingerprint = ?, state = 'pending', owner = ?, response = NULL, context = ?,
                   created_at = ?, until_at = ?, forget_at = ?
                 WHERE idem_key = ? AND (forget_at <= ? OR (state = 'done' AND until_at <= ?))`,
      // an unknown outcome, or an owner whose lease ran out: the same request takes it over to find out
      recover: `UPDATE ${t} SET state = 'pending', owner = ?, until_at = ?
                WHERE idem_key = ? AND fingerprint = ? AND forget_at > ?
                  AND (state = 'unknown' OR (state = 'pending' AND until_at <= ?))`,
      select: `SELECT fingerprint, state, response, context, until_at, forget_at FROM ${t} WHERE idem_key = ?`,
      complete: `UPDATE ${t} SET state = 'done', response = ?, until_at = ?, forget_at = ?
                 WHERE idem_key = ? AND owner = ? AND state = 'pending'`,
      unknown: `UPDATE ${t} SET state = 'unknown', until_at = ?, forget_at = ?
                WHERE idem_key = ? AND owner = ? AND state = 'pending'`,
      release: `DELETE FROM ${t} WHERE idem_key = ? AND owner = ? AND state = 'pending'`,
      sweep: `DELETE FROM ${t} WHERE forget_at <= ? LIMIT 1000`,
    };
  }

  /**
   * Connects and migrates the schema.
   * @param options - connection and table
   * @returns the ready store
   * @throws `ValidationError` for bad options; `CacheUnavailableError` when the server cannot be reached
   */
  static async open(options: MySqlIdempotencyStoreOptions): Promise<MySqlIdempotencyStore> {
    const store = new MySqlIdempotencyStore(options);
    try {
      await migrate(store.runner, 'idempotency', store.table, IDEMPOTENCY_MIGRATIONS);
    } catch (error) {
      await store.runner.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /** {@inheritDoc IdempotencyStore.claim} */
  async claim(input: ClaimInput): Promise<IdempotencyClaim> {
    const c = parseOrThrow(claimInputSchema, input, 'Invalid idempotency claim');
    const until = c.now + c.leaseMs;
    const forget = c.now + Math.max(c.retainMs, c.leaseMs);
    const context = c.context ?? null;
    // Insert, else take over a forgotten record, else recover an unknown one, else report the holder; a row released
    // or changed in between tries again.
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.insert([c.key, c.fingerprint, c.owner, context, c.now, until, forget]))
        return { status: 'claimed' };
      const rows = await this.runner.rows(this.sql.select, [c.key]);
      if (rows[0] === undefined) continue;
      const row = parseOrThrow(recordRowSchema, rows[0], 'Unexpected idempotency row');
      const forgetAt = row.forget_at ?? row.until_at;
      if (forgetAt <= c.now || (row.state === 'done' && row.until_at <= c.now)) {
        const taken = await this.runner.write(this.sql.takeover, [
          c.fingerprint,
          c.owner,
          context,
          c.now,
          until,
          forget,
          c.key,
          c.now,
          c.now,
        ]);
        if (taken.affectedRows === 1) return { status: 'claimed' };
        continue;
      }
      if (row.state === 'done')
        return { status: 'done', fingerprint: row.fingerprint, response: row.response ?? 'null' };
      if (row.state === 'pending' && row.until_at > c.now)
        return { status: 'pending', fingerprint: row.fingerprint, leaseUntil: row.until_at };
      if (row.fingerprint !== c.fingerprint) return { status: 'unknown', fingerprint: row.fingerprint };
      const recovered = await this.runner.write(this.sql.recover, [c.owner, until, c.key, c.fingerprint, c.now, c.now]);
      if (recovered.affectedRows === 1) return { status: 'recover', context: row.context ?? undefined };
    }
    // Constantly churning key: report it as pending so the caller tries again later.
    return { status: 'pending', fingerprint: c.fingerprint, leaseUntil: until };
  }

  private async insert(params: [string, string, string, string | null, number, number, number]): Promise<boolean> {
    try {
      await this.runner.write(this.sql.insert, params);
      return true;
    } catch (error) {
      const cause = CacheUnavailableError.isInstance(error)
        ? (error.cause as { code?: unknown } | undefined)
        : undefined;
      if (cause?.code === 'ER_DUP_ENTRY') return false;
      throw error;
    }
  }

  /** {@inheritDoc IdempotencyStore.complete} */
  async complete(input: CompleteInput, options: CompleteOptions = {}): Promise<boolean> {
    const c = parseOrThrow(completeInputSchema, input, 'Invalid idempotency completion');
    const params = [c.response, c.expiresAt, c.expiresAt, c.key, c.owner];
    const within = options.within;
    if (!within) return (await this.runner.write(this.sql.complete, params)).affectedRows === 1;
    return this.runner.withConnection(async (connection) => {
      try {
        await connection.beginTransaction();
        const [header] = await connection.execute<ResultSetHeader>(this.sql.complete, params);
        if (header.affectedRows !== 1) {
          await connection.rollback();
          return false;
        }
        await within({ connection });
        await connection.commit();
        return true;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        throw error;
      }
    });
  }

  /** {@inheritDoc IdempotencyStore.markUnknown} */
  async markUnknown(input: MarkUnknownInput): Promise<boolean> {
    const m = parseOrThrow(markUnknownInputSchema, input, 'Invalid idempotency update');
    const header = await this.runner.write(this.sql.unknown, [m.expiresAt, m.expiresAt, m.key, m.owner]);
    return header.affectedRows === 1;
  }

  /** {@inheritDoc IdempotencyStore.release} */
  async release(key: string, owner: string): Promise<void> {
    await this.runner.write(this.sql.release, [
      parseOrThrow(idempotencyKeySchema, key, 'Invalid idempotency key'),
      owner,
    ]);
  }

  /** {@inheritDoc IdempotencyStore.sweep} */
  async sweep(now: number): Promise<number> {
    let total = 0;
    for (let round = 0; round < 1_000; round++) {
      const header = await this.runner.write(this.sql.sweep, [now]);
      total += header.affectedRows;
      if (header.affectedRows < 1_000) break;
    }
    return total;
  }

  /** {@inheritDoc IdempotencyStore.close} */
  async close(): Promise<void> {
    await this.runner.close();
  }
}
