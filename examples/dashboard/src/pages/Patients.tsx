/** The patient list with search. The search text stays in the page (names are PHI: never in the URL). */
import { useState, type FormEvent } from 'react';
import { duplicateCandidates, type DuplicateCandidate, type PatientInput } from '@cdss/client';
import { describeError, useLoad } from '../hooks';
import { Link, navigate } from '../router';
import { useSession } from '../session';
import { ErrorNote, Loading, StaleMarker } from '../ui';

const EMPTY: PatientInput = { givenName: '', familyName: '', birthDate: '', sex: 'unknown' };

/**
 * Registers a patient in the EMR. When the server finds a patient with the same name and birth date (409 with the
 * candidates), the form lists them and creates another one only after the user confirms.
 */
export function NewPatientForm() {
  const { client } = useSession();
  const [input, setInput] = useState<PatientInput>(EMPTY);
  const [candidates, setCandidates] = useState<DuplicateCandidate[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  // One key per patient being entered, so a retried click never creates two.
  const [idempotencyKey, setIdempotencyKey] = useState(() => crypto.randomUUID());
  const set = (field: keyof PatientInput) => (value: string) => {
    setInput((current) => ({ ...current, [field]: value }));
    setCandidates([]);
    setIdempotencyKey(crypto.randomUUID());
  };

  async function create(confirmDuplicate: boolean): Promise<void> {
    setBusy(true);
    setError(undefined);
    try {
      const created = await client.patients.create(input, {
        idempotencyKey: confirmDuplicate ? `${idempotencyKey}-confirmed` : idempotencyKey,
        confirmDuplicate,
      });
      navigate(`/patients/${encodeURIComponent(created.id)}`);
    } catch (e) {
      const found = duplicateCandidates(e);
      setCandidates(found);
      if (found.length === 0) setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    void create(false);
  };

  return (
    <details className="new-patient">
      <summary>New patient</summary>
      <form onSubmit={submit} aria-label="New patient">
        <label htmlFor="new-given">Given name</label>
        <input
          id="new-given"
          required
          maxLength={100}
          value={input.givenName}
          onChange={(e) => set('givenName')(e.target.value)}
        />
        <label htmlFor="new-family">Family name</label>
        <input
          id="new-family"
          required
          minLength={2}
          maxLength={100}
          value={input.familyName}
          onChange={(e) => set('familyName')(e.target.value)}
        />
        <label htmlFor="new-birth">Birth date</label>
        <input
          id="new-birth"
          type="date"
          required
          value={input.birthDate}
          onChange={(e) => set('birthDate')(e.target.value)}
        />
        <label htmlFor="new-sex">Sex</label>
        <select id="new-sex" value={input.sex} onChange={(e) => set('sex')(e.target.value)}>
          <option value="female">female</option>
          <option value="male">male</option>
          <option value="other">other</option>
          <option value="unknown">unknown</option>
        </select>
        {error && <ErrorNote message={error} />}
        {candidates.length === 0 && (
          <button type="submit" className="primary" disabled={busy}>
            Create patient
          </button>
        )}
      </form>
      {candidates.length > 0 && (
        <div role="alert" className="duplicate-warning" data-testid="duplicate-warning">
          <p>
            {candidates.length === 1 ? 'A patient' : `${candidates.length} patients`} with this name and birth date
            already exist{candidates.length === 1 ? 's' : ''}. Open the existing record, or create another one only if
            this is a different person.
          </p>
          <ul>
            {candidates.map((c) => (
              <li key={c.id}>
                <Link to={`/patients/${encodeURIComponent(c.id)}`}>
                  {c.familyName}, {c.givenName}
                </Link>{' '}
                <span className="muted">
                  born {c.birthDate}
                  {c.pid ? `, record ${c.pid}` : ''}
                </span>
              </li>
            ))}
          </ul>
          <div className="toolbar">
            <button type="button" className="danger" disabled={busy} onClick={() => void create(true)}>
              Create another patient anyway
            </button>
            <button type="button" disabled={busy} onClick={() => setCandidates([])}>
              Cancel
            </button>
          </div>
        </div>
      )}
    </details>
  );
}

/** The patients screen. */
export function Patients() {
  const { client, can } = useSession();
  const [draft, setDraft] = useState('');
  const [query, setQuery] = useState('');
  const page = useLoad(() => client.patients.search({ ...(query ? { q: query } : {}), limit: 50 }), [client, query]);

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    setQuery(draft.trim());
  };

  return (
    <main id="main">
      <h1>Patients</h1>
      <form className="search" role="search" onSubmit={submit}>
        <label htmlFor="patient-search">Search patients by name</label>
        <input
          id="patient-search"
          type="search"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          autoComplete="off"
        />
        <button type="submit">Search</button>
      </form>
      {can('patient:write') && <NewPatientForm />}
      {page.loading && <Loading what="patients" />}
      {page.error && <ErrorNote message={page.error} retry={page.reload} />}
      {page.data && (
        <>
          <p className="muted">
            {page.data.items.length} patient{page.data.items.length === 1 ? '' : 's'}{' '}
            <StaleMarker stale={page.data.stale} />
          </p>
          <table className="list">
            <caption className="visually-hidden">Patients</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Birth date</th>
                <th scope="col">Sex</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((p) => (
                <tr key={p.id}>
                  <td>
                    <Link to={`/patients/${encodeURIComponent(p.id)}`}>
                      {p.familyName}, {p.givenName}
                    </Link>
                  </td>
                  <td>{p.birthDate}</td>
                  <td>{p.sex}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.items.length === 0 && <p>No patient matches.</p>}
        </>
      )}
    </main>
  );
}
