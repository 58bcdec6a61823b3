// Reads the few engine metrics the router needs out of Prometheus text.
//
// Hand-written on purpose: this runs for every scrape (256 replicas x 20/s =
// 5120 parses/s on a quarter core). The general parser we evaluated
// (parse-prometheus-text-format 1.1.1) took ~600 us per parse of the 21 KB
// vLLM sample, about 3 cores at that rate. This one only looks at lines whose
// metric name is in the mapping table and parses labels only where a mapping
// reads them.

/** What the router knows about an engine, after aggregation over label sets. */
export interface EngineMetrics {
  running?: number;
  waiting?: number;
  /** 0..1 */
  kvUsage?: number;
  /** counter: prefix-cache lookups (vLLM counts tokens) */
  prefixCacheQueries?: number;
  /** counter: prefix-cache hits, same unit as queries */
  prefixCacheHits?: number;
  /** gauge 0..1, for engines without the counters (SGLang, vLLM V0) */
  cacheHitRate?: number;
  kvCapacityTokens?: number;
}

export type MetricField = keyof EngineMetrics;
export const METRIC_FIELDS: readonly MetricField[] = [
  'running', 'waiting', 'kvUsage', 'prefixCacheQueries', 'prefixCacheHits', 'cacheHitRate', 'kvCapacityTokens',
];
export type Aggregation = 'sum' | 'mean' | 'max';

/**
 * One row of the mapping table. For each field the first row (in table order)
 * that matched at least one sample wins, so more specific or newer names go first.
 */
export interface MetricMapping {
  /** exact Prometheus metric name, e.g. `vllm:num_requests_running` */
  metric: string;
  field: MetricField;
  /** across label sets (vLLM V1 `engine`, SGLang `tp_rank`, ...); default `sum` */
  aggregate?: Aggregation;
  /** take the value from these labels (their product) instead of the sample value, e.g. info metrics */
  fromLabels?: string[];
  /** multiply the value (e.g. 0.01 for an engine that reports percent) */
  scale?: number;
}

/**
 * Built-in table: vLLM V1, vLLM V0 / early V1, SGLang. Counts sum across
 * engines; fractions average. Users prepend their own rows (config
 * `metricMappings`), which then take priority.
 */
export const DEFAULT_METRIC_MAPPINGS: readonly MetricMapping[] = [
  // vLLM V1
  { metric: 'vllm:num_requests_running', field: 'running' },
  { metric: 'vllm:num_requests_waiting', field: 'waiting' },
  { metric: 'vllm:kv_cache_usage_perc', field: 'kvUsage', aggregate: 'mean' },
  { metric: 'vllm:prefix_cache_queries_total', field: 'prefixCacheQueries' },
  { metric: 'vllm:prefix_cache_hits_total', field: 'prefixCacheHits' },
  { metric: 'vllm:cache_config_info', field: 'kvCapacityTokens', fromLabels: ['kv_cache_size_tokens'] },
  { metric: 'vllm:cache_config_info', field: 'kvCapacityTokens', fromLabels: ['num_gpu_blocks', 'block_size'] },
  // vLLM V0 and early V1 names
  { metric: 'vllm:gpu_cache_usage_perc', field: 'kvUsage', aggregate: 'mean' },
  { metric: 'vllm:gpu_prefix_cache_queries_total', field: 'prefixCacheQueries' },
  { metric: 'vllm:gpu_prefix_cache_hits_total', field: 'prefixCacheHits' },
  { metric: 'vllm:gpu_prefix_cache_hit_rate', field: 'cacheHitRate', aggregate: 'mean' },
  // SGLang
  { metric: 'sglang:num_running_reqs', field: 'running' },
  { metric: 'sglang:num_queue_reqs', field: 'waiting' },
  { metric: 'sglang:token_usage', field: 'kvUsage', aggregate: 'mean' },
  { metric: 'sglang:cache_hit_rate', field: 'cacheHitRate', aggregate: 'mean' },
  { metric: 'sglang:max_total_num_tokens', field: 'kvCapacityTokens' },
];

interface CompiledRow {
  index: number;
  field: MetricField;
  aggregate: Aggregation;
  fromLabels: string[] | null;
  scale: number;
}

// Per-row accumulators, reused across parses (one extractor per scraper).
interface Acc { sum: number; max: number; count: number }

const HASH = 35, LBRACE = 123, RBRACE = 125, SPACE = 32, TAB = 9, CR = 13, NL = 10, QUOTE = 34, BACKSLASH = 92, EQ = 61, COMMA = 44;

function parseValue(token: string): number {
  // Prometheus spells infinities +Inf/-Inf, which Number() does not read.
  if (token === '+Inf') return Infinity;
  if (token === '-Inf') return -Infinity;
  return Number(token);
}

