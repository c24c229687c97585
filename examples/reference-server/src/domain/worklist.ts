/**
 * The radiologist's worklist: analyses waiting for review with whose they are (patient, study date and description),
 * how long they have waited, their plausibility flags and who has claimed them; and the measurements a reviewer
 * makes in the viewer (length, bidirectional), saved with the analysis.
 *
 * Claims and measurements live in an {@link AnalysisNotesStore}: a JSON file in sandbox mode, MySQL in connected
 * mode (so every instance sees the same claim).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { ApiError, notFound } from '../http/errors.js';
import { defineRoute, type AnyRoute } from '../http/route.js';
import type { Principal } from '../auth/tokens.js';
import {
  claimSchema,
  measurementListSchema,
  measurementSchema,
  worklistSchema,
  type ApiAnalysis,
  type ApiPatient,
  type Claim,
  type Measurement,
  type WorklistItem,
} from '@cdss/client';
import type { Auditor } from './auditor.js';
import type { ImagingArchive, PatientRecords, ReadThroughCache } from './ports.js';

/** Where claims and measurements are kept. */
export interface AnalysisNotesStore {
  measurements(analysisId: string): Promise<Measurement[]>;
  saveMeasurements(analysisId: string, items: Measurement[]): Promise<void>;
  claims(analysisIds: readonly string[]): Promise<Map<string, Claim>>;
  /** Claims for `claim.userId` unless someone else holds it; returns the claim that holds. */
  claim(analysisId: string, claim: Claim): Promise<Claim>;
  /** Gives a claim back (only its holder can). */
  release(analysisId: string, userId: string): Promise<void>;
}

const fileSchema = z.record(
  z.string(),
  z.object({ measurements: z.array(measurementSchema).optional(), claim: claimSchema.optional() }),
);

/**
 * A store in memory, persisted to a JSON file when given (sandbox mode), written atomically.
 * @param file - the JSON file, or undefined for memory only
 */
export async function createFileNotesStore(file?: string): Promise<AnalysisNotesStore> {
  let notes: z.infer<typeof fileSchema> = {};
  if (file) {
    try {
      notes = fileSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  let writing = Promise.resolve();
  const persist = async (): Promise<void> => {
    if (!file) return;
    const snapshot = JSON.stringify(notes);
    writing = writing.then(async () => {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, snapshot, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    });
    await writing;
  };
  return {
    async measurements(id) {
      return notes[id]?.measurements ?? [];
    },
    async saveMeasurements(id, items) {
      notes[id] = { ...notes[id], measurements: items };
      await persist();
    },
    async claims(ids) {
      return new Map(ids.flatMap((id) => (notes[id]?.claim ? [[id, notes[id]!.claim!] as const] : [])));
    },
    async claim(id, claim) {
      const held = notes[id]?.claim;
      if (held && held.userId !== claim.userId) return held;
      notes[id] = { ...notes[id], claim };
      await persist();
      return claim;
    },
    async release(id, userId) {
      if (notes[id]?.claim?.userId !== userId) return;
      delete notes[id]!.claim;
      await persist();
    },
  };
}

/**
 * A store in MySQL (connected mode): table `<prefix>_analysis_notes`, one row per analysis; a claim is taken with a
 * conditional update, so two reviewers never both hold it.
 * @param pool - the MySQL pool
 * @param prefix - table name prefix (default `cdss`)
 */
export async function createMySqlNotesStore(pool: Pool, prefix = 'cdss'): Promise<AnalysisNotesStore> {
  if (!/^\w{1,40}$/.test(prefix)) throw new Error('invalid table prefix');
  const table = `${prefix}_analysis_notes`;
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${table} (analysis_id VARCHAR(100) NOT NULL PRIMARY KEY, measurements MEDIUMTEXT NULL, claim_user VARCHAR(200) NULL, claim_name VARCHAR(200) NULL, claim_at VARCHAR(40) NULL) ENGINE=InnoDB`,
  );
  const ensure = (id: string): Promise<unknown> =>
    pool.execute(`INSERT IGNORE INTO ${table} (analysis_id) VALUES (?)`, [id]);
  const store: AnalysisNotesStore = {
    async measurements(id) {
      const [rows] = await pool.execute<RowDataPacket[]>(`SELECT measurements FROM ${table} WHERE analysis_id = ?`, [
        id,
      ]);
      const text = rows[0]?.['measurements'] as string | null | undefined;
      return text ? z.array(measurementSchema).parse(JSON.parse(text)) : [];
    },
    async saveMeasurements(id, items) {
      await ensure(id);
      await pool.execute(`UPDATE ${table} SET measurements = ? WHERE analysis_id = ?`, [JSON.stringify(items), id]);
    },
    async claims(ids) {
      if (ids.length === 0) return new Map();
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT analysis_id, claim_user, claim_name, claim_at FROM ${table} WHERE claim_user IS NOT NULL AND analysis_id IN (?)`,
        [ids],
      );
      return new Map(
        rows.map((r) => [
          String(r['analysis_id']),
          { userId: String(r['claim_user']), userName: String(r['claim_name']), at: String(r['claim_at']) },
        ]),
      );
    },
    async claim(id, claim) {
      await ensure(id);
      await pool.execute(
        `UPDATE ${table} SET claim_user = ?, claim_name = ?, claim_at = ? WHERE analysis_id = ? AND (claim_user IS NULL OR claim_user = ?)`,
        [claim.userId, claim.userName, claim.at, id, claim.userId],
      );
      return (await store.claims([id])).get(id) ?? claim;
    },
    async release(id, userId) {
      await pool.execute(
        `UPDATE ${table} SET claim_user = NULL, claim_name = NULL, claim_at = NULL WHERE analysis_id = ? AND claim_user = ?`,
        [id, userId],
      );
    },
  };
  return store;
}

