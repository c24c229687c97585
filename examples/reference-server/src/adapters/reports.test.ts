import { describe, expect, it } from 'vitest';
import type { DiagnosticReport, Observation, Provenance } from 'fhir/r4.js';
import type { ApiAnalysis, ApiStudy } from '../api-schemas.js';
import { fhirReports, timelineByScanDate } from './reports.js';

const PATIENT = '9b5c6a7e-1f2d-4c3b-8a9e-0d1c2b3a4f5e';
let n = 0;

/** An analysis of `studyUid`, requested and finished at the given times, with ET/WT volumes. */
function analysis(
  studyUid: string,
  etMl: number,
  times: { requested: string; finished?: string },
  extra: Partial<ApiAnalysis> = {},
): ApiAnalysis {
  n++;
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    patientId: PATIENT,
    studyUid,
    status: 'succeeded',
    requestedBy: 'clinician',
    requestedAt: times.requested,
    finishedAt: times.finished ?? times.requested,
    model: { id: 'demo', version: '1.0.0' },
    result: {
      volumes: { enhancingTumor: etMl, tumorCore: etMl * 1.5, wholeTumor: etMl * 3 },
      segSeriesUid: `${studyUid}.90`,
      segInstanceUid: `${studyUid}.90.1`,
      flags: [],
    },
    review: { status: 'pending' },
    ...extra,
  };
}

const study = (uid: string, date: string, time?: string): ApiStudy => ({
  uid,
  date,
  ...(time ? { time } : {}),
  modalities: ['MR'],
  series: [],
});

const studies = (...list: ApiStudy[]): Map<string, ApiStudy> => new Map(list.map((s) => [s.uid, s]));
const A = '1.2.826.0.1.3680043.8.498.101';
const B = '1.2.826.0.1.3680043.8.498.102';
const C = '1.2.826.0.1.3680043.8.498.103';

describe('the timeline by scan date', () => {
  const reports = fhirReports();

  it('orders timepoints by StudyDate even when the older study was analysed last', () => {
    // the January scan is analysed in May, after the April scan: baseline is still January
    const april = analysis(B, 5, { requested: '2026-05-01T10:00:00Z' });
    const january = analysis(A, 10, { requested: '2026-05-02T10:00:00Z' });
    const assessment = reports.assess(
      PATIENT,
      [april, january],
      studies(study(A, '2026-01-10'), study(B, '2026-04-10')),
    );
    expect(assessment.timeline.map((t) => [t.date, t.analysisId])).toEqual([
      ['2026-01-10', january.id],
      ['2026-04-10', april.id],
    ]);
    expect(assessment).toMatchObject({
      baselineAnalysisId: january.id,
      currentAnalysisId: april.id,
      status: 'stable',
      changePercent: -50,
      criteria: 'volumetric',
    });
  });

  it('lets a re-run supersede earlier runs of the same study: one timepoint per study', () => {
    const first = analysis(A, 10, { requested: '2026-02-01T10:00:00Z' });
    const rerun = analysis(A, 11, { requested: '2026-02-03T10:00:00Z' });
    const follow = analysis(B, 20, { requested: '2026-05-01T10:00:00Z' });
    const assessment = reports.assess(
      PATIENT,
      [rerun, follow, first],
      studies(study(A, '2026-01-10'), study(B, '2026-04-10')),
    );
    expect(assessment.timeline).toHaveLength(2);
    expect(assessment.timeline[0]).toMatchObject({
      analysisId: rerun.id,
      supersedes: [first.id],
      enhancingTumorMl: 11,
    });
    expect(assessment.status).toBe('progression');
  });

  it('skips a rejected middle timepoint and falls back to an earlier run of a study whose re-run was rejected', () => {
    const base = analysis(A, 10, { requested: '2026-01-11T10:00:00Z' });
    const middle = analysis(B, 2, { requested: '2026-04-11T10:00:00Z' }, { review: { status: 'rejected' } });
    const current = analysis(C, 12, { requested: '2026-07-11T10:00:00Z' });
    const rejectedRerun = analysis(
      C,
      30,
      { requested: '2026-07-12T10:00:00Z' },
      { review: { status: 'rejected', comment: 'motion' } },
    );
    const assessment = reports.assess(
      PATIENT,
      [base, middle, current, rejectedRerun],
      studies(study(A, '2026-01-10'), study(B, '2026-04-10'), study(C, '2026-07-10')),
    );
    expect(assessment.timeline.map((t) => t.analysisId)).toEqual([base.id, current.id]);
    // nadir is the baseline (10 mL), not the rejected 2 mL: 12 mL is stable, not a +500 % progression
    expect(assessment.status).toBe('stable');
  });

  it('keeps two studies of the same day apart, ordered by StudyTime', () => {
    const morning = analysis(A, 10, { requested: '2026-03-02T10:00:00Z' });
    const evening = analysis(B, 15, { requested: '2026-03-01T20:00:00Z' });
    const timeline = timelineByScanDate(
      [evening, morning],
      studies(study(A, '2026-03-01', '08:15:00'), study(B, '2026-03-01', '17:40:00')),
    );
    expect(timeline.map((t) => t.date)).toEqual(['2026-03-01T08:15:00', '2026-03-01T17:40:00']);
    expect(
      reports.assess(
        PATIENT,
        [evening, morning],
        studies(study(A, '2026-03-01', '08:15:00'), study(B, '2026-03-01', '17:40:00')),
      ).status,
    ).toBe('progression');
  });

  it('is not evaluable for two same-day studies without a StudyTime, and leaves out studies without a scan date', () => {
    const one = analysis(A, 10, { requested: '2026-03-02T10:00:00Z' });
    const two = analysis(B, 30, { requested: '2026-03-03T10:00:00Z' });
    const undated = analysis(C, 30, { requested: '2026-03-04T10:00:00Z' });
    const assessment = reports.assess(
      PATIENT,
      [one, two, undated],
      new Map([
        [A, study(A, '2026-03-01')],
        [B, study(B, '2026-03-01')],
        [C, undefined],
      ]),
    );
    expect(assessment.timeline.map((t) => t.studyUid)).toEqual([A, B]);
    expect(assessment.status).toBe('not-evaluable');
  });

  it('uses the bidimensional criteria when every timepoint has a sum of products, and says so', () => {
    const withSpd = (a: ApiAnalysis, spd: number): ApiAnalysis => ({
      ...a,
      result: { ...a.result!, sumOfProductsMm2: spd },
    });
    const base = withSpd(analysis(A, 10, { requested: '2026-01-11T10:00:00Z' }), 800);
    const current = withSpd(analysis(B, 9, { requested: '2026-04-11T10:00:00Z' }), 380);
    const assessment = reports.assess(
      PATIENT,
      [base, current],
      studies(study(A, '2026-01-10'), study(B, '2026-04-10')),
    );
    expect(assessment).toMatchObject({
      status: 'partial-response',
      criteria: 'bidimensional',
      sumOfProductsChangePercent: -52.5,
      confirmed: false,
    });
  });
});

