/**
 * DICOMweb client (PS3.18): QIDO-RS search, WADO-RS retrieve (metadata, frames, whole series streamed as
 * multipart), STOW-RS store. Method names follow PS3.18's transaction names.
 * @packageDocumentation
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { CdssError, type HttpTransport, type TransferProgress } from '@cdss/core';
import {
  buildMultipart,
  multipartBoundary,
  MultipartError,
  MultipartReader,
  parseMultipartPieces,
  type MultipartPartSink,
  type MultipartPieces,
} from './multipart.js';
import { dicomItems, dicomString } from './dicom-json.js';
import { dicomJsonArraySchema, stowResponseSchema, type DicomJsonDataset } from './schemas.js';

/** QIDO-RS query parameters (PS3.18 8.3.4): attribute keyword or tag → value, plus paging and includefield. */
export interface QidoQuery {
  /** Matching attributes, e.g. `{ PatientID: 'P1', Modality: 'MR' }`; `*` wildcards allowed where the server supports them. */
  match?: Record<string, string>;
  /** Extra attributes to return (`all` for everything the server has). */
  includefield?: readonly string[] | 'all';
  /** Maximum results. */
  limit?: number;
  /** Results to skip. */
  offset?: number;
  /** Fuzzy person-name matching. */
  fuzzymatching?: boolean;
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** Options of WADO-RS retrieves. */
export interface RetrieveOptions {
  /** Cancels the call (an in-progress stream is destroyed). */
  signal?: AbortSignal;
  /** Download progress. */
  onProgress?: (progress: TransferProgress) => void;
}

/**
 * STOW-RS stored none or only part of the instances (PS3.18 10.5.3): `failed` lists SOP Instance UIDs with
 * their failure reasons.
 * @category Errors
 */
export class StowError extends CdssError {
  /** SOP Instance UIDs stored. */
  readonly stored: readonly string[];
  /** SOP Instance UIDs that failed, with the reason code (PS3.18 Table 10.5.3-1). */
  readonly failed: ReadonlyArray<{ sopInstanceUid: string; reason: string }>;
  constructor(stored: readonly string[], failed: ReadonlyArray<{ sopInstanceUid: string; reason: string }>) {
    super(`STOW-RS failed for ${failed.length} of ${stored.length + failed.length} instance(s)`, {
      code: 'STOW_FAILED',
    });
    this.stored = stored;
    this.failed = failed;
  }
}

/** Result of {@link DicomWebClient.storeInstances}. */
export interface StoreResult {
  /** SOP Instance UIDs the server stored. */
  stored: string[];
  /** The raw STOW-RS answers (one per request batch). */
  responses: DicomJsonDataset[];
}

const MAX_STOW_BATCH_BYTES = 64 * 1024 * 1024;

function join(part: { pieces: readonly Buffer[]; length: number }): Buffer {
  return part.pieces.length === 1 ? (part.pieces[0] as Buffer) : Buffer.concat(part.pieces, part.length);
}

/**
 * DICOMweb on one server. Built by {@link OrthancClient}; usable alone with any transport whose base URL is
 * the server root.
 */
export class DicomWebClient {
  private readonly root: string;

  /**
   * @param transport - HTTP transport with the server's base URL
   * @param options - `root`: path of the DICOMweb root (e.g. `dicom-web`)
   */
  constructor(
    private readonly transport: HttpTransport,
    options: { root: string },
  ) {
    this.root = options.root.replace(/^\/+|\/+$/g, '');
  }

  private path(...segments: string[]): string {
    return [this.root, ...segments.map((s) => encodeURIComponent(s))].join('/');
  }

  private async qido(path: string, q: QidoQuery): Promise<DicomJsonDataset[]> {
    const query: Record<string, string | number | boolean | string[]> = { ...(q.match ?? {}) };
    if (q.includefield !== undefined) query['includefield'] = q.includefield === 'all' ? 'all' : [...q.includefield];
    if (q.limit !== undefined) query['limit'] = q.limit;
    if (q.offset !== undefined) query['offset'] = q.offset;
    if (q.fuzzymatching !== undefined) query['fuzzymatching'] = q.fuzzymatching;
    const res = await this.transport.request({
      method: 'GET',
      path,
      query,
      headers: { accept: 'application/dicom+json' },
      schema: z.union([dicomJsonArraySchema, z.literal('').transform(() => [])]),
      // 204 No Content means no match.
      acceptStatus: (s) => s === 204,
      responseType: 'json',
      signal: q.signal,
    });
    return res.status === 204 ? [] : res.data;
  }

