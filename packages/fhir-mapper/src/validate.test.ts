import { ValidationError } from '@cdss/core';
import type { Patient } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { assertValidFhir, fhirIssues } from './validate.js';

describe('fhirIssues / assertValidFhir', () => {
  it('finds no issue in a valid resource', () => {
    const patient: Patient = { resourceType: 'Patient', active: true, name: [{ family: 'Doe' }] };
    expect(fhirIssues(patient)).toEqual([]);
    expect(() => assertValidFhir(patient)).not.toThrow();
  });

  it('lists every structural problem with its path (Medplum 5 throws them; they come back as issues)', () => {
    const patient = { resourceType: 'Patient', active: 'yes', foo: 1 } as unknown as Patient;
    expect(fhirIssues(patient)).toEqual([
      { path: 'Patient.active', message: 'Invalid JSON type: expected boolean, but got string', code: 'structure' },
      { path: 'Patient.foo', message: 'Invalid additional property "foo"', code: 'structure' },
    ]);
    expect(() => assertValidFhir(patient)).toThrow(ValidationError);
  });
});
