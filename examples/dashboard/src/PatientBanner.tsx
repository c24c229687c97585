/**
 * The patient banner: whose data this is, on every screen in a patient's context (name, record number, birth date
 * and age, sex; and the study's date and description where one study is shown).
 */
import type { ApiStudy } from '@cdss/client';
import { useLoad } from './hooks';
import { useSession } from './session';
import { formatDate } from './ui';

/**
 * Age in whole years on a day.
 * @param birthDate - YYYY-MM-DD
 * @param on - the day (default today)
 */
export function ageOn(birthDate: string, on = new Date()): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birthDate);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  let age = on.getUTCFullYear() - year;
  if (on.getUTCMonth() + 1 < month || (on.getUTCMonth() + 1 === month && on.getUTCDate() < day)) age -= 1;
  return age;
}

const SEX: Record<string, string> = { female: 'Female', male: 'Male', other: 'Other', unknown: 'Unknown' };

/** The banner. */
export function PatientBanner({ patientId, study }: { patientId: string; study?: ApiStudy | undefined }) {
  const { client } = useSession();
  const patient = useLoad(() => client.patients.get(patientId), [client, patientId]);
  const p = patient.data?.data;
  const age = p ? ageOn(p.birthDate) : undefined;
  return (
    <section className="patient-banner" aria-label="Patient" data-testid="patient-banner">
      {patient.loading && !p && <span className="muted">Loading patient…</span>}
      {patient.error && <span className="error-text">Patient details unavailable: {patient.error}</span>}
      {p && (
        <>
          <strong className="banner-name">
            {p.familyName}, {p.givenName}
          </strong>
          <span>
            <span className="banner-label">Record</span> {p.pid}
          </span>
          <span>
            <span className="banner-label">Born</span> {p.birthDate}
            {age !== undefined ? ` (${age} y)` : ''}
          </span>
          <span>
            <span className="banner-label">Sex</span> {SEX[p.sex] ?? p.sex}
          </span>
          {study && (
            <span>
              <span className="banner-label">Study</span> {formatDate(study.date)} · {study.description ?? 'Study'}
            </span>
          )}
          {patient.data?.stale && <span className="stale">⚠ Possibly out of date</span>}
        </>
      )}
    </section>
  );
}
