/**
 * The chart outbox: approved reports waiting to be put into OpenEMR as patient documents. An entry is recorded
 * durably when the review is decided and retried with backoff until OpenEMR has the document; the upload itself is
 * idempotent (the client lists the category before it sends, and after an unknown outcome), so a retry never files
 * the report twice. In memory for sandbox mode; a MySQL table in connected mode (claimed with a lease, so several
 * server instances share it).
 */
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { StateTransaction } from '../domain/ports.js';

/** One report to file. */
export interface ChartItem {
  /** The analysis whose approved report is filed (one entry per analysis). */
  analysisId: string;
  patientId: string;
  attempts: number;
  /** Epoch ms before which the entry is not tried again. */
  nextAttemptAt: number;
  createdAt: number;
  lastError?: string;
}

/** Counts by state. */
export interface ChartOutboxStats {
  pending: number;
  delivered: number;
  dead: number;
}

/** Storage of the chart outbox. */
export interface ChartOutbox {
  /**
   * Records a report to file; a second enqueue of the same analysis changes nothing.
   * @param transaction - the review decision's transaction (connected mode): the entry commits with the decision
   */
  enqueue(item: { analysisId: string; patientId: string }, now?: number, transaction?: StateTransaction): Promise<void>;
  /** Claims up to `limit` due entries, hiding them from other claimers for `leaseMs`. */
  claimDue(now: number, limit: number, leaseMs: number): Promise<ChartItem[]>;
  markDelivered(analysisId: string, documentId: string): Promise<void>;
  markFailed(analysisId: string, error: string, nextAttemptAt: number): Promise<void>;
  /** The entry cannot be filed (e.g. the review was not an approval): kept for the record, never retried. */
  markDead(analysisId: string, error: string): Promise<void>;
  /** Where an analysis's report stands. */
  state(analysisId: string): Promise<{ state: 'pending' | 'delivered' | 'dead'; documentId?: string } | undefined>;
  stats(): Promise<ChartOutboxStats>;
}

interface Row extends ChartItem {
  state: 'pending' | 'delivered' | 'dead';
  leaseUntil: number;
  documentId?: string;
}

/** An outbox in memory. */
export function createMemoryChartOutbox(): ChartOutbox {
  const rows = new Map<string, Row>();
  const pending = (analysisId: string): Row | undefined => {
    const row = rows.get(analysisId);
    return row?.state === 'pending' ? row : undefined;
  };
  return {
    async enqueue({ analysisId, patientId }, now = Date.now()) {
      if (rows.has(analysisId)) return;
      rows.set(analysisId, {
        analysisId,
        patientId,
        attempts: 0,
        nextAttemptAt: now,
        createdAt: now,
        state: 'pending',
        leaseUntil: 0,
      });
    },
    async claimDue(now, limit, leaseMs) {
      const due = [...rows.values()]
        .filter((r) => r.state === 'pending' && r.nextAttemptAt <= now && r.leaseUntil <= now)
        .sort((a, b) => a.createdAt - b.createdAt)
        .slice(0, limit);
      for (const row of due) row.leaseUntil = now + leaseMs;
      return due.map(({ state: _state, leaseUntil: _lease, documentId: _doc, ...item }) => item);
    },
    async markDelivered(analysisId, documentId) {
      const row = pending(analysisId);
      if (row) Object.assign(row, { state: 'delivered', documentId, leaseUntil: 0 });
    },
    async markFailed(analysisId, error, nextAttemptAt) {
      const row = pending(analysisId);
      if (row) Object.assign(row, { attempts: row.attempts + 1, lastError: error, nextAttemptAt, leaseUntil: 0 });
    },
    async markDead(analysisId, error) {
      const row = pending(analysisId);
      if (row) Object.assign(row, { state: 'dead', lastError: error, leaseUntil: 0 });
    },
    async state(analysisId) {
      const row = rows.get(analysisId);
      return row ? { state: row.state, ...(row.documentId ? { documentId: row.documentId } : {}) } : undefined;
    },
    async stats() {
      const all = [...rows.values()];
      return {
        pending: all.filter((r) => r.state === 'pending').length,
        delivered: all.filter((r) => r.state === 'delivered').length,
        dead: all.filter((r) => r.state === 'dead').length,
      };
    },
  };
}

