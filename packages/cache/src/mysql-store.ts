/**
 * The real store: MySQL/MariaDB through a mysql2 pool, prepared statements, a schema migrated on start, JSON values
 * with a version and expiry, expired rows swept.
 * @packageDocumentation
 */
import { z } from 'zod';
import { parseOrThrow } from './errors.js';
import { migrate, MySqlRunner, tableNameSchema, type MySqlConnectionOptions } from './mysql-shared.js';
import {
  emit,
  systemCacheClock,
  type CacheClock,
  type CacheEntry,
  type CacheMetricsListener,
  type CacheStore,
  type JsonValue,
  type SetTiming,
} from './types.js';
import { checkKey, checkTiming, toJsonText } from './validate.js';
import { ValidationError } from '@cdss/core';

/** Schema of {@link MySqlStoreOptions}' plain fields (besides the connection options). */
export const mySqlStoreOptionsSchema = z.object({
  /** Table holding the entries; created on start. One table per cache namespace (tests use one per run). */
  table: tableNameSchema.default('cdss_cache_entries'),
  /** Largest JSON text accepted for one value, in bytes (below MariaDB's `max_allowed_packet`). */
  maxValueBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /** Period of the background sweep of rows past `staleUntil`; 0 turns it off. */
  sweepIntervalMs: z.number().int().nonnegative().default(60_000),
  /** Rows deleted per sweep statement, so a sweep never holds long locks. */
  sweepBatch: z.number().int().positive().default(1_000),
});

/** Options of {@link MySqlStore}: where to connect, the table, bounds, the clock and metrics. */
export interface MySqlStoreOptions extends MySqlConnectionOptions, Partial<z.input<typeof mySqlStoreOptionsSchema>> {
  /** Time source for entry timing; defaults to the system clock. */
  clock?: CacheClock;
  /** Metrics hooks (evictions by the sweep, store errors of the sweep). */
  metrics?: CacheMetricsListener;
}

/** Schema migrations of the entries table, in order; `{table}` is the escaped table name. */
const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS {table} (
     k VARCHAR(250) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
     v LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
     version BIGINT UNSIGNED NOT NULL,
     stored_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     stale_until BIGINT NOT NULL,
     PRIMARY KEY (k),
     KEY idx_stale_until (stale_until)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
] as const;

/** Schema of one row as the driver returns it (BIGINT may come back as number or string). */
const rowSchema = z.object({
  v: z.string(),
  version: z.coerce.number().int().nonnegative(),
  stored_at: z.coerce.number().int(),
  expires_at: z.coerce.number().int(),
  stale_until: z.coerce.number().int(),
});

/**
 * A {@link CacheStore} on MySQL/MariaDB (the L2 tier). Create it with {@link MySqlStore.open}, which migrates the
 * schema. Every statement is prepared (`pool.execute`) and bounded by `queryTimeoutMs`; after a connection-level
 * failure the store fails fast with `CacheUnavailableError` for `breakerCooldownMs`, so callers degrade instead of
 * waiting on a dead server.
 *
 * @example
 * ```ts
 * const l2 = await MySqlStore.open({ url: 'mysql://app:pw@127.0.0.1:23306/appdb', table: 'patients_cache' });
 * ```
 */
export class MySqlStore implements CacheStore {
  /** This store answers as L2. */
  readonly tier = 'l2' as const;
  /** The table holding the entries. */
  readonly table: string;
  private readonly runner: MySqlRunner;
  private readonly clock: CacheClock;
  private readonly metrics: CacheMetricsListener | undefined;
  private readonly maxValueBytes: number;
  private readonly sweepBatch: number;
  private readonly sweepIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly sql: Readonly<Record<'get' | 'set' | 'delete' | 'sweep', string>>;

