import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { dciodvfyAvailable, dciodvfyErrors } from './dicom-dciodvfy.testkit.js';
import { writePhantomStudy } from './dicom-write.js';
import { generatePhantom } from './phantom.js';
import { BRATS_SEGMENTS, readSeg, segSourceFromPart10, writeSeg } from './seg.js';
import { volumeFromPart10 } from './series-volume.js';

const phantom = generatePhantom({ seed: 5, dims: [64, 64, 48] });
const study = writePhantomStudy(phantom, { patientId: 'SEG-1' });
const source = segSourceFromPart10([...study.series.t1c.files].reverse());

describe('DICOM SEG', () => {
  const seg = writeSeg(phantom.labels, source);

  it('round-trips the BraTS label map exactly on the source grid', () => {
    const grid = volumeFromPart10(study.series.t1c.files);
    const back = readSeg(seg, { grid });
    expect(back.labels.dims).toEqual([64, 64, 48]);
    expect(Buffer.from(back.labels.data).equals(Buffer.from(phantom.labels.data))).toBe(true);
    expect(back.segments.map((s) => [s.number, s.label, s.labelValue, s.type?.value])).toEqual([
      [1, 'NCR', 1, '6574001'],
      [2, 'ED', 2, '79654002'],
      [3, 'ET', 4, '108369006'],
    ]);
    expect(back.referencedSeriesInstanceUid).toBe(study.series.t1c.seriesInstanceUid);
  });

  it('places frames on the span of the frames when no grid is given', () => {
    const back = readSeg(seg);
    const k0 = Math.round(back.labels.origin[2] - phantom.labels.origin[2]);
    const plane = 64 * 64;
    const sub = phantom.labels.data.subarray(k0 * plane, (k0 + back.labels.dims[2]) * plane);
    expect(Buffer.from(back.labels.data).equals(Buffer.from(sub))).toBe(true);
  });

  it('is deterministic, joins the source study and references the source slices', () => {
    expect(Buffer.from(writeSeg(phantom.labels, source)).equals(Buffer.from(seg))).toBe(true);
    expect(source.sopInstanceUids).toHaveLength(48);
    expect(source.study.instanceUid).toBe(study.studyInstanceUid);
    const other = phantom.labels.data.slice();
    other[other.indexOf(4)] = 2;
    const seg2 = writeSeg({ ...phantom.labels, data: other }, source);
    expect(readSeg(seg2).sopInstanceUid).not.toBe(readSeg(seg).sopInstanceUid);
  });

  it('writes an empty label map and an automatic (model) SEG', () => {
    const empty = { ...phantom.labels, data: new Uint8Array(phantom.labels.data.length) };
    const e = writeSeg(empty, source);
    expect(readSeg(e, { grid: phantom.labels }).labels.data.every((v) => v === 0)).toBe(true);
    const auto = writeSeg(phantom.labels, source, {
      algorithm: { type: 'AUTOMATIC', name: 'brats-segresnet', version: '0.1.0' },
    });
    expect(readSeg(auto).segments.every((s) => s.algorithmType === 'AUTOMATIC')).toBe(true);
  });

  it('rejects labels with no segment and a source of the wrong length', () => {
    const bad = phantom.labels.data.slice();
    bad[100] = 3;
    expect(() => writeSeg({ ...phantom.labels, data: bad }, source)).toThrow(/label value 3 has no segment/);
    expect(() => writeSeg(phantom.labels, { ...source, sopInstanceUids: source.sopInstanceUids.slice(1) })).toThrow(
      ValidationError,
    );
    expect(() => writeSeg(phantom.labels, source, { contentLabel: 'lower case' })).toThrow(ValidationError);
    expect(BRATS_SEGMENTS.map((s) => s.labelValue)).toEqual([1, 2, 4]);
  });

  describe.skipIf(!dciodvfyAvailable())('dciodvfy', () => {
    it('finds no errors in manual, automatic and empty SEGs', () => {
      const auto = writeSeg(phantom.labels, source, {
        algorithm: { type: 'AUTOMATIC', name: 'brats-segresnet', version: '0.1.0' },
      });
      const empty = writeSeg({ ...phantom.labels, data: new Uint8Array(phantom.labels.data.length) }, source);
      expect(dciodvfyErrors([seg, auto, empty])).toEqual([]);
    });
  });
});
