/**
 * What the MySQL store and the MySQL idempotency store share: a pool with bounded timeouts, a runner that turns
 * driver failures into {@link CacheUnavailableError} behind a circuit breaker, and schema migrations.
 * @packageDocumentation
 */
import { TimeoutError, ValidationError } from '@cdss/core';
import { createPool, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { CacheUnavailableError, parseOrThrow } from './errors.js';

/** A MySQL/MariaDB identifier this package accepts as a table name (letters, digits, `_`; at most 48 characters). */
export const tableNameSchema = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,47}$/,
    'table name must be letters, digits or _ (at most 48, not starting with a digit)',
  );

/** Schema of the connection options shared by the MySQL-backed classes. */
export const mysqlConnectionOptionsSchema = z.object({
  /** `mysql://user:pass@host:port/db`; ignored when a `pool` is given. */
  url: z.string().url().optional(),
  /** Pool size when this package creates the pool. */
  connectionLimit: z.number().int().positive().default(8),
  /** Bound on opening a connection, so a dead server fails a request fast instead of hanging it. */
  connectTimeoutMs: z.number().int().positive().default(2_000),
  /** Bound on one statement, waiting for a pooled connection included. */
  queryTimeoutMs: z.number().int().positive().default(2_000),
  /** After a connection-level failure, fail fast for this long before trying the server again. */
  breakerCooldownMs: z.number().int().nonnegative().default(1_000),
});

/** Connection options of the MySQL-backed classes (see {@link mysqlConnectionOptionsSchema}). */
export interface MySqlConnectionOptions extends Partial<z.input<typeof mysqlConnectionOptionsSchema>> {
  /** An existing mysql2 promise pool to use (not closed by `close()`); otherwise one is created from `url`. */
  pool?: Pool;
}

/** A bound statement parameter. @internal */
export type SqlParam = string | number | null;

/** Driver error codes that mean the server (not the statement) is the problem. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_ACCESS_DENIED_ERROR',
  'POOL_CLOSED',
]);

function isConnectionFailure(error: unknown): boolean {
  if (TimeoutError.isInstance(error)) return true;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; fatal?: unknown; message?: unknown };
  if (e.fatal === true) return true;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  return typeof e.message === 'string' && /Pool is closed|inactivity timeout|connect ETIMEDOUT/i.test(e.message);
}

interface PendingOp {
  deadline: number;
  fail: (error: Error) => void;
}

/**
 * Prepared statements each pooled connection keeps (mysql2's `maxPreparedStatements`; beyond it the least recently
 * used is closed). mysql2's default of 16,000 allocates each connection's statement cache for that many entries up
 * front (about 0.5 MiB of JavaScript heap per connection) and lets one process hold most of the MySQL server's
 * `max_prepared_stmt_count` (16,382 for all sessions together); the stores prepare a handful of statements.
 * @internal
 */
export const MAX_PREPARED_STATEMENTS = 64;

/**
 * Runs statements on a pool with a deadline and a circuit breaker.
 *
 * Statements go through the core (callback) pool: the promise wrapper captures a stack trace per call, which
 * costs more than the query's own client-side work. Deadlines are enforced by one watchdog timer per runner
 * rather than a timer per statement, for the same reason.
 * @internal
 */
export class MySqlRunner {
  readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly queryTimeoutMs: number;
  private readonly cooldownMs: number;
  private readonly pending = new Set<PendingOp>();
  private watchdog: NodeJS.Timeout | undefined;
  private openUntil = 0;

  constructor(options: MySqlConnectionOptions, what: string) {
    const { pool, ...plain } = options;
    const parsed = parseOrThrow(mysqlConnectionOptionsSchema, plain, `Invalid ${what} options`);
    this.queryTimeoutMs = parsed.queryTimeoutMs;
    this.cooldownMs = parsed.breakerCooldownMs;
    if (pool) {
      this.pool = pool;
      this.ownsPool = false;
    } else {
      if (!parsed.url) {
        throw new ValidationError(`Invalid ${what} options`, [
          {
            path: 'url',
            message: 'either url or pool is required',
            code: 'invalid_type',
            expected: 'string',
            received: 'undefined',
          },
        ]);
      }
      this.pool = createPool({
        uri: parsed.url,
        connectionLimit: parsed.connectionLimit,
        maxIdle: parsed.connectionLimit,
        connectTimeout: parsed.connectTimeoutMs,
        maxPreparedStatements: MAX_PREPARED_STATEMENTS,
        enableKeepAlive: true,
        waitForConnections: true,
        // Bound the wait queue: beyond it a request fails at once rather than piling up behind a slow server.
        queueLimit: parsed.connectionLimit * 64,
      });
      this.ownsPool = true;
    }
  }

