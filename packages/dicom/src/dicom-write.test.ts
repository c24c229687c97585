import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { dciodvfyAvailable, dciodvfyErrors } from './dicom-dciodvfy.testkit.js';
import { parseDicom, getString } from './dicom-parse.js';
import { formatDS, uidFromSeed, writeDicomSeries, writePhantomStudy } from './dicom-write.js';
import { generatePhantom, PHANTOM_MODALITIES } from './phantom.js';
import { sliceFromPart10, volumeFromPart10 } from './series-volume.js';
import type { Mat3, Vec3 } from './volume.js';

const phantom = generatePhantom({ seed: 11, dims: [64, 64, 48], spacing: [0.9, 0.9, 1.2] });
const study = writePhantomStudy(phantom, { patientId: 'W-1' });

describe('DICOM series writer', () => {
  it('writes one file per slice with deterministic UIDs', () => {
    expect(study.series.flair.files).toHaveLength(48);
    const again = writePhantomStudy(phantom, { patientId: 'W-1' });
    expect(again.studyInstanceUid).toBe(study.studyInstanceUid);
    expect(Buffer.from(again.series.t1.files[7]!).equals(Buffer.from(study.series.t1.files[7]!))).toBe(true);
    expect(writePhantomStudy(phantom, { patientId: 'W-2' }).studyInstanceUid).not.toBe(study.studyInstanceUid);
    expect(study.studyInstanceUid).toMatch(/^2\.25\.[1-9]\d*$/);
    const uids = new Set(
      PHANTOM_MODALITIES.flatMap((m) => study.series[m].files.map((f) => sliceFromPart10(f).sopInstanceUid)),
    );
    expect(uids.size).toBe(4 * 48);
  });

  it('round-trips every series to the generator voxels and geometry', () => {
    for (const m of PHANTOM_MODALITIES) {
      const v = volumeFromPart10([...study.series[m].files].reverse());
      expect(v.dims).toEqual([64, 64, 48]);
      expect(v.spacing.map((x) => +x.toFixed(6))).toEqual([0.9, 0.9, 1.2]);
      expect(v.origin.map((x) => +x.toFixed(6))).toEqual(phantom.modalities[m].origin.map((x) => +x.toFixed(6)));
      expect(v.direction).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
      expect(v.data).toBeInstanceOf(Uint16Array);
      expect(Buffer.from(v.data.buffer).equals(Buffer.from(phantom.modalities[m].data.buffer))).toBe(true);
    }
  });

  it('writes the MR acquisition tags that tell the contrasts apart', () => {
    const t1c = parseDicom(study.series.t1c.files[0]!);
    expect(getString(t1c, t1c.dataset.get(0x00180010))).toBe('Gadobutrol');
    const flair = parseDicom(study.series.flair.files[0]!);
    expect(getString(flair, flair.dataset.get(0x00180082))).toBe('2500');
    expect(getString(flair, flair.dataset.get(0x0008103e))).toBe('T2 FLAIR');
  });

  it('writes oblique geometry faithfully', () => {
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const vol = {
      ...phantom.modalities.t2,
      dims: [64, 64, 48] as Vec3,
      direction: [c, s, 0, -s, c, 0, 0, 0, 1] as Mat3,
    };
    const files = writeDicomSeries(vol, {
      patient: { id: 'OBL', name: 'OBLIQUE^TEST' },
      study: { instanceUid: uidFromSeed('obl/study') },
      series: {
        instanceUid: uidFromSeed('obl/series'),
        number: 1,
        description: 'oblique',
        frameOfReferenceUid: uidFromSeed('obl/for'),
      },
    });
    const back = volumeFromPart10(files);
    back.direction.forEach((v, n) => expect(v).toBeCloseTo(vol.direction[n]!, 5));
    back.origin.forEach((v, n) => expect(v).toBeCloseTo(vol.origin[n]!, 4));
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(vol.data.buffer))).toBe(true);
  });

  it('rejects bad options with a ValidationError', () => {
    expect(() =>
      writeDicomSeries(phantom.modalities.t1, {
        patient: { id: 'X', name: 'X' },
        study: { instanceUid: 'not a uid' },
        series: { instanceUid: '1.2.3', number: 1, description: 'x', frameOfReferenceUid: '1.2.4' },
      }),
    ).toThrow(ValidationError);
  });

  it('formats decimal strings within 16 characters', () => {
    expect(formatDS(-31.5)).toBe('-31.5');
    expect(formatDS(1 / 3).length).toBeLessThanOrEqual(16);
    expect(Number(formatDS(-123.4567890123456))).toBeCloseTo(-123.456789012, 8);
    expect(formatDS(1e-12)).toBe('0');
  });
});

describe.skipIf(!dciodvfyAvailable())('dciodvfy on written series', () => {
  it('finds no errors in any series (first, middle and last slices)', () => {
    const sample = PHANTOM_MODALITIES.flatMap((m) => [
      study.series[m].files[0]!,
      study.series[m].files[24]!,
      study.series[m].files[47]!,
    ]);
    expect(dciodvfyErrors(sample)).toEqual([]);
  });
  it('finds no errors in a 16-bit signed, 8-bit and one-slice series', () => {
    const base = {
      patient: { id: 'V', name: 'V^V' },
      study: { instanceUid: uidFromSeed('v/study') },
      series: {
        instanceUid: uidFromSeed('v/series'),
        number: 1,
        description: 'v',
        frameOfReferenceUid: uidFromSeed('v/for'),
      },
    };
    const g = {
      dims: [8, 8, 1] as Vec3,
      spacing: [1, 1, 1] as Vec3,
      origin: [0, 0, 0] as Vec3,
      direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3,
    };
    const files = [
      ...writeDicomSeries({ ...g, data: Int16Array.from({ length: 64 }, (_, i) => i - 32) }, base),
      ...writeDicomSeries({ ...g, data: Uint8Array.from({ length: 64 }, (_, i) => i) }, base),
    ];
    expect(dciodvfyErrors(files)).toEqual([]);
    expect(Array.from(volumeFromPart10([files[0]!]).data)).toEqual(Array.from({ length: 64 }, (_, i) => i - 32));
    const widened = volumeFromPart10([files[1]!]);
    expect(widened.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(widened.data)).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });
});
