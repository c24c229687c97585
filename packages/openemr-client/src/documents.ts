/**
 * Patient documents (`/api/patient/{pid}/document?path=/Categories/<Category>`), as a real OpenEMR 8.0.0
 * answers them (recorded-8.0.0 files 61–67): the upload is multipart with one file field named `document`;
 * a **stored upload answers 500**, an unknown category (or a refused file type, or an empty file) answers
 * 404 with no body; a category lists as a bare array (an empty one answers 404 too); the standard-API
 * download answers 403 even for an administrator, so files are read through FHIR `Binary`, found through
 * `DocumentReference?patient=`. No endpoint lists categories: the category is configuration.
 *
 * An upload is idempotent: the client lists the category first and does not upload a file whose SHA3-512
 * (OpenEMR's own `hash`) is already there, and after an unknown outcome it lists again instead of re-sending,
 * so an outbox may retry `upload` freely.
 * @packageDocumentation
 */
import { createHash, randomBytes } from 'node:crypto';
import { CdssError, HttpError, ValidationError } from '@cdss/core';
import type { DocumentReference } from 'fhir/r4.js';
import { z } from 'zod';
import { confirmedWrite, id, parseInput, type Ctx, type ReadOptions } from './shared.js';
import type { FhirNamespace } from './fhir.js';
import { NOT_FOUND } from './http.js';
import {
  documentCategorySchema,
  documentSchema,
  documentUploadSchema,
  type DocumentInfo,
  type DocumentUploadInput,
} from './schemas.js';

/** The result of an upload. */
export interface DocumentUploaded extends DocumentInfo {
  /** False when the same file was already in the category (nothing was uploaded). */
  created: boolean;
  /** The category it is in. */
  category: string;
}

/** A document's content, read through FHIR `Binary`. */
export interface DocumentContent {
  /** The file's bytes. */
  content: Buffer;
  /** Its media type, e.g. `application/pdf`. */
  contentType: string;
  /** The file name OpenEMR stored, when it says. */
  filename: string | undefined;
}

/** SHA3-512, hex: the `hash` OpenEMR lists for each document (recorded-8.0.0 file 63). */
export function documentHash(content: Uint8Array): string {
  return createHash('sha3-512').update(content).digest('hex');
}

/** A multipart/form-data body with one file field (what a browser's FormData sends). */
function multipart(
  field: string,
  filename: string,
  contentType: string,
  content: Uint8Array,
): {
  body: Buffer;
  contentType: string;
} {
  const boundary = `----cdss${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\n` +
      `Content-Type: ${contentType}\r\n\r\n`,
    'utf8',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
  return {
    body: Buffer.concat([head, Buffer.from(content.buffer, content.byteOffset, content.byteLength), tail]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** `client.documents`: patient documents. */
export class DocumentsNamespace {
  constructor(
    private readonly ctx: Ctx,
    private readonly fhir: FhirNamespace,
  ) {}

  private path(pid: number | string): string {
    return `api/patient/${id(pid, 'pid')}/document`;
  }

  private category(category: string | undefined): string {
    return parseInput(documentCategorySchema, category ?? this.ctx.documentCategory, 'document category');
  }

  /**
   * The documents of a patient in one category; `[]` when there are none (OpenEMR answers 404 with no body
   * for an empty category, the same as for an unknown one).
   * @param pid - the patient's numeric pid
   * @param category - e.g. `Lab_Report`; default the client option `documentCategory`
   */
  async list(pid: number | string, category?: string, options: ReadOptions = {}): Promise<DocumentInfo[]> {
    const data = await this.ctx.api.raw(
      {
        method: 'GET',
        path: this.path(pid),
        query: { path: `/Categories/${this.category(category)}` },
        signal: options.signal,
      },
      z.array(documentSchema),
      'document list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * Puts a file in a patient's chart, once. The category is listed first: when a file with the same content
   * and name is there, nothing is uploaded. OpenEMR 8.0.0 answers a stored upload with 500, so after any
   * unknown outcome the client lists again and finds the new document before it ever re-sends.
   * @param input - `pid`, `content`, `filename`, `contentType` (PDF, images, text, zip, DICOM) and `category`
   * @returns the stored document (`created: false` when it was already there)
   * @throws {@link ValidationError} for bad input, or when OpenEMR refuses the category (404: unknown category)
   * @throws the `TimeoutError`/`HttpError`, or {@link OpenEmrUnknownOutcomeError}, when OpenEMR failed and the
   *   listing cannot say whether it stored it (never re-sent; {@link isUnknownOutcome} tells)
   */
  async upload(input: DocumentUploadInput, options: ReadOptions = {}): Promise<DocumentUploaded> {
    const file = parseInput(documentUploadSchema, input, 'document');
    const category = this.category(file.category);
    const hash = documentHash(file.content);
    const find = (rows: DocumentInfo[], except: ReadonlySet<number>): DocumentInfo | undefined =>
      rows.find((d) => d.hash?.toLowerCase() === hash && d.filename === file.filename && !except.has(d.id));
    const before = await this.list(file.pid, category, options);
    const existing = find(before, new Set());
    if (existing) return { ...existing, created: false, category };
    const known = new Set(before.map((d) => d.id));
    const { body, contentType } = multipart('document', file.filename, file.contentType, file.content);
    const found = await confirmedWrite(
      'document upload',
      async () => {
        const res = await this.ctx.api.send({
          method: 'POST',
          path: this.path(file.pid),
          query: { path: `/Categories/${category}` },
          body,
          headers: { 'content-type': contentType },
          signal: options.signal,
        });
        if (res.status === 404) {
          throw new ValidationError('OpenEMR refused the document', [
            { path: 'category', message: `no category ${category} (or the file type was refused)`, code: 'not_found' },
          ]);
        }
        if (res.status >= 300) {
          // 8.0.0 answers 500 after storing (file 61): the caller's read-back decides.
          throw new HttpError({
            method: 'POST',
            url: res.url,
            status: res.status,
            responseBody: res.data ?? res.text,
            message: `OpenEMR answered ${res.status} to the document upload`,
            retryable: false,
          });
        }
        const stored = find(await this.list(file.pid, category, options), known);
        if (!stored)
          throw new CdssError('OpenEMR accepted the document but does not list it', { code: 'UNEXPECTED_RESPONSE' });
        return stored;
      },
      async () => find(await this.list(file.pid, category, options), known),
    );
    return { ...found, created: true, category };
  }

  /**
   * A patient's documents as FHIR `DocumentReference`s (each names its `Binary` in `content[0].attachment.url`
   * and its category in `category[0].text`).
   * @param puuid - the patient's uuid
   */
  async references(puuid: string, options: ReadOptions = {}): Promise<DocumentReference[]> {
    const out: DocumentReference[] = [];
    for await (const r of this.fhir.searchAll('DocumentReference', { patient: puuid }, options)) out.push(r);
    return out;
  }

  /**
   * A document's content, through FHIR `Binary/{uuid}` (the standard-API download answers 403, recorded).
   * @param documentUuid - the document's uuid (the `DocumentReference` id)
   * @returns the bytes and type, or `undefined` when there is no such document
   */
  read(documentUuid: string, options: ReadOptions = {}): Promise<DocumentContent | undefined> {
    return this.fhir.binary(documentUuid, options);
  }
}
