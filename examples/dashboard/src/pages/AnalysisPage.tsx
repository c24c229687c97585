/**
 * One analysis: live progress over the WebSocket, the result (volumes per region, the report's conclusion, the
 * overlay), the patient's timeline, and the radiologist's review.
 */
import type { ApiAnalysis, Measurement } from '@cdss/client';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useEventListener, useEvents } from '../events';
import { describeError, useLoad } from '../hooks';
import { PatientBanner } from '../PatientBanner';
import { Link } from '../router';
import { useSession } from '../session';
import { Timeline } from '../Timeline';
import { ErrorNote, formatDate, formatMl, Loading, Section } from '../ui';
import { AnalysisStatus } from './PatientPage';
import { preferredSeries } from './StudyPage';
import { Viewer } from '../viewer';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

function Progress({ analysis }: { analysis: ApiAnalysis }) {
  const percent = analysis.status === 'succeeded' ? 100 : Math.round(analysis.percent ?? 0);
  return (
    <div className="progress-block">
      <div
        className="progress"
        role="progressbar"
        aria-label="Analysis progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={`${percent}%, ${analysis.status === 'succeeded' ? 'complete' : (analysis.stage ?? analysis.status)}`}
      >
        <div className="progress-bar" style={{ width: `${percent}%` }} />
      </div>
      <p aria-live="polite">
        <span data-testid="progress-percent">{percent}%</span> ·{' '}
        {analysis.status === 'succeeded' ? 'complete' : (analysis.stage ?? analysis.status)}
      </p>
    </div>
  );
}

function ReviewPanel({ analysis, onDone }: { analysis: ApiAnalysis; onDone: (a: ApiAnalysis) => void }) {
  const { client } = useSession();
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  async function decide(decision: 'approve' | 'reject'): Promise<void> {
    if (decision === 'reject' && !comment.trim()) {
      setError('A rejection needs a comment.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      onDone(
        await client.analyses.review(analysis.id, { decision, ...(comment.trim() ? { comment: comment.trim() } : {}) }),
      );
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }
  const submit = (event: FormEvent): void => event.preventDefault();
  return (
    <form className="review" onSubmit={submit}>
      <label htmlFor="review-comment">Comment (required to reject)</label>
      <textarea
        id="review-comment"
        rows={3}
        value={comment}
        onChange={(e) => setComment(e.target.value)}
        maxLength={2000}
      />
      {error && <ErrorNote message={error} />}
      <div className="toolbar">
        <button type="button" className="primary" disabled={busy} onClick={() => void decide('approve')}>
          Approve
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void decide('reject')}>
          Reject
        </button>
      </div>
    </form>
  );
}

