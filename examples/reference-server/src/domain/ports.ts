/**
 * What the server needs from each external system, in the API's own shapes. `compose.ts` builds these from the
 * `@cdss/*` packages (embedded adapters in sandbox mode, real ones in connected mode); tests use in-memory fakes.
 */
import type { z } from 'zod';
import type { JsonValue } from '@cdss/cache';
import type {
  allergySchema,
  ApiPatient,
  ApiStudy,
  encounterSchema,
  medicationSchema,
  PatientInput,
  problemSchema,
  vitalsSchema,
} from '../api-schemas.js';

/** A page of patients. */
export interface PatientPage {
  items: ApiPatient[];
  nextCursor?: string;
}

/** The clinical sub-lists of a patient. */
export interface ClinicalLists {
  encounters: z.infer<typeof encounterSchema>[];
  problems: z.infer<typeof problemSchema>[];
  allergies: z.infer<typeof allergySchema>[];
  medications: z.infer<typeof medicationSchema>[];
  vitals: z.infer<typeof vitalsSchema>[];
}

/** The EMR (OpenEMR): the source of truth for patients and their clinical data. */
export interface PatientRecords {
  /**
   * Patients whose names contain every word of `q`, in any order, ignoring case and accents ("maria rossi",
   * "Rossi, Maria", "muller" for "Müller").
   */
  search(query: { q?: string; limit: number; cursor?: string }): Promise<PatientPage>;
  /** Existing patients with the same given and family name (ignoring case and accents) and birth date. */
  duplicates(input: PatientInput): Promise<ApiPatient[]>;
  /** @returns undefined when there is no such patient */
  get(id: string): Promise<ApiPatient | undefined>;
  create(input: PatientInput): Promise<ApiPatient>;
  update(id: string, input: PatientInput): Promise<ApiPatient>;
  /**
   * The ids of the patients whose demographics equal `input` (name, birth date, sex and the optional fields given):
   * how a create whose outcome is unknown is read back.
   */
  matching(input: PatientInput): Promise<string[]>;
  list<K extends keyof ClinicalLists>(id: string, kind: K): Promise<ClinicalLists[K]>;
  ping(): Promise<void>;
}

/** A voxel grid for viewers: `data[i + x*j + x*y*k]`. */
export interface VoxelGrid<T extends Float32Array | Uint8Array> {
  dims: [number, number, number];
  spacing: [number, number, number];
  data: T;
}

/** The PACS (Orthanc). */
export interface ImagingArchive {
  studiesOfPatient(patientId: string): Promise<ApiStudy[]>;
  /** @returns undefined when there is no such study */
  study(studyUid: string): Promise<ApiStudy | undefined>;
  /** One series as a volume of rescaled intensities. */
  seriesVolume(studyUid: string, seriesUid: string): Promise<VoxelGrid<Float32Array>>;
  /** A DICOM SEG as a BraTS label map on the grid of its source series. */
  segmentation(
    studyUid: string,
    seg: { seriesUid: string; instanceUid: string },
    sourceSeriesUid: string,
  ): Promise<VoxelGrid<Uint8Array>>;
  ping(): Promise<void>;
}

/** A value read through the cache, with its freshness. */
export interface CachedRead<T> {
  value: T;
  /** True when the upstream failed and an expired value was served. */
  stale: boolean;
  /** `JSON.stringify(value)`, when the cache keeps it with the entry (answers then skip serialising the value). */
  json?: string;
}

/** A connection inside an open MySQL transaction (mysql2's `PoolConnection`), as far as the server uses it. */
export interface SqlConnection {
  execute(sql: string, values: (string | number | null)[]): Promise<unknown>;
}

/**
 * The transaction a state change commits in: in connected mode the MySQL connection whose transaction also holds the
 * change's outbox rows; absent in sandbox mode (memory stores).
 */
export interface StateTransaction {
  connection?: SqlConnection;
}

/** How an upstream write is made idempotent (see `http/idempotency.ts`). */
export interface IdempotentWrite<T> {
  /** The stored key (bound to the caller). */
  key: string;
  /** Fingerprinted: method, path and body. */
  request: unknown;
  /** Reads the upstream before writing; handed to `readBack`. */
  prepare?: () => Promise<JsonValue>;
  /** Finds what an attempt with an unknown outcome wrote, or undefined when it wrote nothing. */
  readBack?: (prepared: JsonValue | undefined) => Promise<T | undefined>;
}

/** How {@link ReadThroughCache.write} records a write. */
export interface WriteOptions<T> {
  /** The cache key of the written record; none for writes that are not cached. */
  key?: (result: T) => string;
  /** Reads a recorded answer back. */
  schema: z.ZodType<T>;
  /** Makes the write idempotent by the client's key. */
  idempotency?: IdempotentWrite<T>;
  /** The write's durable consequences (outbox rows), committed before the answer. */
  commit?: (result: T, transaction: StateTransaction) => Promise<void>;
}

/** Cache-aside reads and upstream-first writes (over `@cdss/cache`). */
export interface ReadThroughCache {
  read<T>(key: string, load: () => Promise<T>): Promise<CachedRead<T>>;
  /**
   * Runs the upstream write first; then `commit` (the write's outbox rows, in one transaction with the idempotency
   * record when there is one); then the cache (the result is stored under `key(result)`). With `idempotency`, a
   * retried request returns the first answer (`replayed: true`) and never repeats the upstream write; an attempt
   * whose outcome was unknown is read back first.
   */
  write<T>(upstreamWrite: () => Promise<T>, options: WriteOptions<T>): Promise<{ value: T; replayed: boolean }>;
  ping(): Promise<void>;
}

/** Durable FHIR writes (the outbox in front of the FHIR server). */
export interface FhirSync {
  /**
   * Queues a write; resolves once it is durably recorded, not when the server has it. `patient`: an API patient
   * (upserted by its OpenEMR uuid); `analysis-report`: a transaction Bundle; `audit-events`: a batch Bundle of
   * AuditEvents, each PUT under its own id. With `transaction`, the write commits with that state change.
   */
  enqueue(
    kind: 'patient' | 'analysis-report' | 'audit-events',
    payload: unknown,
    transaction?: StateTransaction,
  ): Promise<void>;
  ping(): Promise<void>;
}
