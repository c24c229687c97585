/** The live feed of events this user may see (analyses finished or failed, patients updated, alerts). */
import type { ServerEvent } from '@cdss/client';
import { useEffect } from 'react';
import { useEvents } from '../events';
import { Link } from '../router';
import { formatDate, formatMl } from '../ui';

function describe(event: ServerEvent): string {
  switch (event.type) {
    case 'analysis.completed': {
      const volumes = event.data['volumes'] as { wholeTumor?: number } | undefined;
      return `Analysis finished${volumes?.wholeTumor !== undefined ? `: whole tumour ${formatMl(volumes.wholeTumor)}` : ''}`;
    }
    case 'analysis.failed':
      return 'Analysis failed';
    case 'patient.updated':
      return 'Patient record updated';
    case 'patient.alert':
      return 'Alert: progression flagged';
    default:
      return 'Analysis progress';
  }
}

/** The notifications screen. */
export function Notifications() {
  const { feed, markRead, status } = useEvents();
  useEffect(() => {
    markRead();
  }, [feed, markRead]);
  return (
    <main id="main">
      <h1>Notifications</h1>
      <p className="muted">
        Live connection: {status}. Events of the patients and analyses you opened in this session, and alerts.
      </p>
      {feed.length === 0 && <p>No notifications yet.</p>}
      <ul className="feed" aria-live="polite">
        {feed.map((event, i) => (
          <li key={`${event.time}-${i}`} className={`feed-item feed-${event.type.replace('.', '-')}`}>
            <span>{describe(event)}</span> <span className="muted">{formatDate(event.time)}</span>{' '}
            <Link to={`/patients/${encodeURIComponent(event.patientId)}`}>open patient</Link>
            {event.analysisId && (
              <>
                {' · '}
                <Link to={`/analyses/${encodeURIComponent(event.analysisId)}`}>open analysis</Link>
              </>
            )}
          </li>
        ))}
      </ul>
    </main>
  );
}
