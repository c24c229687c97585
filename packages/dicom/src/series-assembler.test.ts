import { describe, expect, it } from 'vitest';
import { CdssError } from '@cdss/core';
import { DicomParseError, SeriesGeometryError } from './dicom-errors.js';
import { uidFromSeed, writeDicomSeries } from './dicom-write.js';
import { SeriesVolumeAssembler } from './series-assembler.js';
import { parseDicom } from './dicom-parse.js';
import { volumeFromPart10 } from './series-volume.js';
import type { Mat3, Volume } from './volume.js';
import { VoxelBufferPool } from './voxel-pool.js';

const I: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

function series(dims: [number, number, number], seed: string): Uint8Array[] {
  return writeDicomSeries(
    {
      dims,
      spacing: [0.9, 0.9, 2],
      origin: [-10, 5, 30],
      direction: I,
      data: new Uint16Array(dims[0] * dims[1] * dims[2]).map((_, i) => (i * 13) % 4096),
    },
    {
      patient: { id: 'ASM', name: 'ASM^TEST' },
      study: { instanceUid: uidFromSeed(`${seed}/study`) },
      series: {
        instanceUid: uidFromSeed(`${seed}/series`),
        number: 1,
        description: 'asm',
        frameOfReferenceUid: uidFromSeed(`${seed}/for`),
      },
    },
  );
}

/**
 * Writes each file through one reused scratch buffer (as a socket read buffer would be), `size` bytes at a time,
 * then overwrites the scratch: anything the assembler kept as a view would then be garbage.
 */
function assemble(
  files: readonly Uint8Array[],
  size: number,
  options: { declareLength?: boolean; pool?: VoxelBufferPool } = {},
): Volume {
  const assembler = new SeriesVolumeAssembler(options.pool ? { pool: options.pool } : {});
  const scratch = new Uint8Array(size);
  try {
    files.forEach((file, i) => {
      const sink = assembler.instance(options.declareLength === false ? undefined : file.length, `part ${i}`);
      for (let at = 0; at < file.length; at += size) {
        const n = Math.min(size, file.length - at);
        scratch.set(file.subarray(at, at + n));
        sink.write(scratch.subarray(0, n));
        scratch.fill(0xa5);
      }
      sink.end();
    });
    return assembler.build(options.pool ? { pool: options.pool } : {});
  } finally {
    assembler.dispose();
  }
}

const bytesOf = (v: Volume): Buffer => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);

