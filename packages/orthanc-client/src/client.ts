/**
 * The Orthanc client: Orthanc's REST API and DICOMweb (QIDO-RS, WADO-RS, STOW-RS) on one {@link HttpTransport}.
 *
 * Large transfers ask for `Accept-Encoding: identity` (Orthanc gzips raw frames and archives otherwise, which
 * makes downloads 3–10× slower: shared/notes/orthanc.md §8.2), run with bounded parallelism, report progress
 * and stop on an `AbortSignal`.
 * @packageDocumentation
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import {
  CdssError,
  HttpTransport,
  ValidationError,
  noopLogger,
  systemClock,
  type AuthStrategy,
  type Clock,
  type Logger,
  type RetryPolicyOptions,
  type TransferProgress,
} from '@cdss/core';
import axios from 'axios';
import { createKeepAliveAgent, type KeepAliveAgentOptions } from './agent.js';
import { DicomWebClient } from './dicomweb.js';
import { mapLimit } from './pool.js';
import {
  changesPageSchema,
  instanceSchema,
  jobCreatedSchema,
  jobSchema,
  jsonValueSchema,
  lookupResultSchema,
  orderedSlicesSchema,
  patientSchema,
  seriesSchema,
  statisticsSchema,
  studySchema,
  systemInfoSchema,
  uploadResultSchema,
  type ChangesPage,
  type JsonValue,
  type LookupResult,
  type OrderedSlices,
  type OrthancChange,
  type OrthancInstance,
  type OrthancJob,
  type OrthancPatient,
  type OrthancSeries,
  type OrthancStudy,
  type Statistics,
  type SystemInfo,
  type UploadResult,
} from './schemas.js';

/** Options of {@link OrthancClient}. Only `baseUrl` is required. */
export interface OrthancClientOptions {
  /** Orthanc's root URL, e.g. `http://127.0.0.1:8042`. Credentials in the URL become Basic auth. */
  baseUrl: string;
  /** Auth strategy (default: Basic from the URL's credentials, else none). */
  auth?: AuthStrategy;
  /** A transport to use instead of building one (its base URL must be Orthanc's root). */
  transport?: HttpTransport;
  /** Path of the DICOMweb root; default `dicom-web`. */
  dicomWebRoot?: string;
  /** Maximum requests in flight for multi-request operations (uploads, per-instance downloads); default 4. */
  concurrency?: number;
  /** Per-request time limit in ms; default 60 000. */
  timeoutMs?: number;
  /** Retry policy of the transport (idempotent requests only); default 2 retries. */
  retry?: RetryPolicyOptions | false;
  /** Logger (never receives PHI: URLs carry Orthanc IDs and UIDs only). */
  logger?: Logger;
  /** Clock for polling (`/changes`, jobs). */
  clock?: Clock;
  /** Connection reuse: how long idle sockets are kept (default 500 ms, below Orthanc's 1 s) and agent options. */
  keepAlive?: KeepAliveAgentOptions;
}

/** Common options of calls that transfer data. */
export interface TransferOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Called as bytes move. */
  onProgress?: (progress: TransferProgress) => void;
}

/** A level of the Orthanc resource hierarchy. */
export type ResourceLevel = 'Patient' | 'Study' | 'Series' | 'Instance';
const LEVEL_PATH: Record<ResourceLevel, string> = {
  Patient: 'patients',
  Study: 'studies',
  Series: 'series',
  Instance: 'instances',
};

/** Options of {@link OrthancClient.find}. */
export interface FindQuery {
  /** Level to search. */
  level: ResourceLevel;
  /** DICOM keyword → value; `*` and `?` wildcards as in C-FIND. Always constrain by PatientID or a UID. */
  query: Record<string, string>;
  /** Maximum number of answers. */
  limit?: number;
  /** Offset into the answers. */
  since?: number;
  /** Case-sensitive matching of PN attributes. */
  caseSensitive?: boolean;
}

/** Progress of a multi-instance transfer. */
export interface InstancesProgress {
  /** Instances done. */
  done: number;
  /** Instances in total. */
  total: number;
  /** Bytes sent or received so far. */
  bytes: number;
}

