/** The patient list with search. The search text stays in the page (names are PHI: never in the URL). */
import { useState, type FormEvent } from 'react';
import { useLoad } from '../hooks';
import { Link } from '../router';
import { useSession } from '../session';
import { ErrorNote, Loading, StaleMarker } from '../ui';

/** The patients screen. */
export function Patients() {
  const { client } = useSession();
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
