import { describe, expect, it } from 'vitest';
import { generatePhantom, getString, parseDicom, segSourceFromPart10, writePhantomStudy, writeSeg } from '@cdss/dicom';
import { dicomLabToRgb, placeSeg, type TargetSlices } from './seg';

const phantom = generatePhantom({ seed: 'seg-test', dims: [24, 20, 10], spacing: [2, 2, 3] });
const study = writePhantomStudy(phantom, { patientId: 'SEG-TEST' });
const files = study.series.t1c.files;
const seg = writeSeg(phantom.labels, segSourceFromPart10(files));
const asBuffer = (bytes: Uint8Array): ArrayBuffer => bytes.slice().buffer;

/** The source slices, as Cornerstone orders a volume's images (by position along the normal). */
function target(order: number[]): TargetSlices {
  const sops = files.map((f) => {
    const parsed = parseDicom(f);
    return getString(parsed, parsed.dataset.get(0x00080018)) ?? '';
  });
  const positions = files.map((f) => {
    const parsed = parseDicom(f);
    return (getString(parsed, parsed.dataset.get(0x00200032)) ?? '').split('\\').map(Number) as [
      number,
      number,
      number,
    ];
  });
  return {
    sopInstanceUids: order.map((i) => sops[i]!),
    positions: order.map((i) => positions[i]!),
    normal: [0, 0, 1],
    rows: 20,
    columns: 24,
  };
}

describe('placeSeg', () => {
  it('puts every voxel of the SEG back where the labels were (segment numbers 1 NCR, 2 ED, 3 ET)', () => {
    const placed = placeSeg(asBuffer(seg), target([...files.keys()]));
    expect(placed.unplaced).toBe(0);
    expect(placed.segments.map((s) => s.label)).toEqual(['NCR', 'ED', 'ET']);
    const segmentOfLabel: Record<number, number> = { 0: 0, 1: 1, 2: 2, 4: 3 };
    const expected = Uint8Array.from(phantom.labels.data, (l) => segmentOfLabel[l] ?? 0);
    expect(Buffer.from(placed.voxels).equals(Buffer.from(expected))).toBe(true);
    expect(expected.some((v) => v === 3)).toBe(true);
  });

  it('follows the target’s slice order, and places frames by position when the SOP is unknown', () => {
    const reversed = [...files.keys()].reverse();
    const placed = placeSeg(asBuffer(seg), target(reversed));
    const size = 24 * 20;
    const first = placeSeg(asBuffer(seg), target([...files.keys()]));
    expect(Buffer.from(placed.voxels.subarray(0, size)).equals(Buffer.from(first.voxels.subarray(9 * size)))).toBe(
      true,
    );
    const unknown = { ...target([...files.keys()]), sopInstanceUids: files.map((_, i) => `9.9.${i}`) };
    expect(Buffer.from(placeSeg(asBuffer(seg), unknown).voxels).equals(Buffer.from(first.voxels))).toBe(true);
  });

  it('refuses a SEG of another image size', () => {
    expect(() => placeSeg(asBuffer(seg), { ...target([...files.keys()]), rows: 64 })).toThrow(/size/);
  });

  it('converts DICOM CIELab to sRGB', () => {
    expect(dicomLabToRgb([65535, 32896, 32896])).toEqual([255, 255, 255]);
    expect(dicomLabToRgb([0, 32896, 32896])).toEqual([0, 0, 0]);
  });
});
