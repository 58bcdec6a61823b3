// The Grafana dashboards in dashboards/ and plugin/METRICS.md, checked against the metrics the
// code exports: each dashboard parses, has the shape of a Grafana dashboard model, and every
// query names only exported metrics; METRICS.md lists every metric the code defines. The names
// come from the code: the filter's from assembly/metrics.ts (as Envoy's Prometheus output names
// a module's stats), the control plane's from its Telemetry registry.
import fs from 'node:fs';
import path from 'node:path';
import { Telemetry } from '../control-plane/telemetry.js';
import type { Finding } from './finding.js';

export interface ExportedMetrics {
  /** Exact Prometheus names (histograms with their _bucket, _sum and _count series). */
  names: Set<string>;
  /** Per-replica families: each replica's counter is `<family>_<ip_port>`. */
  replicaFamilies: string[];
  /** The names the project defines itself (not prom-client's process metrics), which METRICS.md must list. */
  own: string[];
}

/** Envoy's Prometheus name of a module stat: the wasmcustom namespace stripped, anything outside [a-zA-Z0-9_] as '_'. */
export const envoyCustomStatName = (name: string): string => name.replace(/[^a-zA-Z0-9_]/g, '_');

function filterStatNames(metricsSource: string): { names: string[]; families: string[] } {
  // The arrays hold what follows the common PREFIX, which the filter prepends when it defines a stat.
  const prefix = /const PREFIX = "([^"]*)";/.exec(metricsSource)?.[1] ?? '';
  const array = (id: string): string[] => {
    const m = new RegExp(`const ${id}: StaticArray<string> = \\[([\\s\\S]*?)\\];`).exec(metricsSource);
    return m ? [...m[1].matchAll(/"([^"]+)"/g)].map((x) => envoyCustomStatName(prefix + x[1])) : [];
  };
  return { names: [...array('NAMES'), ...array('GAUGE_NAMES')], families: array('REPLICA_NAMES') };
}

