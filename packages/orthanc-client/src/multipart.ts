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
const DASH_DASH = Buffer.from('--');
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_BOUNDARY_LINE_BYTES = 1024;

/** Receives one part's body from a {@link MultipartReader}. */
export interface MultipartPartSink {
  /** The next bytes of the body: valid only during the call (copy what you keep). */
  write(chunk: Buffer): void;
  /** The body is complete. */
  end(): void;
}

type ReaderState = 'preamble' | 'boundary-line' | 'headers' | 'sized-body' | 'delimiter' | 'searched-body' | 'done';

/**
 * A push parser for multipart bodies: `write` the body's chunks as they arrive, and each part's headers and body
 * go to the sink `onPart` returns, synchronously, before `write` returns. Body bytes are handed on as views of the
 * written chunks, so a chunk may be a reused read buffer: the parser copies only what it must keep between calls
 * (a part's headers, a boundary split across two chunks).
 *
 * A part with a Content-Length is handed on by length, without scanning it for the boundary (DICOM instances are
 * megabytes); the delimiter must follow it, else the part is taken as longer than declared and its end is
 * searched. A part without Content-Length is searched.
 * @example
 * ```ts
 * const reader = new MultipartReader(boundary, (headers) => ({ write: (b) => file.write(b), end: () => file.end() }));
 * for await (const chunk of body) reader.write(chunk);
 * reader.end();
 * ```
 */
export class MultipartReader {
  readonly #delimiter: Buffer;
  readonly #onPart: (headers: Record<string, string>, length: number | undefined) => MultipartPartSink;
  // The body is read as if it started with CRLF, so the first delimiter looks like every other one.
  #state: ReaderState = 'preamble';
  /** Bytes kept from earlier chunks: a possible delimiter start, the boundary line, the headers. */
  #kept: Buffer = Buffer.from(CRLF);
  #sink: MultipartPartSink | undefined;
  #remaining = 0;
  #matched = 0;

  /**
   * @param boundary - from {@link multipartBoundary}
   * @param onPart - called with each part's headers (names lower-cased) and declared length; returns its sink
   */
  constructor(
    boundary: string,
    onPart: (headers: Record<string, string>, length: number | undefined) => MultipartPartSink,
  ) {
    this.#delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.#onPart = onPart;
  }

  /**
   * Parses the next bytes of the body.
   * @param input - the bytes (only read during the call)
   * @throws {@link MultipartError} for a malformed body; whatever a sink throws
   */
  write(input: Uint8Array): void {
    const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.#state) {
        case 'done':
          return; // the epilogue is ignored
        case 'preamble':
        case 'searched-body':
          pos = this.#search(chunk, pos);
          break;
        case 'boundary-line':
          pos = this.#boundaryLine(chunk, pos);
          break;
        case 'headers':
          pos = this.#headers(chunk, pos);
          break;
        case 'sized-body': {
          const k = Math.min(this.#remaining, chunk.length - pos);
          if (k > 0) this.#sink?.write(chunk.subarray(pos, pos + k));
          this.#remaining -= k;
          pos += k;
          if (this.#remaining === 0) {
            this.#state = 'delimiter';
            this.#matched = 0;
          }
          break;
        }
        case 'delimiter': {
          const d = this.#delimiter;
          while (pos < chunk.length && this.#matched < d.length && chunk[pos] === d[this.#matched]) {
            pos++;
            this.#matched++;
          }
          if (this.#matched === d.length) {
            this.#endPart();
          } else if (pos < chunk.length) {
            // Not the delimiter: the body is longer than its Content-Length said. What matched is body; search on.
            if (this.#matched > 0) this.#sink?.write(Buffer.from(d.subarray(0, this.#matched)));
            this.#kept = Buffer.alloc(0);
            this.#state = 'searched-body';
          }
          break;
        }
      }
    }
  }

  /**
   * The body has ended.
   * @throws {@link MultipartError} when it ended before the close delimiter
   */
  end(): void {
    switch (this.#state) {
      case 'done':
        return;
      case 'preamble':
        throw new MultipartError(
          `no boundary "${this.#delimiter.subarray(2).toString('latin1')}" in the multipart body`,
        );
      case 'boundary-line':
        throw new MultipartError('multipart body ended after a boundary');
      case 'headers':
        throw new MultipartError('multipart part has no end of headers (truncated response?)');
      default:
        throw new MultipartError('multipart body ended inside a part (truncated response)');
    }
  }

