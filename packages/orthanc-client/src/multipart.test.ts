import { describe, expect, it } from 'vitest';
import {
  buildMultipart,
  multipartBoundary,
  MultipartError,
  MultipartReader,
  parseMultipart,
  parseMultipartPieces,
} from './multipart.js';
import { mapLimit } from './pool.js';

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
async function collect(
  it: AsyncIterable<{ headers: Record<string, string>; body: Buffer }>,
): Promise<Array<{ headers: Record<string, string>; body: Buffer }>> {
  const out = [];
  for await (const p of it) out.push({ headers: p.headers, body: Buffer.from(p.body) });
  return out;
}

const bodies = [Buffer.from('first'), Buffer.alloc(5000, 7), Buffer.from('\r\n--notTheBoundary\r\n'), Buffer.alloc(0)];

describe('parseMultipart', () => {
  const built = buildMultipart(
    bodies.map((b) => ({ contentType: 'application/dicom', body: b })),
    'application/dicom',
    'b0undary',
  );
  const whole = Buffer.concat(built.chunks);

  it('round-trips parts whatever the chunking (1 byte to all at once)', async () => {
    expect(multipartBoundary(built.contentType)).toBe('b0undary');
    for (const size of [1, 3, 7, 64, 1000, whole.length]) {
      const parts = await collect(parseMultipart(chunked(whole, size), 'b0undary'));
      expect(parts.map((p) => p.body)).toEqual(bodies);
      expect(parts[0]!.headers['content-type']).toBe('application/dicom');
    }
  });

  it('finds part ends by the boundary when there is no Content-Length, with a preamble and padding', async () => {
    const raw = Buffer.from(
      'preamble text\r\n--xyz  \r\nContent-Type: text/plain\r\n\r\nhello\r\n--xyz\r\n\r\nno headers\r\n--xyz--\r\nepilogue',
    );
    for (const size of [1, 5, raw.length]) {
      const parts = await collect(parseMultipart(chunked(raw, size), 'xyz'));
      expect(parts.map((p) => p.body.toString())).toEqual(['hello', 'no headers']);
      expect(parts[1]!.headers).toEqual({});
    }
  });

  it('does not trust a wrong Content-Length', async () => {
    const raw = Buffer.from('--q\r\nContent-Length: 2\r\n\r\nabcdef\r\n--q--\r\n');
    const parts = await collect(parseMultipart(chunked(raw, 3), 'q'));
    expect(parts[0]!.body.toString()).toBe('abcdef');
  });

  it('rejects truncated and malformed bodies with a MultipartError', async () => {
    await expect(
      collect(parseMultipart(chunked(whole.subarray(0, whole.length - 30), 50), 'b0undary')),
    ).rejects.toThrow(MultipartError);
    await expect(collect(parseMultipart(chunked(Buffer.from('no boundary here'), 4), 'b0undary'))).rejects.toThrow(
      /no boundary/,
    );
    await expect(
      collect(parseMultipart(chunked(Buffer.from('--b0undary\r\nContent-Type: x'), 4), 'b0undary')),
    ).rejects.toThrow(/end of headers/);
    expect(() => multipartBoundary('application/json')).toThrow(/expected a multipart/);
    expect(() => multipartBoundary('multipart/related; type="application/dicom"')).toThrow(/no boundary/);
    expect(multipartBoundary('multipart/related; boundary="a b"; type=x')).toBe('a b');
  });
});