  /** True while the breaker is open (the server failed recently). */
  get degraded(): boolean {
    return Date.now() < this.openUntil;
  }

  /** Runs a prepared statement returning rows. */
  rows(sql: string, params: SqlParam[]): Promise<RowDataPacket[]> {
    return this.run<RowDataPacket[]>((done) => this.pool.pool.execute<RowDataPacket[]>(sql, params, done));
  }

  /** Runs a prepared statement returning a result header. */
  write(sql: string, params: SqlParam[]): Promise<ResultSetHeader> {
    return this.run<ResultSetHeader>((done) => this.pool.pool.execute<ResultSetHeader>(sql, params, done));
  }

  /** Runs `fn` on one dedicated connection (for migrations under a named lock). */
  async withConnection<T>(fn: (connection: PoolConnection) => Promise<T>): Promise<T> {
    const connection = await this.run<PoolConnection>((done) => {
      this.pool.getConnection().then(
        (c) => done(null, c),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error)), undefined),
      );
    });
    try {
      return await fn(connection);
    } finally {
      connection.release();
    }
  }

  /** Closes the pool if this runner created it, and stops the watchdog. */
  async close(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    if (this.ownsPool) await this.pool.end();
  }

  private run<T>(start: (done: (error: Error | null, result: T | undefined) => void) => void): Promise<T> {
    if (this.cooldownMs > 0 && Date.now() < this.openUntil) {
      return Promise.reject(
        new CacheUnavailableError('mysql', 'MySQL is unavailable (circuit open after a recent failure)'),
      );
    }
    this.ensureWatchdog();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (error: unknown): void => {
        if (settled) return;
        settled = true;
        this.pending.delete(op);
        reject(this.classify(error));
      };
      const op: PendingOp = { deadline: Date.now() + this.queryTimeoutMs, fail };
      this.pending.add(op);
      try {
        start((error, result) => {
          if (error) return fail(error);
          if (settled) return;
          settled = true;
          this.pending.delete(op);
          this.openUntil = 0;
          resolve(result as T);
        });
      } catch (error) {
        fail(error);
      }
    });
  }

  private classify(error: unknown): CacheUnavailableError {
    if (isConnectionFailure(error)) {
      this.openUntil = Date.now() + this.cooldownMs;
      return new CacheUnavailableError('mysql', 'MySQL is unavailable', { cause: error });
    }
    return new CacheUnavailableError('mysql', 'MySQL statement failed', { cause: error });
  }

  private ensureWatchdog(): void {
    if (this.watchdog) return;
    const period = Math.max(10, Math.min(250, Math.floor(this.queryTimeoutMs / 4)));
    this.watchdog = setInterval(() => {
      if (this.pending.size === 0) return;
      const now = Date.now();
      for (const op of this.pending) {
        if (op.deadline <= now) {
          op.fail(new TimeoutError(`MySQL statement exceeded ${this.queryTimeoutMs} ms`, this.queryTimeoutMs));
        }
      }
    }, period);
    this.watchdog.unref();
  }
}

/**
 * Applies the not yet applied `steps` for `component` on `table`, recording the schema version in
 * `cdss_cache_schema`. A named lock serialises instances that start together.
 * @internal
 */
export async function migrate(
  runner: MySqlRunner,
  component: string,
  table: string,
  steps: readonly string[],
): Promise<number> {
  return runner.withConnection(async (connection) => {
    const lockName = `cdss_cache_migrate_${table}`;
    const [lockRows] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, 30) AS got', [lockName]);
    if (lockRows[0]?.['got'] !== 1)
      throw new CacheUnavailableError('mysql', 'Could not take the schema migration lock');
    try {
      await connection.query(
        `CREATE TABLE IF NOT EXISTS cdss_cache_schema (
           table_name VARCHAR(64) NOT NULL PRIMARY KEY,
           component VARCHAR(32) NOT NULL,
           version INT NOT NULL,
           migrated_at BIGINT NOT NULL
         ) ENGINE=InnoDB`,
      );
      const [rows] = await connection.query<RowDataPacket[]>(
        'SELECT version FROM cdss_cache_schema WHERE table_name = ?',
        [table],
      );
      let version = z.coerce
        .number()
        .int()
        .catch(0)
        .parse(rows[0]?.['version'] ?? 0);
      for (; version < steps.length; version++) {
        const step = steps[version];
        if (step === undefined) break;
        await connection.query(step.replaceAll('{table}', connection.escapeId(table)));
        await connection.query(
          `INSERT INTO cdss_cache_schema (table_name, component, version, migrated_at) VALUES (?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE version = VALUES(version), migrated_at = VALUES(migrated_at)`,
          [table, component, version + 1, Date.now()],
        );
      }
      return version;
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [lockName]);
    }
  });
}
