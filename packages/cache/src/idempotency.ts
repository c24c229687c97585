/**
 * Idempotency records: a client retry that carries the same idempotency key gets the first answer back, and the
 * upstream write is not repeated. In-memory and MySQL implementations of one {@link IdempotencyStore} port.
 * @packageDocumentation
 */
import { z } from 'zod';
import { CacheUnavailableError, parseOrThrow } from './errors.js';
import { migrate, MySqlRunner, tableNameSchema, type MySqlConnectionOptions } from './mysql-shared.js';
import { cacheKeySchema } from './types.js';

/** Schema of an idempotency key: what clients send in `Idempotency-Key` (1–250 characters, no control characters). */
export const idempotencyKeySchema = cacheKeySchema;

/** Schema of a claim request (see {@link IdempotencyStore.claim}). */
export const claimInputSchema = z.object({
  /** The idempotency key. */
  key: idempotencyKeySchema,
  /** SHA-256 (hex) of the request, so a key reused for another request is detected. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/, 'fingerprint must be a hex SHA-256'),
  /** Who claims (an instance-unique id per write). */
  owner: z.string().min(1).max(64),
  /** Current time, epoch milliseconds. */
  now: z.number().int().nonnegative(),
  /** How long the claim holds before another request may take it over (the owner is presumed dead). */
  leaseMs: z.number().int().positive(),
});

/** A claim request, see {@link claimInputSchema}. */
export type ClaimInput = z.infer<typeof claimInputSchema>;

/** Schema of a completion (see {@link IdempotencyStore.complete}). */
export const completeInputSchema = z.object({
  /** The idempotency key. */
  key: idempotencyKeySchema,
  /** The owner that claimed it. */
  owner: z.string().min(1).max(64),
  /** The answer to replay, as JSON text. */
  response: z.string(),
  /** When the record may be forgotten, epoch milliseconds. */
  expiresAt: z.number().int().nonnegative(),
});

/** A completion, see {@link completeInputSchema}. */
export type CompleteInput = z.infer<typeof completeInputSchema>;

/** What a claim found. */
export type IdempotencyClaim =
  | {
      /** The caller now owns the key and must run the write, then `complete` or `release`. */
      status: 'claimed';
    }
  | {
      /** Another request owns the key and is running its write; wait and claim again. */
      status: 'pending';
      /** Fingerprint of the request holding the key. */
      fingerprint: string;
      /** When its lease ends (epoch ms). */
      leaseUntil: number;
    }
  | {
      /** A request with this key finished; replay its response. */
      status: 'done';
      /** Fingerprint of the request that finished. */
      fingerprint: string;
      /** Its answer, as JSON text. */
      response: string;
    };

/**
 * The idempotency port. A key moves from absent to `pending` (claimed, lease-bounded) to `done` (answer recorded)
 * or back to absent (released after a failed write, so a retry may try again).
 */
export interface IdempotencyStore {
  /**
   * Claims a key, or reports who holds it. An expired lease or an expired record counts as absent.
   * @param input - key, request fingerprint, owner, time, lease
   * @returns the claim outcome
   * @throws `ValidationError` for bad input; `CacheUnavailableError` when the backend is unreachable
   */
  claim(input: ClaimInput): Promise<IdempotencyClaim>;
  /**
   * Records the answer of a claimed key.
   * @param input - key, owner, response, record expiry
   * @returns false when `owner` no longer held the claim (its lease was taken over)
   */
  complete(input: CompleteInput): Promise<boolean>;
  /**
   * Drops a claim that did not complete (the write failed, nothing was written).
   * @param key - the idempotency key
   * @param owner - the claim's owner
   */
  release(key: string, owner: string): Promise<void>;
  /**
   * Forgets records and leases that ended before `now`.
   * @param now - epoch milliseconds
   * @returns how many were dropped
   */
  sweep(now: number): Promise<number>;
  /** Releases resources. */
  close(): Promise<void>;
}

interface MemoryRecord {
  fingerprint: string;
  owner: string;
  state: 'pending' | 'done';
  response: string | undefined;
  /** Lease end while pending, record end when done. */
  until: number;
}

/** A finished idempotent request, as {@link MemoryIdempotencyStore.peekDone} returns it. */
export interface FinishedRecord {
  /** The request fingerprint. */
  fingerprint: string;
  /** The answer, as JSON text. */
  response: string;
}

/** Options of {@link MemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /** Most records kept; the oldest go first. Default 100 000. */
  maxRecords?: number;
}