describe('mapLimit', () => {
  it('keeps order and never exceeds the limit', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (v) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, v));
      inFlight--;
      return v * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(2);
  });

  it('stops starting tasks after a failure or an abort', async () => {
    const started: number[] = [];
    await expect(
      mapLimit([1, 2, 3, 4, 5], 1, async (v) => {
        started.push(v);
        if (v === 2) throw new Error('boom');
        return v;
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
    const c = new AbortController();
    const ran: number[] = [];
    await expect(
      mapLimit(
        [1, 2, 3],
        1,
        async (v) => {
          ran.push(v);
          c.abort(new Error('cancelled'));
          return v;
        },
        c.signal,
      ),
    ).rejects.toThrow('cancelled');
    expect(ran).toEqual([1]);
  });
});

describe('parseMultipartPieces', () => {
  it('gives bodies as views of the received chunks that join to the same bytes', async () => {
    const built = buildMultipart(
      bodies.map((b) => ({ contentType: 'application/dicom', body: b })),
      'application/dicom',
      'pp',
    );
    const whole = Buffer.concat(built.chunks);
    for (const size of [1, 13, 4096]) {
      const got: Buffer[] = [];
      for await (const p of parseMultipartPieces(chunked(whole, size), 'pp')) {
        expect(p.pieces.reduce((n, x) => n + x.length, 0)).toBe(p.length);
        got.push(Buffer.concat(p.pieces));
      }
      expect(got).toEqual(bodies);
    }
  });
});

describe('MultipartReader', () => {
  /** Feeds `whole` through one reused scratch buffer, as a socket read buffer would; sinks copy what they get. */
  function readAll(
    whole: Buffer,
    boundary: string,
    size: number,
  ): Array<{ headers: Record<string, string>; length?: number; body: Buffer }> {
    const parts: Array<{ headers: Record<string, string>; length?: number; body: Buffer }> = [];
    const reader = new MultipartReader(boundary, (headers, length) => {
      const copies: Buffer[] = [];
      return {
        write: (b) => copies.push(Buffer.from(b)),
        end: () => parts.push({ headers, ...(length === undefined ? {} : { length }), body: Buffer.concat(copies) }),
      };
    });
    const scratch = Buffer.alloc(size);
    for (let i = 0; i < whole.length; i += size) {
      const n = whole.copy(scratch, 0, i, i + size);
      reader.write(scratch.subarray(0, n));
      scratch.fill(0xee); // anything the reader kept as a view is now garbage
    }
    reader.end();
    return parts;
  }

  it('hands over every part whatever the chunking, from a reused buffer', () => {
    const built = buildMultipart(
      bodies.map((b) => ({ contentType: 'application/dicom', body: b })),
      'application/dicom',
      'rb',
    );
    const whole = Buffer.concat(built.chunks);
    for (const size of [1, 2, 3, 5, 8, 13, 64, 1000, whole.length]) {
      const parts = readAll(whole, 'rb', size);
      expect(parts.map((p) => p.body)).toEqual(bodies);
      expect(parts.map((p) => p.length)).toEqual(bodies.map((b) => b.length));
    }
  });

  it('searches bodies without Content-Length, and recovers from one that is too short', () => {
    const raw = Buffer.from(
      'preamble\r\n--xyz  \r\nContent-Type: text/plain\r\n\r\nhel\r\n-lo\r\n--xyz\r\n\r\nno headers\r\n--xyz\r\nContent-Length: 2\r\n\r\nabcdef\r\n--xyz--\r\nepilogue',
    );
    for (const size of [1, 2, 4, 7, raw.length]) {
      expect(readAll(raw, 'xyz', size).map((p) => p.body.toString())).toEqual(['hel\r\n-lo', 'no headers', 'abcdef']);
    }
  });

  it('rejects a body that ends early, names what is missing, and stops at the close delimiter', () => {
    const built = buildMultipart([{ contentType: 'application/dicom', body: Buffer.alloc(300, 1) }], 'x', 'e');
    const whole = Buffer.concat(built.chunks);
    for (const cut of [5, 40, 200, whole.length - 12]) {
      expect(() => readAll(whole.subarray(0, cut), 'e', 16)).toThrow(MultipartError);
    }
    expect(() => readAll(Buffer.from('--e\r\nContent-Type: x'), 'e', 4)).toThrow(/end of headers/);
    expect(() => readAll(Buffer.from('nothing'), 'e', 4)).toThrow(/no boundary "--e"/);
    expect(readAll(Buffer.concat([whole, Buffer.from('--e\r\n\r\nafter close\r\n--e--')]), 'e', 7)).toHaveLength(1);
  });

  it("a sink's error stops the reader", () => {
    const built = buildMultipart([{ contentType: 'application/dicom', body: Buffer.alloc(10) }], 'x', 's');
    const reader = new MultipartReader('s', () => ({
      write: () => {
        throw new Error('not DICOM');
      },
      end: () => undefined,
    }));
    expect(() => reader.write(Buffer.concat(built.chunks))).toThrow('not DICOM');
  });
});
