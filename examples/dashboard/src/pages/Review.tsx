/**
 * The radiologist's worklist: analyses waiting for review with whose they are, the study date, how long they have
 * waited, their plausibility flags and who claimed them; sortable by any column; an item can be claimed.
 */
import { CdssApiError, type WorklistItem } from '@cdss/client';
import { useMemo, useState } from 'react';
import { describeError, useLoad } from '../hooks';
import { Link } from '../router';
import { useSession } from '../session';
import { ErrorNote, formatDate, Loading } from '../ui';

type SortKey = 'patient' | 'studyDate' | 'waiting' | 'flags';

/**
 * How long since a moment, for people: "5 min", "3 h 10 min", "2 d 4 h".
 * @param since - ISO date-time
 * @param now - epoch ms
 */
export function waitingTime(since: string, now = Date.now()): string {
  const minutes = Math.max(0, Math.floor((now - Date.parse(since)) / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

const compare: Record<SortKey, (a: WorklistItem, b: WorklistItem) => number> = {
  patient: (a, b) => a.patient.name.localeCompare(b.patient.name),
  studyDate: (a, b) => (a.study.date ?? '').localeCompare(b.study.date ?? ''),
  waiting: (a, b) => b.waitingSince.localeCompare(a.waitingSince),
  flags: (a, b) => a.flags.length - b.flags.length,
};

/** The worklist screen. */
export function Review() {
  const { client, session } = useSession();
  const list = useLoad(() => client.worklist(), [client]);
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: 'waiting', descending: true });
  const [message, setMessage] = useState<string>();
  const rows = useMemo(() => {
    const items = [...(list.data?.items ?? [])].sort(compare[sort.key]);
    return sort.descending ? items.reverse() : items;
  }, [list.data, sort]);

  async function claim(item: WorklistItem): Promise<void> {
    setMessage(undefined);
    try {
      await client.analyses.claim(item.analysisId);
      setMessage(`You claimed the analysis of ${item.patient.name}.`);
    } catch (e) {
      setMessage(
        e instanceof CdssApiError && e.status === 409
          ? (e.issues[0]?.diagnostics ?? 'Already claimed.')
          : describeError(e),
      );
    }
    list.reload();
  }
  async function release(item: WorklistItem): Promise<void> {
    try {
      await client.analyses.release(item.analysisId);
    } catch (e) {
      setMessage(describeError(e));
    }
    list.reload();
  }

  const header = (key: SortKey, text: string) => (
    <th scope="col" aria-sort={sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
      <button
        type="button"
        className="sort"
        onClick={() => setSort((old) => ({ key, descending: old.key === key ? !old.descending : false }))}
      >
        {text}
        <span aria-hidden="true">{sort.key === key ? (sort.descending ? ' ▼' : ' ▲') : ' ↕'}</span>
      </button>
    </th>
  );

  return (
    <main id="main">
      <h1>Review worklist</h1>
      <div className="toolbar">
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </div>
      {message && <p role="status">{message}</p>}
      {list.loading && !list.data && <Loading what="the worklist" />}
      {list.error && <ErrorNote message={list.error} retry={list.reload} />}
      {list.data && rows.length === 0 && <p>Nothing waits for review.</p>}
      {rows.length > 0 && (
        <table className="list worklist" data-testid="worklist">
          <caption className="visually-hidden">Analyses waiting for review</caption>
          <thead>
            <tr>
              {header('patient', 'Patient')}
              {header('studyDate', 'Study date')}
              <th scope="col">Analysis</th>
              {header('waiting', 'Waiting')}
              {header('flags', 'Flags')}
              <th scope="col">Claimed by</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((item) => {
              const mine = item.claim?.userId === session?.user.id;
              return (
                <tr key={item.analysisId} className={item.flags.length > 0 ? 'flagged-row' : undefined}>
                  <td>
                    <strong>{item.patient.name}</strong>
                    <div className="muted small">
                      {item.patient.pid ? `Record ${item.patient.pid}` : ''}
                      {item.patient.birthDate ? ` · born ${item.patient.birthDate}` : ''}
                    </div>
                  </td>
                  <td>
                    {formatDate(item.study.date)}
                    <div className="muted small">{item.study.description}</div>
                  </td>
                  <td>
                    <Link to={`/analyses/${encodeURIComponent(item.analysisId)}`}>
                      Review analysis<span className="visually-hidden"> of {item.patient.name}</span>
                    </Link>
                    <div className="muted small">
                      {item.model.id} {item.model.version}
                    </div>
                  </td>
                  <td title={formatDate(item.waitingSince)}>{waitingTime(item.waitingSince)}</td>
                  <td>
                    {item.flags.length === 0 ? (
                      <span className="muted">—</span>
                    ) : (
                      <ul className="plain">
                        {item.flags.map((f) => (
                          <li key={f.code} className="status status-flagged">
                            ⚑ {f.message}
                          </li>
                        ))}
                      </ul>
                    )}
                  </td>
                  <td>
                    {item.claim ? (
                      <>
                        {mine ? 'You' : item.claim.userName}
                        {mine && (
                          <button type="button" className="link" onClick={() => void release(item)}>
                            Release<span className="visually-hidden"> {item.patient.name}</span>
                          </button>
                        )}
                      </>
                    ) : (
                      <button type="button" onClick={() => void claim(item)}>
                        Claim<span className="visually-hidden"> {item.patient.name}</span>
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </main>
  );
}