  /**
   * QIDO-RS Search for Studies (`GET {root}/studies`).
   * @param query - matching attributes, includefield, paging
   * @returns study-level datasets
   */
  async searchForStudies(query: QidoQuery = {}): Promise<DicomJsonDataset[]> {
    return this.qido(this.path('studies'), query);
  }

  /**
   * QIDO-RS Search for Series, in a study or across all studies.
   * @param studyInstanceUid - the study, or undefined for all
   * @param query - matching attributes, includefield, paging
   */
  async searchForSeries(studyInstanceUid?: string, query: QidoQuery = {}): Promise<DicomJsonDataset[]> {
    return this.qido(studyInstanceUid ? this.path('studies', studyInstanceUid, 'series') : this.path('series'), query);
  }

  /**
   * QIDO-RS Search for Instances of a series (or a study, or everything).
   * @param studyInstanceUid - the study, or undefined
   * @param seriesInstanceUid - the series, or undefined
   * @param query - matching attributes, includefield, paging
   */
  async searchForInstances(
    studyInstanceUid?: string,
    seriesInstanceUid?: string,
    query: QidoQuery = {},
  ): Promise<DicomJsonDataset[]> {
    const p =
      studyInstanceUid && seriesInstanceUid
        ? this.path('studies', studyInstanceUid, 'series', seriesInstanceUid, 'instances')
        : studyInstanceUid
          ? this.path('studies', studyInstanceUid, 'instances')
          : this.path('instances');
    return this.qido(p, query);
  }

  private async metadata(path: string, signal?: AbortSignal): Promise<DicomJsonDataset[]> {
    const res = await this.transport.request({
      method: 'GET',
      path,
      headers: { accept: 'application/dicom+json' },
      acceptEncoding: 'identity',
      schema: dicomJsonArraySchema,
      signal,
    });
    return res.data;
  }

