/**
 * Clinical review of AI results: a result is preliminary until a radiologist approves it (the DiagnosticReport becomes
 * `final`) or rejects it with a comment (`entered-in-error`; the result is kept for audit). One decision per analysis,
 * whichever instance receives it: the store decides the winner. Sandbox mode keeps reviews in memory and a JSON file;
 * connected mode in MySQL (`state/mysql-reviews.ts`).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { decodePageCursor, encodePageCursor } from '@cdss/ai-jobs';
import type { StateTransaction } from './ports.js';

/** The review state of one analysis. */
export const reviewRecordSchema = z.object({
  jobId: z.string(),
  status: z.enum(['pending', 'approved', 'rejected']),
  reviewer: z.string().optional(),
  /** The reviewer's display name when they decided (the id stays the reference). */
  reviewerName: z.string().optional(),
  comment: z.string().optional(),
  reviewedAt: z.string().optional(),
});
/** The review state of one analysis. */
export type ReviewRecord = z.infer<typeof reviewRecordSchema>;
/** A review status. */
export type ReviewStatus = ReviewRecord['status'];

/** A review opened when its analysis succeeded. */
export interface ReviewOpening {
  jobId: string;
  patientId: string;
  /** When the analysis succeeded (ISO 8601): the review queue's order. */
  openedAt: string;
}

/** A page of reviews by status. */
export interface ReviewPageQuery {
  status: ReviewStatus;
  /** Only this patient's analyses. */
  patientId?: string;
  limit: number;
  /** From the previous page's `nextCursor`. */
  cursor?: string;
}

/** Where reviews are kept. */
export interface ReviewStore {
  get(jobId: string): Promise<ReviewRecord | undefined>;
  /** The reviews of these analyses, by job id (analyses without a review are absent). */
  getMany(jobIds: readonly string[]): Promise<Map<string, ReviewRecord>>;
  /**
   * Opens the (pending) review of a succeeded analysis, once: inside the transaction that records the result.
   * @param transaction - the job store's transaction (connected mode)
   */
  open(opening: ReviewOpening, transaction?: StateTransaction): Promise<void>;
  /**
   * Records a decision on a pending review: exactly one decision per analysis across instances. `within` (the
   * decision's outbox rows) runs in the same transaction; the decision is kept only if it succeeds.
   * @returns the decision and `changed: true`, or the decision already made and `changed: false` (nothing ran)
   */
  decide(
    decision: ReviewRecord & { patientId: string },
    within?: (transaction: StateTransaction) => Promise<void>,
  ): Promise<{ record: ReviewRecord; changed: boolean }>;
  /** Analyses by review status, most recently opened first. */
  page(query: ReviewPageQuery): Promise<{ jobIds: string[]; nextCursor?: string }>;
}

/** `openedAt` and `jobId` of a page's last review as the cursor of the next (the job store's cursor form). */
export function encodeReviewCursor(openedAt: string, jobId: string): string {
  return encodePageCursor(openedAt, jobId);
}

/**
 * Reads a page cursor.
 * @throws `ValidationError` for a string not of the cursor form
 */
export function decodeReviewCursor(cursor: string): { openedAt: string; jobId: string } {
  const { time, id } = decodePageCursor(cursor);
  return { openedAt: time, jobId: id };
}

const storedSchema = reviewRecordSchema.extend({ patientId: z.string().optional(), openedAt: z.string().optional() });
type Stored = z.infer<typeof storedSchema>;

/**
 * A store in memory, optionally persisted to a JSON file (sandbox mode), written atomically. One process only.
 * @param file - the JSON file, or undefined for memory only
 */
export async function createReviewStore(file?: string): Promise<ReviewStore> {
  const records = new Map<string, Stored>();
  if (file) {
    try {
      const parsed = z.array(storedSchema).parse(JSON.parse(await readFile(file, 'utf8')));
      for (const record of parsed) records.set(record.jobId, record);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  let writing = Promise.resolve();
  const persist = async (): Promise<void> => {
    if (!file) return;
    const snapshot = JSON.stringify([...records.values()], null, 2);
    writing = writing.then(async () => {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, snapshot, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    });
    await writing;
  };
  const view = ({ patientId: _p, openedAt: _o, ...record }: Stored): ReviewRecord => record;
  const deciding = new Set<string>();
  return {
    async get(jobId) {
      const found = records.get(jobId);
      return found && view(found);
    },
    async getMany(jobIds) {
      return new Map(jobIds.flatMap((id) => (records.has(id) ? [[id, view(records.get(id)!)] as const] : [])));
    },
    async open(opening) {
      if (records.has(opening.jobId)) return;
      records.set(opening.jobId, { ...opening, status: 'pending' });
      await persist();
    },
    async decide({ patientId, ...decision }, within) {
      const existing = records.get(decision.jobId);
      if ((existing && existing.status !== 'pending') || deciding.has(decision.jobId))
        return { record: existing ? view(existing) : decision, changed: false };
      // claimed while `within` runs, so a concurrent decision loses
      deciding.add(decision.jobId);
      try {
        await within?.({});
        records.set(decision.jobId, {
          ...decision,
          patientId,
          openedAt: existing?.openedAt ?? decision.reviewedAt ?? new Date().toISOString(),
        });
      } finally {
        deciding.delete(decision.jobId);
      }
      await persist();
      return { record: decision, changed: true };
    },
    async page({ status, patientId, limit, cursor }) {
      const after = cursor === undefined ? undefined : decodeReviewCursor(cursor);
      const key = (r: Stored): string => `${r.openedAt ?? ''}|${r.jobId}`;
      const matching = [...records.values()]
        .filter((r) => r.status === status && (patientId === undefined || r.patientId === patientId))
        .filter((r) => !after || key(r) < `${after.openedAt}|${after.jobId}`)
        .sort((a, b) => (key(a) < key(b) ? 1 : -1));
      const page = matching.slice(0, limit);
      const last = page.at(-1);
      return {
        jobIds: page.map((r) => r.jobId),
        ...(matching.length > limit && last ? { nextCursor: encodeReviewCursor(last.openedAt ?? '', last.jobId) } : {}),
      };
    },
  };
}
