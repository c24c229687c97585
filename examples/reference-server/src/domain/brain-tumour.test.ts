import { describe, expect, it } from 'vitest';
import type { ServiceRequest } from 'fhir/r4.js';
import {
  hasTumourProtocol,
  isBrainMriOrder,
  isBrainTumourCondition,
  isBrainTumourProblem,
  withTumourProtocol,
} from './brain-tumour.js';

describe('brain-tumour matching', () => {
  it('recognises problems by ICD-10, SNOMED CT, OpenEMR diagnosis strings and titles', () => {
    const icd = (code: string) => ({ codings: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code }] });
    expect(['C71.9', 'C79.31', 'D33.2', 'D43.0', 'D32.0', 'C70.0'].map((c) => isBrainTumourProblem(icd(c)))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(['C34.1', 'D33.3', 'G40.909'].map((c) => isBrainTumourProblem(icd(c)))).toEqual([false, false, false]);
    expect(isBrainTumourProblem({ codings: [{ system: 'http://snomed.info/sct', code: '393563007' }] })).toBe(true);
    expect(isBrainTumourProblem({ text: 'Cerebral oedema ICD10:G93.6' })).toBe(false);
    expect(isBrainTumourProblem({ text: 'Right temporal mass ICD10:C71.2' })).toBe(true);
    expect(isBrainTumourProblem({ text: 'Oligodendroglioma, IDH-mutant, WHO grade 2' })).toBe(true);
    expect(isBrainTumourProblem({ text: 'Essential hypertension' })).toBe(false);
  });

  it('ignores resolved and refuted conditions', () => {
    const code = { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C71.9' }] };
    const subject = { reference: 'Patient/1' };
    expect(isBrainTumourCondition({ resourceType: 'Condition', subject, code })).toBe(true);
    expect(
      isBrainTumourCondition({
        resourceType: 'Condition',
        subject,
        code,
        clinicalStatus: { coding: [{ code: 'resolved' }] },
      }),
    ).toBe(false);
    expect(
      isBrainTumourCondition({
        resourceType: 'Condition',
        subject,
        code,
        verificationStatus: { coding: [{ code: 'entered-in-error' }] },
      }),
    ).toBe(false);
  });

  it('recognises brain MRI orders by LOINC, CPT or text, and adds the protocol once', () => {
    const order = (code: ServiceRequest['code']): ServiceRequest => ({
      resourceType: 'ServiceRequest',
      status: 'draft',
      intent: 'order',
      subject: { reference: 'Patient/1' },
      code,
    });
    expect(isBrainMriOrder(order({ coding: [{ system: 'http://loinc.org', code: '24590-2' }] }))).toBe(true);
    expect(isBrainMriOrder(order({ coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '70553' }] }))).toBe(
      true,
    );
    expect(isBrainMriOrder(order({ text: 'MRI head with and without contrast' }))).toBe(true);
    expect(isBrainMriOrder(order({ text: 'CT head' }))).toBe(false);
    expect(isBrainMriOrder(order({ text: 'MRI lumbar spine' }))).toBe(false);
    const mri = order({ text: 'MRI brain' });
    const protocol = withTumourProtocol(mri);
    expect([hasTumourProtocol(mri), hasTumourProtocol(protocol)]).toEqual([false, true]);
    expect(protocol.code?.coding?.map((c) => c.code)).toEqual(['24590-2']);
    expect(protocol.orderDetail).toHaveLength(5);
  });
});
