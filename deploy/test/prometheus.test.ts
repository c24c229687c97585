/**
 * deploy/prometheus and deploy/alertmanager: checked by promtool and amtool, unit-tested by `promtool test rules`,
 * and run for real: Prometheus scrapes the real reference server with the deployment's rules, every recording rule
 * yields data, and stopping the server makes CdssServerDown fire and reach the example webhook receiver through
 * Alertmanager's critical route.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardExpressions } from './metric-names.js';
import {
  DEPLOY_DIR,
  fetchRaw,
  freePort,
  requireBinaries,
  run,
  sandboxToken,
  spawnService,
  startReferenceServer,
  tempDir,
  waitFor,
  type ReferenceServer,
  type Spawned,
} from './support.js';

const bins = requireBinaries(
  'deploy/prometheus test',
  ['prometheus', 'promtool', 'prometheus-alertmanager', 'amtool'],
  'prometheus prometheus-alertmanager',
);

const PROM_DIR = join(DEPLOY_DIR, 'prometheus');
const AM_FILE = join(DEPLOY_DIR, 'alertmanager', 'alertmanager.yml');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

function rulesOf(file: string): Rule[] {
  return (parse(readFileSync(join(PROM_DIR, 'rules', file), 'utf8')) as RuleFile).groups.flatMap((g) => g.rules);
}

describe.skipIf(!bins)('deploy/prometheus and deploy/alertmanager, checked offline', () => {
  it('promtool accepts the configuration and both rule files', () => {
    const res = run(bins!.promtool, ['check', 'config', join(PROM_DIR, 'prometheus.yml')]);
    expect(res.status, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('SUCCESS: 2 rule files found');
  });

  it('promtool test rules passes, and covers every alert rule with a firing case', () => {
    const res = run(bins!.promtool, ['test', 'rules', join(PROM_DIR, 'tests', 'alerts.test.yml')]);
    expect(res.status, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('SUCCESS');

    const tests = parse(readFileSync(join(PROM_DIR, 'tests', 'alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const firingCases = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname),
      ),
    );
    const alerts = rulesOf('alerts.yml').flatMap((r) => (r.alert ? [r.alert] : []));
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    expect(alerts.filter((name) => !firingCases.has(name))).toEqual([]);
    // what an operator must know, by name
    for (const name of [
      'CdssServerDown',
      'CdssHighErrorRate',
      'CdssHighLatencyP99',
      'CdssUpstreamFailing',
      'CdssJobQueueBacklogGrowing',
      'CdssJobsFailing',
      'CdssOutboxBacklogOld',
      'CdssOutboxDeadLetters',
      'CdssCacheHitRatioCollapse',
    ]) {
      expect(alerts).toContain(name);
    }
    for (const rule of rulesOf('alerts.yml')) expect(['critical', 'warning']).toContain(rule.labels?.['severity']);
  });

  it('amtool accepts the Alertmanager configuration and routes by severity', () => {
    const check = run(bins!.amtool, ['check-config', AM_FILE]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const route = (...labels: string[]): string =>
      run(bins!.amtool, ['config', 'routes', 'test', `--config.file=${AM_FILE}`, ...labels]).stdout.trim();
    expect(route('severity=critical', 'alertname=CdssServerDown')).toBe('ops-pager');
    expect(route('severity=warning', 'alertname=CdssJobsFailing')).toBe('ops-tickets');
    expect(route('alertname=Unlabelled')).toBe('ops-default');
    const config = parse(readFileSync(AM_FILE, 'utf8')) as { inhibit_rules: { source_matchers: string[] }[] };
    expect(config.inhibit_rules.map((r) => r.source_matchers.join())).toContain('alertname="CdssServerDown"');
  });
});

describe.skipIf(!bins)('Prometheus and Alertmanager against the running reference server', () => {
  let dir: string;
  let server: ReferenceServer | undefined;
  let prometheus: Spawned | undefined;
  let alertmanager: Spawned | undefined;
  let webhook: Spawned | undefined;
  let promUrl: string;
  let amUrl: string;
  let traffic: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    if (!bins) return;
    dir = tempDir('prometheus');
    chmodSync(dir, 0o755);
    server = await startReferenceServer();
    const [webhookPort, amPort, promPort] = [await freePort(), await freePort(), await freePort()];

    // The example webhook receiver, as shipped.
    webhook = spawnService(process.execPath, [join(DEPLOY_DIR, 'alertmanager', 'webhook-receiver.mjs')], {
      env: { ...process.env, WEBHOOK_PORT: String(webhookPort), WEBHOOK_HOST: '127.0.0.1' },
    });

    // Alertmanager: the deployment's routing, with the receivers pointed at the test receiver and short waits.
    const am = parse(readFileSync(AM_FILE, 'utf8')) as {
      route: Record<string, unknown> & { routes?: Record<string, unknown>[] };
      receivers: { name: string; webhook_configs?: { url: string }[] }[];
    };
    for (const r of [am.route, ...(am.route.routes ?? [])])
      Object.assign(r, { group_wait: '1s', group_interval: '1s' });
    for (const receiver of am.receivers) {
      for (const hook of receiver.webhook_configs ?? [])
        hook.url = hook.url.replace(/^https?:\/\/[^/]+/, `http://127.0.0.1:${webhookPort}`);
    }
    mkdirSync(join(dir, 'am-data'));
    writeFileSync(join(dir, 'alertmanager.yml'), stringify(am));
    alertmanager = spawnService(bins['prometheus-alertmanager'], [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ]);

    // Prometheus: the deployment's configuration and rules; the server found by a static target instead of DNS,
    // 1 s intervals, and every `for:` shortened to 1 s so the alert fires within the test.
    const prom = parse(readFileSync(join(PROM_DIR, 'prometheus.yml'), 'utf8')) as {
      global: Record<string, unknown>;
      rule_files: string[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
      scrape_configs: ({
        job_name: string;
        dns_sd_configs?: unknown;
        static_configs?: { targets: string[] }[];
      } & Record<string, unknown>)[];
    };
    Object.assign(prom.global, { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' });
    mkdirSync(join(dir, 'rules'));
    for (const file of prom.rule_files) {
      const rules = parse(readFileSync(join(PROM_DIR, file), 'utf8')) as RuleFile;
      for (const rule of rules.groups.flatMap((g) => g.rules)) if (rule.for) rule.for = '1s';
      writeFileSync(join(dir, file), stringify(rules));
    }
    prom.alerting.alertmanagers = [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }];
    const job = prom.scrape_configs.find((c) => c.job_name === 'cdss-server');
    if (!job) throw new Error('deploy/prometheus/prometheus.yml has no cdss-server job');
    delete job.dns_sd_configs;
    job.static_configs = [{ targets: [`127.0.0.1:${server.port}`] }];
    prom.scrape_configs = [job];
    writeFileSync(join(dir, 'prometheus.yml'), stringify(prom));
    const check = run(bins.promtool, ['check', 'config', join(dir, 'prometheus.yml')]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    prometheus = spawnService(bins.prometheus, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'prom-data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    promUrl = `http://127.0.0.1:${promPort}`;
    amUrl = `http://127.0.0.1:${amPort}`;
    await waitFor('Prometheus ready', async () => (await fetchRaw(`${promUrl}/-/ready`)).status === 200, 30_000);
    await waitFor(
      'Alertmanager ready',
      async () => (await fetchRaw(`http://127.0.0.1:${amPort}/-/ready`)).status === 200,
      30_000,
    );
    await waitFor(
      'webhook receiver',
      async () => (await fetchRaw(`http://127.0.0.1:${webhookPort}/healthz`)).status === 200,
      10_000,
    );

    // Real traffic: patient list and reads (cache misses, loads and hits), while the scrapes run.
    const token = await sandboxToken(server.url);
    const list = JSON.parse(
      (await fetchRaw(`${server.url}/api/patients`, { headers: { authorization: `Bearer ${token}` } })).text(),
    ) as { items: { id: string }[] };
    const ids = list.items.map((p) => p.id);
    let i = 0;
    traffic = setInterval(() => {
      const id = ids[i++ % ids.length];
      void fetchRaw(`${server!.url}/api/patients/${id}`, { headers: { authorization: `Bearer ${token}` } }).catch(
        () => undefined,
      );
    }, 200);
  });

  afterAll(async () => {
    clearInterval(traffic);
    await prometheus?.stop();
    await alertmanager?.stop();
    await webhook?.stop();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetchRaw(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = JSON.parse(res.text()) as {
      status: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      error?: string;
    };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error ?? res.status}`);
    return body.data?.result ?? [];
  }

  it('scrapes the server: the target is up', async () => {
    const up = await waitFor('up{job="cdss-server"} == 1', async () => {
      const result = await query('up{job="cdss-server"}');
      return result[0]?.value[1] === '1' ? result : undefined;
    });
    expect(up[0]?.metric['instance']).toBe(`127.0.0.1:${server!.port}`);
    const targets = JSON.parse((await fetchRaw(`${promUrl}/api/v1/targets`)).text()) as {
      data: { activeTargets: { health: string; labels: Record<string, string> }[] };
    };
    expect(targets.data.activeTargets.map((t) => [t.labels['job'], t.health])).toEqual([['cdss-server', 'up']]);
  });

  it('every recording rule has data', async () => {
    const records = rulesOf('recording.yml').flatMap((r) => (r.record ? [r.record] : []));
    expect(records.length).toBeGreaterThanOrEqual(8);
    const emptyRecords = async (): Promise<string[]> => {
      const empty: string[] = [];
      for (const record of records) if ((await query(record)).length === 0) empty.push(record);
      return empty;
    };
    const missing = await waitFor(
      'a sample for every recording rule',
      async () => {
        const empty = await emptyRecords();
        return empty.length === 0 ? empty : undefined;
      },
      30_000,
    ).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}; still empty: ${(await emptyRecords()).join(', ')}`);
    });
    expect(missing).toEqual([]);
    // the cache really hit (reads repeat) and the API had no 5xx
    const ratio = Number((await query('job:cdss_cache_hit_ratio:rate5m'))[0]?.value[1]);
    expect(ratio).toBeGreaterThan(0);
    expect(Number((await query('job:cdss_http_errors:ratio_rate5m'))[0]?.value[1])).toBe(0);
  });

  it('Prometheus accepts every dashboard query (Grafana variables filled in)', async () => {
    const usages = dashboardExpressions();
    expect(usages.length).toBeGreaterThan(30);
    const failures: string[] = [];
    for (const usage of usages) {
      const expr = usage.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
      await query(expr).catch((error: unknown) =>
        failures.push(`${usage.file} ${usage.where}: ${(error as Error).message}`),
      );
    }
    expect(failures).toEqual([]);
  });

  it('Alertmanager inhibits the symptoms of a down server and a warning shadowed by the same critical alert', async () => {
    const now = new Date().toISOString();
    const alert = (labels: Record<string, string>) => ({
      labels: { job: 'inhibit-test', ...labels },
      annotations: { summary: 'test' },
      startsAt: now,
    });
    const posted = await fetchRaw(`${amUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        alert({ alertname: 'CdssServerDown', severity: 'critical', instance: 'x:8080' }),
        alert({ alertname: 'CdssHighErrorRate', severity: 'critical' }),
        alert({ alertname: 'CdssJobsFailing', severity: 'warning' }),
      ]),
    });
    expect(posted.status).toBe(200);
    const states = await waitFor('the three test alerts', async () => {
      const res = await fetchRaw(`${amUrl}/api/v2/alerts?filter=${encodeURIComponent('job="inhibit-test"')}`);
      const list = JSON.parse(res.text()) as {
        labels: Record<string, string>;
        status: { state: string; inhibitedBy: string[] };
      }[];
      return list.length === 3 ? new Map(list.map((a) => [a.labels['alertname'], a.status])) : undefined;
    });
    expect(states.get('CdssServerDown')?.state).toBe('active');
    expect(states.get('CdssHighErrorRate')?.state).toBe('suppressed');
    expect(states.get('CdssHighErrorRate')?.inhibitedBy.length).toBe(1);
    expect(states.get('CdssJobsFailing')?.state).toBe('active'); // another alert: not inhibited
  });

  it('CdssServerDown fires when the server is stopped and reaches the webhook through the critical route', async () => {
    clearInterval(traffic);
    await server!.stop();
    const line = await waitFor(
      'CdssServerDown at the webhook receiver',
      () =>
        webhook!
          .stdout()
          .split('\n')
          .filter(Boolean)
          .map(
            (l) =>
              JSON.parse(l) as {
                path: string;
                receiver: string;
                status: string;
                alerts: { alertname: string; status: string; severity: string; job?: string; instance?: string }[];
              },
          )
          .find((n) =>
            n.alerts.some((a) => a.alertname === 'CdssServerDown' && a.status === 'firing' && a.job === 'cdss-server'),
          ),
      45_000,
    );
    expect(line.path).toBe('/alerts/pager');
    expect(line.receiver).toBe('ops-pager');
    expect(line.alerts.find((a) => a.alertname === 'CdssServerDown' && a.job === 'cdss-server')).toMatchObject({
      severity: 'critical',
      instance: `127.0.0.1:${server!.port}`,
    });
  });
});