/** Options of {@link OrthancClient.changes}. */
export interface ChangesOptions {
  /** Resume after this sequence number (the `Seq` of the last change processed); default 0 = from the start. */
  since?: number;
  /** Page size; default 100. */
  limit?: number;
  /** Keep polling when the feed is drained (default true); false ends the iteration at the end of the feed. */
  follow?: boolean;
  /** Wait between polls of a drained feed, ms; default 1000. */
  pollIntervalMs?: number;
  /** Ends the iteration (the generator returns; no error). */
  signal?: AbortSignal;
}

const uploadAnswerSchema = z.union([uploadResultSchema, z.array(uploadResultSchema)]);

/**
 * Client of one Orthanc server: REST resources, search, upload, download, archives, jobs and the change feed.
 * DICOMweb is on {@link OrthancClient.dicomweb}.
 *
 * @example
 * ```ts
 * const orthanc = new OrthancClient({ baseUrl: 'http://user:pass@127.0.0.1:8042' });
 * const [study] = await orthanc.find({ level: 'Study', query: { PatientID: 'P1' } });
 * for await (const change of orthanc.changes({ since: checkpoint })) save(change.Seq);
 * ```
 */
export class OrthancClient {
  /** The transport (shared with {@link OrthancClient.dicomweb}). */
  readonly transport: HttpTransport;
  /** DICOMweb (QIDO-RS, WADO-RS, STOW-RS) on the same server. */
  readonly dicomweb: DicomWebClient;
  private readonly concurrency: number;
  private readonly clock: Clock;
  private readonly logger: Logger;

  /**
   * @param options - see {@link OrthancClientOptions}
   * @throws {@link ValidationError} for invalid options
   */
  constructor(options: OrthancClientOptions) {
    const parsed = z
      .object({
        baseUrl: z.url({ protocol: /^https?$/ }),
        dicomWebRoot: z.string().min(1).optional(),
        concurrency: z.number().int().min(1).max(64).optional(),
        timeoutMs: z.number().positive().optional(),
      })
      .safeParse({
        baseUrl: options.baseUrl,
        dicomWebRoot: options.dicomWebRoot,
        concurrency: options.concurrency,
        timeoutMs: options.timeoutMs,
      });
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid OrthancClient options');
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? noopLogger;
    this.transport =
      options.transport ??
      new HttpTransport({
        baseUrl: options.baseUrl,
        ...(options.auth ? { auth: options.auth } : {}),
        timeoutMs: options.timeoutMs ?? 60_000,
        ...(options.retry !== undefined ? { retry: options.retry } : {}),
        logger: this.logger,
        clock: this.clock,
        // Reuse connections (Orthanc's 1 s keep-alive hint otherwise makes Node open one per request).
        axios: axios.create({ httpAgent: createKeepAliveAgent(options.keepAlive ?? {}) }),
      });
    this.concurrency = options.concurrency ?? 4;
    this.dicomweb = new DicomWebClient(this.transport, { root: options.dicomWebRoot ?? 'dicom-web' });
  }

  private async get<T>(
    path: string,
    schema: z.ZodType<T>,
    options: { signal?: AbortSignal | undefined; query?: Record<string, string | number | boolean | undefined> } = {},
  ): Promise<T> {
    const res = await this.transport.request({
      method: 'GET',
      path,
      schema,
      signal: options.signal,
      ...(options.query ? { query: options.query } : {}),
    });
    return res.data;
  }

  /**
   * `GET /system`: name, version, API version, DICOM AET and ports.
   * @param signal - cancels the call
   */
  async getSystem(signal?: AbortSignal): Promise<SystemInfo> {
    return this.get('system', systemInfoSchema, { signal });
  }

  /**
   * `GET /statistics`: counts of patients, studies, series, instances and disk usage.
   * @param signal - cancels the call
   */
  async getStatistics(signal?: AbortSignal): Promise<Statistics> {
    return this.get('statistics', statisticsSchema, { signal });
  }

