import { describe, expect, it } from 'vitest';
import { CdssError } from '@cdss/core';
import { segSourceFromMetadata } from './volumes.js';
import type { DicomJsonDataset } from './schemas.js';

const instance = (uid: string, z: number): DicomJsonDataset => ({
  '00080018': { vr: 'UI', Value: [uid] },
  '00200032': { vr: 'DS', Value: [0, 0, z] },
  '00200037': { vr: 'DS', Value: [1, 0, 0, 0, 1, 0] },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Test^Patient' }] },
  '00080050': { vr: 'SH' },
});

describe('segSourceFromMetadata', () => {
  it('orders the SOP Instance UIDs along the slice normal and reads empty attributes as empty', () => {
    const source = segSourceFromMetadata([instance('1.3', 4), instance('1.1', 0), instance('1.2', 2)]);
    expect(source.sopInstanceUids).toEqual(['1.1', '1.2', '1.3']);
    expect(source.patient.name).toBe('Test^Patient');
    expect(source.study.accessionNumber).toBe('');
    expect(source.study.date).toBeUndefined();
  });

  it('refuses metadata without instances, orientation or positions', () => {
    expect(() => segSourceFromMetadata([])).toThrow(/no instances/);
    const noPosition = { ...instance('1.1', 0), '00200032': { vr: 'DS' } } as DicomJsonDataset;
    const error = (() => {
      try {
        segSourceFromMetadata([instance('1.0', 0), noPosition]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(CdssError.isInstance(error)).toBe(true);
    expect((error as CdssError).code).toBe('INVALID_METADATA');
    expect((error as Error).message).toMatch(/instance 1 .*ImagePositionPatient/);
  });
});
