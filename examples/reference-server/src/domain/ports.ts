/**
 * What the server needs from each external system, in the API's own shapes. `compose.ts` builds these from the
 * `@cdss/*` packages (embedded adapters in sandbox mode, real ones in connected mode); tests use in-memory fakes.
 */
import type { z } from 'zod';
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
  search(query: { q?: string; limit: number; cursor?: string }): Promise<PatientPage>;
  /** @returns undefined when there is no such patient */
  get(id: string): Promise<ApiPatient | undefined>;
  create(input: PatientInput): Promise<ApiPatient>;
  update(id: string, input: PatientInput): Promise<ApiPatient>;
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
}

/** Cache-aside reads and upstream-first writes (over `@cdss/cache`). */
export interface ReadThroughCache {
  read<T>(key: string, load: () => Promise<T>): Promise<CachedRead<T>>;
  /**
   * Runs the upstream write first; only when it succeeds does the cache change (the result is stored under
   * `key(result)`). With an idempotency key, a retried request returns the first answer (`replayed: true`) and never
   * repeats the upstream write.
   */
  write<T>(
    upstreamWrite: () => Promise<T>,
    options: { key: (result: T) => string; schema: z.ZodType<T>; idempotencyKey?: string },
  ): Promise<{ value: T; replayed: boolean }>;
  ping(): Promise<void>;
}

/** Durable FHIR writes (the outbox in front of the FHIR server). */
export interface FhirSync {
  /** Queues a resource or transaction bundle; resolves once it is durably recorded, not when the server has it. */
  enqueue(kind: 'patient' | 'analysis-report' | 'audit-event', payload: unknown): Promise<void>;
  ping(): Promise<void>;
}
