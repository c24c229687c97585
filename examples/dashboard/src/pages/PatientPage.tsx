/** One patient: demographics, clinical lists, studies, analyses and the tumour timeline. */
import type { ApiAnalysis } from '@cdss/client';
import { useState, type ReactNode } from 'react';
import { useEventListener } from '../events';
import { useLoad, type Loaded } from '../hooks';
import { PatientBanner } from '../PatientBanner';
import { Link } from '../router';
import { useSession } from '../session';
import { Timeline } from '../Timeline';
import { ErrorNote, formatDate, Loading, Section, StaleMarker } from '../ui';

function CachedList<T extends { id: string }>({
  title,
  state,
  columns,
}: {
  title: string;
  state: Loaded<{ data: T[]; stale: boolean }>;
  columns: Array<[string, (row: T) => ReactNode]>;
}) {
  return (
    <Section title={title} extra={<StaleMarker stale={state.data?.stale} />}>
      {state.loading && <Loading what={title.toLowerCase()} />}
      {state.error && <ErrorNote message={state.error} retry={state.reload} />}
      {state.data && state.data.data.length === 0 && <p className="muted">None recorded.</p>}
      {state.data && state.data.data.length > 0 && (
        <table className="list compact">
          <thead>
            <tr>
              {columns.map(([name]) => (
                <th key={name} scope="col">
                  {name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {state.data.data.map((row) => (
              <tr key={row.id}>
                {columns.map(([name, cell]) => (
                  <td key={name}>{cell(row)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

const active = (a: boolean): string => (a ? 'active' : 'inactive');

/** What an analysis's badge shows: its state, or its review's once it succeeded, and whether it was flagged. */
export function statusKind(analysis: ApiAnalysis): string {
  if (analysis.status !== 'succeeded')
    return analysis.status === 'failed' || analysis.status === 'cancelled' ? analysis.status : 'running';
  if (analysis.review?.status === 'approved') return 'approved';
  if (analysis.review?.status === 'rejected') return 'rejected';
  return (analysis.result?.flags.length ?? 0) > 0 ? 'flagged' : 'pending';
}

const STATUS_TEXT: Record<string, string> = {
  running: 'In progress',
  failed: '✕ Failed',
  cancelled: '⊘ Cancelled',
  approved: '✓ Approved',
  rejected: '✕ Rejected',
  flagged: '⚑ Flagged · review pending',
  pending: '◷ Review pending',
};

/** A status badge of an analysis (distinct style per state), with the reviewer and time once reviewed. */
export function AnalysisStatus({ analysis }: { analysis: ApiAnalysis }) {
  const kind = statusKind(analysis);
  const reviewed = analysis.review?.status === 'approved' || analysis.review?.status === 'rejected';
  return (
    <span className="status-line">
      <span className={`status status-${kind}`} data-status={kind}>
        {STATUS_TEXT[kind]}
        {kind === 'running'
          ? ` · ${analysis.status}${analysis.percent !== undefined ? ` ${Math.round(analysis.percent)}%` : ''}`
          : ''}
      </span>
      {reviewed && (
        <span className="muted">
          {' '}
          by {analysis.review?.reviewerName ?? analysis.review?.reviewer ?? 'unknown reviewer'},{' '}
          {formatDate(analysis.review?.reviewedAt)}
        </span>
      )}
    </span>
  );
}

/** Analyses as links by request date, each with its status. */
export function AnalysisList({ analyses }: { analyses: readonly ApiAnalysis[] }) {
  return (
    <ul className="plain">
      {analyses.map((a) => (
        <li key={a.id}>
          <Link to={`/analyses/${encodeURIComponent(a.id)}`}>{formatDate(a.requestedAt)}</Link>{' '}
          <AnalysisStatus analysis={a} />
        </li>
      ))}
    </ul>
  );
}

/** The patient screen. */
export function PatientPage({ id }: { id: string }) {
  const { client } = useSession();
  const patient = useLoad(() => client.patients.get(id), [client, id]);
  const encounters = useLoad(() => client.patients.encounters(id), [client, id]);
  const problems = useLoad(() => client.patients.problems(id), [client, id]);
  const allergies = useLoad(() => client.patients.allergies(id), [client, id]);
  const medications = useLoad(() => client.patients.medications(id), [client, id]);
  const vitals = useLoad(() => client.patients.vitals(id), [client, id]);
  const studies = useLoad(() => client.patients.studies(id), [client, id]);
  const analyses = useLoad(() => client.analyses.list({ patient: id }), [client, id]);
  const assessment = useLoad(() => client.patients.assessment(id), [client, id]);
  const [alert, setAlert] = useState<string | undefined>();

  useEventListener(`patient:${id}`, (event) => {
    if (event.patientId !== id) return;
    if (event.type === 'patient.updated') patient.reload();
    if (event.type === 'analysis.completed' || event.type === 'analysis.failed') {
      analyses.reload();
      assessment.reload();
    }
    if (event.type === 'patient.alert') setAlert('Progression flagged by the latest analysis: see the timeline.');
  });

  const p = patient.data?.data;
  return (
    <main id="main">
      <PatientBanner patientId={id} />
      <p className="crumbs">
        <Link to="/patients">Patients</Link> ›
      </p>
      {patient.loading && !p && <Loading what="patient" />}
      {patient.error && <ErrorNote message={patient.error} retry={patient.reload} />}
      {p && (
        <>
          <h1>
            {p.familyName}, {p.givenName} <StaleMarker stale={patient.data?.stale} />
          </h1>
          {alert && (
            <div className="alert" role="alert">
              {alert}
            </div>
          )}
          <dl className="demographics">
            <dt>Birth date</dt>
            <dd>{p.birthDate}</dd>
            <dt>Sex</dt>
            <dd>{p.sex}</dd>
            {p.pid && (
              <>
                <dt>Record number</dt>
                <dd>{p.pid}</dd>
              </>
            )}
            {p.phone && (
              <>
                <dt>Phone</dt>
                <dd>{p.phone}</dd>
              </>
            )}
            {p.email && (
              <>
                <dt>Email</dt>
                <dd>{p.email}</dd>
              </>
            )}
            {p.address && (
              <>
                <dt>Address</dt>
                <dd>
                  {[p.address.line, p.address.city, p.address.postalCode, p.address.country].filter(Boolean).join(', ')}
                </dd>
              </>
            )}
          </dl>
        </>
      )}
      <div className="grid">
        <Section title="Imaging studies">
          {studies.loading && <Loading what="studies" />}
          {studies.error && <ErrorNote message={studies.error} retry={studies.reload} />}
          {studies.data && studies.data.items.length === 0 && <p className="muted">No studies.</p>}
          <ul className="plain">
            {studies.data?.items.map((s) => (
              <li key={s.uid}>
                <Link to={`/patients/${encodeURIComponent(id)}/studies/${encodeURIComponent(s.uid)}`}>
                  {s.description ?? 'Study'} · {formatDate(s.date)}
                </Link>{' '}
                <span className="muted">
                  {s.modalities.join(', ')} · {s.series.length} series
                </span>
              </li>
            ))}
          </ul>
        </Section>
        <Section title="Analyses">
          {analyses.loading && <Loading what="analyses" />}
          {analyses.error && <ErrorNote message={analyses.error} retry={analyses.reload} />}
          {analyses.data && analyses.data.items.length === 0 && <p className="muted">No analyses yet.</p>}
          <AnalysisList analyses={analyses.data?.items ?? []} />
        </Section>
        <Section title="Tumour timeline">
          {assessment.loading && <Loading what="assessment" />}
          {assessment.error && <ErrorNote message={assessment.error} retry={assessment.reload} />}
          {assessment.data && <Timeline assessment={assessment.data} />}
        </Section>
        <CachedList
          title="Problems"
          state={problems}
          columns={[
            ['Problem', (r) => r.title],
            ['Code', (r) => r.code ?? '—'],
            ['Onset', (r) => formatDate(r.onset)],
            ['Status', (r) => active(r.active)],
          ]}
        />
        <CachedList
          title="Allergies"
          state={allergies}
          columns={[
            ['Substance', (r) => r.substance],
            ['Reaction', (r) => r.reaction ?? '—'],
            ['Severity', (r) => r.severity ?? '—'],
            ['Status', (r) => active(r.active)],
          ]}
        />
        <CachedList
          title="Medications"
          state={medications}
          columns={[
            ['Medication', (r) => r.name],
            ['Dosage', (r) => r.dosage ?? '—'],
            ['Since', (r) => formatDate(r.start)],
            ['Status', (r) => active(r.active)],
          ]}
        />
        <CachedList
          title="Encounters"
          state={encounters}
          columns={[
            ['Date', (r) => formatDate(r.date)],
            ['Reason', (r) => r.reason ?? '—'],
            ['Class', (r) => r.class ?? '—'],
            ['Provider', (r) => r.provider ?? '—'],
          ]}
        />
        <CachedList
          title="Vitals"
          state={vitals}
          columns={[
            ['Date', (r) => formatDate(r.date)],
            ['BP', (r) => (r.bpSystolic !== undefined ? `${r.bpSystolic}/${r.bpDiastolic ?? '?'}` : '—')],
            ['Pulse', (r) => r.pulse ?? '—'],
            ['Temp °C', (r) => r.temperatureC ?? '—'],
            ['SpO₂ %', (r) => r.oxygenSaturation ?? '—'],
            ['Weight kg', (r) => r.weightKg ?? '—'],
          ]}
        />
      </div>
    </main>
  );
}
