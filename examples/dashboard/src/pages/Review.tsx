/** The radiologist's queue: analyses whose results wait for review. */
import { useLoad } from '../hooks';
import { Link } from '../router';
import { useSession } from '../session';
import { ErrorNote, formatDate, formatMl, Loading } from '../ui';

/** The review queue screen. */
export function Review() {
  const { client } = useSession();
  const queue = useLoad(() => client.analyses.list({ review: 'pending' }), [client]);
  return (
    <main id="main">
      <h1>Review queue</h1>
      <button type="button" onClick={queue.reload}>
        Refresh
      </button>
      {queue.loading && <Loading what="the review queue" />}
      {queue.error && <ErrorNote message={queue.error} retry={queue.reload} />}
      {queue.data && queue.data.items.length === 0 && <p>Nothing waits for review.</p>}
      {queue.data && queue.data.items.length > 0 && (
        <table className="list">
          <caption className="visually-hidden">Analyses waiting for review</caption>
          <thead>
            <tr>
              <th scope="col">Finished</th>
              <th scope="col">Whole tumour</th>
              <th scope="col">Model</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {queue.data.items.map((a) => (
              <tr key={a.id}>
                <td>{formatDate(a.finishedAt ?? a.requestedAt)}</td>
                <td>{formatMl(a.result?.volumes.wholeTumor)}</td>
                <td>
                  {a.model.id} {a.model.version}
                </td>
                <td>
                  <Link to={`/analyses/${encodeURIComponent(a.id)}`}>Review analysis</Link>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
