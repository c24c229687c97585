/**
 * Reviews in MySQL, shared by every instance. A review row is opened (pending) in the transaction that records its
 * analysis' result; a decision is a conditional update of a pending row (`WHERE status = 'pending'`, version + 1),
 * so of two concurrent decisions on two instances exactly one changes the row and the other answers 409.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { decodeReviewCursor, encodeReviewCursor, type ReviewRecord, type ReviewStore } from '../domain/reviews.js';
import { sqlTime, type MySqlState } from './mysql.js';

interface ReviewRow extends RowDataPacket {
  job_id: string;
  status: ReviewRecord['status'];
  reviewer: string | null;
  reviewer_name: string | null;
  comment: string | null;
  reviewed_at: string | null;
  opened_at: Date;
}

const COLUMNS = 'job_id, status, reviewer, reviewer_name, comment, reviewed_at, opened_at';
const OPEN = `INSERT IGNORE INTO cdss_reviews (job_id, patient_id, status, opened_at) VALUES (?, ?, 'pending', ?)`;

function toRecord(row: ReviewRow): ReviewRecord {
  return {
    jobId: row.job_id,
    status: row.status,
    ...(row.reviewer !== null ? { reviewer: row.reviewer } : {}),
    ...(row.reviewer_name !== null ? { reviewerName: row.reviewer_name } : {}),
    ...(row.comment !== null ? { comment: row.comment } : {}),
    ...(row.reviewed_at !== null ? { reviewedAt: row.reviewed_at } : {}),
  };
}

/**
 * The review store over the server's MySQL state.
 * @param state - pool and transactions
 */
export function mySqlReviewStore(state: MySqlState): ReviewStore {
  const { pool } = state;
  return {
    async get(jobId) {
      const [rows] = await pool.execute<ReviewRow[]>(`SELECT ${COLUMNS} FROM cdss_reviews WHERE job_id = ?`, [jobId]);
      return rows[0] && toRecord(rows[0]);
    },
    async getMany(jobIds) {
      if (jobIds.length === 0) return new Map();
      const [rows] = await pool.query<ReviewRow[]>(`SELECT ${COLUMNS} FROM cdss_reviews WHERE job_id IN (?)`, [
        [...jobIds],
      ]);
      return new Map(rows.map((row) => [row.job_id, toRecord(row)]));
    },
    async open(opening, transaction) {
      const params = [opening.jobId, opening.patientId, sqlTime(opening.openedAt)];
      await (transaction?.connection ?? pool).execute(OPEN, params);
    },
    async decide({ patientId, ...decision }, within) {
      const values = [
        decision.status,
        decision.reviewer ?? null,
        decision.reviewerName ?? null,
        decision.comment ?? null,
        decision.reviewedAt ?? null,
      ] as const;
      return state.transaction(async (transaction) => {
        const { connection } = transaction;
        // The conditional update comes first: it takes the row's exclusive lock at once, so two decisions queue
        // behind each other instead of deadlocking, and only the first finds the review pending.
        const decide = async (): Promise<boolean> => {
          const [updated] = await connection.execute<ResultSetHeader>(
            `UPDATE cdss_reviews SET status = ?, reviewer = ?, reviewer_name = ?, comment = ?, reviewed_at = ?, version = version + 1
              WHERE job_id = ? AND status = 'pending'`,
            [...values, decision.jobId],
          );
          return updated.affectedRows === 1;
        };
        let won = await decide();
        if (!won) {
          const [rows] = await connection.execute<ReviewRow[]>(`SELECT ${COLUMNS} FROM cdss_reviews WHERE job_id = ?`, [
            decision.jobId,
          ]);
          if (rows[0]) return { record: toRecord(rows[0]), changed: false };
          // never opened (it succeeded before reviews were shared): the decision opens and closes it
          try {
            await connection.execute(
              `INSERT INTO cdss_reviews
                 (job_id, patient_id, status, reviewer, reviewer_name, comment, reviewed_at, opened_at, version)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)`,
              [decision.jobId, patientId, ...values, sqlTime(decision.reviewedAt ?? new Date().toISOString())],
            );
            won = true;
          } catch (error) {
            if ((error as { code?: unknown }).code !== 'ER_DUP_ENTRY') throw error;
            won = await decide(); // opened meanwhile: decide it if it is still pending
          }
          if (!won) {
            const [again] = await connection.execute<ReviewRow[]>(
              `SELECT ${COLUMNS} FROM cdss_reviews WHERE job_id = ?`,
              [decision.jobId],
            );
            return { record: again[0] ? toRecord(again[0]) : decision, changed: false };
          }
        }
        await within?.(transaction);
        return { record: decision, changed: true };
      });
    },
    async page({ status, patientId, limit, cursor }) {
      const where = ['status = ?'];
      const params: (string | number)[] = [status];
      if (patientId !== undefined) {
        where.push('patient_id = ?');
        params.push(patientId);
      }
      if (cursor !== undefined) {
        const after = decodeReviewCursor(cursor);
        where.push('(opened_at < ? OR (opened_at = ? AND job_id < ?))');
        params.push(sqlTime(after.openedAt), sqlTime(after.openedAt), after.jobId);
      }
      const [rows] = await pool.query<ReviewRow[]>(
        `SELECT ${COLUMNS} FROM cdss_reviews WHERE ${where.join(' AND ')}
          ORDER BY opened_at DESC, job_id DESC LIMIT ${Math.max(1, Math.floor(limit)) + 1}`,
        params,
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        jobIds: page.map((row) => row.job_id),
        ...(rows.length > limit && last
          ? { nextCursor: encodeReviewCursor(last.opened_at.toISOString(), last.job_id) }
          : {}),
      };
    },
  };
}

/**
 * Opens the pending reviews of analyses that succeeded before reviews were kept in MySQL (an upgrade), once.
 * @param state - the server's MySQL state
 * @param jobsTable - the job store's table (`cdss_ai_jobs` by default)
 * @returns how many were opened
 */
export async function openMissingReviews(state: MySqlState, jobsTable = 'cdss_ai_jobs'): Promise<number> {
  const [result] = await state.pool.query<ResultSetHeader>(
    `INSERT IGNORE INTO cdss_reviews (job_id, patient_id, status, opened_at)
     SELECT j.job_id, SUBSTRING(j.patient_ref, 9), 'pending', j.updated_at
       FROM ${state.pool.escapeId(jobsTable)} j LEFT JOIN cdss_reviews r ON r.job_id = j.job_id
      WHERE j.state = 'succeeded' AND r.job_id IS NULL AND j.patient_ref LIKE 'Patient/%'`,
  );
  return result.affectedRows;
}