describe('SeriesVolumeAssembler', () => {
  const files = series([24, 20, 9], 'asm');
  const want = volumeFromPart10(files);
  // arrival order is not slice order
  const shuffled = [4, 0, 8, 2, 6, 1, 7, 3, 5].map((i) => files[i]!);

  it('builds the same volume as from whole files, whatever the chunking and with or without lengths', () => {
    for (const size of [1, 5, 64, 700, 1500, 4096, 100_000]) {
      for (const declareLength of [true, false]) {
        const got = assemble(shuffled, size, { declareLength });
        expect({ ...got, data: undefined }).toEqual({ ...want, data: undefined });
        expect(bytesOf(got).equals(bytesOf(want)), `size ${size}, length ${declareLength}`).toBe(true);
      }
    }
  });

  it('passes volume options on (float32 output)', () => {
    const assembler = new SeriesVolumeAssembler();
    for (const file of files) {
      const sink = assembler.instance(file.length);
      sink.write(file);
      sink.end();
    }
    const got = assembler.build({ output: 'float32' });
    expect(got.data).toBeInstanceOf(Float32Array);
    expect(Array.from(got.data)).toEqual(Array.from(want.data));
  });

  it('with a pool: volume memory given back is reused', () => {
    const pool = new VoxelBufferPool();
    const first = assemble(shuffled, 4096, { pool });
    expect(pool.retainedBytes).toBeGreaterThan(0); // the staging page came back
    pool.release(first);
    const second = assemble(files, 700, { pool });
    expect(second.data.buffer).toBe(first.data.buffer);
    expect(bytesOf(second).equals(bytesOf(want))).toBe(true);
  });

  it('slices that arrive in order into a page not much larger than the volume become it, without a copy', () => {
    const big = series([256, 256, 16], 'asm-adopt'); // 2 MiB: half a staging page
    const bigWant = volumeFromPart10(big);
    const pool = new VoxelBufferPool();
    const inOrder = assemble(big, 65_536, { pool });
    expect(bytesOf(inOrder).equals(bytesOf(bigWant))).toBe(true);
    expect(pool.retainedBytes).toBe(0); // the staging page became the volume's memory
    const page = inOrder.data.buffer;
    pool.release(inOrder);
    const again = assemble(big, 65_536, { pool });
    expect(again.data.buffer).toBe(page);
    pool.release(again);

    const reordered = assemble([...big].reverse(), 65_536, { pool }); // staged in the page, copied in slice order
    expect(bytesOf(reordered).equals(bytesOf(bigWant))).toBe(true);
    expect(reordered.data.buffer).not.toBe(page);
    expect(pool.retainedBytes).toBe(page.byteLength); // the page came back

    // Without a pool a small series is copied out of the shared staging page rather than keeping it alive.
    const small = assemble(files, 4096);
    expect(small.data.buffer.byteLength).toBe(small.data.byteLength);
  });

  it('reports a missing slice, and instances that are truncated, overlong or not DICOM', () => {
    const missing = (): Volume => assemble([files[0]!, files[1]!, files[3]!], 512);
    expect(missing).toThrow(SeriesGeometryError);
    expect(missing).toThrow(/missing 1 slice/);

    const cut = files[2]!.subarray(0, files[2]!.length - 100);
    const truncated = new SeriesVolumeAssembler();
    const sink = truncated.instance(files[2]!.length, 'part 2');
    sink.write(cut);
    expect(() => sink.end()).toThrow(/part 2: instance ended after/);

    const unknownLength = new SeriesVolumeAssembler().instance(undefined, 'part 3');
    unknownLength.write(cut);
    expect(() => unknownLength.end()).toThrow(/part 3: PixelData ended after \d+ of 960 bytes/);

    const overlong = new SeriesVolumeAssembler().instance(100, 'part 4');
    expect(() => overlong.write(files[0]!)).toThrow(/longer than its declared 100 bytes/);

    const text = new SeriesVolumeAssembler().instance(undefined, 'part 5');
    text.write(Buffer.from('<html>502 Bad Gateway</html>'));
    let caught: unknown;
    try {
      text.end();
    } catch (error) {
      caught = error;
    }
    expect(DicomParseError.isInstance(caught) || caught instanceof DicomParseError).toBe(true);
    expect((caught as Error).message).toMatch(/^part 5: not a DICOM Part-10 file/);
  });

  it('keeps an instance whole when its attributes are not in its first 256 KiB, and still reads it', () => {
    // A private element of 300 KB among the attributes pushes the pixel data out of the head.
    const big = series([6, 6, 2], 'asm-big');
    const padded = big.map((f) => insertPrivateElement(f, 300_000));
    const got = assemble(padded, 8192);
    expect(bytesOf(got).equals(bytesOf(volumeFromPart10(big)))).toBe(true);
  });

  it('refuses a second instance before the first has ended', () => {
    const assembler = new SeriesVolumeAssembler();
    assembler.instance(10);
    expect(() => assembler.instance(10)).toThrow(/previous instance/);
    expect(CdssError.isInstance(new DicomParseError('x'))).toBe(true);
  });
});

/** Inserts an OB element (0009,1010) of `n` zero bytes where it belongs, before group 0010 (explicit VR LE). */
function insertPrivateElement(file: Uint8Array, n: number): Uint8Array {
  const parsed = parseDicom(file);
  const next = [...parsed.dataset.values()].find((el) => el.tag > 0x00091010)!;
  const at = next.offset - 8; // PatientName and its neighbours are short-VR elements: 8-byte headers
  const header = Buffer.alloc(12);
  header.writeUInt16LE(0x0009, 0);
  header.writeUInt16LE(0x1010, 2);
  header.write('OB', 4, 'latin1');
  header.writeUInt32LE(n, 8);
  return Buffer.concat([file.subarray(0, at), header, Buffer.alloc(n), file.subarray(at)]);
}
