/**
 * Clinical review of AI results: a result is preliminary until a radiologist approves it (the DiagnosticReport becomes
 * `final`) or rejects it with a comment (`entered-in-error`; the result is kept for audit).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';

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

/** Where reviews are kept. */
export interface ReviewStore {
  get(jobId: string): Promise<ReviewRecord | undefined>;
  /** Records a decision; refuses to change a decision already made (returns the existing one). */
  decide(record: ReviewRecord): Promise<{ record: ReviewRecord; changed: boolean }>;
}

/**
 * A store in memory, optionally persisted to a JSON file (sandbox mode), written atomically.
 * @param file - the JSON file, or undefined for memory only
 */
export async function createReviewStore(file?: string): Promise<ReviewStore> {
  const records = new Map<string, ReviewRecord>();
  if (file) {
    try {
      const parsed = z.array(reviewRecordSchema).parse(JSON.parse(await readFile(file, 'utf8')));
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
  return {
    async get(jobId) {
      return records.get(jobId);
    },
    async decide(record) {
      const existing = records.get(record.jobId);
      if (existing && existing.status !== 'pending') return { record: existing, changed: false };
      records.set(record.jobId, record);
      await persist();
      return { record, changed: true };
    },
  };
}
