/**
 * The server's own state in MySQL (connected mode): one pool for the tables the server owns (reviews, webhook
 * replays, rate-limit counters), their schema, and transactions. The packages' stores (jobs, outbox, cache,
 * idempotency) keep their own tables in the same database, so a transaction on any of their connections can also
 * write here: that is how a state change and its outbox rows commit together.
 */
import mysql, { type Pool, type PoolConnection, type RowDataPacket } from 'mysql2/promise';
import type { StateTransaction } from '../domain/ports.js';

/** The tables the server owns, created if missing (each statement is idempotent). */
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS cdss_reviews (
     job_id CHAR(36) NOT NULL PRIMARY KEY,
     patient_id VARCHAR(64) NOT NULL,
     status ENUM('pending', 'approved', 'rejected') NOT NULL,
     reviewer VARCHAR(128) NULL,
     reviewer_name VARCHAR(256) NULL,
     comment TEXT NULL,
     reviewed_at VARCHAR(40) NULL,
     opened_at DATETIME(3) NOT NULL,
     version INT NOT NULL DEFAULT 0,
     KEY k_status_opened (status, opened_at, job_id),
     KEY k_patient_status_opened (patient_id, status, opened_at, job_id)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE IF NOT EXISTS cdss_webhook_replays (
     signature CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
     expires_at BIGINT NOT NULL,
     KEY k_expires (expires_at)
   ) ENGINE=InnoDB`,
  `CREATE TABLE IF NOT EXISTS cdss_rate_limits (
     rate_key VARCHAR(191) NOT NULL PRIMARY KEY,
     hits INT NOT NULL,
     reset_at BIGINT NOT NULL,
     KEY k_reset (reset_at)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
] as const;

/**
 * Prepared statements a pooled connection keeps (mysql2's `maxPreparedStatements`; the least recently used one is
 * closed beyond it). mysql2's default, 16,000, is not only a bound on the MySQL server (whose own limit,
 * `max_prepared_stmt_count`, is 16,382 for ALL sessions together): each connection allocates its statement cache
 * for that many entries up front, four arrays of 16,000 slots, about 0.5 MiB of JavaScript heap per connection, and
 * a pool opens its connections as concurrency rises (measured: 14 connections, 5.5 MiB of a server's heap in the
 * soak). The server prepares a few dozen distinct statements per pool.
 */
export const MAX_PREPARED_STATEMENTS = 64;

/** The server's MySQL state. */
export interface MySqlState {
  pool: Pool;
  /** Runs `work` in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(work: (transaction: StateTransaction & { connection: PoolConnection }) => Promise<T>): Promise<T>;
  /** Deletes expired webhook replays and rate-limit counters. */
  sweep(now?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * `2026-11-26T06:00:00.123Z` → `2026-11-26 06:00:00.123` (UTC, for DATETIME(3)).
 * @param iso - an ISO 8601 time
 */
export function sqlTime(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * Connects and creates the server's tables.
 * @param url - `mysql://user:pass@host:port/db`
 * @param options - pool size and timeouts
 */
export async function openMySqlState(
  url: string,
  options: { connectionLimit?: number; connectTimeoutMs?: number } = {},
): Promise<MySqlState> {
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: options.connectionLimit ?? 8,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    maxPreparedStatements: MAX_PREPARED_STATEMENTS,
    enableKeepAlive: true,
    timezone: 'Z',
    // affectedRows counts changed rows, not matched ones: an upsert that changed nothing reports 0
    flags: ['-FOUND_ROWS'],
  });
  try {
    const connection = await pool.getConnection();
    try {
      const [lock] = await connection.query<RowDataPacket[]>("SELECT GET_LOCK('cdss_server_schema', 30) AS got");
      if (lock[0]?.['got'] !== 1) throw new Error('could not take the schema lock');
      try {
        for (const statement of SCHEMA) await connection.query(statement);
        // a table made before reviews kept the reviewer's display name gets the column (MySQL has no ADD IF NOT EXISTS)
        const [named] = await connection.query<RowDataPacket[]>(
          `SELECT COUNT(*) AS n FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cdss_reviews' AND COLUMN_NAME = 'reviewer_name'`,
        );
        if (Number(named[0]?.['n']) === 0)
          await connection.query('ALTER TABLE cdss_reviews ADD COLUMN reviewer_name VARCHAR(256) NULL AFTER reviewer');
      } finally {
        await connection.query("SELECT RELEASE_LOCK('cdss_server_schema')");
      }
    } finally {
      connection.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  return {
    pool,
    async transaction(work) {
      const connection = await pool.getConnection();
      try {
        await connection.beginTransaction();
        const result = await work({ connection });
        await connection.commit();
        return result;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        throw error;
      } finally {
        connection.release();
      }
    },
    async sweep(now = Date.now()) {
      await pool.execute('DELETE FROM cdss_webhook_replays WHERE expires_at <= ? LIMIT 10000', [now]);
      await pool.execute('DELETE FROM cdss_rate_limits WHERE reset_at <= ? LIMIT 10000', [now]);
    },
    close: () => pool.end(),
  };
}