  private constructor(options: MySqlStoreOptions) {
    const {
      clock,
      metrics,
      pool,
      url,
      connectionLimit,
      connectTimeoutMs,
      queryTimeoutMs,
      breakerCooldownMs,
      ...plain
    } = options;
    const parsed = parseOrThrow(mySqlStoreOptionsSchema, plain, 'Invalid MySqlStore options');
    this.runner = new MySqlRunner(
      { pool, url, connectionLimit, connectTimeoutMs, queryTimeoutMs, breakerCooldownMs },
      'MySqlStore',
    );
    this.table = parsed.table;
    this.clock = clock ?? systemCacheClock;
    this.metrics = metrics;
    this.maxValueBytes = parsed.maxValueBytes;
    this.sweepBatch = parsed.sweepBatch;
    this.sweepIntervalMs = parsed.sweepIntervalMs;
    const t = this.runner.pool.escapeId(this.table);
    this.sql = {
      // Dead rows (past stale_until) are filtered here rather than in SQL: a one-parameter PK lookup is cheaper,
      // and such rows are rare (the sweep removes them).
      get: `SELECT v, version, stored_at, expires_at, stale_until FROM ${t} WHERE k = ?`,
      // LAST_INSERT_ID(expr) hands the new version back in the result header: one round trip per write.
      set: `INSERT INTO ${t} (k, v, version, stored_at, expires_at, stale_until) VALUES (?, ?, LAST_INSERT_ID(1), ?, ?, ?)
            ON DUPLICATE KEY UPDATE v = VALUES(v), version = LAST_INSERT_ID(version + 1), stored_at = VALUES(stored_at),
            expires_at = VALUES(expires_at), stale_until = VALUES(stale_until)`,
      delete: `DELETE FROM ${t} WHERE k = ?`,
      sweep: `DELETE FROM ${t} WHERE stale_until <= ? LIMIT ${String(this.sweepBatch)}`,
    };
  }

  /**
   * Connects, migrates the schema and starts the background sweep.
   * @param options - connection, table, bounds
   * @returns the ready store
   * @throws `ValidationError` for bad options; {@link CacheUnavailableError} when the server cannot be reached
   */
  static async open(options: MySqlStoreOptions): Promise<MySqlStore> {
    const store = new MySqlStore(options);
    try {
      await migrate(store.runner, 'entries', store.table, MIGRATIONS);
    } catch (error) {
      await store.runner.close().catch(() => undefined);
      throw error;
    }
    if (store.sweepIntervalMs > 0) {
      store.timer = setInterval(() => {
        store.sweep().catch(() => emit(store.metrics, 'storeError', 'sweep', 'l2'));
      }, store.sweepIntervalMs);
      store.timer.unref();
    }
    return store;
  }

  /** True while the store fails fast after a recent connection failure. */
  get degraded(): boolean {
    return this.runner.degraded;
  }

  /** {@inheritDoc CacheStore.get} */
  async get(key: string): Promise<CacheEntry | undefined> {
    checkKey(key);
    const rows = await this.runner.rows(this.sql.get, [key]);
    const first = rows[0];
    if (first === undefined) return undefined;
    const row = parseOrThrow(rowSchema, first, 'Unexpected cache row');
    if (row.stale_until <= this.clock.now()) return undefined;
    return {
      value: JSON.parse(row.v) as JsonValue,
      version: row.version,
      storedAt: row.stored_at,
      expiresAt: row.expires_at,
      staleUntil: row.stale_until,
      tier: 'l2',
    };
  }

  /** {@inheritDoc CacheStore.set} */
  async set(key: string, value: JsonValue, timing: SetTiming): Promise<CacheEntry> {
    checkKey(key);
    const checked = checkTiming(timing);
    const text = toJsonText(value);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.maxValueBytes) {
      throw new ValidationError('Cache value too large', [
        { path: '', message: `value is ${bytes} bytes, at most ${this.maxValueBytes} allowed`, code: 'too_big' },
      ]);
    }
    const storedAt = this.clock.now();
    const header = await this.runner.write(this.sql.set, [key, text, storedAt, checked.expiresAt, checked.staleUntil]);
    return {
      value: JSON.parse(text) as JsonValue,
      version: Number(header.insertId),
      storedAt,
      expiresAt: checked.expiresAt,
      staleUntil: checked.staleUntil,
      tier: 'l2',
    };
  }

  /** {@inheritDoc CacheStore.delete} */
  async delete(key: string): Promise<boolean> {
    checkKey(key);
    const header = await this.runner.write(this.sql.delete, [key]);
    return header.affectedRows > 0;
  }

  /** {@inheritDoc CacheStore.sweep} */
  async sweep(): Promise<number> {
    const now = this.clock.now();
    let total = 0;
    // Bounded batches: a long backlog is cleared over several statements, never one long lock.
    for (let round = 0; round < 1_000; round++) {
      const header = await this.runner.write(this.sql.sweep, [now]);
      total += header.affectedRows;
      for (let i = 0; i < header.affectedRows; i++) emit(this.metrics, 'eviction', 'expired', 'l2');
      if (header.affectedRows < this.sweepBatch) break;
    }
    return total;
  }

  /** {@inheritDoc CacheStore.close} */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.runner.close();
  }
}