/** The in-process {@link IdempotencyStore}: per instance, bounded, lost on restart. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, MemoryRecord>();
  private readonly maxRecords: number;

  /** @param options - bound on records */
  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.maxRecords = parseOrThrow(
      z.number().int().positive(),
      options.maxRecords ?? 100_000,
      'Invalid MemoryIdempotencyStore options',
    );
  }

  /** {@inheritDoc IdempotencyStore.claim} */
  claim(input: ClaimInput): Promise<IdempotencyClaim> {
    try {
      const c = parseOrThrow(claimInputSchema, input, 'Invalid idempotency claim');
      const found = this.records.get(c.key);
      if (found && found.until > c.now) {
        if (found.state === 'done')
          return Promise.resolve({
            status: 'done',
            fingerprint: found.fingerprint,
            response: found.response ?? 'null',
          });
        return Promise.resolve({ status: 'pending', fingerprint: found.fingerprint, leaseUntil: found.until });
      }
      this.put(c.key, {
        fingerprint: c.fingerprint,
        owner: c.owner,
        state: 'pending',
        response: undefined,
        until: c.now + c.leaseMs,
      });
      return Promise.resolve({ status: 'claimed' });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@inheritDoc IdempotencyStore.complete} */
  complete(input: CompleteInput): Promise<boolean> {
    try {
      const c = parseOrThrow(completeInputSchema, input, 'Invalid idempotency completion');
      const found = this.records.get(c.key);
      if (!found || found.owner !== c.owner || found.state !== 'pending') return Promise.resolve(false);
      found.state = 'done';
      found.response = c.response;
      found.until = c.expiresAt;
      return Promise.resolve(true);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Records a finished request directly (used by the coordinator to keep a local copy of answers recorded in MySQL).
   * @param key - the idempotency key
   * @param fingerprint - the request fingerprint
   * @param response - the answer as JSON text
   * @param expiresAt - when to forget it
   */
  remember(key: string, fingerprint: string, response: string, expiresAt: number): void {
    this.put(key, { fingerprint, owner: '', state: 'done', response, until: expiresAt });
  }

  /**
   * Looks up a finished record without claiming.
   * @param key - the idempotency key
   * @param now - epoch milliseconds
   * @returns the finished record, if any
   */
  peekDone(key: string, now: number): FinishedRecord | undefined {
    const found = this.records.get(key);
    if (!found || found.state !== 'done' || found.until <= now) return undefined;
    return { fingerprint: found.fingerprint, response: found.response ?? 'null' };
  }

  /** {@inheritDoc IdempotencyStore.release} */
  release(key: string, owner: string): Promise<void> {
    const found = this.records.get(key);
    if (found && found.owner === owner && found.state === 'pending') this.records.delete(key);
    return Promise.resolve();
  }

  /** {@inheritDoc IdempotencyStore.sweep} */
  sweep(now: number): Promise<number> {
    let dropped = 0;
    for (const [key, record] of [...this.records]) {
      if (record.until <= now) {
        this.records.delete(key);
        dropped++;
      }
    }
    return Promise.resolve(dropped);
  }

  /** {@inheritDoc IdempotencyStore.close} */
  close(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }

  /** Stores `record` as the newest, then drops the oldest records beyond `maxRecords`. */
  private put(key: string, record: MemoryRecord): void {
    this.records.delete(key);
    this.records.set(key, record);
    while (this.records.size > this.maxRecords) {
      const oldest = this.records.keys().next();
      if (oldest.done) break;
      this.records.delete(oldest.value);
    }
  }
}

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
] as const;

const recordRowSchema = z.object({
  fingerprint: z.string(),
  state: z.enum(['pending', 'done']),
  response: z.string().nullable(),
  until_at: z.coerce.number().int(),
});

/**
 * The {@link IdempotencyStore} on MySQL/MariaDB, shared by every instance: a duplicate request arriving at another
 * instance waits for, then replays, the first one's answer. Create it with {@link MySqlIdempotencyStore.open}.
 */
export class MySqlIdempotencyStore implements IdempotencyStore {
  /** The records table. */
  readonly table: string;
  private readonly runner: MySqlRunner;
  private readonly sql: Readonly<Record<'insert' | 'takeover' | 'select' | 'complete' | 'release' | 'sweep', string>>;

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
      insert: `INSERT INTO ${t} (idem_key, fingerprint, state, owner, response, created_at, until_at)
               VALUES (?, ?, 'pending', ?, NULL, ?, ?)`,
      takeover: `UPDATE ${t} SET fingerprint = ?, state = 'pending', owner = ?, response = NULL, created_at = ?, until_at = ?
                 WHERE idem_key = ? AND until_at <= ?`,
      select: `SELECT fingerprint, state, response, until_at FROM ${t} WHERE idem_key = ?`,
      complete: `UPDATE ${t} SET state = 'done', response = ?, until_at = ? WHERE idem_key = ? AND owner = ? AND state = 'pending'`,
      release: `DELETE FROM ${t} WHERE idem_key = ? AND owner = ? AND state = 'pending'`,
      sweep: `DELETE FROM ${t} WHERE until_at <= ? LIMIT 1000`,
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
    // Insert, else take over an ended lease/record, else report the holder; a row released in between retries.
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.insert([c.key, c.fingerprint, c.owner, c.now, until])) return { status: 'claimed' };
      const taken = await this.runner.write(this.sql.takeover, [c.fingerprint, c.owner, c.now, until, c.key, c.now]);
      if (taken.affectedRows === 1) return { status: 'claimed' };
      const rows = await this.runner.rows(this.sql.select, [c.key]);
      if (rows[0] === undefined) continue;
      const row = parseOrThrow(recordRowSchema, rows[0], 'Unexpected idempotency row');
      if (row.state === 'done')
        return { status: 'done', fingerprint: row.fingerprint, response: row.response ?? 'null' };
      return { status: 'pending', fingerprint: row.fingerprint, leaseUntil: row.until_at };
    }
    // Constantly churning key: report it as pending so the caller waits and tries again.
    return { status: 'pending', fingerprint: c.fingerprint, leaseUntil: until };
  }

  private async insert(params: [string, string, string, number, number]): Promise<boolean> {
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
  async complete(input: CompleteInput): Promise<boolean> {
    const c = parseOrThrow(completeInputSchema, input, 'Invalid idempotency completion');
    const header = await this.runner.write(this.sql.complete, [c.response, c.expiresAt, c.key, c.owner]);
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