/** The analysis screen. */
export function AnalysisPage({ id }: { id: string }) {
  const { client, can } = useSession();
  const loaded = useLoad(() => client.analyses.get(id), [client, id]);
  const [analysis, setAnalysis] = useState<ApiAnalysis | undefined>();
  useEffect(() => {
    setAnalysis(loaded.data);
  }, [loaded.data]);
  const a = analysis;
  const succeeded = a?.status === 'succeeded';
  const study = useLoad(async () => (a ? client.studies.get(a.studyUid) : undefined), [client, a?.studyUid]);
  const measurementStore = useMemo(
    () => ({
      load: async () => (await client.analyses.measurements(id)).items,
      save: async (items: Measurement[]) => void (await client.analyses.saveMeasurements(id, items)),
      editable: can('analysis:review'),
    }),
    [client, id, can],
  );
  const assessment = useLoad(
    async () => (a && succeeded ? client.patients.assessment(a.patientId) : undefined),
    [client, a?.patientId, succeeded],
  );
  const report = useLoad(async () => (succeeded ? client.analyses.report(id) : undefined), [client, id, succeeded]);
  const [cancelError, setCancelError] = useState<string | undefined>();

  const { status: liveStatus } = useEvents();
  useEventListener(
    `analysis:${id}`,
    (event) => {
      if (event.analysisId !== id) return;
      if (event.type === 'analysis.progress') {
        const data = event.data as { status?: ApiAnalysis['status']; stage?: string; percent?: number };
        setAnalysis((old) =>
          old && !FINISHED.has(old.status)
            ? {
                ...old,
                ...(data.status ? { status: data.status } : {}),
                ...(data.stage ? { stage: data.stage } : {}),
                ...(typeof data.percent === 'number' ? { percent: data.percent } : {}),
              }
            : old,
        );
      } else if (event.type === 'analysis.completed' || event.type === 'analysis.failed') {
        loaded.reload();
      }
    },
    loaded.reload,
  );

  // The WebSocket carries progress and replays what a reconnect missed; only while it is down does a slow poll
  // stand in for it.
  const running = a !== undefined && !FINISHED.has(a.status);
  const reload = loaded.reload;
  useEffect(() => {
    if (!running || liveStatus === 'open') return;
    const timer = setInterval(reload, 5_000);
    return () => clearInterval(timer);
  }, [running, reload, liveStatus]);

  async function cancel(): Promise<void> {
    setCancelError(undefined);
    try {
      setAnalysis(await client.analyses.cancel(id));
    } catch (e) {
      setCancelError(describeError(e));
    }
  }

  const conclusion =
    a?.result?.conclusion ??
    (
      report.data?.entry?.map((e) => e.resource).find((r) => r?.resourceType === 'DiagnosticReport') as
        { conclusion?: string } | undefined
    )?.conclusion;
  const series = study.data ? preferredSeries(study.data) : undefined;

  return (
    <main id="main">
      {a && <PatientBanner patientId={a.patientId} study={study.data} />}
      {a && (
        <p className="crumbs">
          <Link to="/patients">Patients</Link> ›{' '}
          <Link to={`/patients/${encodeURIComponent(a.patientId)}`}>Patient</Link> ›{' '}
          <Link to={`/patients/${encodeURIComponent(a.patientId)}/studies/${encodeURIComponent(a.studyUid)}`}>
            Study
          </Link>{' '}
          ›
        </p>
      )}
      <h1>
        Analysis <span className="print-only">report</span>
      </h1>
      {a && (
        <div className="toolbar">
          <button type="button" onClick={() => window.print()}>
            Print report
          </button>
        </div>
      )}
      {loaded.loading && !a && <Loading what="analysis" />}
      {loaded.error && <ErrorNote message={loaded.error} retry={loaded.reload} />}
      {a && (
        <>
          <p>
            Status: <AnalysisStatus analysis={a} /> · model {a.model.id} {a.model.version} · requested{' '}
            {formatDate(a.requestedAt)}
            {a.finishedAt ? ` · finished ${formatDate(a.finishedAt)}` : ''}
          </p>
          {!FINISHED.has(a.status) && (
            <>
              <Progress analysis={a} />
              {can('analysis:cancel') && (
                <button type="button" onClick={() => void cancel()}>
                  Cancel analysis
                </button>
              )}
              {cancelError && <ErrorNote message={cancelError} />}
            </>
          )}
          {a.status === 'succeeded' && <Progress analysis={a} />}
          {a.status === 'failed' && (
            <ErrorNote message={`The analysis failed: ${a.failure?.reason ?? 'unknown reason'}.`} />
          )}
          {a.result && (
            <div className="grid">
              <Section title="Result">
                <table className="list compact" data-testid="volumes">
                  <caption className="visually-hidden">Tumour volumes per region</caption>
                  <tbody>
                    <tr>
                      <th scope="row">Whole tumour</th>
                      <td>{formatMl(a.result.volumes.wholeTumor)}</td>
                    </tr>
                    <tr>
                      <th scope="row">Tumour core</th>
                      <td>{formatMl(a.result.volumes.tumorCore)}</td>
                    </tr>
                    <tr>
                      <th scope="row">Enhancing tumour</th>
                      <td>{formatMl(a.result.volumes.enhancingTumor)}</td>
                    </tr>
                    {a.result.largestDiameterMm !== undefined && (
                      <tr>
                        <th scope="row">Largest diameter</th>
                        <td>{a.result.largestDiameterMm.toFixed(1)} mm</td>
                      </tr>
                    )}
                  </tbody>
                </table>
                <h3>Conclusion</h3>
                <p data-testid="conclusion">
                  {conclusion ?? (report.loading ? 'Loading the report…' : 'No conclusion in the report.')}
                </p>
                <p className="muted">AI result for decision support only; not a diagnosis.</p>
                <h3>Model</h3>
                <p data-testid="model-card">
                  {a.model.id} {a.model.version}
                  {/demo/i.test(a.model.id)
                    ? ' — a demonstration model trained on synthetic images: not for clinical use.'
                    : ''}
                </p>
              </Section>
              <Section title="Review">
                <p data-testid="review-status">
                  {a.review ? `Review: ${a.review.status}` : 'Not reviewed'}
                  {a.review?.reviewer ? ` by ${a.review.reviewerName ?? a.review.reviewer}` : ''}
                  {a.review?.reviewedAt ? `, ${formatDate(a.review.reviewedAt)}` : ''}
                  {a.review?.comment ? ` — “${a.review.comment}”` : ''}
                </p>
                {can('analysis:review') && a.review?.status !== 'approved' && a.review?.status !== 'rejected' && (
                  <ReviewPanel analysis={a} onDone={setAnalysis} />
                )}
              </Section>
            </div>
          )}
          {succeeded && (
            <Section title="Images with the AI segmentation">
              {study.loading && <Loading what="study" />}
              {study.error && <ErrorNote message={study.error} retry={study.reload} />}
              {series && a.result?.segSeriesUid && a.result.segInstanceUid && (
                <Viewer
                  studyUid={a.studyUid}
                  seriesUid={series.uid}
                  label={`${series.description ?? 'Series'} with AI segmentation`}
                  segmentation={{ seriesUid: a.result.segSeriesUid, instanceUid: a.result.segInstanceUid }}
                  measurements={measurementStore}
                />
              )}
            </Section>
          )}
          {succeeded && (
            <Section title="Tumour timeline">
              {assessment.loading && <Loading what="timeline" />}
              {assessment.error && <ErrorNote message={assessment.error} retry={assessment.reload} />}
              {assessment.data && <Timeline assessment={assessment.data} />}
            </Section>
          )}
        </>
      )}
    </main>
  );
}
