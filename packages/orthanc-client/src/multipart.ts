/**
 * multipart/related (RFC 2387, as DICOMweb uses it, PS3.18 8.6.1.2): a streaming parser that yields one part at
 * a time (memory is bounded by the largest part, not the whole response) and a builder for STOW-RS bodies.
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { CdssError } from '@cdss/core';

/** One part: lower-cased headers and the body bytes. */
export interface MultipartPart {
  /** Part headers, names lower-cased. */
  headers: Record<string, string>;
  /** The part's body. */
  body: Buffer;
}

/**
 * A multipart body could not be parsed (no boundary, a part without headers, a body that ends early).
 * @category Errors
 */
export class MultipartError extends CdssError {
  constructor(message: string) {
    super(message, { code: 'MULTIPART_ERROR' });
  }
}

/**
 * Reads the boundary parameter of a multipart Content-Type.
 * @param contentType - e.g. `multipart/related; type="application/dicom"; boundary=abc`
 * @returns the boundary
 * @throws {@link MultipartError} when the type is not multipart or has no boundary
 */
export function multipartBoundary(contentType: string | undefined): string {
  if (!contentType || !/^multipart\//i.test(contentType.trim())) {
    throw new MultipartError(`expected a multipart response, got Content-Type "${contentType ?? '(none)'}"`);
  }
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new MultipartError('multipart Content-Type has no boundary');
  return boundary;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Parses a multipart body as it streams in, yielding each part as soon as it is complete.
 * When a part declares Content-Length, its body is taken by length (no scanning of the bytes for the boundary).
 * @param chunks - the body (e.g. a response stream)
 * @param boundary - from {@link multipartBoundary}
 * @returns the parts in order
 * @throws {@link MultipartError} for a malformed or truncated body
 */
export async function* parseMultipart(chunks: AsyncIterable<Buffer | Uint8Array | string>, boundary: string): AsyncGenerator<MultipartPart> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // Treat the body as if it started with CRLF, so the first delimiter looks like every other one.
  let buf: Buffer = Buffer.from(CRLF);
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  const iterator = chunks[Symbol.asyncIterator]();
  let ended = false;
  const pull = async (): Promise<boolean> => {
    if (ended) return false;
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      return false;
    }
    const c = typeof next.value === 'string' ? Buffer.from(next.value, 'latin1') : Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    pending.push(c);
    pendingBytes += c.length;
    return true;
  };
  const flush = (): void => {
    if (pending.length === 0) return;
    buf = buf.length === 0 && pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat([buf, ...pending], buf.length + pendingBytes);
    pending.length = 0;
    pendingBytes = 0;
  };
  const available = (): number => buf.length + pendingBytes;
  /** Makes at least `n` bytes available in `buf`; false when the stream ended first. */
  const need = async (n: number): Promise<boolean> => {
    while (available() < n) if (!(await pull())) break;
    flush();
    return buf.length >= n;
  };
  /** Finds `needle` in the stream from `from`, pulling more as needed; -1 at the end of the stream. */
  const find = async (needle: Buffer, from: number, limit = Infinity): Promise<number> => {
    let searched = from;
    for (;;) {
      flush();
      const at = buf.indexOf(needle, searched);
      if (at >= 0) return at;
      searched = Math.max(from, buf.length - needle.length + 1);
      if (buf.length > limit) return -1;
      if (!(await pull())) return -1;
    }
  };

  // Preamble: skip to the first delimiter.
  let at = await find(delimiter, 0);
  if (at < 0) throw new MultipartError(`no boundary "--${boundary}" in the multipart body`);
  buf = buf.subarray(at + delimiter.length);
  for (;;) {
    if (!(await need(2))) throw new MultipartError('multipart body ended after a boundary');
    if (buf[0] === 0x2d && buf[1] === 0x2d) return; // close delimiter "--boundary--"
    // Skip transport padding up to the CRLF that ends the boundary line.
    const eol = await find(CRLF, 0, 1024);
    if (eol < 0) throw new MultipartError('malformed boundary line in the multipart body');
    const headersEnd = await find(HEADER_END, eol, MAX_HEADER_BYTES);
    let headers: Record<string, string> = {};
    let bodyStart: number;
    if (headersEnd >= 0 && buf.subarray(eol, eol + 2).equals(CRLF) && headersEnd === eol) {
      // No headers at all: the boundary line's CRLF is immediately followed by CRLF.
      bodyStart = eol + 4;
    } else if (headersEnd >= 0) {
      headers = parseHeaders(buf.subarray(eol + 2, headersEnd).toString('latin1'));
      bodyStart = headersEnd + 4;
    } else {
      throw new MultipartError('multipart part has no end of headers (truncated response?)');
    }
    const declared = headers['content-length'];
    const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
    let bodyEnd: number;
    if (length !== undefined && (await need(bodyStart + length + delimiter.length)) && buf.subarray(bodyStart + length, bodyStart + length + delimiter.length).equals(delimiter)) {
      bodyEnd = bodyStart + length;
    } else {
      bodyEnd = await find(delimiter, bodyStart);
      if (bodyEnd < 0) throw new MultipartError('multipart body ended inside a part (truncated response)');
    }
    yield { headers, body: buf.subarray(bodyStart, bodyEnd) };
    buf = buf.subarray(bodyEnd + delimiter.length);
  }
}

function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/**
 * Builds a multipart/related body.
 * @param parts - bodies with their content type
 * @param boundary - default a random one
 * @returns the body chunks and the Content-Type header to send
 */
export function buildMultipart(parts: ReadonlyArray<{ contentType: string; body: Uint8Array }>, type: string, boundary = `cdss-${randomBytes(12).toString('hex')}`): { contentType: string; chunks: Buffer[]; length: number } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.contentType}\r\nContent-Length: ${p.body.length}\r\n\r\n`, 'latin1'));
    chunks.push(Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength));
    chunks.push(CRLF);
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { contentType: `multipart/related; type="${type}"; boundary=${boundary}`, chunks, length: chunks.reduce((s, c) => s + c.length, 0) };
}