/**
 * An outbox in MySQL/MariaDB (table created when missing).
 * @param pool - a mysql2 promise pool (not closed here)
 * @param table - table name
 */
export async function createMySqlChartOutbox(pool: Pool, table = 'cdss_chart_outbox'): Promise<ChartOutbox> {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,47}$/.test(table)) throw new Error(`invalid table name ${table}`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${table} (
       analysis_id VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
       patient_id VARCHAR(64) NOT NULL,
       state ENUM('pending', 'delivered', 'dead') NOT NULL DEFAULT 'pending',
       attempts INT NOT NULL DEFAULT 0,
       next_attempt_at BIGINT NOT NULL,
       lease_until BIGINT NOT NULL DEFAULT 0,
       lease_token CHAR(36) CHARACTER SET ascii NULL,
       created_at BIGINT NOT NULL,
       last_error VARCHAR(1000) NULL,
       document_id VARCHAR(64) NULL,
       KEY idx_due (state, next_attempt_at)
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  );
  return {
    async enqueue({ analysisId, patientId }, now = Date.now(), transaction) {
      await (transaction?.connection ?? pool).execute(
        `INSERT IGNORE INTO ${table} (analysis_id, patient_id, next_attempt_at, created_at) VALUES (?, ?, ?, ?)`,
        [analysisId, patientId, now, now],
      );
    },
    async claimDue(now, limit, leaseMs) {
      // Claim by stamping a token on due rows, then read back what this token holds: safe across instances.
      const token = crypto.randomUUID();
      await pool.execute(
        `UPDATE ${table} SET lease_until = ?, lease_token = ?
         WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ? ORDER BY created_at LIMIT ${Math.max(1, Math.floor(limit))}`,
        [now + leaseMs, token, now, now],
      );
      const [rows] = await pool.execute<RowDataPacket[]>(
        `SELECT analysis_id, patient_id, attempts, next_attempt_at, created_at, last_error FROM ${table}
         WHERE lease_token = ? AND state = 'pending' ORDER BY created_at`,
        [token],
      );
      return rows.map((row) => ({
        analysisId: String(row['analysis_id']),
        patientId: String(row['patient_id']),
        attempts: Number(row['attempts']),
        nextAttemptAt: Number(row['next_attempt_at']),
        createdAt: Number(row['created_at']),
        ...(row['last_error'] ? { lastError: String(row['last_error']) } : {}),
      }));
    },
    async markDelivered(analysisId, documentId) {
      await pool.execute(
        `UPDATE ${table} SET state = 'delivered', document_id = ?, lease_until = 0 WHERE analysis_id = ? AND state = 'pending'`,
        [documentId, analysisId],
      );
    },
    async markFailed(analysisId, error, nextAttemptAt) {
      await pool.execute<ResultSetHeader>(
        `UPDATE ${table} SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, lease_until = 0
         WHERE analysis_id = ? AND state = 'pending'`,
        [error.slice(0, 1000), nextAttemptAt, analysisId],
      );
    },
    async markDead(analysisId, error) {
      await pool.execute(
        `UPDATE ${table} SET state = 'dead', last_error = ?, lease_until = 0 WHERE analysis_id = ? AND state = 'pending'`,
        [error.slice(0, 1000), analysisId],
      );
    },
    async state(analysisId) {
      const [rows] = await pool.execute<RowDataPacket[]>(
        `SELECT state, document_id FROM ${table} WHERE analysis_id = ?`,
        [analysisId],
      );
      const row = rows[0];
      if (!row) return undefined;
      return {
        state: row['state'] as 'pending' | 'delivered' | 'dead',
        ...(row['document_id'] ? { documentId: String(row['document_id']) } : {}),
      };
    },
    async stats() {
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT state, COUNT(*) AS n FROM ${table} GROUP BY state`);
      const count = (state: string): number => Number(rows.find((r) => r['state'] === state)?.['n'] ?? 0);
      return { pending: count('pending'), delivered: count('delivered'), dead: count('dead') };
    },
  };
}
