/**
 * The audit log (admins): who did what to which patient's data, when (to the second), with which outcome; filtered on
 * the server (user, patient, outcome, date range), paged with the server's cursor, exported as CSV.
 */
import type { AuditQuery, AuditRecord } from '@cdss/client';
import { useEffect, useState, type FormEvent } from 'react';
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
  const [filter, setFilter] = useState<AuditQuery>({ limit: 100 });
  const [draft, setDraft] = useState({ user: '', patient: '', outcome: '', from: '', to: '' });
  const first = useLoad(() => client.audit.list(filter), [client, filter]);
  // Older pages appended below the first, each fetched with the previous page's cursor.
  const [more, setMore] = useState<{ items: AuditRecord[]; nextCursor?: string | undefined }>({ items: [] });
  const [loadingMore, setLoadingMore] = useState(false);
  useEffect(() => setMore({ items: [] }), [first.data]);
  const items = [...(first.data?.items ?? []), ...more.items];
  const nextCursor = more.items.length > 0 ? more.nextCursor : first.data?.nextCursor;
  const log = first;
  const apply = (event: FormEvent): void => {
    event.preventDefault();
    // datetime-local gives local wall time; the server wants an instant.
    const instant = (v: string): string | undefined =>
      v ? new Date(v).toISOString().replace('.000Z', 'Z') : undefined;
    const from = instant(draft.from);
    const to = instant(draft.to);
    setFilter({
      limit: 100,
      ...(draft.user.trim() ? { user: draft.user.trim() } : {}),
      ...(draft.patient.trim() ? { patient: draft.patient.trim() } : {}),
      ...(draft.outcome ? { outcome: draft.outcome as AuditQuery['outcome'] } : {}),
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
    });
  };
  async function loadMore(): Promise<void> {
    if (!nextCursor) return;
    setLoadingMore(true);
    try {
      const page = await client.audit.list({ ...filter, cursor: nextCursor });
      setMore((old) => ({ items: [...old.items, ...page.items], nextCursor: page.nextCursor }));
    } finally {
      setLoadingMore(false);
    }
  }
  const exportCsv = (): void => {
    const blob = new Blob([auditCsv(items)], { type: 'text/csv;charset=utf-8' });
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
        <label>
          Outcome{' '}
          <select value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.target.value })}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
            <option value="denied">denied</option>
          </select>
        </label>
        <label>
          From{' '}
          <input
            type="datetime-local"
            step={1}
            value={draft.from}
            onChange={(e) => setDraft({ ...draft, from: e.target.value })}
          />
        </label>
        <label>
          To{' '}
          <input
            type="datetime-local"
            step={1}
            value={draft.to}
            onChange={(e) => setDraft({ ...draft, to: e.target.value })}
          />
        </label>
        <button type="submit">Filter</button>
        <button type="button" onClick={log.reload}>
          Refresh
        </button>
        <button type="button" onClick={exportCsv} disabled={items.length === 0}>
          Export CSV ({items.length} shown)
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
              {items.map((r) => (
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
          {nextCursor && (
            <button type="button" onClick={() => void loadMore()} disabled={loadingMore}>
              {loadingMore ? 'Loading…' : 'Older records'}
            </button>
          )}
        </div>
      )}
    </main>
  );
}
