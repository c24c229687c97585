import { describe, expect, it } from 'vitest';
import { landingPath } from './landing';

describe('where a SMART launch opens the dashboard', () => {
  it('opens the analysis a CDS card named, else the patient (with the encounter), else the patient list', () => {
    const patient = 'a365f038-8069-4a91-a2be-d710cbdf93d0';
    expect(landingPath({ patient, appContext: JSON.stringify({ patientId: patient, analysisId: 'job-1' }) })).toBe(
      '/analyses/job-1',
    );
    expect(landingPath({ patient, encounter: 'enc-9' })).toBe(`/patients/${patient}?encounter=enc-9`);
    expect(landingPath({ patient, appContext: 'not json' })).toBe(`/patients/${patient}`);
    expect(landingPath({ patient: '../admin' })).toBe('/patients');
    expect(landingPath({})).toBe('/patients');
  });
});