  /** Preamble or a body without length: everything up to the delimiter (handed on, for a body). */
  #search(chunk: Buffer, pos: number): number {
    const d = this.#delimiter;
    const kept = this.#kept;
    // A delimiter that began in the kept bytes (at most d.length - 1 of them) and ends in this chunk.
    if (kept.length > 0 && pos === 0) {
      for (let k = Math.min(kept.length, d.length - 1); k >= 1; k--) {
        if (
          chunk.length >= d.length - k &&
          kept.compare(d, 0, k, kept.length - k) === 0 &&
          chunk.compare(d, k, d.length, 0, d.length - k) === 0
        ) {
          if (this.#state === 'searched-body' && kept.length > k) this.#sink?.write(kept.subarray(0, kept.length - k));
          this.#kept = Buffer.alloc(0);
          this.#endPart();
          return d.length - k;
        }
      }
    }
    const at = chunk.indexOf(d, pos);
    if (at >= 0) {
      if (this.#state === 'searched-body') {
        if (kept.length > 0) this.#sink?.write(kept);
        if (at > pos) this.#sink?.write(chunk.subarray(pos, at));
      }
      this.#kept = Buffer.alloc(0);
      this.#endPart();
      return at + d.length;
    }
    // Not here: hand on all but the last bytes, which may start a delimiter; keep those (copied).
    const body = this.#state === 'searched-body';
    const keep = Math.min(d.length - 1, kept.length + chunk.length - pos);
    const fromChunk = Math.min(keep, chunk.length - pos);
    const fromKept = keep - fromChunk;
    if (body && kept.length > fromKept) this.#sink?.write(kept.subarray(0, kept.length - fromKept));
    if (body && chunk.length - fromChunk > pos) this.#sink?.write(chunk.subarray(pos, chunk.length - fromChunk));
    this.#kept = Buffer.concat([kept.subarray(kept.length - fromKept), chunk.subarray(chunk.length - fromChunk)]);
    return chunk.length;
  }

  /** After a delimiter: `--` closes the body; else transport padding up to CRLF, then the part's headers. */
  #boundaryLine(chunk: Buffer, pos: number): number {
    const eol = chunk.indexOf(CRLF, pos);
    const end = eol >= 0 ? eol + 2 : chunk.length;
    this.#kept = Buffer.concat([this.#kept, chunk.subarray(pos, end)]);
    const line = this.#kept;
    if (line.length >= 2 && line.compare(DASH_DASH, 0, 2, 0, 2) === 0) {
      this.#state = 'done';
      return chunk.length;
    }
    // A CRLF split between two chunks.
    const lineEnd = line.indexOf(CRLF);
    if (lineEnd < 0) {
      if (line.length > MAX_BOUNDARY_LINE_BYTES)
        throw new MultipartError('malformed boundary line in the multipart body');
      return end;
    }
    // Headers are read as "\r\n<headers>\r\n\r\n" (just "\r\n\r\n" when there are none).
    this.#kept = Buffer.from(CRLF);
    this.#state = 'headers';
    return end - (line.length - lineEnd - 2);
  }

  /** Collects the part's headers up to the blank line, then starts its body. */
  #headers(chunk: Buffer, pos: number): number {
    const prior = this.#kept.length;
    // Search from up to 3 kept bytes back, for an end split between chunks; a short window first (headers of a
    // DICOM part are a few lines), copying no more of the chunk than needed.
    let joined = Buffer.concat([this.#kept, chunk.subarray(pos, Math.min(chunk.length, pos + 512))]);
    let at = joined.indexOf(HEADER_END, Math.max(0, prior - 3));
    if (at < 0 && chunk.length - pos > 512) {
      joined = Buffer.concat([this.#kept, chunk.subarray(pos, Math.min(chunk.length, pos + MAX_HEADER_BYTES))]);
      at = joined.indexOf(HEADER_END, Math.max(0, prior - 3));
    }
    if (at < 0) {
      if (joined.length > MAX_HEADER_BYTES)
        throw new MultipartError('multipart part has no end of headers (truncated response?)');
      this.#kept = joined;
      return chunk.length;
    }
    const headers = parseHeaders(joined.subarray(2, Math.max(2, at)).toString('latin1'));
    this.#kept = Buffer.alloc(0);
    const declared = headers['content-length'];
    const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
    this.#sink = this.#onPart(headers, length);
    if (length === undefined) {
      this.#state = 'searched-body';
    } else {
      this.#state = 'sized-body';
      this.#remaining = length;
      if (length === 0) {
        this.#state = 'delimiter';
        this.#matched = 0;
      }
    }
    return pos + (at + 4 - prior);
  }

  #endPart(): void {
    if (this.#state !== 'preamble') this.#sink?.end();
    this.#sink = undefined;
    this.#state = 'boundary-line';
    this.#kept = Buffer.alloc(0);
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
 * @param chunks - the body (chunks that are not reused afterwards, e.g. a response stream)
 * @param boundary - from {@link multipartBoundary}
 * @returns the parts in order
 * @throws {@link MultipartError} for a malformed or truncated body
 */
export async function* parseMultipartPieces(
  chunks: AsyncIterable<Buffer | Uint8Array | string>,
  boundary: string,
): AsyncGenerator<MultipartPieces> {
  const complete: MultipartPieces[] = [];
  const reader = new MultipartReader(boundary, (headers) => {
    const part: MultipartPieces = { headers, pieces: [], length: 0 };
    return {
      write: (bytes) => {
        part.pieces.push(bytes);
        part.length += bytes.length;
      },
      end: () => complete.push(part),
    };
  });
  const iterator = chunks[Symbol.asyncIterator]();
  let ended = false;
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        reader.end();
      } else {
        reader.write(typeof next.value === 'string' ? Buffer.from(next.value, 'latin1') : next.value);
      }
      while (complete.length > 0) yield complete.shift() as MultipartPieces;
      if (ended) return;
    }
  } finally {
    // Stop the source when the caller stops early (or on error): `return` on the iterator ends the stream.
    if (!ended) await iterator.return?.();
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
