/**
 * Prior and current study side by side: the same series of each, slice position synchronised by patient
 * coordinates (the cameras are linked in the patient's frame) and window/level linked.
 */
import { useLoad } from '../hooks';
import { PatientBanner } from '../PatientBanner';
import { Link } from '../router';
import { useSession } from '../session';
import { ErrorNote, formatDate, Loading } from '../ui';
import { Viewer } from '../viewer';
import { preferredSeries } from './StudyPage';

/** The comparison screen. */
export function Compare({
  patientId,
  priorUid,
  currentUid,
}: {
  patientId: string;
  priorUid: string;
  currentUid: string;
}) {
  const { client } = useSession();
  const prior = useLoad(() => client.studies.get(priorUid), [client, priorUid]);
  const current = useLoad(() => client.studies.get(currentUid), [client, currentUid]);
  const sides = [
    { name: 'Prior', state: prior },
    { name: 'Current', state: current },
  ];
  return (
    <main id="main">
      <PatientBanner patientId={patientId} />
      <p className="crumbs">
        <Link to="/patients">Patients</Link> › <Link to={`/patients/${encodeURIComponent(patientId)}`}>Patient</Link> ›
      </p>
      <h1>Prior and current</h1>
      <p className="muted">
        Scrolling, zooming and window/level in one view move the other to the same position in the patient.
      </p>
      <div className="comparison">
        {sides.map(({ name, state }) => {
          const study = state.data;
          const series = study ? preferredSeries(study) : undefined;
          return (
            <section key={name} aria-label={`${name} study`} className="card">
              <h2>
                {name}: {study ? `${formatDate(study.date)} · ${study.description ?? 'Study'}` : ''}
              </h2>
              {state.loading && <Loading what={`the ${name.toLowerCase()} study`} />}
              {state.error && <ErrorNote message={state.error} retry={state.reload} />}
              {study && series && (
                <Viewer
                  studyUid={study.uid}
                  seriesUid={series.uid}
                  label={`${name} ${series.description ?? 'series'}`}
                  layout="axial"
                  syncGroup={`compare-${priorUid}-${currentUid}`}
                />
              )}
            </section>
          );
        })}
      </div>
    </main>
  );
}
