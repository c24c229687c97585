import { describe, expect, it } from 'vitest';
import type { ApiAnalysis, AuditRecord } from '@cdss/client';
import { ageOn } from '../PatientBanner';
import { auditCsv, auditTime } from './Audit';
import { statusKind } from './PatientPage';
import { waitingTime } from './Review';

describe('screens’ formatting', () => {
  it('shows audit times to the second and exports RFC 4180 CSV', () => {
    expect(auditTime('2026-12-06T19:33:22.123Z')).toBe('2026-12-06 19:33:22Z');
    const record: AuditRecord = {
      id: '1',
      time: '2026-12-06T19:33:22.123Z',
      userId: 'u',
      userName: 'Dr. "Quote", Jr',
      roles: ['radiologist'],
      action: 'read',
      resource: 'Patient/p1',
      outcome: 'success',
      requestId: 'r',
      patientId: 'p1',
    };
    const [header, row] = auditCsv([record]).split('\r\n');
    expect(header).toBe('"time","user_id","user_name","roles","action","resource","patient_id","outcome","request_id"');
    expect(row).toContain('"Dr. ""Quote"", Jr"');
  });

  it('counts age in whole years and waiting time for people', () => {
    expect(ageOn('1970-05-06', new Date('2026-05-05T12:00:00Z'))).toBe(55);
    expect(ageOn('1970-05-06', new Date('2026-05-06T12:00:00Z'))).toBe(56);
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(waitingTime('2026-12-06T11:55:00Z', now)).toBe('5 min');
    expect(waitingTime('2026-12-06T08:50:00Z', now)).toBe('3 h 10 min');
    expect(waitingTime('2026-12-04T08:00:00Z', now)).toBe('2 d 4 h');
  });

  it('gives each state its own badge, flagged before pending', () => {
    const base = {
      status: 'succeeded',
      result: { flags: [] },
      review: { status: 'pending' },
    } as unknown as ApiAnalysis;
    expect(statusKind(base)).toBe('pending');
    expect(statusKind({ ...base, result: { ...base.result!, flags: [{ code: 'x', message: 'm' }] } })).toBe('flagged');
    expect(statusKind({ ...base, review: { status: 'approved' } })).toBe('approved');
    expect(statusKind({ ...base, review: { status: 'rejected' } })).toBe('rejected');
    expect(statusKind({ ...base, status: 'failed' })).toBe('failed');
    expect(statusKind({ ...base, status: 'cancelled' })).toBe('cancelled');
    expect(statusKind({ ...base, status: 'running' })).toBe('running');
  });
});
