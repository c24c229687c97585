/**
 * Bad input: truncated, corrupted and non-DICOM files must be rejected with a clear error (a CdssError with a
 * message naming the problem), never a crash (TypeError/RangeError), a hang or a wrong volume.
 */
import { describe, expect, it } from 'vitest';
import { CdssError } from '@cdss/core';
import { DicomParseError } from './dicom-errors.js';
import { parseDicom, tagString } from './dicom-parse.js';
import { uidFromSeed, writeDicomSeries } from './dicom-write.js';
import { readSeg, writeSeg } from './seg.js';
import { SeriesVolumeAssembler } from './series-assembler.js';
import { sliceFromPart10, volumeFromPart10 } from './series-volume.js';
import type { Mat3 } from './volume.js';

const I: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
const files = writeDicomSeries(
  {
    dims: [16, 16, 4],
    spacing: [1, 1, 2],
    origin: [0, 0, 0],
    direction: I,
    data: new Uint16Array(16 * 16 * 4).map((_, i) => i % 4000),
  },
  {
    patient: { id: 'FUZZ', name: 'FUZZ^TEST' },
    study: { instanceUid: uidFromSeed('fuzz/study') },
    series: {
      instanceUid: uidFromSeed('fuzz/series'),
      number: 1,
      description: 'fuzz',
      frameOfReferenceUid: uidFromSeed('fuzz/for'),
    },
  },
);
const good = files[1]!;
const parsedGood = parseDicom(good);
const pixelEl = parsedGood.dataset.get(0x7fe00010)!;
const headerEnd = pixelEl.offset - 12; // start of the PixelData element

/** Offsets of structural bytes: each element's tag, VR and length fields (after the preamble). */
function structuralOffsets(): number[] {
  const out: number[] = [];
  for (const el of [...parsedGood.meta.values(), ...parsedGood.dataset.values()]) {
    const long = ['OB', 'OW', 'SQ', 'UN', 'UT', 'UC', 'UR', 'OD', 'OF', 'OL', 'OV', 'SV', 'UV'].includes(el.vr);
    const start = el.offset - (long ? 12 : 8);
    out.push(start + 4, start + (long ? 9 : 7)); // VR first byte, a high length byte
  }
  return out;
}

function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const variants: Array<{ name: string; bytes: Uint8Array; message: RegExp }> = [];
// 1. Non-DICOM inputs
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
variants.push({ name: 'empty', bytes: new Uint8Array(0), message: /too short/ });
variants.push({ name: 'one byte', bytes: new Uint8Array([0x44]), message: /too short/ });
variants.push({
  name: 'JSON',
  bytes: text('{"resourceType":"Patient","id":"x"}'.repeat(10)),
  message: /no "DICM" prefix/,
});
variants.push({
  name: 'PNG header',
  bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Uint8Array(300)]),
  message: /no "DICM" prefix/,
});
variants.push({
  name: 'ZIP header',
  bytes: new Uint8Array([0x50, 0x4b, 0x03, 0x04, ...new Uint8Array(300)]),
  message: /no "DICM" prefix/,
});
variants.push({ name: 'zeros', bytes: new Uint8Array(4096), message: /no "DICM" prefix/ });
variants.push({
  name: 'HTML error page',
  bytes: text(`<html><body>502 Bad Gateway</body></html>${' '.repeat(200)}`),
  message: /no "DICM" prefix/,
});
const r = rng(99);
for (let n = 0; n < 5; n++)
  variants.push({
    name: `random ${n}`,
    bytes: Uint8Array.from({ length: 200 + n * 300 }, () => Math.floor(r() * 256)),
    message: /no "DICM" prefix/,
  });
// DICM prefix but garbage after it
for (let n = 0; n < 4; n++) {
  const b = Uint8Array.from({ length: 400 }, () => Math.floor(r() * 256));
  b.set(text('DICM'), 128);
  variants.push({ name: `DICM + garbage ${n}`, bytes: b, message: /./ });
}
const bare = new Uint8Array(132);
bare.set(text('DICM'), 128);
variants.push({ name: 'DICM prefix only', bytes: bare, message: /Transfer Syntax UID|no dataset/ });
// 2. Truncations: at every interesting boundary and a spread of offsets
const cuts = new Set([
  100,
  128,
  131,
  132,
  133,
  140,
  150,
  200,
  headerEnd - 1,
  headerEnd + 4,
  headerEnd + 11,
  good.length - 1,
  good.length - 2,
  good.length - 100,
]);
for (let n = 1; n <= 16; n++) cuts.add(Math.floor((good.length * n) / 17));
for (const cut of cuts)
  variants.push({ name: `truncated at ${cut}/${good.length}`, bytes: good.slice(0, cut), message: /./ });
