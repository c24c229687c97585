/** A study: its series in the slice viewer, a link to an external viewer, and analysis requests. */
import type { ApiStudy } from '@cdss/client';
import { useState } from 'react';
import { describeError, useLoad } from '../hooks';
import { PatientBanner } from '../PatientBanner';
import { Link, navigate } from '../router';
import { useSession } from '../session';
import { ErrorNote, formatDate, Loading, Section } from '../ui';
import { Viewer } from '../viewer';
import { AnalysisList } from './PatientPage';

/** Series that hold images (not the AI's SEG objects). */
export function imageSeries(study: ApiStudy): ApiStudy['series'] {
  return study.series.filter((s) => s.modality !== 'SEG' && s.modality !== 'SR');
}

/** The series to show under an overlay: contrast-enhanced T1 when there is one. */
export function preferredSeries(study: ApiStudy): ApiStudy['series'][number] | undefined {
  const images = imageSeries(study);
  return images.find((s) => /t1\s*-?(c|ce|gd|post)|contrast/i.test(s.description ?? '')) ?? images[0];
}

/**
 * The link to an external viewer (OHIF, Orthanc's viewer), from the build's `VITE_EXTERNAL_VIEWER_URL` template.
 * @param studyUid - replaces `{studyUid}` in the template
 */
export function externalViewerUrl(studyUid: string): string | undefined {
  const template = import.meta.env['VITE_EXTERNAL_VIEWER_URL'] as string | undefined;
  return template ? template.replaceAll('{studyUid}', encodeURIComponent(studyUid)) : undefined;
}

/** The study screen. */
export function StudyPage({ patientId, studyUid }: { patientId: string; studyUid: string }) {
  const { client, can } = useSession();
  const study = useLoad(() => client.studies.get(studyUid), [client, studyUid]);
  const analyses = useLoad(() => client.analyses.list({ patient: patientId }), [client, patientId]);
  const studies = useLoad(() => client.patients.studies(patientId), [client, patientId]);
  const [seriesUid, setSeriesUid] = useState<string | undefined>();
  const [requesting, setRequesting] = useState(false);
  const [requestError, setRequestError] = useState<string | undefined>();

  async function requestAnalysis(): Promise<void> {
    setRequesting(true);
    setRequestError(undefined);
    try {
      const accepted = await client.analyses.request(studyUid, { patientId });
      navigate(`/analyses/${encodeURIComponent(accepted.id)}`);
    } catch (e) {
      setRequestError(describeError(e));
      setRequesting(false);
    }
  }

  const s = study.data;
  const images = s ? imageSeries(s) : [];
  const current = images.find((x) => x.uid === seriesUid) ?? (s ? preferredSeries(s) : undefined);
  const external = externalViewerUrl(studyUid);
  // The newest other study of the patient from no later than this one, for the prior/current comparison.
  const prior = studies.data?.items
    .filter((x) => x.uid !== studyUid && s?.date !== undefined && (x.date ?? '') <= s.date)
    .sort((x, y) => (y.date ?? '').localeCompare(x.date ?? ''))[0];
  const ofStudy = analyses.data?.items.filter((a) => a.studyUid === studyUid) ?? [];

  return (
    <main id="main">
      <PatientBanner patientId={patientId} study={study.data} />
      <p className="crumbs">
        <Link to="/patients">Patients</Link> › <Link to={`/patients/${encodeURIComponent(patientId)}`}>Patient</Link> ›
      </p>
      {study.loading && <Loading what="study" />}
      {study.error && <ErrorNote message={study.error} retry={study.reload} />}
      {s && (
        <>
          <h1>
            {s.description ?? 'Study'} <span className="muted">{formatDate(s.date)}</span>
          </h1>
          <div className="toolbar">
            {can('analysis:request') && (
              <button type="button" className="primary" onClick={() => void requestAnalysis()} disabled={requesting}>
                {requesting ? 'Requesting…' : 'Request analysis'}
              </button>
            )}
            {prior && (
              <Link
                to={`/patients/${encodeURIComponent(patientId)}/compare/${encodeURIComponent(prior.uid)}/${encodeURIComponent(studyUid)}`}
              >
                Compare with the prior study ({formatDate(prior.date)})
              </Link>
            )}
            {external && (
              <a href={external} target="_blank" rel="noreferrer noopener">
                Open in external viewer ↗
              </a>
            )}
          </div>
          {requestError && <ErrorNote message={requestError} />}
          <div className="stack">
            <Section title="Viewer">
              {images.length > 1 && (
                <p>
                  <label htmlFor="series-select">Series </label>
                  <select id="series-select" value={current?.uid} onChange={(e) => setSeriesUid(e.target.value)}>
                    {images.map((x) => (
                      <option key={x.uid} value={x.uid}>
                        {x.description ?? x.uid} ({x.modality ?? '?'})
                      </option>
                    ))}
                  </select>
                </p>
              )}
              {current ? (
                <Viewer
                  key={current.uid}
                  studyUid={studyUid}
                  seriesUid={current.uid}
                  label={current.description ?? 'Series'}
                />
              ) : (
                <p>No image series in this study.</p>
              )}
            </Section>
            <Section title="Analyses of this study">
              {analyses.loading && <Loading what="analyses" />}
              {analyses.error && <ErrorNote message={analyses.error} retry={analyses.reload} />}
              {analyses.data && ofStudy.length === 0 && <p className="muted">None yet.</p>}
              <AnalysisList analyses={ofStudy} />
            </Section>
          </div>
        </>
      )}
    </main>
  );
}