  /**
   * Lists the Orthanc IDs at a level (`GET /patients`, `/studies`, `/series`, `/instances`).
   * Prefer {@link OrthancClient.find} on a shared server.
   * @param level - the level
   * @param page - `limit` and `since` for paging
   */
  async list(
    level: ResourceLevel,
    page: { limit?: number; since?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    return this.get(LEVEL_PATH[level], z.array(z.string()), {
      signal: page.signal,
      query: { limit: page.limit, since: page.since },
    });
  }

  /** `GET /patients/{id}`. @param id - Orthanc ID @param signal - cancels */
  async getPatient(id: string, signal?: AbortSignal): Promise<OrthancPatient> {
    return this.get(`patients/${encodeURIComponent(id)}`, patientSchema, { signal });
  }

  /** `GET /studies/{id}`. @param id - Orthanc ID @param signal - cancels */
  async getStudy(id: string, signal?: AbortSignal): Promise<OrthancStudy> {
    return this.get(`studies/${encodeURIComponent(id)}`, studySchema, { signal });
  }

  /** `GET /series/{id}`. @param id - Orthanc ID @param signal - cancels */
  async getSeries(id: string, signal?: AbortSignal): Promise<OrthancSeries> {
    return this.get(`series/${encodeURIComponent(id)}`, seriesSchema, { signal });
  }

  /** `GET /instances/{id}`. @param id - Orthanc ID @param signal - cancels */
  async getInstance(id: string, signal?: AbortSignal): Promise<OrthancInstance> {
    return this.get(`instances/${encodeURIComponent(id)}`, instanceSchema, { signal });
  }

  /** `GET /studies/{id}/series`: the study's series, expanded. @param id - study ID @param signal - cancels */
  async getStudySeries(id: string, signal?: AbortSignal): Promise<OrthancSeries[]> {
    return this.get(`studies/${encodeURIComponent(id)}/series`, z.array(seriesSchema), { signal });
  }

  /** `GET /series/{id}/instances`: the series' instances, expanded. @param id - series ID @param signal - cancels */
  async getSeriesInstances(id: string, signal?: AbortSignal): Promise<OrthancInstance[]> {
    return this.get(`series/${encodeURIComponent(id)}/instances`, z.array(instanceSchema), { signal });
  }

  /**
   * `GET /series/{id}/ordered-slices`: instances in geometric order, as Orthanc sorts them. (Deprecated in
   * Orthanc ≥ 1.12; volume building sorts by position itself.)
   * @param id - series ID
   * @param signal - cancels
   */
  async getOrderedSlices(id: string, signal?: AbortSignal): Promise<OrderedSlices> {
    return this.get(`series/${encodeURIComponent(id)}/ordered-slices`, orderedSlicesSchema, { signal });
  }

  /**
   * `GET /instances/{id}/simplified-tags`: the instance's attributes by keyword, values as strings (sequences as arrays).
   * @param id - instance ID
   * @param signal - cancels
   */
  async getSimplifiedTags(id: string, signal?: AbortSignal): Promise<Record<string, JsonValue>> {
    return this.get(`instances/${encodeURIComponent(id)}/simplified-tags`, z.record(z.string(), jsonValueSchema), {
      signal,
    });
  }

  /**
   * `GET /instances/{id}/frames/{frame}/raw`: the frame's pixel bytes as stored (little endian for uncompressed).
   * @param id - instance ID
   * @param frame - frame index, 0-based
   * @param options - signal
   */
  async getRawFrame(id: string, frame = 0, options: TransferOptions = {}): Promise<Uint8Array> {
    const res = await this.transport.request<Buffer>({
      method: 'GET',
      path: `instances/${encodeURIComponent(id)}/frames/${frame}/raw`,
      responseType: 'arraybuffer',
      acceptEncoding: 'identity',
      headers: { accept: 'application/octet-stream' },
      signal: options.signal,
      ...(options.onProgress ? { onDownloadProgress: options.onProgress } : {}),
    });
    return toUint8(res.data);
  }

  /**
   * `GET /instances/{id}/file`: the Part-10 file.
   * @param id - instance ID
   * @param options - signal, progress
   */
  async getInstanceFile(id: string, options: TransferOptions = {}): Promise<Uint8Array> {
    const res = await this.transport.request<Buffer>({
      method: 'GET',
      path: `instances/${encodeURIComponent(id)}/file`,
      responseType: 'arraybuffer',
      acceptEncoding: 'identity',
      headers: { accept: 'application/dicom' },
      signal: options.signal,
      ...(options.onProgress ? { onDownloadProgress: options.onProgress } : {}),
    });
    return toUint8(res.data);
  }

  /**
   * Downloads every instance file of a series, `concurrency` at a time.
   * @param id - series ID
   * @param options - signal, progress per instance
   * @returns the Part-10 files (in Orthanc's instance order)
   */
  async getSeriesFiles(
    id: string,
    options: { signal?: AbortSignal; onProgress?: (p: InstancesProgress) => void } = {},
  ): Promise<Uint8Array[]> {
    const series = await this.getSeries(id, options.signal);
    let done = 0;
    let bytes = 0;
    return mapLimit(
      series.Instances,
      this.concurrency,
      async (instanceId) => {
        const file = await this.getInstanceFile(instanceId, options.signal ? { signal: options.signal } : {});
        done++;
        bytes += file.length;
        options.onProgress?.({ done, total: series.Instances.length, bytes });
        return file;
      },
      options.signal,
    );
  }

  /**
   * `POST /instances` with one Part-10 file.
   * @param file - the DICOM file
   * @param options - signal, upload progress
   * @returns where it was stored; `Status` is `AlreadyStored` for a repeat upload
   */
  async uploadInstance(file: Uint8Array, options: TransferOptions = {}): Promise<UploadResult> {
    const res = await this.transport.request({
      method: 'POST',
      path: 'instances',
      body: file,
      headers: { 'content-type': 'application/dicom' },
      schema: uploadResultSchema,
      signal: options.signal,
      // Storing the same instance twice is harmless (AlreadyStored), so uploads may be retried.
      idempotencyKey: randomUUID(),
      ...(options.onProgress ? { onUploadProgress: options.onProgress } : {}),
    });
    return res.data;
  }

  /**
   * Uploads many files, `concurrency` at a time.
   * @param files - Part-10 files
   * @param options - signal, progress
   * @returns one result per file, in order
   */
  async uploadInstances(
    files: readonly Uint8Array[],
    options: { signal?: AbortSignal; onProgress?: (p: InstancesProgress) => void } = {},
  ): Promise<UploadResult[]> {
    let done = 0;
    let bytes = 0;
    return mapLimit(
      files,
      this.concurrency,
      async (file) => {
        const r = await this.uploadInstance(file, options.signal ? { signal: options.signal } : {});
        done++;
        bytes += file.length;
        options.onProgress?.({ done, total: files.length, bytes });
        return r;
      },
      options.signal,
    );
  }

  /**
   * `POST /instances` with a ZIP archive of DICOM files (Orthanc ≥ 1.8 unpacks it).
   * @param zip - the archive
   * @param options - signal, progress
   * @returns one result per stored instance
   */
  async uploadZip(zip: Uint8Array, options: TransferOptions = {}): Promise<UploadResult[]> {
    const res = await this.transport.request({
      method: 'POST',
      path: 'instances',
      body: zip,
      headers: { 'content-type': 'application/zip' },
      schema: uploadAnswerSchema,
      signal: options.signal,
      idempotencyKey: randomUUID(),
      ...(options.onProgress ? { onUploadProgress: options.onProgress } : {}),
    });
    return Array.isArray(res.data) ? res.data : [res.data];
  }

  /**
   * Deletes a resource and everything below it.
   * @param level - its level
   * @param id - its Orthanc ID
   * @param signal - cancels
   * @returns true when deleted, false when it did not exist
   */
  async delete(level: ResourceLevel, id: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.transport.request({
      method: 'DELETE',
      path: `${LEVEL_PATH[level]}/${encodeURIComponent(id)}`,
      acceptStatus: (s) => s === 404,
      signal,
    });
    return res.status !== 404;
  }

  /**
   * `POST /tools/find`: resources matching DICOM attributes, expanded.
   * @param query - level, attributes, paging
   * @param signal - cancels
   * @returns matching resources (patients, studies, series or instances)
   */
  async find(query: FindQuery & { level: 'Patient' }, signal?: AbortSignal): Promise<OrthancPatient[]>;
  async find(query: FindQuery & { level: 'Study' }, signal?: AbortSignal): Promise<OrthancStudy[]>;
  async find(query: FindQuery & { level: 'Series' }, signal?: AbortSignal): Promise<OrthancSeries[]>;
  async find(query: FindQuery & { level: 'Instance' }, signal?: AbortSignal): Promise<OrthancInstance[]>;
  async find(
    query: FindQuery,
    signal?: AbortSignal,
  ): Promise<Array<OrthancPatient | OrthancStudy | OrthancSeries | OrthancInstance>> {
    const schema = { Patient: patientSchema, Study: studySchema, Series: seriesSchema, Instance: instanceSchema }[
      query.level
    ];
    const res = await this.transport.request({
      method: 'POST',
      path: 'tools/find',
      body: {
        Level: query.level,
        Query: query.query,
        Expand: true,
        ...(query.limit !== undefined ? { Limit: query.limit } : {}),
        ...(query.since !== undefined ? { Since: query.since } : {}),
        ...(query.caseSensitive !== undefined ? { CaseSensitive: query.caseSensitive } : {}),
      },
      schema: z.array(schema as z.ZodType<OrthancPatient | OrthancStudy | OrthancSeries | OrthancInstance>),
      // A search changes nothing: safe to retry.
      idempotencyKey: randomUUID(),
      signal,
    });
    return res.data;
  }

  /**
   * `POST /tools/lookup`: the resource(s) a DICOM UID (or PatientID) names.
   * @param uid - a Study/Series/SOP Instance UID or Patient ID
   * @param signal - cancels
   */
  async lookup(uid: string, signal?: AbortSignal): Promise<LookupResult> {
    const res = await this.transport.request({
      method: 'POST',
      path: 'tools/lookup',
      body: uid,
      headers: { 'content-type': 'text/plain' },
      schema: lookupResultSchema,
      idempotencyKey: randomUUID(),
      signal,
    });
    return res.data;
  }

  /**
   * Downloads a ZIP archive of a patient, study or series as a stream (`GET /{level}/{id}/archive`).
   * @param level - Patient, Study or Series
   * @param id - Orthanc ID
   * @param options - signal, progress
   * @returns the archive as a readable stream (consume or destroy it)
   */
  async downloadArchive(
    level: Exclude<ResourceLevel, 'Instance'>,
    id: string,
    options: TransferOptions = {},
  ): Promise<Readable> {
    const res = await this.transport.request<Readable>({
      method: 'GET',
      path: `${LEVEL_PATH[level]}/${encodeURIComponent(id)}/archive`,
      responseType: 'stream',
      acceptEncoding: 'identity',
      headers: { accept: 'application/zip' },
      signal: options.signal,
      ...(options.onProgress ? { onDownloadProgress: options.onProgress } : {}),
    });
    return res.data;
  }

  /**
   * Starts an asynchronous archive job (`POST /{level}/{id}/archive` with `Asynchronous: true`), for archives
   * too large to build within one request's timeout.
   * @param level - Patient, Study or Series
   * @param id - Orthanc ID
   * @param signal - cancels
   * @returns the job ID
   */
  async createArchiveJob(level: Exclude<ResourceLevel, 'Instance'>, id: string, signal?: AbortSignal): Promise<string> {
    const res = await this.transport.request({
      method: 'POST',
      path: `${LEVEL_PATH[level]}/${encodeURIComponent(id)}/archive`,
      body: { Asynchronous: true },
      schema: jobCreatedSchema,
      signal,
    });
    return res.data.ID;
  }

  /** `GET /jobs/{id}`. @param id - job ID @param signal - cancels */
  async getJob(id: string, signal?: AbortSignal): Promise<OrthancJob> {
    return this.get(`jobs/${encodeURIComponent(id)}`, jobSchema, { signal });
  }

  /**
   * Polls a job until it succeeds or fails.
   * @param id - job ID
   * @param options - poll interval (default 200 ms), signal
   * @returns the finished job
   * @throws {@link JobFailedError} when the job fails
   */
  async waitForJob(id: string, options: { pollIntervalMs?: number; signal?: AbortSignal } = {}): Promise<OrthancJob> {
    for (;;) {
      const job = await this.getJob(id, options.signal);
      if (job.State === 'Success') return job;
      if (job.State === 'Failure') throw new JobFailedError(job);
      await this.clock.sleep(options.pollIntervalMs ?? 200, options.signal);
    }
  }

  /**
   * Downloads the output of a finished archive job (`GET /jobs/{id}/archive`) as a stream.
   * @param id - job ID
   * @param options - signal, progress
   */
  async downloadJobArchive(id: string, options: TransferOptions = {}): Promise<Readable> {
    const res = await this.transport.request<Readable>({
      method: 'GET',
      path: `jobs/${encodeURIComponent(id)}/archive`,
      responseType: 'stream',
      acceptEncoding: 'identity',
      signal: options.signal,
      ...(options.onProgress ? { onDownloadProgress: options.onProgress } : {}),
    });
    return res.data;
  }

  /**
   * One page of the change feed (`GET /changes?since=&limit=`).
   * @param since - sequence number to start after
   * @param limit - page size
   * @param signal - cancels
   */
  async getChanges(since = 0, limit = 100, signal?: AbortSignal): Promise<ChangesPage> {
    return this.get('changes', changesPageSchema, { signal, query: { since, limit } });
  }

  /**
   * The sequence number of the newest change (`GET /changes?last`): start a watcher here to see only new changes.
   * @param signal - cancels
   */
  async getLastChangeSeq(signal?: AbortSignal): Promise<number> {
    const page = await this.get('changes', changesPageSchema, { signal, query: { last: '' } });
    return page.Last;
  }

  /**
   * The change feed as an async iterator. Each change carries `Seq`: save it after processing, and pass it as
   * `since` to resume after a restart without missing or repeating a change.
   * @param options - where to start, paging, whether to follow, poll interval, signal
   * @returns the changes in order; returns when `signal` aborts (or at the end, with `follow: false`)
   */
  async *changes(options: ChangesOptions = {}): AsyncGenerator<OrthancChange> {
    let since = options.since ?? 0;
    const limit = options.limit ?? 100;
    const follow = options.follow ?? true;
    const signal = options.signal;
    while (!signal?.aborted) {
      let page: ChangesPage;
      try {
        page = await this.getChanges(since, limit, signal);
      } catch (error) {
        if (signal?.aborted) return;
        throw error;
      }
      for (const change of page.Changes) {
        if (change.Seq <= since) continue;
        yield change;
        since = change.Seq;
        if (signal?.aborted) return;
      }
      // `Last` can move past the returned changes (filtered entries); never go backwards.
      since = Math.max(since, page.Last);
      if (page.Done) {
        if (!follow) return;
        try {
          await this.clock.sleep(options.pollIntervalMs ?? 1000, signal);
        } catch (error) {
          if (signal?.aborted) return;
          throw error;
        }
      }
    }
  }
}

/**
 * An Orthanc job ended in failure.
 * @category Errors
 */
export class JobFailedError extends CdssError {
  /** The failed job. */
  readonly job: OrthancJob;
  constructor(job: OrthancJob) {
    super(`Orthanc job ${job.ID} (${job.Type}) failed: ${job.ErrorDescription ?? `error ${job.ErrorCode ?? '?'}`}`, {
      code: 'ORTHANC_JOB_FAILED',
    });
    this.job = job;
  }
}

/** A Buffer/ArrayBuffer answer as a Uint8Array view. */
export function toUint8(data: Buffer | ArrayBuffer | Uint8Array): Uint8Array {
  if (data instanceof Uint8Array) return data;
  return new Uint8Array(data);
}
