/**
 * The production outbox: a MySQL/MariaDB table (mysql2). An enqueue is durable once it resolves; several
 * processes may drain one table (claims are row-locked with `FOR UPDATE SKIP LOCKED` and leased).
 * @packageDocumentation
 */
import type { Pool, RowDataPacket, ResultSetHeader } from 'mysql2/promise';
import type { OperationOutcome } from 'fhir/r4.js';
import { z } from 'zod';
import { parseInput } from '../util.js';
import {
  defaultKey,
  fhirWriteSchema,
  type DeadLetter,
  type EnqueueOptions,
  type FhirWrite,
  type OutboxItem,
  type OutboxStats,
  type SyncOutbox,
} from './types.js';

/** Options of {@link MySqlOutbox}. */
export interface MySqlOutboxOptions {
  /** A mysql2/promise pool (the caller owns it and ends it). */
  pool: Pool;
  /** Table name. Default `fhir_outbox`. */
  table?: string;
  /** `now()` for timestamps. Default `Date.now`. */
  clock?: { now(): number };
}

interface ItemRow extends RowDataPacket {
  id: number;
  item_key: string;
  payload: string;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  last_error: string | null;
  outcome: string | null;
  dead_at: number | null;
}

const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);

/** An outbox in a MySQL/MariaDB table. Call {@link MySqlOutbox.ensureSchema} once before use. */
export class MySqlOutbox implements SyncOutbox {
  private readonly pool: Pool;
  private readonly table: string;
  private readonly clock: { now(): number };

  /** @throws `ValidationError` (`@cdss/core`) for an invalid table name */
  constructor(options: MySqlOutboxOptions) {
    this.pool = options.pool;
    this.table = parseInput(tableName, options.table ?? 'fhir_outbox', 'outbox table name');
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  /** Creates the table when it does not exist. */
  async ensureSchema(): Promise<void> {
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS \`${this.table}\` (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        item_key VARCHAR(512) NOT NULL,
        payload LONGTEXT NOT NULL,
        status ENUM('pending','delivered','dead') NOT NULL DEFAULT 'pending',
        attempts INT UNSIGNED NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        claimed_until BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        dead_at BIGINT NULL,
        last_error TEXT NULL,
        outcome LONGTEXT NULL,
        KEY idx_status_key (status, item_key, id),
        KEY idx_status_due (status, next_attempt_at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
  }

  async enqueue(write: FhirWrite, options: EnqueueOptions = {}): Promise<OutboxItem> {
    const w = parseInput(fhirWriteSchema, write, 'FHIR write');
    const key = (options.key ?? defaultKey(w)).slice(0, 512);
    const now = this.clock.now();
    const [res] = (await (options.connection ?? this.pool).execute(
      `INSERT INTO \`${this.table}\` (item_key, payload, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
      [key, JSON.stringify(w), now, now, now],
    )) as [ResultSetHeader];
    return { id: String(res.insertId), key, write: w, attempts: 0, nextAttemptAt: now, createdAt: now };
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    const conn = await this.pool.getConnection();
    try {
      await conn.beginTransaction();
      // The head (lowest id) of each key's pending items, when due and not leased to another claimer.
      const [rows] = await conn.query<ItemRow[]>(
        `SELECT o.id, o.item_key, o.payload, o.attempts, o.next_attempt_at, o.created_at, o.last_error
           FROM \`${this.table}\` o
           JOIN (SELECT item_key, MIN(id) AS head FROM \`${this.table}\` WHERE status = 'pending' GROUP BY item_key) h
             ON h.head = o.id
          WHERE o.next_attempt_at <= ? AND o.claimed_until <= ?
          ORDER BY o.id
          LIMIT ?
          FOR UPDATE SKIP LOCKED`,
        [now, now, limit],
      );
      if (rows.length > 0) {
        await conn.query(`UPDATE \`${this.table}\` SET claimed_until = ? WHERE id IN (?)`, [
          now + leaseMs,
          rows.map((r) => r.id),
        ]);
      }
      await conn.commit();
      return rows.map((r) => this.item(r));
    } catch (e) {
      await conn.rollback().catch(() => undefined);
      throw e;
    } finally {
      conn.release();
    }
  }

  async markDelivered(id: string): Promise<void> {
    await this.pool.execute(
      `UPDATE \`${this.table}\` SET status = 'delivered', claimed_until = 0, updated_at = ? WHERE id = ? AND status = 'pending'`,
      [this.clock.now(), id],
    );
  }

  async markFailed(id: string, error: string, nextAttemptAt: number): Promise<void> {
    await this.pool.execute(
      `UPDATE \`${this.table}\` SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_until = 0, updated_at = ? WHERE id = ? AND status = 'pending'`,
      [error.slice(0, 4000), nextAttemptAt, this.clock.now(), id],
    );
  }

  async markDead(id: string, error: string, outcome: OperationOutcome | undefined, now: number): Promise<void> {
    await this.pool.execute(
      `UPDATE \`${this.table}\` SET status = 'dead', attempts = attempts + 1, last_error = ?, outcome = ?, dead_at = ?, claimed_until = 0, updated_at = ? WHERE id = ? AND status = 'pending'`,
      [error.slice(0, 4000), outcome ? JSON.stringify(outcome) : null, now, now, id],
    );
  }

  async deadLetters(limit = 1000): Promise<DeadLetter[]> {
    const [rows] = await this.pool.query<ItemRow[]>(
      `SELECT id, item_key, payload, attempts, next_attempt_at, created_at, last_error, outcome, dead_at FROM \`${this.table}\` WHERE status = 'dead' ORDER BY id LIMIT ?`,
      [limit],
    );
    return rows.map((r) => ({
      ...this.item(r),
      outcome: r.outcome ? (JSON.parse(r.outcome) as OperationOutcome) : undefined,
      deadAt: Number(r.dead_at ?? 0),
    }));
  }

  /**
   * Deletes delivered rows last updated before `before` (epoch ms); pending and dead rows are kept.
   * @returns how many rows were deleted
   */
  async purgeDelivered(before: number): Promise<number> {
    const [res] = await this.pool.execute<ResultSetHeader>(
      `DELETE FROM \`${this.table}\` WHERE status = 'delivered' AND updated_at < ?`,
      [before],
    );
    return res.affectedRows;
  }

  async stats(): Promise<OutboxStats> {
    const [rows] = await this.pool.query<
      (RowDataPacket & { status: 'pending' | 'delivered' | 'dead'; n: number; oldest: number | string | null })[]
    >(`SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM \`${this.table}\` GROUP BY status`);
    const out: OutboxStats = { pending: 0, delivered: 0, dead: 0 };
    for (const r of rows) {
      out[r.status] = Number(r.n);
      if (r.status === 'pending' && r.oldest !== null) out.oldestPendingAt = Number(r.oldest);
    }
    return out;
  }

  private item(r: ItemRow): OutboxItem {
    return {
      id: String(r.id),
      key: r.item_key,
      write: JSON.parse(r.payload) as FhirWrite,
      attempts: Number(r.attempts),
      nextAttemptAt: Number(r.next_attempt_at),
      createdAt: Number(r.created_at),
      lastError: r.last_error ?? undefined,
    };
  }
}
