/** The audit log (admins): who did what, when, with which outcome. */
import { useLoad } from '../hooks';
import { Link } from '../router';
import { useSession } from '../session';
import { ErrorNote, formatDate, Loading } from '../ui';

/** The audit screen. */
export function Audit() {
  const { client } = useSession();
  const log = useLoad(() => client.audit.list({ limit: 200 }), [client]);
  return (
    <main id="main">
      <h1>Audit log</h1>
      <button type="button" onClick={log.reload}>
        Refresh
      </button>
      {log.loading && <Loading what="the audit log" />}
      {log.error && <ErrorNote message={log.error} retry={log.reload} />}
      {log.data && (
        <div className="table-scroll">
          <table className="list compact audit">
            <caption className="visually-hidden">Audit records, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Action</th>
                <th scope="col">Resource</th>
                <th scope="col">Patient</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {log.data.items.map((r) => (
                <tr key={r.id}>
                  <td className="nowrap">{formatDate(r.time)}</td>
                  <td>{r.userName}</td>
                  <td>{r.roles.join(', ')}</td>
                  <td>{r.action}</td>
                  <td className="resource">{r.resource}</td>
                  <td>{r.patientId ? <Link to={`/patients/${encodeURIComponent(r.patientId)}`}>open</Link> : '—'}</td>
                  <td className={`outcome-${r.outcome}`}>{r.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