describe('the FHIR report', () => {
  const reports = fhirReports();
  const resources = (a: ApiAnalysis) => (reports.report(a, study(A, '2026-01-10')).entry ?? []).map((e) => e.resource!);

  it('creates the Patient in the same transaction and points every subject at it', () => {
    const bundle = reports.report(analysis(A, 10, { requested: '2026-01-11T10:00:00Z' }), study(A, '2026-01-10'));
    const patient = bundle.entry!.find((e) => e.resource?.resourceType === 'Patient')!;
    expect(patient.request).toMatchObject({ method: 'POST', ifNoneExist: expect.stringContaining(PATIENT) });
    const report = bundle.entry!.find((e) => e.resource?.resourceType === 'DiagnosticReport')!
      .resource as DiagnosticReport;
    expect(report.subject).toEqual({ reference: patient.fullUrl });
  });

  it('marks a flagged result with a note and an indeterminate interpretation', () => {
    const flagged = analysis(A, 10, { requested: '2026-01-11T10:00:00Z' });
    flagged.result!.flags = [{ code: 'fov-edge', message: 'the whole tumour reaches the edge' }];
    const list = resources(flagged);
    const volume = list.find((r) => r.resourceType === 'Observation') as Observation;
    expect(volume.interpretation?.[0]?.coding?.[0]?.code).toBe('IND');
    expect(volume.note?.[0]?.text).toContain('fov-edge');
    const report = list.find((r) => r.resourceType === 'DiagnosticReport') as DiagnosticReport;
    expect(report.conclusion).toMatch(/^FLAGGED FOR REVIEW/);
  });

  it('records who approved in a Provenance once the result is approved', () => {
    const approved = analysis(
      A,
      10,
      { requested: '2026-01-11T10:00:00Z' },
      { review: { status: 'approved', reviewer: 'rad-1', reviewedAt: '2026-01-12T09:00:00.000Z', comment: 'ok' } },
    );
    const provenance = resources(approved).find((r) => r.resourceType === 'Provenance') as Provenance;
    expect(provenance.agent[0]?.who?.identifier?.value).toBe('rad-1');
    expect(provenance.recorded).toBe('2026-01-12T09:00:00.000Z');
    expect(
      resources(analysis(A, 10, { requested: '2026-01-11T10:00:00Z' })).some((r) => r.resourceType === 'Provenance'),
    ).toBe(false);
  });

  it('amends the approved report in place when a corrected re-run of the study is approved', () => {
    const approval = { status: 'approved' as const, reviewer: 'rad-1', reviewedAt: '2026-01-12T09:00:00.000Z' };
    const first = analysis(A, 10, { requested: '2026-01-11T10:00:00Z' }, { review: approval });
    const rerun = analysis(
      A,
      12,
      { requested: '2026-01-13T10:00:00Z' },
      { review: { ...approval, reviewedAt: '2026-01-14T09:00:00.000Z', comment: 'corrected' } },
    );
    rerun.result!.segInstanceUid = `${A}.91.1`;
    const original = reports.report(first, study(A, '2026-01-10'));
    const amended = reports.report(rerun, study(A, '2026-01-10'), first);
    const byType = (b: typeof original, type: string) =>
      (b.entry ?? []).filter((e) => e.resource?.resourceType === type);
    const [report] = byType(amended, 'DiagnosticReport');
    expect((report!.resource as DiagnosticReport).status).toBe('amended');
    // the same DiagnosticReport and Observations (conditional updates on the same identifiers), not second ones
    expect(report!.request?.url).toBe(byType(original, 'DiagnosticReport')[0]!.request?.url);
    expect(byType(amended, 'Observation').map((e) => e.request?.url)).toEqual(
      byType(original, 'Observation').map((e) => e.request?.url),
    );
    const volume = byType(amended, 'Observation')[0]!.resource as Observation;
    expect([volume.status, volume.valueQuantity?.value]).toEqual(['amended', 12]);
    expect((byType(amended, 'Provenance')[0]!.resource as Provenance).reason?.[0]?.text).toBe('corrected');
  });
});
