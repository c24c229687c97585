/**
 * The server's {@link ReportBuilder} over `@cdss/fhir-mapper`: AI results as a FHIR transaction (DiagnosticReport,
 * volume Observations, mCODE TumorSize, ImagingStudy, Device) whose DiagnosticReport status follows the review, and
 * the RANO-style volumetric assessment over a patient's results.
 */
import { analysisToTransaction, assessRano, type RanoCategory } from '@cdss/fhir-mapper';
import type { ApiAnalysis, ApiStudy, Assessment } from '../api-schemas.js';
import type { ReportBuilder } from '../domain/analyses.js';

const STATUS_BY_REVIEW = { pending: 'preliminary', approved: 'final', rejected: 'entered-in-error' } as const;
const CATEGORY: Record<RanoCategory, Assessment['status']> = {
  CR: 'complete-response',
  PR: 'partial-response',
  SD: 'stable',
  PD: 'progression',
  NE: 'not-evaluable',
};

/**
 * The report builder.
 * @param options - the FHIR base of the DICOMweb service (for ImagingStudy endpoints), if any
 */
export function fhirReports(options: { dicomWebUrl?: string } = {}): ReportBuilder {
  return {
    report(analysis: ApiAnalysis, study: ApiStudy | undefined) {
      const result = analysis.result;
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
        volumesMl: { ET: result.volumes.enhancingTumor, TC: result.volumes.tumorCore, WT: result.volumes.wholeTumor },
        largestDiameterMm: result.largestDiameterMm ?? 0,
        model: {
          name: analysis.model.id,
          version: analysis.model.version,
          intendedUse: 'Research and demonstration; not for clinical use',
        },
        timings: { startedAt: analysis.requestedAt, finishedAt: analysis.finishedAt ?? analysis.requestedAt },
        status: STATUS_BY_REVIEW[analysis.review?.status ?? 'pending'],
      });
    },
    assess(patientId, analyses) {
      const usable = analyses.filter((a) => a.status === 'succeeded' && a.result && a.review?.status !== 'rejected');
      const timeline = usable.map((a) => ({
        analysisId: a.id,
        date: a.finishedAt ?? a.requestedAt,
        wholeTumorMl: a.result!.volumes.wholeTumor,
        enhancingTumorMl: a.result!.volumes.enhancingTumor,
      }));
      const [baseline, ...rest] = timeline;
      const current = rest.at(-1);
      if (!baseline || !current || Date.parse(current.date) <= Date.parse(baseline.date)) {
        return {
          patientId,
          status: 'not-evaluable',
          timeline,
          ...(baseline ? { baselineAnalysisId: baseline.analysisId } : {}),
        };
      }
      const point = (t: (typeof timeline)[number]) => ({
        analysisId: t.analysisId,
        date: t.date,
        enhancingMl: t.enhancingTumorMl,
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
        baselineAnalysisId: baseline.analysisId,
        currentAnalysisId: current.analysisId,
        changePercent: Math.round(assessment.changeFromBaselinePct * 10) / 10,
        timeline,
      };
    },
  };
}