/** Dependencies of {@link worklistRoutes}. */
export interface WorklistDeps {
  notes: AnalysisNotesStore;
  /** Analyses whose review is pending. */
  pendingReview(): Promise<ApiAnalysis[]>;
  /** One analysis (throws 404 when unknown). */
  analysis(id: string): Promise<ApiAnalysis>;
  records: PatientRecords;
  cache: ReadThroughCache;
  archive: ImagingArchive;
  auditor: Auditor;
}

const idParams = z.object({
  id: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[\w.-]+$/),
});

/**
 * The worklist, claim and measurement routes.
 * @param deps - the notes store, the analyses, the EMR (through the cache) and the PACS, the auditor
 */
export function worklistRoutes(deps: WorklistDeps): AnyRoute[] {
  const { notes, auditor } = deps;
  const claimOf = (principal: Principal): Claim => ({
    userId: principal.id,
    userName: principal.name,
    at: new Date().toISOString(),
  });
  const patientOf = async (id: string): Promise<ApiPatient | undefined> =>
    (await deps.cache.read(`patient:${id}`, async () => (await deps.records.get(id)) ?? null)).value ?? undefined;

  return [
    defineRoute({
      method: 'get',
      path: '/api/worklist',
      operationId: 'getWorklist',
      summary: 'Analyses waiting for review, with patient, study, waiting time, flags and claim (oldest first)',
      tags: ['analyses'],
      access: { permission: 'analysis:review' },
      response: { status: 200, description: 'The worklist', schema: worklistSchema },
      errors: [503],
      handler: ({ principal, requestId }) =>
        auditor.around({ principal, requestId, action: 'search', resource: 'Worklist' }, async () => {
          const pending = await deps.pendingReview();
          const claims = await notes.claims(pending.map((a) => a.id));
          const patients = new Map<string, Promise<ApiPatient | undefined>>();
          const studies = new Map<string, ReturnType<ImagingArchive['study']>>();
          const items = await Promise.all(
            pending.map(async (a): Promise<WorklistItem> => {
              if (!patients.has(a.patientId))
                patients.set(
                  a.patientId,
                  patientOf(a.patientId).catch(() => undefined),
                );
              if (!studies.has(a.studyUid))
                studies.set(
                  a.studyUid,
                  deps.archive.study(a.studyUid).catch(() => undefined),
                );
              const [patient, study] = await Promise.all([patients.get(a.patientId), studies.get(a.studyUid)]);
              const claim = claims.get(a.id);
              return {
                analysisId: a.id,
                patient: {
                  id: a.patientId,
                  name: patient ? `${patient.familyName}, ${patient.givenName}` : 'Unknown patient',
                  ...(patient ? { pid: patient.pid, birthDate: patient.birthDate, sex: patient.sex } : {}),
                },
                study: {
                  uid: a.studyUid,
                  ...(study?.date ? { date: study.date } : {}),
                  ...(study?.description ? { description: study.description } : {}),
                },
                model: a.model,
                waitingSince: a.finishedAt ?? a.requestedAt,
                flags: a.result?.flags ?? [],
                ...(claim ? { claim } : {}),
              };
            }),
          );
          items.sort((x, y) => x.waitingSince.localeCompare(y.waitingSince));
          return { body: { items } };
        }),
    }),
    defineRoute({
      method: 'post',
      path: '/api/analyses/{id}/claim',
      operationId: 'claimAnalysis',
      summary: 'Claim an analysis for review (409 when another reviewer holds it)',
      tags: ['analyses'],
      access: { permission: 'analysis:review' },
      params: idParams,
      response: { status: 200, description: 'The claim', schema: claimSchema },
      errors: [404, 409],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'update', resource: `Analysis/${params.id}/claim` },
          async (audit) => {
            const analysis = await deps.analysis(params.id);
            audit.patientId = analysis.patientId;
            const held = await notes.claim(params.id, claimOf(principal));
            if (held.userId !== principal.id)
              throw new ApiError(409, 'conflict', `Already claimed by ${held.userName} at ${held.at}`);
            return { body: held };
          },
        ),
    }),
    defineRoute({
      method: 'delete',
      path: '/api/analyses/{id}/claim',
      operationId: 'releaseAnalysis',
      summary: 'Give back a claim on an analysis',
      tags: ['analyses'],
      access: { permission: 'analysis:review' },
      params: idParams,
      response: { status: 204, description: 'Released', schema: z.null() },
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'update', resource: `Analysis/${params.id}/claim` },
          async () => {
            await notes.release(params.id, principal.id);
            return { status: 204, body: null };
          },
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/analyses/{id}/measurements',
      operationId: 'getMeasurements',
      summary: 'Measurements made on an analysis in the viewer',
      tags: ['analyses'],
      access: { permission: 'analysis:read' },
      params: idParams,
      response: { status: 200, description: 'The measurements', schema: measurementListSchema },
      errors: [404],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `Analysis/${params.id}/measurements` },
          async (audit) => {
            const analysis = await deps.analysis(params.id);
            audit.patientId = analysis.patientId;
            return { body: { items: await notes.measurements(params.id) } };
          },
        ),
    }),
    defineRoute({
      method: 'put',
      path: '/api/analyses/{id}/measurements',
      operationId: 'saveMeasurements',
      summary: 'Replace the measurements of an analysis (length, bidirectional)',
      tags: ['analyses'],
      access: { permission: 'analysis:review' },
      params: idParams,
      body: measurementListSchema,
      response: { status: 200, description: 'The saved measurements', schema: measurementListSchema },
      errors: [404],
      handler: ({ params, body, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'update', resource: `Analysis/${params.id}/measurements` },
          async (audit) => {
            const analysis = await deps.analysis(params.id);
            audit.patientId = analysis.patientId;
            if (!analysis.result) throw notFound('Result of the analysis');
            await notes.saveMeasurements(params.id, body.items);
            return { body: { items: body.items } };
          },
        ),
    }),
  ];
}