export function exportedMetrics(root: string): ExportedMetrics {
  const metricsTs = path.join(root, 'assembly/metrics.ts');
  const filter = fs.existsSync(metricsTs) ? filterStatNames(fs.readFileSync(metricsTs, 'utf8')) : { names: [], families: [] };
  const names = new Set<string>(filter.names);
  const t = new Telemetry();
  for (const m of t.registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  // The Telemetry's own fields are the project's metrics; the rest of its registry is prom-client's.
  const ownCp = Object.values(t).filter((v): v is { name: string; help: string } => typeof v === 'object' && v !== null && 'name' in v && 'help' in v).map((v) => v.name);
  return { names, replicaFamilies: filter.families, own: [...filter.names, ...filter.families.map((f) => `${f}_<replica>`), ...ownCp] };
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: bare names, and `__name__` matchers (returned
 * as their regex or literal). Functions, aggregation keywords, label names and strings are not names.
 */
export function metricsInQuery(expr: string): { names: string[]; nameMatchers: Array<{ op: string; value: string }> } {
  const nameMatchers: Array<{ op: string; value: string }> = [];
  let e = expr.replace(/\$\{?\w+\}?/g, '5m'); // Grafana variables ($__rate_interval, ${var})
  // Label matchers: keep __name__ ones, drop the rest with their braces.
  e = e.replace(/\{([^}]*)\}/g, (_, body: string) => {
    for (const m of body.matchAll(/__name__\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) nameMatchers.push({ op: m[1], value: m[2].replace(/\\\\/g, '\\') });
    return ' ';
  });
  e = e.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ');
  e = e.replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const id = m[0];
    const after = e.slice((m.index ?? 0) + id.length).trimStart();
    if (after.startsWith('(') || PROMQL_KEYWORDS.has(id.toLowerCase())) continue;
    const before = e.slice(0, m.index ?? 0);
    if (/[0-9.]$/.test(before)) continue; // a duration or number suffix (5m, 1e3)
    names.push(id);
  }
  return { names, nameMatchers };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const PANEL_TYPES = new Set(['timeseries', 'stat', 'gauge', 'table', 'bargauge', 'row', 'text', 'heatmap', 'piechart']);

/** Checks one dashboard file; adds findings through `add`. Returns the number of queries checked. */
export function checkDashboard(file: string, text: string, exported: ExportedMetrics, add: (at: string, message: string) => void): number {
  let model: unknown;
  try { model = JSON.parse(text); } catch (e) { add('(file)', `not JSON: ${(e as Error).message}`); return 0; }
  if (!isObj(model)) { add('(root)', 'a Grafana dashboard model is a JSON object'); return 0; }
  for (const [k, type] of [['title', 'string'], ['uid', 'string'], ['schemaVersion', 'number']] as const) {
    if (typeof model[k] !== type) add(k, `must be a ${type} (Grafana dashboard model)`);
  }
  if (typeof model.uid === 'string' && !/^[a-zA-Z0-9_-]{1,40}$/.test(model.uid)) add('uid', 'at most 40 letters, digits, - or _');
  const templating = isObj(model.templating) && Array.isArray(model.templating.list) ? model.templating.list : [];
  const variables = new Set(templating.filter(isObj).map((v) => String(v.name)));
  if (!Array.isArray(model.panels) || model.panels.length === 0) { add('panels', 'must be a non-empty array'); return 0; }
  const ids = new Set<number>();
  let queries = 0;
  model.panels.forEach((p: unknown, i: number) => {
    const at = `panels[${i}]`;
    if (!isObj(p)) { add(at, 'must be an object'); return; }
    if (typeof p.id !== 'number' || ids.has(p.id)) add(`${at}.id`, 'must be a number unique in the dashboard');
    else ids.add(p.id);
    if (typeof p.type !== 'string' || !PANEL_TYPES.has(p.type)) add(`${at}.type`, `must be one of ${[...PANEL_TYPES].join(', ')}`);
    if (typeof p.title !== 'string' || p.title === '') add(`${at}.title`, 'must be a non-empty string');
    const g = p.gridPos;
    if (!isObj(g) || !['h', 'w', 'x', 'y'].every((k) => Number.isInteger(g[k]) && (g[k] as number) >= 0) || (g.w as number) < 1 || (g.x as number) + (g.w as number) > 24) {
      add(`${at}.gridPos`, 'must have whole h, w, x, y with x + w <= 24');
    }
    if (p.type === 'row' || p.type === 'text') return;
    const ds = p.datasource;
    if (!isObj(ds) || ds.type !== 'prometheus' || typeof ds.uid !== 'string') add(`${at}.datasource`, 'must be {"type": "prometheus", "uid": ...}');
    else if (ds.uid.startsWith('$') && !variables.has(ds.uid.replace(/^\$\{?|\}$/g, ''))) add(`${at}.datasource.uid`, `names a variable the dashboard does not define: ${ds.uid}`);
    if (!Array.isArray(p.targets) || p.targets.length === 0) { add(`${at}.targets`, 'must be a non-empty array'); return; }
    const refIds = new Set<string>();
    p.targets.forEach((t: unknown, j: number) => {
      const tat = `${at}.targets[${j}]`;
      if (!isObj(t) || typeof t.expr !== 'string' || t.expr.trim() === '') { add(`${tat}.expr`, 'must be a PromQL expression'); return; }
      if (typeof t.refId !== 'string' || refIds.has(t.refId)) add(`${tat}.refId`, 'must be a string unique in the panel');
      else refIds.add(t.refId);
      queries++;
      const { names, nameMatchers } = metricsInQuery(t.expr);
      if (names.length === 0 && nameMatchers.length === 0) add(`${tat}.expr`, 'names no metric');
      for (const n of names) if (!exported.names.has(n)) add(`${tat}.expr`, `${n} is not a metric the project exports (plugin/METRICS.md)`);
      for (const m of nameMatchers) {
        const family = m.op === '=~' ? /^([a-zA-Z0-9_]+)_\.[+*]$/.exec(m.value)?.[1] : undefined;
        if (family === undefined || !exported.replicaFamilies.includes(family)) {
          add(`${tat}.expr`, `__name__${m.op}"${m.value}" must be "<family>_.+" for a per-replica family (${exported.replicaFamilies.join(', ')})`);
        }
      }
    });
  });
  return queries;
}

/** Every metric the project defines is listed in plugin/METRICS.md (by its Prometheus name, in backticks). */
export function checkMetricsDoc(text: string, exported: ExportedMetrics, add: (at: string, message: string) => void): void {
  for (const name of exported.own) if (!text.includes('`' + name + '`')) add(name, 'defined in the code but not documented');
}

export function validateDashboards(root: string): { findings: Finding[]; checked: string[] } {
  const findings: Finding[] = [];
  const checked: string[] = [];
  const exported = exportedMetrics(root);
  const doc = path.join(root, 'plugin/METRICS.md');
  if (fs.existsSync(doc)) {
    checkMetricsDoc(fs.readFileSync(doc, 'utf8'), exported, (at, message) => findings.push({ file: 'plugin/METRICS.md', path: at, message }));
    checked.push(`plugin/METRICS.md lists all ${exported.own.length} metrics the code defines`);
  } else findings.push({ file: 'plugin/METRICS.md', path: '(file)', message: 'missing' });
  const dir = path.join(root, 'dashboards');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  for (const f of files) {
    const rel = `dashboards/${f}`;
    const n = checkDashboard(rel, fs.readFileSync(path.join(dir, f), 'utf8'), exported, (at, message) => findings.push({ file: rel, path: at, message }));
    checked.push(`${rel}: Grafana dashboard model, ${n} queries naming exported metrics only`);
  }
  return { findings, checked };
}
