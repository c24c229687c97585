/**
 * Metric names used by the deployment (Prometheus rules, Grafana dashboards) and the metric families a server
 * exposes, so a test can hold the two to each other.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEPLOY_DIR } from './support.js';

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric (and recording-rule) names a PromQL expression selects. Strings, label matchers, range and subquery
 * brackets, grouping clauses, offsets and numbers are removed first; an identifier followed by `(` is a function.
 */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  s = s.replace(/\boffset\s+-?\w+/g, ' ');
  s = s.replace(/(^|[^\w:])(\d+(\.\d+)?(e[+-]?\d+)?)/gi, '$1 ');
  const names = new Set<string>();
  for (const match of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const rest = s.slice((match.index ?? 0) + name.length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/** Metric families in a Prometheus text exposition (`# TYPE name type`), with their types. */
export function exposedFamilies(exposition: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line.trim());
    if (m) families.set(m[1]!, m[2]!);
  }
  return families;
}

/**
 * The names among `used` that the exposition does not provide. A histogram or summary provides `_bucket`, `_sum`
 * and `_count`; names with a colon must be recording rules; `up` is Prometheus's own.
 */
export function missingMetrics(
  used: Iterable<string>,
  families: ReadonlyMap<string, string>,
  recorded: ReadonlySet<string>,
): string[] {
  const missing: string[] = [];
  for (const name of used) {
    if (name === 'up') continue;
    if (name.includes(':')) {
      if (!recorded.has(name)) missing.push(name);
      continue;
    }
    if (families.has(name)) continue;
    const base = /^(.*)_(bucket|sum|count)$/.exec(name);
    const type = base ? families.get(base[1]!) : undefined;
    if (type === 'histogram' || (type === 'summary' && base?.[2] !== 'bucket')) continue;
    missing.push(name);
  }
  return missing;
}

/** Where a name is used, for failure messages. */
export interface Usage {
  file: string;
  where: string;
  expr: string;
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}

/** Every expression of the rule files, and the recording-rule names. */
export function ruleExpressions(): { usages: Usage[]; recorded: Set<string> } {
  const usages: Usage[] = [];
  const recorded = new Set<string>();
  const dir = join(DEPLOY_DIR, 'prometheus', 'rules');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yml'))) {
    const rules = parse(readFileSync(join(dir, file), 'utf8')) as RuleFile;
    for (const rule of rules.groups.flatMap((g) => g.rules)) {
      if (rule.record) recorded.add(rule.record);
      usages.push({ file: `prometheus/rules/${file}`, where: rule.alert ?? rule.record ?? '?', expr: rule.expr });
    }
  }
  return { usages, recorded };
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: { name: string; query?: string | { query?: string }; definition?: string }[] };
}

/** The dashboards under deploy/grafana/dashboards, parsed. */
export function dashboards(): { file: string; dashboard: Dashboard }[] {
  const dir = join(DEPLOY_DIR, 'grafana', 'dashboards');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Dashboard }));
}

/** Every PromQL expression of the dashboards (panel targets, nested rows, `label_values(...)` variables). */
export function dashboardExpressions(): Usage[] {
  const usages: Usage[] = [];
  for (const { file, dashboard } of dashboards()) {
    const walk = (panels: Panel[]): void => {
      for (const panel of panels) {
        for (const target of panel.targets ?? [])
          if (target.expr)
            usages.push({ file: `grafana/dashboards/${file}`, where: panel.title ?? '?', expr: target.expr });
        if (panel.panels) walk(panel.panels);
      }
    };
    walk(dashboard.panels);
    for (const variable of dashboard.templating?.list ?? []) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const inner = query ? /^label_values\((.*),\s*\w+\)$/.exec(query.trim()) : null;
      if (inner)
        usages.push({ file: `grafana/dashboards/${file}`, where: `variable ${variable.name}`, expr: inner[1]! });
    }
  }
  return usages;
}
