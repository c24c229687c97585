/**
 * Every metric the alert/recording rules and the Grafana dashboards use must be exported by the real reference
 * server: a renamed metric breaks this test instead of silently emptying a panel or disabling an alert.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dashboardExpressions,
  dashboards,
  exposedFamilies,
  metricNames,
  missingMetrics,
  ruleExpressions,
  type Usage,
} from './metric-names.js';
import { DEPLOY_DIR, fetchRaw, startReferenceServer, type ReferenceServer } from './support.js';

describe('metric name extraction', () => {
  it('finds the selected metrics and ignores functions, labels, ranges, grouping and numbers', () => {
    expect(
      metricNames(
        'sum by (job, le) (rate(foo_bucket{route=~"/api/.*", status="5xx"}[5m])) / ignoring(x) bar:baz:rate5m > 0.5e3',
      ),
    ).toEqual(['foo_bucket', 'bar:baz:rate5m']);
    expect(
      metricNames(
        'histogram_quantile(0.99, sum(rate(x_bucket[$__rate_interval])) by (le)) and on() vector(1) offset 5m',
      ),
    ).toEqual(['x_bucket']);
    expect(metricNames('absent(up{job="cdss-server"}) or min_over_time(job:q:max[30m]) > 0')).toEqual([
      'up',
      'job:q:max',
    ]);
  });

  it('reports names the exposition lacks', () => {
    const families = exposedFamilies(
      '# HELP a_seconds x\n# TYPE a_seconds histogram\n# TYPE b_total counter\nb_total 1\n',
    );
    expect(
      missingMetrics(
        ['a_seconds_bucket', 'a_seconds_count', 'b_total', 'b', 'up', 'job:a:rate5m', 'job:c:rate5m'],
        families,
        new Set(['job:a:rate5m']),
      ),
    ).toEqual(['b', 'job:c:rate5m']);
  });
});

describe('rules and dashboards against the real server /metrics', () => {
  let server: ReferenceServer | undefined;
  let families: Map<string, string>;

  beforeAll(async () => {
    server = await startReferenceServer();
    families = exposedFamilies((await fetchRaw(`${server.url}/metrics`)).text());
  });
  afterAll(async () => {
    await server?.stop();
  });

  function check(usages: Usage[], recorded: Set<string>): string[] {
    return usages.flatMap((u) =>
      missingMetrics(metricNames(u.expr), families, recorded).map((name) => `${name} (${u.file}: ${u.where})`),
    );
  }

  it('the server exports the metric families of its contract', () => {
    for (const name of [
      'cdss_http_request_duration_seconds',
      'cdss_cache_events_total',
      'cdss_upstream_errors_total',
      'cdss_jobs_queue_depth',
      'cdss_outbox_dead_letters',
    ]) {
      expect(families.has(name), name).toBe(true);
    }
  });

  it('every metric in the alert and recording rules exists', () => {
    const { usages, recorded } = ruleExpressions();
    expect(usages.length).toBeGreaterThanOrEqual(20);
    const used = new Set(usages.flatMap((u) => metricNames(u.expr)));
    expect(used.size).toBeGreaterThanOrEqual(10);
    expect(check(usages, recorded)).toEqual([]);
  });

  it('every metric in the Grafana dashboards exists (recording-rule outputs excepted)', () => {
    const { recorded } = ruleExpressions();
    const usages = dashboardExpressions();
    expect(usages.length).toBeGreaterThanOrEqual(30);
    expect(check(usages, recorded)).toEqual([]);
  });

  it('the dashboards cover API, AI pipeline, upstreams and cache on the provisioned data source', () => {
    const all = dashboards();
    expect(all.map((d) => d.dashboard.uid).sort()).toEqual([
      'cdss-ai-pipeline',
      'cdss-api',
      'cdss-cache',
      'cdss-upstreams',
    ]);
    const datasources = parse(
      readFileSync(join(DEPLOY_DIR, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'),
    ) as { datasources: { uid: string }[] };
    const uid = datasources.datasources[0]?.uid;
    const text = all.map((d) => JSON.stringify(d.dashboard)).join('\n');
    expect(uid).toBe('cdss-prometheus');
    const refs = [...text.matchAll(/"datasource":\{"type":"prometheus","uid":"([^"]+)"\}/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(30);
    expect(refs.filter((r) => r !== uid)).toEqual([]);
  });
});