  /**
   * WADO-RS Retrieve Study Metadata: one dataset per instance, bulk data as BulkDataURI.
   * @param studyInstanceUid - the study
   * @param options - signal
   */
  async retrieveStudyMetadata(
    studyInstanceUid: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<DicomJsonDataset[]> {
    return this.metadata(`${this.path('studies', studyInstanceUid)}/metadata`, options.signal);
  }

  /**
   * WADO-RS Retrieve Series Metadata.
   * @param studyInstanceUid - the study
   * @param seriesInstanceUid - the series
   * @param options - signal
   */
  async retrieveSeriesMetadata(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<DicomJsonDataset[]> {
    return this.metadata(
      `${this.path('studies', studyInstanceUid, 'series', seriesInstanceUid)}/metadata`,
      options.signal,
    );
  }

  /**
   * WADO-RS Retrieve Instance Metadata.
   * @param studyInstanceUid - the study
   * @param seriesInstanceUid - the series
   * @param sopInstanceUid - the instance
   * @param options - signal
   */
  async retrieveInstanceMetadata(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    sopInstanceUid: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<DicomJsonDataset> {
    const all = await this.metadata(
      `${this.path('studies', studyInstanceUid, 'series', seriesInstanceUid, 'instances', sopInstanceUid)}/metadata`,
      options.signal,
    );
    const first = all[0];
    if (!first) throw new CdssError(`no metadata for instance ${sopInstanceUid}`, { code: 'NOT_FOUND' });
    return first;
  }

  private async multipart(
    path: string,
    accept: string,
    options: RetrieveOptions,
  ): Promise<{ parts: AsyncGenerator<MultipartPieces>; stream: Readable }> {
    const res = await this.transport.request<Readable>({
      method: 'GET',
      path,
      responseType: 'stream',
      acceptEncoding: 'identity',
      headers: { accept },
      signal: options.signal,
      ...(options.onProgress ? { onDownloadProgress: options.onProgress } : {}),
    });
    const stream = res.data;
    let boundary: string;
    try {
      boundary = multipartBoundary(res.headers['content-type']);
    } catch (error) {
      stream.destroy();
      throw error;
    }
    return { parts: parseMultipartPieces(stream, boundary), stream };
  }

  /**
   * WADO-RS Retrieve Frames: the raw pixel data of frames of an instance (1-based frame numbers).
   * @param studyInstanceUid - the study
   * @param seriesInstanceUid - the series
   * @param sopInstanceUid - the instance
   * @param frames - frame numbers, 1-based
   * @param options - signal, progress
   * @returns one buffer per frame, in the order asked
   */
  async retrieveInstanceFrames(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    sopInstanceUid: string,
    frames: readonly number[],
    options: RetrieveOptions = {},
  ): Promise<Uint8Array[]> {
    if (frames.length === 0 || frames.some((f) => !Number.isInteger(f) || f < 1))
      throw new CdssError('frame numbers must be integers ≥ 1', { code: 'INVALID_ARGUMENT' });
    const { parts } = await this.multipart(
      `${this.path('studies', studyInstanceUid, 'series', seriesInstanceUid, 'instances', sopInstanceUid, 'frames')}/${frames.join(',')}`,
      'multipart/related; type="application/octet-stream"; transfer-syntax=*',
      options,
    );
    const out: Uint8Array[] = [];
    for await (const part of parts) out.push(join(part));
    if (out.length !== frames.length)
      throw new CdssError(`asked for ${frames.length} frame(s), got ${out.length}`, { code: 'WADO_FRAMES_MISMATCH' });
    return out;
  }

  /**
   * WADO-RS Retrieve Series: the series' Part-10 instances, streamed. Each instance is yielded as soon as it has
   * arrived, so memory holds one instance at a time (plus what the caller keeps).
   * @param studyInstanceUid - the study
   * @param seriesInstanceUid - the series
   * @param options - signal, progress
   * @returns an async iterator of Part-10 files
   */
  async *retrieveSeries(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    options: RetrieveOptions = {},
  ): AsyncGenerator<Uint8Array> {
    yield* this.instancesOf(this.path('studies', studyInstanceUid, 'series', seriesInstanceUid), options);
  }

  /**
   * WADO-RS Retrieve Study, streamed like {@link DicomWebClient.retrieveSeries}.
   * @param studyInstanceUid - the study
   * @param options - signal, progress
   */
  async *retrieveStudy(studyInstanceUid: string, options: RetrieveOptions = {}): AsyncGenerator<Uint8Array> {
    yield* this.instancesOf(this.path('studies', studyInstanceUid), options);
  }

  /**
   * WADO-RS Retrieve Instance: one Part-10 file.
   * @param studyInstanceUid - the study
   * @param seriesInstanceUid - the series
   * @param sopInstanceUid - the instance
   * @param options - signal, progress
   */
  async retrieveInstance(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    sopInstanceUid: string,
    options: RetrieveOptions = {},
  ): Promise<Uint8Array> {
    for await (const file of this.instancesOf(
      this.path('studies', studyInstanceUid, 'series', seriesInstanceUid, 'instances', sopInstanceUid),
      options,
    ))
      return file;
    throw new CdssError(`instance ${sopInstanceUid} came back empty`, { code: 'NOT_FOUND' });
  }

  private async *instancesOf(path: string, options: RetrieveOptions): AsyncGenerator<Uint8Array> {
    for await (const pieces of this.piecesOf(path, options)) {
      yield join({ pieces, length: pieces.reduce((n, p) => n + p.length, 0) });
    }
  }

  private async *piecesOf(path: string, options: RetrieveOptions): AsyncGenerator<readonly Buffer[]> {
    const { parts, stream } = await this.multipart(
      path,
      'multipart/related; type="application/dicom"; transfer-syntax=*',
      options,
    );
    try {
      for await (const part of parts) yield part.pieces;
    } finally {
      stream.destroy();
    }
  }

  /**
   * WADO-RS Retrieve Series, pushing each Part-10 instance's bytes into a sink as they arrive: the fastest way
   * to consume a series. The response is read with the transport's `chunks` mode (its own socket and one reused
   * read buffer, see `RequestOptions.onChunk` in `@cdss/core`) and split by a {@link MultipartReader}, so no
   * memory is allocated per network read and no instance is held whole unless the sink keeps it.
   * @param studyInstanceUid - the study
   * @param seriesInstanceUid - the series
   * @param onInstance - called for each instance with its part headers and declared length; returns the sink
   *   that receives its bytes (views valid only during each `write`: copy what you keep)
   * @param options - signal, progress
   * @throws {@link MultipartError} for a malformed or truncated response; whatever a sink throws
   */
  async retrieveSeriesInto(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    onInstance: (headers: Record<string, string>, length: number | undefined) => MultipartPartSink,
    options: RetrieveOptions = {},
  ): Promise<void> {
    let reader: MultipartReader | undefined;
    let total: number | undefined;
    let loaded = 0;
    const onProgress = options.onProgress;
    await this.transport.request({
      method: 'GET',
      path: this.path('studies', studyInstanceUid, 'series', seriesInstanceUid),
      responseType: 'chunks',
      acceptEncoding: 'identity',
      headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      signal: options.signal,
      onHeaders: (headers) => {
        reader = new MultipartReader(multipartBoundary(headers['content-type']), onInstance);
        const length = Number(headers['content-length']);
        total = Number.isFinite(length) ? length : undefined;
      },
      onChunk: (chunk) => {
        (reader as MultipartReader).write(chunk);
        loaded += chunk.length;
        onProgress?.({ loaded, total, progress: total ? loaded / total : undefined, bytes: chunk.length });
      },
    });
    if (!reader) throw new MultipartError('WADO-RS response had no body');
    reader.end();
  }

  /**
   * STOW-RS Store Instances (`POST {root}/studies[/{study}]`), in batches of at most 64 MB.
   * @param files - Part-10 files
   * @param options - the target study (instances of other studies are then refused), signal, progress
   * @returns the stored SOP Instance UIDs
   * @throws {@link StowError} when any instance failed (with the ones stored and the ones failed)
   */
  async storeInstances(
    files: readonly Uint8Array[],
    options: {
      studyInstanceUid?: string;
      signal?: AbortSignal;
      onProgress?: (progress: TransferProgress) => void;
    } = {},
  ): Promise<StoreResult> {
    const batches: Uint8Array[][] = [];
    let current: Uint8Array[] = [];
    let size = 0;
    for (const f of files) {
      if (current.length > 0 && size + f.length > MAX_STOW_BATCH_BYTES) {
        batches.push(current);
        current = [];
        size = 0;
      }
      current.push(f);
      size += f.length;
    }
    if (current.length > 0) batches.push(current);
    const stored: string[] = [];
    const failed: Array<{ sopInstanceUid: string; reason: string }> = [];
    const responses: DicomJsonDataset[] = [];
    for (const batch of batches) {
      const body = buildMultipart(
        batch.map((b) => ({ contentType: 'application/dicom', body: b })),
        'application/dicom',
      );
      const res = await this.transport.request({
        method: 'POST',
        path: options.studyInstanceUid ? this.path('studies', options.studyInstanceUid) : this.path('studies'),
        body: Buffer.concat(body.chunks, body.length),
        headers: { 'content-type': body.contentType, accept: 'application/dicom+json' },
        schema: stowResponseSchema,
        // 202: some stored, some failed (PS3.18 10.5.3.2); 409: none stored. Both carry the answer dataset.
        acceptStatus: (s) => s === 202 || s === 409,
        signal: options.signal,
        ...(options.onProgress ? { onUploadProgress: options.onProgress } : {}),
      });
      responses.push(res.data);
      for (const item of dicomItems(res.data, 'ReferencedSOPSequence')) {
        const uid = dicomString(item, 'ReferencedSOPInstanceUID');
        if (uid) stored.push(uid);
      }
      for (const item of dicomItems(res.data, 'FailedSOPSequence')) {
        failed.push({
          sopInstanceUid: dicomString(item, 'ReferencedSOPInstanceUID') ?? '',
          reason: dicomString(item, 'FailureReason') ?? '',
        });
      }
    }
    if (failed.length > 0) throw new StowError(stored, failed);
    return { stored, responses };
  }
}
