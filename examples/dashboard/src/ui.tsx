/** Small shared pieces: loading and error states, the stale marker, dates. */
import type { ReactNode } from 'react';

/** A loading indicator announced to screen readers. */
export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** An error with a retry button. */
export function ErrorNote({ message, retry }: { message: string; retry?: () => void }) {
  return (
    <div className="error" role="alert">
      <span>{message}</span>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Marks data served from the cache while OpenEMR was unreachable. */
export function StaleMarker({ stale }: { stale: boolean | undefined }) {
  if (!stale) return null;
  return (
    <span className="stale" role="note" title="OpenEMR could not be reached; this is the last copy the server had.">
      ⚠ Possibly out of date
    </span>
  );
}

/** A titled section. */
export function Section({ title, children, extra }: { title: string; children: ReactNode; extra?: ReactNode }) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id}>
        {title} {extra}
      </h2>
      {children}
    </section>
  );
}

/**
 * A date or time for display.
 * @param value - an ISO date or date-time
 */
export function formatDate(value: string | undefined): string {
  if (!value) return '—';
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  // A date sent as midnight (OpenEMR's date-only fields) is a date, not a time.
  if (/^\d{4}-\d{2}-\d{2}[T ]00:00(:00(\.0+)?)?(Z|[+-]00:?00)?$/.test(value)) return value.slice(0, 10);
  const date = new Date(value);
  return Number.isNaN(date.getTime())
    ? value
    : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * A volume in millilitres.
 * @param ml - the volume
 */
export function formatMl(ml: number | undefined): string {
  return ml === undefined ? '—' : `${ml.toFixed(1)} mL`;
}
