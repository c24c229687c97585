/**
 * The server's {@link ReportBuilder} over `@cdss/fhir-mapper`: AI results as a FHIR transaction (Patient, DiagnosticReport,
 * volume Observations, mCODE TumorSize, ImagingStudy with the SEG and SR series, Device, and a Provenance once
 * approved) whose DiagnosticReport status follows the review, and the RANO assessment (bidimensional when the
 * results carry lesion diameters, volumetric otherwise) over the patient's studies in scan-date order.
 */
import { analysisToTransaction, assessRano, type RanoCategory } from '@cdss/fhir-mapper';
import type { ApiAnalysis, ApiStudy, Assessment } from '../api-schemas.js';

type Timepoint = Assessment['timeline'][number];
import type { ReportBuilder } from '../domain/analyses.js';

const STATUS_BY_REVIEW = { pending: 'preliminary', approved: 'final', rejected: 'entered-in-error' } as const;
const CATEGORY: Record<RanoCategory, Assessment['status']> = {
  CR: 'complete-response',
  PR: 'partial-response',
  SD: 'stable',
  PD: 'progression',
  NE: 'not-evaluable',
};

const round1 = (x: number): number => Math.round(x * 10) / 10;

/**
 * When a study was scanned: DICOM StudyDate, with StudyTime when known, as an ISO local date-time (the scanner's
 * clock; DICOM gives no zone unless TimezoneOffsetFromUTC is set, and every study of a patient shares the scanner's).
 */
export function scanDate(study: ApiStudy | undefined): string | undefined {
  if (!study?.date) return undefined;
  return study.time ? `${study.date}T${study.time}` : study.date;
}

/** Which run of a study is the newer: requested later, then finished later. */
function newerRun(a: ApiAnalysis, b: ApiAnalysis): boolean {
  return (
    a.requestedAt.localeCompare(b.requestedAt) > 0 ||
    (a.requestedAt === b.requestedAt && (a.finishedAt ?? '').localeCompare(b.finishedAt ?? '') > 0)
  );
}

/**
 * The timeline by scan date (RANO counts scans, not computations): one timepoint per study, represented by its latest
 * succeeded, non-rejected analysis (a re-run supersedes the earlier runs), in StudyDate/StudyTime order. A study
 * whose scan date is unknown (not in the PACS, no StudyDate) cannot be placed and is left out.
 * @param analyses - the patient's analyses, any order
 * @param studies - the studies by StudyInstanceUID, as the PACS describes them
 */
export function timelineByScanDate(
  analyses: readonly ApiAnalysis[],
  studies: ReadonlyMap<string, ApiStudy | undefined>,
): Timepoint[] {
  const runs = new Map<string, ApiAnalysis[]>();
  for (const a of analyses) {
    if (a.status !== 'succeeded' || !a.result || a.review?.status === 'rejected') continue;
    runs.set(a.studyUid, [...(runs.get(a.studyUid) ?? []), a]);
  }
  const timeline: Timepoint[] = [];
  for (const [studyUid, list] of runs) {
    const date = scanDate(studies.get(studyUid));
    if (!date) continue;
    const latest = list.reduce((best, a) => (newerRun(a, best) ? a : best));
    const result = latest.result!;
    const superseded = list.filter((a) => a !== latest).map((a) => a.id);
    timeline.push({
      analysisId: latest.id,
      studyUid,
      date,
      wholeTumorMl: result.volumes.wholeTumor,
      enhancingTumorMl: result.volumes.enhancingTumor,
      ...(result.sumOfProductsMm2 !== undefined ? { sumOfProductsMm2: result.sumOfProductsMm2 } : {}),
      ...(superseded.length > 0 ? { supersedes: superseded } : {}),
    });
  }
  // Same-day studies without a StudyTime compare equal; the UID keeps the order stable.
  return timeline.sort((a, b) => Date.parse(a.date) - Date.parse(b.date) || a.studyUid.localeCompare(b.studyUid));
}

/**
 * The report builder.
 * @param options - the FHIR base of the DICOMweb service (for ImagingStudy endpoints), if any
 */
