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

/** A FIFO of received chunks, read without copying where a read falls inside one chunk. */
class ChunkQueue {
  private chunks: Buffer[] = [];
  /** Bytes queued. */
  length = 0;
  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }
  /** The first `n` bytes as one buffer (a view when they lie in the first chunk). */
  peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) return first.subarray(0, n);
    // Join only the chunks that cover the first n bytes (header-sized windows, not whole bodies).
    let covered = 0;
    let count = 0;
    while (covered < n && count < this.chunks.length) covered += (this.chunks[count++] as Buffer).length;
    const merged = Buffer.concat(this.chunks.slice(0, count), covered);
    this.chunks.splice(0, count, merged);
    return merged.subarray(0, n);
  }
  /** Views of the `n` bytes at `offset` (which must be queued). */
  peekPieces(offset: number, n: number): Buffer[] {
    const out: Buffer[] = [];
    for (const c of this.chunks) {
      if (n <= 0) break;
      if (offset >= c.length) {
        offset -= c.length;
        continue;
      }
      const k = Math.min(c.length - offset, n);
      out.push(c.subarray(offset, offset + k));
      n -= k;
      offset = 0;
    }
    return out;
  }
  /** Removes and returns the first `n` bytes (one copy at most). */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      this.skip(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, k);
      filled += k;
      this.skip(k);
    }
    return out;
  }
  /** Removes the first `n` bytes and returns them as views into the received chunks (no copy). */
  takePieces(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, left);
      out.push(c.subarray(0, k));
      this.skip(k);
      left -= k;
    }
    return out;
  }
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0] as Buffer;
      if (c.length <= n) {
        n -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}

/**
 * Parses a multipart body as it streams in, yielding each part as soon as it is complete.
 * When a part declares Content-Length (Orthanc and most DICOMweb servers do), its body is taken by length
 * with at most one copy and no scan for the boundary; otherwise the boundary is searched.
 * @param chunks - the body (e.g. a response stream)
 * @param boundary - from {@link multipartBoundary}
 * @returns the parts in order
 * @throws {@link MultipartError} for a malformed or truncated body
 */
export async function* parseMultipart(
  chunks: AsyncIterable<Buffer | Uint8Array | string>,
  boundary: string,
): AsyncGenerator<MultipartPart> {
  for await (const part of parseMultipartPieces(chunks, boundary)) {
    yield {
      headers: part.headers,
      body: part.pieces.length === 1 ? (part.pieces[0] as Buffer) : Buffer.concat(part.pieces, part.length),
    };
  }
}

/** One part as views into the received chunks (see {@link parseMultipartPieces}). */
export interface MultipartPieces {
  /** Part headers, names lower-cased. */
  headers: Record<string, string>;
  /** The body, in order, as views into the received chunks (not copied). */
  pieces: Buffer[];
  /** Body length in bytes. */
  length: number;
}

/**
 * Like {@link parseMultipart}, but a body is given as views into the received chunks instead of one joined
 * buffer, so a consumer that copies the bytes to their destination anyway (volume building) copies them once.
 * @param chunks - the body
 * @param boundary - from {@link multipartBoundary}
 * @returns the parts in order
 * @throws {@link MultipartError} for a malformed or truncated body
 */
export async function* parseMultipartPieces(
  chunks: AsyncIterable<Buffer | Uint8Array | string>,
  boundary: string,
): AsyncGenerator<MultipartPieces> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const q = new ChunkQueue();
  // Treat the body as if it started with CRLF, so the first delimiter looks like every other one.
  q.push(Buffer.from(CRLF));
  const iterator = chunks[Symbol.asyncIterator]();
  let ended = false;
  const pull = async (): Promise<boolean> => {
    if (ended) return false;
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      return false;
    }
    const v = next.value;
    q.push(
      typeof v === 'string'
        ? Buffer.from(v, 'latin1')
        : Buffer.isBuffer(v)
          ? v
          : Buffer.from(v.buffer, v.byteOffset, v.byteLength),
    );
    return true;
  };
  const need = async (n: number): Promise<boolean> => {
    while (q.length < n) if (!(await pull())) return false;
    return true;
  };
  /** Position of `needle` from the queue's start, pulling as needed; -1 when the stream ends (or past `limit`). */
  const find = async (needle: Buffer, from: number, limit = Infinity): Promise<number> => {
    let searched = from;
    for (;;) {
      const view = q.peek(Math.min(q.length, limit === Infinity ? q.length : limit + needle.length));
      const at = view.indexOf(needle, searched);
      if (at >= 0) return at;
      searched = Math.max(from, view.length - needle.length + 1);
      if (view.length > limit) return -1;
      if (!(await pull())) return -1;
    }
  };

  // Preamble: skip to the first delimiter.
  const at = await find(delimiter, 0);
  if (at < 0) throw new MultipartError(`no boundary "--${boundary}" in the multipart body`);
  q.skip(at + delimiter.length);
  try {
    for (;;) {
      if (!(await need(2))) throw new MultipartError('multipart body ended after a boundary');
      const two = q.peek(2);
      if (two[0] === 0x2d && two[1] === 0x2d) return; // close delimiter "--boundary--"
      // Skip transport padding up to the CRLF that ends the boundary line.
      const eol = await find(CRLF, 0, 1024);
      if (eol < 0) throw new MultipartError('malformed boundary line in the multipart body');
      q.skip(eol);
      // Now at "\r\n<headers>\r\n\r\n" or, with no headers, "\r\n\r\n".
      const headersEnd = await find(HEADER_END, 0, MAX_HEADER_BYTES);
      if (headersEnd < 0) throw new MultipartError('multipart part has no end of headers (truncated response?)');
      const headers = headersEnd === 0 ? {} : parseHeaders(q.peek(headersEnd).subarray(2).toString('latin1'));
      q.skip(headersEnd + 4);
      const declared = headers['content-length'];
      const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
      let pieces: Buffer[];
      let size: number;
      if (length !== undefined && (await need(length + delimiter.length)) && delimiterAt(q, length, delimiter)) {
        pieces = q.takePieces(length);
        size = length;
      } else {
        const end = await find(delimiter, 0);
        if (end < 0) throw new MultipartError('multipart body ended inside a part (truncated response)');
        pieces = q.takePieces(end);
        size = end;
      }
      q.skip(delimiter.length);
      yield { headers, pieces, length: size };
    }
  } finally {
    // Stop the source when the caller stops early (or on error): `return` on the iterator ends the stream.
    if (!ended) await iterator.return?.();
  }
}

/** Whether the queued bytes at `offset` are `delimiter`, without joining the chunks before it. */
function delimiterAt(q: ChunkQueue, offset: number, delimiter: Buffer): boolean {
  const pieces = q.peekPieces(offset, delimiter.length);
  let i = 0;
  for (const p of pieces) for (let j = 0; j < p.length; j++) if (p[j] !== delimiter[i++]) return false;
  return i === delimiter.length;
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
export function buildMultipart(
  parts: ReadonlyArray<{ contentType: string; body: Uint8Array }>,
  type: string,
  boundary = `cdss-${randomBytes(12).toString('hex')}`,
): { contentType: string; chunks: Buffer[]; length: number } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Type: ${p.contentType}\r\nContent-Length: ${p.body.length}\r\n\r\n`,
        'latin1',
      ),
    );
    chunks.push(Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength));
    chunks.push(CRLF);
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return {
    contentType: `multipart/related; type="${type}"; boundary=${boundary}`,
    chunks,
    length: chunks.reduce((s, c) => s + c.length, 0),
  };
}