/** Label `name` of a `{...}` block, or undefined. Handles escaped quotes. */
function labelValue(text: string, open: number, close: number, name: string): string | undefined {
  let i = open + 1;
  while (i < close) {
    while (i < close && (text.charCodeAt(i) === SPACE || text.charCodeAt(i) === COMMA)) i++;
    const keyStart = i;
    while (i < close && text.charCodeAt(i) !== EQ) i++;
    const key = text.slice(keyStart, i).trim();
    i++; // '='
    while (i < close && text.charCodeAt(i) !== QUOTE) i++;
    i++; // opening quote
    let value = '';
    let segStart = i;
    while (i < close) {
      const c = text.charCodeAt(i);
      if (c === BACKSLASH) { value += text.slice(segStart, i); value += text[i + 1] === 'n' ? '\n' : text[i + 1]; i += 2; segStart = i; continue; }
      if (c === QUOTE) break;
      i++;
    }
    value += text.slice(segStart, i);
    i++; // closing quote
    if (key === name) return value;
  }
  return undefined;
}

/** Index of the `}` closing the label block opened at `open` (quotes respected), or -1. */
function closingBrace(text: string, open: number, end: number): number {
  let inQuote = false;
  for (let i = open + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (inQuote) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inQuote = false;
    } else if (c === QUOTE) inQuote = true;
    else if (c === RBRACE) return i;
  }
  return -1;
}

export class MetricExtractor {
  private readonly byName = new Map<string, CompiledRow[]>();
  private readonly acc: Acc[];
  private readonly rowsByField = new Map<MetricField, CompiledRow[]>();
  /** nameLengths[n] === 1 when some mapped metric name is n characters long */
  private readonly nameLengths: Uint8Array;

  constructor(mappings: readonly MetricMapping[] = DEFAULT_METRIC_MAPPINGS) {
    this.acc = mappings.map(() => ({ sum: 0, max: -Infinity, count: 0 }));
    this.nameLengths = new Uint8Array(1 + Math.max(0, ...mappings.map((m) => m.metric.length)));
    mappings.forEach((m, index) => {
      const row: CompiledRow = {
        index, field: m.field, aggregate: m.aggregate ?? 'sum',
        fromLabels: m.fromLabels && m.fromLabels.length > 0 ? m.fromLabels : null, scale: m.scale ?? 1,
      };
      this.nameLengths[m.metric.length] = 1;
      const rows = this.byName.get(m.metric) ?? [];
      rows.push(row);
      this.byName.set(m.metric, rows);
      const f = this.rowsByField.get(m.field) ?? [];
      f.push(row);
      this.rowsByField.set(m.field, f);
    });
  }

  /** Extracts the mapped fields; a field is absent when no row for it matched a usable sample. */
  extract(text: string): EngineMetrics {
    for (const a of this.acc) { a.sum = 0; a.max = -Infinity; a.count = 0; }
    const len = text.length;
    let pos = 0;
    while (pos < len) {
      let eol = text.indexOf('\n', pos);
      if (eol < 0) eol = len;
      let lineEnd = eol;
      if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === CR) lineEnd--;
      const first = text.charCodeAt(pos);
      if (first !== HASH && first !== NL && first !== SPACE && first !== TAB && lineEnd > pos) {
        // Name ends at '{' or the space before the value (native searches; tabs are rare enough to scan for).
        let i = text.indexOf('{', pos);
        if (i < 0 || i > lineEnd) i = lineEnd;
        const sp = text.indexOf(' ', pos);
        if (sp >= 0 && sp < i) i = sp;
        // Most lines (histogram buckets) have names of lengths no mapping has: skip them without hashing.
        if (this.nameLengths[i - pos] === 1) {
          const rows = this.byName.get(text.slice(pos, i));
          if (rows !== undefined) this.sample(text, i, lineEnd, rows);
        }
      }
      pos = eol + 1;
    }
    const out: EngineMetrics = {};
    for (const [field, rows] of this.rowsByField) {
      for (const row of rows) {
        const a = this.acc[row.index];
        if (a.count === 0) continue;
        out[field] = row.aggregate === 'sum' ? a.sum : row.aggregate === 'mean' ? a.sum / a.count : a.max;
        break;
      }
    }
    return out;
  }

  private sample(text: string, nameEnd: number, lineEnd: number, rows: CompiledRow[]): void {
    let i = nameEnd;
    let open = -1, close = -1;
    if (i < lineEnd && text.charCodeAt(i) === LBRACE) {
      open = i;
      close = closingBrace(text, open, lineEnd);
      if (close < 0) return; // malformed line: skip it, keep the rest
      i = close + 1;
    }
    while (i < lineEnd && (text.charCodeAt(i) === SPACE || text.charCodeAt(i) === TAB)) i++;
    let j = i;
    while (j < lineEnd && text.charCodeAt(j) !== SPACE && text.charCodeAt(j) !== TAB) j++;
    const sampleValue = parseValue(text.slice(i, j));
    for (const row of rows) {
      let v: number;
      if (row.fromLabels !== null) {
        if (open < 0) continue;
        v = 1;
        for (const name of row.fromLabels) {
          const s = labelValue(text, open, close, name);
          const n = s === undefined || s === '' ? NaN : Number(s);
          v *= n;
        }
      } else {
        v = sampleValue;
      }
      v *= row.scale;
      // NaN, infinities and negatives (vLLM writes -1 for "no data") are not usable values.
      if (!Number.isFinite(v) || v < 0) continue;
      const a = this.acc[row.index];
      a.sum += v;
      if (v > a.max) a.max = v;
      a.count++;
    }
  }
}
