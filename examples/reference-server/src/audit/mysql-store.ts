/**
 * The connected mode's audit store: one MySQL/MariaDB table that every server instance appends to, so N instances
 * keep one trail. Each batch is one multi-row INSERT (one InnoDB commit); reads are newest first by (time, seq) with
 * an index per `GET /api/audit` filter (user, patient, outcome, time range) and keyset cursors, so a page costs the
 * same at any table size.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import {
  decodeCursor,
  encodeCursor,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
} from '../audit.js';
import type { StateTransaction } from '../domain/ports.js';

/** Options of {@link MySqlAuditStore}. */
export interface MySqlAuditStoreOptions {
  /** A mysql2/promise pool (the caller owns it and ends it). */
  pool: Pool;
  /** Table name. Default `cdss_audit`. */
  table?: string;
  /**
   * Batches inserted at once, each in its own transaction on its own pooled connection: the next batch does not
   * wait for the previous commit, and InnoDB flushes the redo log of concurrent commits together. Default 3.
   */
  concurrentBatches?: number;
}

interface Row extends RowDataPacket {
  seq: number;
  id: string;
  time: string;
  user_id: string;
  user_name: string;
  roles: string;
  patient_id: string | null;
  action: AuditRecord['action'];
  resource: string;
  outcome: AuditRecord['outcome'];
  request_id: string;
}

const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/);

/** `2026-12-06T19:47:27.123Z` → `2026-12-06 19:47:27.123` (DATETIME(3), UTC). */
const toDatetime = (iso: string): string => new Date(iso).toISOString().slice(0, 23).replace('T', ' ');
/** Epoch ms → DATETIME(3) text, UTC. */
const msToDatetime = (ms: number): string => new Date(ms).toISOString().slice(0, 23).replace('T', ' ');

/** An audit table. Open with {@link MySqlAuditStore.open}. */
export class MySqlAuditStore implements AuditStore {
  private readonly insert: string;

  private constructor(
    private readonly pool: Pool,
    private readonly table: string,
    readonly concurrentBatches: number,
  ) {
    this.insert = `INSERT INTO \`${table}\` (id, time, user_id, user_name, roles, patient_id, action, resource, outcome, request_id) VALUES ?`;
  }

  /**
   * Creates the table when missing.
   * @param options - pool and table name
   */
  static async open(options: MySqlAuditStoreOptions): Promise<MySqlAuditStore> {
    const table = tableName.parse(options.table ?? 'cdss_audit');
    // DATETIME(3) in UTC, so the table reads well in SQL; secondary indexes end with the primary key (InnoDB), so
    // each serves "filter, then newest first by (time, seq)" as one index range.
    await options.pool.query(
      `CREATE TABLE IF NOT EXISTS \`${table}\` (
        seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        id CHAR(36) NOT NULL,
        time DATETIME(3) NOT NULL,
        user_id VARCHAR(128) NOT NULL,
        user_name VARCHAR(256) NOT NULL,
        roles VARCHAR(512) NOT NULL,
        patient_id VARCHAR(64) NULL,
        action VARCHAR(32) NOT NULL,
        resource VARCHAR(512) NOT NULL,
        outcome VARCHAR(16) NOT NULL,
        request_id VARCHAR(128) NOT NULL,
        UNIQUE KEY uq_audit_id (id),
        KEY idx_audit_time (time),
        KEY idx_audit_user_time (user_id, time),
        KEY idx_audit_patient_time (patient_id, time),
        KEY idx_audit_outcome_time (outcome, time)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
    return new MySqlAuditStore(options.pool, table, options.concurrentBatches ?? 3);
  }

  async appendBatch(
    records: readonly AuditRecord[],
    alsoCommit?: (transaction: StateTransaction) => Promise<void>,
  ): Promise<void> {
    if (records.length === 0) return;
    // One transaction: the records and what must commit with them (their AuditEvents' outbox rows), durable at the
    // commit (InnoDB's default innodb_flush_log_at_trx_commit=1), all or none.
    const connection = await this.pool.getConnection();
    try {
      await connection.beginTransaction();
      await connection.query(this.insert, [records.map(row)]);
      await alsoCommit?.({ connection });
      await connection.commit();
    } catch (error) {
      await connection.rollback().catch(() => undefined);
      throw error;
    } finally {
      connection.release();
    }
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const filter = (condition: string, value: unknown): void => {
      where.push(condition);
      params.push(value);
    };
    if (query.userId !== undefined) filter('user_id = ?', query.userId);
    if (query.patientId !== undefined) filter('patient_id = ?', query.patientId);
    if (query.outcome !== undefined) filter('outcome = ?', query.outcome);
    if (query.from !== undefined) filter('time >= ?', msToDatetime(query.from));
    if (query.to !== undefined) filter('time <= ?', msToDatetime(query.to));
    if (query.cursor !== undefined) {
      const [ms, seq] = decodeCursor('q', query.cursor, 2) as [number, number];
      const time = msToDatetime(ms);
      // Keyset: strictly older than the last record of the previous page, in (time, seq) order.
      where.push('(time < ? OR (time = ? AND seq < ?))');
      params.push(time, time, seq);
    }
    const [rows] = await this.pool.query<Row[]>(
      `SELECT seq, id, CAST(time AS CHAR) AS time, user_id, user_name, roles, patient_id, action, resource, outcome, request_id
         FROM \`${this.table}\` ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY time DESC, seq DESC LIMIT ?`,
      [...params, query.limit + 1],
    );
    const items = rows.slice(0, query.limit).map(toRecord);
    const last = rows.length > query.limit ? rows[query.limit - 1] : undefined;
    return last
      ? { items, nextCursor: encodeCursor('q', [Date.parse(`${last.time.replace(' ', 'T')}Z`), Number(last.seq)]) }
      : { items };
  }

  async close(): Promise<void> {}
}

/** The INSERT values of a record. */
function row(r: AuditRecord): Array<string | null> {
  return [
    r.id,
    toDatetime(r.time),
    r.userId,
    r.userName,
    JSON.stringify(r.roles),
    r.patientId ?? null,
    r.action,
    r.resource,
    r.outcome,
    r.requestId,
  ];
}

function toRecord(row: Row): AuditRecord {
  return {
    id: row.id,
    time: `${row.time.replace(' ', 'T')}Z`,
    userId: row.user_id,
    userName: row.user_name,
    roles: JSON.parse(row.roles) as string[],
    ...(row.patient_id === null ? {} : { patientId: row.patient_id }),
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    requestId: row.request_id,
  };
}
