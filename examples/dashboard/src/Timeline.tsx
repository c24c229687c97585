/** The patient's tumour volumes across studies, with the RANO-style status of the latest against the baseline. */
import type { Assessment } from '@cdss/client';
import { Link } from './router';
import { formatDate, formatMl } from './ui';

const STATUS_TEXT: Record<Assessment['status'], string> = {
  'complete-response': 'Complete response',
  'partial-response': 'Partial response',
  stable: 'Stable disease',
  progression: 'Progression',
  'not-evaluable': 'Not evaluable',
};

/** The timeline chart and table. */
export function Timeline({ assessment }: { assessment: Assessment }) {
  const points = [...assessment.timeline].sort((a, b) => a.date.localeCompare(b.date));
  const max = Math.max(1, ...points.map((p) => p.wholeTumorMl));
  const w = 320;
  const h = 120;
  const xAt = (i: number): number => (points.length <= 1 ? w / 2 : 20 + (i * (w - 40)) / (points.length - 1));
  const yAt = (ml: number): number => h - 15 - (ml / max) * (h - 30);
  const line = (key: 'wholeTumorMl' | 'enhancingTumorMl'): string =>
    points.map((p, i) => `${xAt(i)},${yAt(p[key])}`).join(' ');
  return (
    <div className="timeline" data-testid="timeline">
      <p>
        RANO-style status:{' '}
        <strong className={`rano rano-${assessment.status}`} data-testid="rano-status">
          {STATUS_TEXT[assessment.status]}
        </strong>
        {assessment.changePercent !== undefined && (
          <span className="muted">
            {' '}
            ({assessment.changePercent > 0 ? '+' : ''}
            {assessment.changePercent.toFixed(0)}% from baseline)
          </span>
        )}
      </p>
      {points.length > 0 ? (
        <>
          <svg
            viewBox={`0 0 ${w} ${h}`}
            className="timeline-chart"
            role="img"
            aria-label="Tumour volumes over time (the table below has the values)"
          >
            <text x="4" y="12" className="axis">
              {max.toFixed(0)} mL
            </text>
            <text x="4" y={h - 4} className="axis">
              0
            </text>
            <polyline points={line('wholeTumorMl')} fill="none" stroke="#1f6feb" strokeWidth="2" />
            <polyline
              points={line('enhancingTumorMl')}
              fill="none"
              stroke="#b58100"
              strokeWidth="2"
              strokeDasharray="4 3"
            />
            {points.map((p, i) => (
              <circle key={p.analysisId} cx={xAt(i)} cy={yAt(p.wholeTumorMl)} r="3.5" fill="#1f6feb" />
            ))}
          </svg>
          <p className="legend muted">
            <span className="key key-whole" aria-hidden="true" /> whole tumour{' '}
            <span className="key key-enh" aria-hidden="true" /> enhancing tumour
          </p>
          <table className="list compact">
            <caption className="visually-hidden">Tumour volumes by date</caption>
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Whole tumour</th>
                <th scope="col">Enhancing</th>
                <th scope="col">Analysis</th>
              </tr>
            </thead>
            <tbody>
              {points.map((p) => (
                <tr key={p.analysisId}>
                  <td>{formatDate(p.date)}</td>
                  <td>{formatMl(p.wholeTumorMl)}</td>
                  <td>{formatMl(p.enhancingTumorMl)}</td>
                  <td>
                    <Link to={`/analyses/${encodeURIComponent(p.analysisId)}`}>open</Link>
                    {p.analysisId === assessment.baselineAnalysisId ? ' (baseline)' : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : (
        <p>No completed analyses yet.</p>
      )}
    </div>
  );
}
