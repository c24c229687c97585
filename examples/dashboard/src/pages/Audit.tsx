/**
 * The audit log (admins): who did what to which patient's data, when (to the second), with which outcome; filtered by
 * user and patient on the server, exported as CSV.
 */
import type { AuditRecord } from '@cdss/client';
import { useState, type FormEvent } from 'react';
import { useLoad } from '../hooks';
import { Link } from '../router';
import { useSession } from '../session';
import { ErrorNote, Loading } from '../ui';

/**
 * A time to the second, in UTC, as audits are compared across sites: `2026-12-06 19:33:22Z`.
 * @param iso - ISO date-time
 */
export function auditTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

const CSV_COLUMNS: Array<[string, (r: AuditRecord) => string]> = [
  ['time', (r) => r.time],
  ['user_id', (r) => r.userId],
  ['user_name', (r) => r.userName],
  ['roles', (r) => r.roles.join(' ')],
  ['action', (r) => r.action],
  ['resource', (r) => r.resource],
  ['patient_id', (r) => r.patientId ?? ''],
  ['outcome', (r) => r.outcome],
  ['request_id', (r) => r.requestId],
];

/**
 * Records as CSV (RFC 4180: quoted fields, doubled quotes, CRLF).
 * @param records - the rows
 */
export function auditCsv(records: readonly AuditRecord[]): string {
  const quote = (v: string): string => `"${v.replace(/"/g, '""')}"`;
  return [CSV_COLUMNS.map(([name]) => name), ...records.map((r) => CSV_COLUMNS.map(([, get]) => get(r)))]
    .map((row) => row.map(quote).join(','))
    .join('\r\n');
}

/** The audit screen. */
export function Audit() {
  const { client } = useSession();
  const [filter, setFilter] = useState<{ user?: string; patient?: string; limit: number }>({ limit: 200 });
  const [draft, setDraft] = useState({ user: '', patient: '' });
  const log = useLoad(() => client.audit.list(filter), [client, filter]);
  const apply = (event: FormEvent): void => {
    event.preventDefault();
    setFilter({
      limit: 200,
      ...(draft.user.trim() ? { user: draft.user.trim() } : {}),
      ...(draft.patient.trim() ? { patient: draft.patient.trim() } : {}),
    });
  };
  const exportCsv = (): void => {
    const blob = new Blob([auditCsv(log.data?.items ?? [])], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `cdss-audit-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.csv`;
    a.click();
    URL.revokeObjectURL(url);
  };
  return (
    <main id="main">
      <h1>Audit log</h1>
      <form className="filters" onSubmit={apply} aria-label="Filter the audit log">
        <label>
          User id{' '}
          <input value={draft.user} onChange={(e) => setDraft({ ...draft, user: e.target.value })} maxLength={128} />
        </label>
        <label>
          Patient id{' '}
          <input
            value={draft.patient}
            onChange={(e) => setDraft({ ...draft, patient: e.target.value })}
            maxLength={64}
          />
        </label>
        <button type="submit">Filter</button>
        <button type="button" onClick={log.reload}>
          Refresh
        </button>
        <button type="button" onClick={exportCsv} disabled={!log.data?.items.length}>
          Export CSV
        </button>
      </form>
      {log.loading && !log.data && <Loading what="the audit log" />}
      {log.error && <ErrorNote message={log.error} retry={log.reload} />}
      {log.data && (
        <div className="table-scroll">
          <table className="list compact audit">
            <caption className="visually-hidden">Audit records, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time (UTC)</th>
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
                  <td className="nowrap">
                    <time dateTime={r.time}>{auditTime(r.time)}</time>
                  </td>
                  <td>{r.userName}</td>
                  <td>{r.roles.join(', ')}</td>
                  <td>{r.action}</td>
                  <td className="resource">{r.resource}</td>
                  <td>
                    {r.patientId ? (
                      <Link to={`/patients/${encodeURIComponent(r.patientId)}`}>
                        open<span className="visually-hidden"> patient {r.patientId}</span>
                      </Link>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td className={`outcome-${r.outcome}`}>{r.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {log.data.items.length >= filter.limit && (
            <button type="button" onClick={() => setFilter({ ...filter, limit: Math.min(1000, filter.limit + 200) })}>
              Show more
            </button>
          )}
        </div>
      )}
    </main>
  );
}