// 3. Structural corruption: VR bytes and length bytes of each element
for (const off of structuralOffsets()) {
  const b = good.slice();
  b[off] = (b[off]! ^ 0x5a) & 0xff;
  variants.push({ name: `corrupted byte at ${off}`, bytes: b, message: /./ });
}
// 4. Wrong transfer syntax, encapsulated pixel data, multi-frame, missing attributes
{
  const s = new TextDecoder('latin1').decode(good);
  const swap = (from: string, to: string): Uint8Array => Uint8Array.from(s.replace(from, to), (c) => c.charCodeAt(0));
  variants.push({
    name: 'JPEG transfer syntax',
    bytes: swap('1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.4.5'),
    message: /unsupported transfer syntax/,
  });
  variants.push({
    name: 'big endian transfer syntax',
    bytes: swap('1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.2\0'),
    message: /unsupported transfer syntax/,
  });
}
function withoutElement(tag: number): Uint8Array {
  const el = parsedGood.dataset.get(tag)!;
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(el.vr);
  const start = el.offset - (long ? 12 : 8);
  return new Uint8Array([...good.subarray(0, start), ...good.subarray(el.offset + el.length)]);
}
for (const [tag, name] of [
  [0x00280010, 'Rows'],
  [0x00280011, 'Columns'],
  [0x00200032, 'ImagePositionPatient'],
  [0x00200037, 'ImageOrientationPatient'],
  [0x00280030, 'PixelSpacing'],
  [0x00280100, 'BitsAllocated'],
  [0x00080018, 'SOPInstanceUID'],
  [0x7fe00010, 'PixelData'],
] as const) {
  variants.push({
    name: `without ${name}`,
    bytes: withoutElement(tag),
    message: new RegExp(`missing required attribute ${name}`),
  });
}

describe('bad input is rejected with a clear error', () => {
  it(`has at least 50 variants (${variants.length})`, () => {
    expect(variants.length).toBeGreaterThanOrEqual(50);
  });

  it.each(variants.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    let caught: unknown;
    try {
      sliceFromPart10(v.bytes, 'input');
    } catch (error) {
      caught = error;
    }
    expect(caught, 'must be rejected').toBeDefined();
    expect(CdssError.isInstance(caught), `not a CdssError: ${String(caught)}`).toBe(true);
    expect((caught as Error).message).toMatch(v.message);
    expect((caught as Error).message).toMatch(/^input: /);
    // The same file inside a series is named by its index and rejects the whole series.
    expect(() => volumeFromPart10([files[0]!, v.bytes, files[2]!])).toThrow(/file 1: /);
  });

  it.each(variants.map((v) => [v.name, v] as const))('streamed in pieces: %s', (_name, v) => {
    // The same variants through the streaming assembler (declared length and not, small reused chunks).
    for (const declare of [true, false]) {
      const sink = new SeriesVolumeAssembler().instance(declare ? v.bytes.length : undefined, 'part 1');
      const scratch = new Uint8Array(97);
      let caught: unknown;
      try {
        for (let at = 0; at < v.bytes.length; at += scratch.length) {
          const n = Math.min(scratch.length, v.bytes.length - at);
          scratch.set(v.bytes.subarray(at, at + n));
          sink.write(scratch.subarray(0, n));
        }
        sink.end();
      } catch (error) {
        caught = error;
      }
      expect(caught, 'must be rejected').toBeDefined();
      expect(CdssError.isInstance(caught), `not a CdssError: ${String(caught)}`).toBe(true);
      expect((caught as Error).message).toMatch(/^part 1: /);
    }
  });

  it('survives 300 random byte flips anywhere without crashing: either a volume or a CdssError', () => {
    const rand = rng(7);
    let rejected = 0;
    for (let n = 0; n < 300; n++) {
      const b = good.slice();
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) b[Math.floor(rand() * headerEnd)] = Math.floor(rand() * 256);
      try {
        sliceFromPart10(b);
      } catch (error) {
        if (!CdssError.isInstance(error)) throw error;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('rejects bad SEG input clearly', () => {
    const labels = {
      dims: [16, 16, 4] as [number, number, number],
      spacing: [1, 1, 2] as [number, number, number],
      origin: [0, 0, 0] as [number, number, number],
      direction: I,
      data: new Uint8Array(1024).map((_, i) => (i % 7 === 0 ? 2 : 0)),
    };
    const seg = writeSeg(labels, {
      patient: { id: 'FUZZ', name: 'FUZZ^TEST' },
      study: { instanceUid: uidFromSeed('fuzz/study') },
      seriesInstanceUid: uidFromSeed('fuzz/series'),
      frameOfReferenceUid: uidFromSeed('fuzz/for'),
      sopClassUid: '1.2.840.10008.5.1.4.1.1.4',
      sopInstanceUids: files.map((f) => sliceFromPart10(f).sopInstanceUid),
    });
    expect(readSeg(seg, { grid: labels }).labels.data).toEqual(labels.data);
    expect(() => readSeg(good)).toThrow(/not a Segmentation Storage object/);
    for (const cut of [0, 200, Math.floor(seg.length / 2), seg.length - 1])
      expect(() => readSeg(seg.slice(0, cut))).toThrow(DicomParseError);
    expect(() => readSeg(seg, { grid: { ...labels, dims: [8, 8, 4] } })).toThrow(/frames are 16×16/);
    expect(() => readSeg(seg, { grid: { ...labels, origin: [0.5, 0, 0] } })).toThrow(/not a slice of the grid/);
  });

  it('formats tags for messages', () => {
    expect(tagString(0x7fe00010)).toBe('(7fe0,0010)');
  });
});
