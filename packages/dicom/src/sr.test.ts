import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { dciodvfyAvailable, dciodvfyErrors } from './dicom-dciodvfy.testkit.js';
import { getString, parseDicom } from './dicom-parse.js';
import { writePhantomStudy } from './dicom-write.js';
import { generatePhantom } from './phantom.js';
import { BRATS_SEGMENTS, segSourceFromPart10, writeSeg } from './seg.js';
import { ENHANCED_SR_STORAGE, writeMeasurementReport, type MeasurementReportInput } from './sr.js';

const phantom = generatePhantom({ seed: 'sr', dims: [48, 48, 32] });
const study = writePhantomStudy(phantom, {
  patientId: 'SR-1',
  studyDescription: 'MRI BRAIN W/WO CONTRAST',
  accessionNumber: 'ACC-SR-1',
});
const source = segSourceFromPart10(study.series.t1c.files);
const segUids = { seriesInstanceUid: '2.25.1001', sopInstanceUid: '2.25.1002' };
const seg = writeSeg(phantom.labels, source, {
  ...segUids,
  algorithm: { type: 'AUTOMATIC', name: 'brats-segresnet-demo', version: '0.1.0' },
});
const [ncr, ed, et] = BRATS_SEGMENTS;
const input: MeasurementReportInput = {
  seg: segUids,
  segments: [
    { number: 1, label: 'NCR', type: ncr!.type, volumeMl: 3.2 },
    { number: 2, label: 'ED', type: ed!.type, volumeMl: 20.5 },
    { number: 3, label: 'ET', type: et!.type, volumeMl: 6.125 },
  ],
  regions: [
    { label: 'Tumour core', type: et!.type, volumeMl: 9.325 },
    { label: 'Whole tumour', type: et!.type, volumeMl: 29.825 },
  ],
  lesions: [{ volumeMl: 6.0, longestDiameterMm: 31.4, perpendicularDiameterMm: 22.8, measurable: true }],
  lesionSegmentNumber: 3,
  algorithm: { name: 'brats-segresnet-demo', version: '0.1.0' },
};
const sr = writeMeasurementReport(input, source);

describe('DICOM SR measurement report (TID 1500)', () => {
  it('is an Enhanced SR in the source study with the study’s descriptive attributes', () => {
    const file = parseDicom(sr);
    const get = (tag: number): string | undefined => getString(file, file.dataset.get(tag));
    expect(get(0x00080016)).toBe(ENHANCED_SR_STORAGE);
    expect(get(0x0020000d)).toBe(study.studyInstanceUid);
    expect(get(0x00081030)).toBe('MRI BRAIN W/WO CONTRAST');
    expect(get(0x00080050)).toBe('ACC-SR-1');
    expect(get(0x00080060)).toBe('SR');
  });

  it('is deterministic and refuses bad input', () => {
    expect(Buffer.from(writeMeasurementReport(input, source)).equals(Buffer.from(sr))).toBe(true);
    expect(() => writeMeasurementReport({ ...input, lesionSegmentNumber: 0 }, source)).toThrow(ValidationError);
  });

  describe.skipIf(!dciodvfyAvailable())('under dicom3tools', () => {
    it('passes dciodvfy with 0 errors, and so does the SEG it refers to', () => {
      expect(dciodvfyErrors([sr, seg])).toEqual([]);
    });

    it('keeps the study consistent across MR, SEG and SR (dcentvfy)', () => {
      const dir = mkdtempSync(join(tmpdir(), 'cdss-dcentvfy-'));
      try {
        const files = [...study.series.t1c.files.slice(0, 2), seg, sr].map((bytes, i) => {
          const path = join(dir, `f${i}.dcm`);
          writeFileSync(path, bytes);
          return path;
        });
        const r = spawnSync('dcentvfy', files, { encoding: 'utf8' });
        const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^Error/.test(l));
        expect(errors).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
