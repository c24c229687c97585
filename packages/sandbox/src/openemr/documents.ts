/**
 * Patient documents as a real OpenEMR 8.0.0 answers them (recorded-8.0.0 files 61–65): uploads to
 * `/api/patient/{pid}/document?path=/Categories/<Category>` as multipart with one file field `document`;
 * the category is the path's last segment matched against category names lowercased without spaces (with
 * `_` removed from the segment); only PDF, images, text, zip and DICOM are accepted (by content); a stored
 * upload answers **500** (8.x); an unknown category, a refused type or an empty file answers 404 with no
 * body; a category lists as a bare array (404 with no body when empty); the download answers 403.
 */
import { createHash } from 'node:crypto';
import {
  isKernel8,
  json,
  kernelError,
  makeUuid,
  mysqlDate,
  mysqlDateTime,
  type EmulatorRequest,
  type EmulatorResponse,
  type EngineContext,
  type RouteInput,
} from './context.js';
import type { CategoryRow } from './types.js';

/** The document categories of a fresh OpenEMR (table `categories`, recorded-8.0.0 file 61's note). */
export const DEFAULT_CATEGORIES: readonly CategoryRow[] = [
  { id: '1', name: 'Categories', parent: '0' },
  { id: '2', name: 'Lab Report', parent: '1' },
  { id: '3', name: 'Medical Record', parent: '1' },
  { id: '4', name: 'Patient Information', parent: '1' },
  { id: '6', name: 'Advance Directive', parent: '1' },
];

/** One multipart part. */
interface Part {
  name: string;
  filename: string | undefined;
  content: Buffer;
}

/** Parses a `multipart/form-data` body (RFC 7578). */
function multipart(req: EmulatorRequest): Part[] {
  const type = req.headers['content-type'] ?? '';
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(type);
  const body =
    req.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
  if (!type.toLowerCase().startsWith('multipart/form-data') || !boundary) return [];
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2] ?? ''}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    const chunk = body.subarray(start + 2, next - 2); // after CRLF, before CRLF
    const split = chunk.indexOf('\r\n\r\n');
    if (split >= 0) {
      const head = chunk.subarray(0, split).toString('utf8');
      const name = /name="([^"]*)"/i.exec(head)?.[1];
      const filename = /filename="([^"]*)"/i.exec(head)?.[1];
      if (name !== undefined) parts.push({ name, filename, content: chunk.subarray(split + 4) });
    }
    at = next;
  }
  return parts;
}

/** The media type of content, as PHP's `mime_content_type` finds it (by magic bytes, not by name). */
function sniff(content: Buffer): string {
  if (content.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  if (content.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (content[0] === 0xff && content[1] === 0xd8 && content[2] === 0xff) return 'image/jpeg';
  if (/^GIF8[79]a/.test(content.subarray(0, 6).toString('latin1'))) return 'image/gif';
  if (content.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return 'application/zip';
  if (content.length > 132 && content.subarray(128, 132).toString('latin1') === 'DICM') return 'application/dicom';
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x08\x0e-\x1f]/.test(content.subarray(0, 4096).toString('latin1'))) return 'text/plain';
  return 'application/octet-stream';
}

/** OpenEMR's `files_white_list`. */
const ACCEPTED = new Set([
  'application/pdf',
  'image/gif',
  'image/jpeg',
  'image/png',
  'text/plain',
  'application/zip',
  'application/dicom',
  'application/dicom+zip',
]);

/** The document routes. */
export class DocumentsApi {
  constructor(private readonly ctx: EngineContext) {}

  private get t() {
    return this.ctx.store.tables;
  }

  /** A 404 with no body (responseHandler(false) and responseHandler([]), recorded files 62 and 64). */
  private nothing(): EmulatorResponse {
    return { status: 404, headers: { 'content-type': 'text/html; charset=utf-8' } };
  }

  /**
   * The category a `path` names (`DocumentService::isValidPath`): segments after the first are looked up in
   * turn, each a child of the previous, and the last one is used. `undefined` when any is unknown.
   */
  category(path: string): CategoryRow | undefined {
    const categories = this.t.categories.length > 0 ? this.t.categories : DEFAULT_CATEGORIES;
    const key = (s: string): string => s.replace(/_/g, '').toLowerCase();
    const segments = path.split('/').filter(Boolean).slice(1);
    if (path.split('/').filter(Boolean).length === 1) segments.push(path.split('/').filter(Boolean)[0] ?? '');
    let found: CategoryRow | undefined;
    for (const segment of segments) {
      const wanted = key(segment);
      const next = categories.find(
        (c) => c.name.replace(/ /g, '').toLowerCase() === wanted && (found === undefined || c.parent === found.id),
      );
      if (!next) return undefined;
      found = next;
    }
    return found;
  }

  /** `POST /api/patient/{pid}/document?path=…`: stores the file; 8.x answers 500 although stored (file 61). */
  upload({ req, params, query }: RouteInput): EmulatorResponse {
    const category = this.category(query.get('path') ?? '');
    const patient = this.t.patients.find((p) => p.pid === params['pid']);
    const file = multipart(req).find((p) => p.name === 'document');
    if (!category || !patient || !file || file.content.length === 0) return this.nothing();
    const mimetype = sniff(file.content);
    if (!ACCEPTED.has(mimetype)) return this.nothing();
    const now = this.ctx.now();
    this.t.documents.push({
      id: String(this.ctx.store.nextId('documents.id')),
      uuid: makeUuid(),
      pid: patient.pid,
      category_id: category.id,
      name: file.filename ?? 'document',
      mimetype,
      size: file.content.length,
      hash: createHash('sha3-512').update(file.content).digest('hex'),
      docdate: mysqlDate(now),
      date: mysqlDateTime(now),
      content: file.content.toString('base64'),
    });
    this.ctx.store.touch('documents');
    if (!isKernel8(this.ctx.version)) return json(200, true);
    return kernelError(
      this.ctx.version,
      500,
      'RestControllerHelper::getResponseForPayload() expects a string, array, numeric, or JsonSerializable object, bool given.',
    );
  }

  /** `GET /api/patient/{pid}/document?path=…`: a bare array, or 404 with no body when none (files 63, 64). */
  list({ params, query }: RouteInput): EmulatorResponse {
    const category = this.category(query.get('path') ?? '');
    if (!category) return this.nothing();
    const rows = this.t.documents
      .filter((d) => d.pid === params['pid'] && d.category_id === category.id)
      .map((d) => ({ filename: d.name, hash: d.hash, id: Number(d.id), mimetype: d.mimetype, docdate: d.docdate }));
    return rows.length === 0 ? this.nothing() : json(200, rows);
  }

  /**
   * `GET /api/patient/{pid}/document/{did}`: 403 even for an administrator, because the legacy session the
   * bearer-token API never fills has no user (file 65).
   */
  download(): EmulatorResponse {
    return {
      status: 403,
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=0, private, must-revalidate' },
      body: 'Not authorized to view requested file',
    };
  }
}