export function fhirReports(options: { dicomWebUrl?: string } = {}): ReportBuilder {
  return {
    report(analysis: ApiAnalysis, study: ApiStudy | undefined, amends?: ApiAnalysis) {
      const result = analysis.result;
      const review = analysis.review;
      if (!result) throw new Error(`analysis ${analysis.id} has no result`);
      return analysisToTransaction({
        analysisId: analysis.id,
        patientUuid: analysis.patientId,
        study: {
          studyInstanceUid: analysis.studyUid,
          ...(study?.date ? { started: study.date } : {}),
          ...(study?.description ? { description: study.description } : {}),
          ...(options.dicomWebUrl ? { dicomWebUrl: options.dicomWebUrl } : {}),
          series: (study?.series.length
            ? study.series
            : [{ uid: result.segSeriesUid ?? analysis.studyUid, modality: 'SEG' }]
          ).map((s) => ({
            seriesInstanceUid: s.uid,
            modality: s.modality ?? 'MR',
            ...(s.number !== undefined ? { number: s.number } : {}),
            ...(s.description ? { description: s.description } : {}),
            ...(s.instances !== undefined ? { numberOfInstances: s.instances } : {}),
          })),
        },
        segmentation: { seriesInstanceUid: result.segSeriesUid, sopInstanceUid: result.segInstanceUid },
        ...(result.srSeriesUid && result.srInstanceUid
          ? { structuredReport: { seriesInstanceUid: result.srSeriesUid, sopInstanceUid: result.srInstanceUid } }
          : {}),
        volumesMl: { ET: result.volumes.enhancingTumor, TC: result.volumes.tumorCore, WT: result.volumes.wholeTumor },
        largestDiameterMm: result.largestDiameterMm ?? 0,
        ...(result.lesions ? { lesionCount: result.lesions.length } : {}),
        ...(result.sumOfProductsMm2 !== undefined ? { sumOfProductsMm2: result.sumOfProductsMm2 } : {}),
        flags: result.flags,
        model: {
          name: analysis.model.id,
          version: analysis.model.version,
          intendedUse: 'Research and demonstration; not for clinical use',
        },
        timings: { startedAt: analysis.requestedAt, finishedAt: analysis.finishedAt ?? analysis.requestedAt },
        status: amends ? 'amended' : STATUS_BY_REVIEW[review?.status ?? 'pending'],
        ...(amends?.result?.segInstanceUid
          ? { amends: { analysisId: amends.id, segSopInstanceUid: amends.result.segInstanceUid } }
          : {}),
        ...(review?.status === 'approved' && review.reviewer && review.reviewedAt
          ? {
              approval: {
                reviewer: review.reviewer,
                reviewedAt: review.reviewedAt,
                ...(review.comment ? { comment: review.comment } : {}),
              },
            }
          : {}),
      });
    },
    assess(patientId, analyses, studies) {
      const timeline = timelineByScanDate(analyses, studies);
      const [baseline, ...rest] = timeline;
      const current = rest.at(-1);
      const notEvaluable = (reason: string): Assessment => ({
        patientId,
        status: 'not-evaluable',
        reasons: [reason],
        timeline,
        ...(baseline ? { baselineAnalysisId: baseline.analysisId } : {}),
      });
      if (!baseline) return notEvaluable('no analysed study');
      if (!current) return notEvaluable('one timepoint: a follow-up scan is needed');
      if (Date.parse(current.date) <= Date.parse(baseline.date))
        return notEvaluable('the latest scan is not later than the baseline');
      const point = (t: Timepoint) => ({
        analysisId: t.analysisId,
        date: t.date,
        enhancingMl: t.enhancingTumorMl,
        ...(t.sumOfProductsMm2 !== undefined ? { sumOfProductsMm2: t.sumOfProductsMm2 } : {}),
      });
      const assessment = assessRano({
        patientUuid: patientId,
        baseline: point(baseline),
        previous: rest.slice(0, -1).map(point),
        current: point(current),
      });
      return {
        patientId,
        status: CATEGORY[assessment.category],
        criteria: assessment.criteria,
        confirmed: assessment.confirmed,
        baselineAnalysisId: baseline.analysisId,
        currentAnalysisId: current.analysisId,
        changePercent: round1(assessment.changeFromBaselinePct),
        changeFromNadirPercent: round1(assessment.changeFromNadirPct),
        ...(assessment.sumOfProducts
          ? { sumOfProductsChangePercent: round1(assessment.sumOfProducts.changeFromBaselinePct) }
          : {}),
        reasons: assessment.reasons,
        timeline,
      };
    },
  };
}
