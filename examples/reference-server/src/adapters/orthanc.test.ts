import { describe, expect, it } from 'vitest';
import { dicomTime } from './orthanc.js';

describe('dicomTime', () => {
  it.each([
    ['0815', '08:15:00'],
    ['081530', '08:15:30'],
    ['174000.123456', '17:40:00'],
    ['07', '07:00:00'],
    [' 120000 ', '12:00:00'],
  ])('reads the DICOM TM %j as %s', (tm, iso) => {
    expect(dicomTime(tm)).toBe(iso);
  });

  it.each([undefined, '', '8:15', '2561', '12:00:00', '996000'])('refuses %j', (tm) => {
    expect(dicomTime(tm)).toBeUndefined();
  });
});
