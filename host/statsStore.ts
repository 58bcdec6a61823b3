// Stats in Envoy's shape, and the Prometheus text of Envoy's admin `/stats/prometheus`
// (source/server/admin/prometheus_stats.cc): a stat is a tag-extracted name plus tags; Envoy's
// own stats are exported as `envoy_<name>{envoy_<tag>="..."}`, and the module's stats
// (proxy_define_metric, kept by Envoy under the `wasmcustom.` namespace) with that namespace
// stripped and no `envoy_` prefix. Counters first, then gauges, then histograms; groups sorted
// by name, lines within a group by their tags.
import type { MetricValue } from './proxyWasmHost.js';

export type StatTags = ReadonlyArray<readonly [string, string]>;

/** One counter or gauge of the proxy's own (not the module's). */
export class Stat {
  value = 0;
  constructor(readonly name: string, readonly tags: StatTags) {}
  inc(by = 1): void {
    this.value += by;
  }
  dec(): void {
    this.value--;
  }
}

/** Envoy's default histogram buckets (Stats::HistogramSettingsImpl::defaultBuckets). */
const DEFAULT_HISTOGRAM_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** Envoy's sanitizeName: anything outside [a-zA-Z0-9_] becomes '_'. */
function sanitizeName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** Envoy's sanitizeValue, as Prometheus text escapes a label value. */
function sanitizeValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatTags(tags: StatTags): string {
  return tags.map(([k, v]) => `${sanitizeName(k)}="${sanitizeValue(v)}"`).join(',');
}

/**
 * The name a module's metric is exported under: Envoy keeps it as `wasmcustom.<name>`, and the
 * Prometheus formatter strips that namespace; a name that is empty or starts with a digit
 * after sanitizing is left out (Envoy's metricName returns nullopt).
 */
function customMetricName(name: string): string | null {
  const n = sanitizeName(name);
  return n === '' || /^[0-9]/.test(n) ? null : n;
}

type Kind = 'counter' | 'gauge';

/** The proxy's own stats: counters and gauges by tag-extracted name and tags. */
export class StatsStore {
  private readonly stats = new Map<string, { kind: Kind; stat: Stat }>();

  counter(name: string, tags: StatTags = []): Stat {
    return this.get('counter', name, tags);
  }

  gauge(name: string, tags: StatTags = []): Stat {
    return this.get('gauge', name, tags);
  }

  private get(kind: Kind, name: string, tags: StatTags): Stat {
    const key = `${name}{${formatTags(tags)}}`;
    let e = this.stats.get(key);
    if (e === undefined) {
      e = { kind, stat: new Stat(name, tags) };
      this.stats.set(key, e);
    } else if (e.kind !== kind) {
      throw new Error(`stat ${key} is a ${e.kind}, not a ${kind}`);
    }
    return e.stat;
  }

  /** The stats of one kind, as [name, tags, value]. */
  list(kind: Kind): Array<{ name: string; tags: StatTags; value: number }> {
    const out: Array<{ name: string; tags: StatTags; value: number }> = [];
    for (const { kind: k, stat } of this.stats.values()) if (k === kind) out.push({ name: stat.name, tags: stat.tags, value: stat.value });
    return out;
  }
}

interface Line {
  tags: string;
  text: string;
}

/** Renders the proxy's stats and the module's metrics (summed over worker VMs, as Envoy's stats are) as Prometheus text. */
export function renderPrometheus(own: StatsStore, moduleMetrics: Map<string, MetricValue>): string {
  const groups = { counter: new Map<string, Line[]>(), gauge: new Map<string, Line[]>(), histogram: new Map<string, Line[]>() };
  const add = (type: keyof typeof groups, name: string, line: Line) => {
    let g = groups[type].get(name);
    if (!g) groups[type].set(name, (g = []));
    g.push(line);
  };
  for (const kind of ['counter', 'gauge'] as const) {
    for (const s of own.list(kind)) {
      const name = `envoy_${sanitizeName(s.name)}`;
      const tags = formatTags(s.tags);
      add(kind, name, { tags, text: `${name}{${tags}} ${s.value}\n` });
    }
  }
  for (const [raw, m] of moduleMetrics) {
    const name = customMetricName(raw);
    if (name === null) continue;
    if (m.type !== 'histogram') {
      add(m.type, name, { tags: '', text: `${name}{} ${m.value}\n` });
      continue;
    }
    const samples = m.samples ?? [];
    let text = '';
    for (const le of DEFAULT_HISTOGRAM_BUCKETS) text += `${name}_bucket{le="${le}"} ${samples.filter((v) => v <= le).length}\n`;
    text += `${name}_bucket{le="+Inf"} ${samples.length}\n`;
    text += `${name}_sum{} ${samples.reduce((a, b) => a + b, 0)}\n`;
    text += `${name}_count{} ${samples.length}\n`;
    add('histogram', name, { tags: '', text });
  }
  let out = '';
  for (const type of ['counter', 'gauge', 'histogram'] as const) {
    for (const name of [...groups[type].keys()].sort()) {
      out += `# TYPE ${name} ${type}\n`;
      for (const line of groups[type].get(name)!.sort((a, b) => (a.tags < b.tags ? -1 : a.tags > b.tags ? 1 : 0))) out += line.text;
    }
  }
  return out;
}
