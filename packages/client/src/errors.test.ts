import { describe, expect, it } from 'vitest';
import { CdssApiError, duplicateCandidates } from './errors.js';

describe('duplicateCandidates', () => {
  it('reads the contained patients of a 409 duplicate, and nothing from other errors', () => {
    const error = new CdssApiError(409, 'POST /api/patients: 409', [{ code: 'duplicate', diagnostics: 'exists' }], {
      contained: [
        {
          resourceType: 'Patient',
          id: 'p1',
          identifier: [{ value: '12' }],
          name: [{ family: 'Rossi', given: ['Maria'] }],
          birthDate: '1970-01-02',
          gender: 'female',
        },
        { resourceType: 'Observation', id: 'o1' },
      ],
    });
    expect(duplicateCandidates(error)).toEqual([
      { id: 'p1', pid: '12', givenName: 'Maria', familyName: 'Rossi', birthDate: '1970-01-02', sex: 'female' },
    ]);
    expect(duplicateCandidates(new CdssApiError(409, 'conflict', [{ code: 'conflict' }]))).toEqual([]);
    expect(duplicateCandidates(new Error('x'))).toEqual([]);
  });
});
