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

/** Offsets of the two name characters that pick candidate lengths ("vllm:num..." -> 'n','m'; "sglang:num..." -> 'g','n'). */
const DISPATCH_A = 5;
const DISPATCH_B = 7;
const HASH = 35, LBRACE = 123, RBRACE = 125, SPACE = 32, TAB = 9, CR = 13, NL = 10, QUOTE = 34, BACKSLASH = 92, COMMA = 44;

function parseValue(token: string): number {
  // Prometheus spells infinities +Inf/-Inf, which Number() does not read.
  if (token === '+Inf') return Infinity;
  if (token === '-Inf') return -Infinity;
  return Number(token);
}

/**
 * Value of the label whose `name="` needle is given, in `block` (the `{...}`
 * text, sliced out so the search stops at its end), or undefined. Found with a native search; a match must
 * follow '{', ',' or a blank (so `xblock_size` does not match `block_size`).
 */
export function labelValue(block: string, needle: string): string | undefined {
  const text = block;
  const close = block.length - 1;
  let i = text.indexOf(needle, 1);
  while (i >= 0 && i < close) {
    const prev = text.charCodeAt(i - 1);
    if (prev === LBRACE || prev === COMMA || prev === SPACE || prev === TAB) {
      const start = i + needle.length;
      let j = start;
      for (; j < close; j++) {
        const c = text.charCodeAt(j);
        if (c === QUOTE) return text.slice(start, j);
        if (c === BACKSLASH) break;
      }
      // Escapes (rare): unescape \\, \" and \n.
      let value = text.slice(start, j);
      for (; j < close; j++) {
        const c = text.charCodeAt(j);
        if (c === QUOTE) return value;
        if (c === BACKSLASH) { j++; value += text[j] === 'n' ? '\n' : text[j]; } else value += text[j];
      }
      return undefined;
    }
    i = text.indexOf(needle, i + 1);
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
  /** (char at DISPATCH_A << 8 | char at DISPATCH_B) -> distinct lengths of the names with those chars, ascending */
  private readonly dispatch = new Map<number, number[]>();
  /** lengths of names too short for the dispatch key, always tried */
  private readonly shortLengths: number[];

  constructor(mappings: readonly MetricMapping[] = DEFAULT_METRIC_MAPPINGS) {
    this.acc = mappings.map(() => ({ sum: 0, max: -Infinity, count: 0 }));
    const short = new Set<number>();
    for (const m of mappings) {
      const n = m.metric;
      if (n.length <= DISPATCH_B) { short.add(n.length); continue; }
      const key = (n.charCodeAt(DISPATCH_A) << 8) | n.charCodeAt(DISPATCH_B);
      const ls = this.dispatch.get(key) ?? [];
      if (!ls.includes(n.length)) ls.push(n.length);
      ls.sort((a, b) => a - b);
      this.dispatch.set(key, ls);
    }
    this.shortLengths = [...short].sort((a, b) => a - b);
    mappings.forEach((m, index) => {
      const row: CompiledRow = {
        index, field: m.field, aggregate: m.aggregate ?? 'sum',
        fromLabels: m.fromLabels && m.fromLabels.length > 0 ? m.fromLabels.map((l) => `${l}="`) : null, scale: m.scale ?? 1,
      };
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
        // A name ends at '{' or a blank and holds neither, so at most one mapped
        // length fits. Two characters of the line pick the few lengths worth
        // trying; most lines (histogram buckets) get none.
        const lengths = this.dispatch.get((text.charCodeAt(pos + DISPATCH_A) << 8) | text.charCodeAt(pos + DISPATCH_B));
        if (lengths !== undefined) this.probe(text, pos, lineEnd, lengths);
        if (this.shortLengths.length > 0) this.probe(text, pos, lineEnd, this.shortLengths);
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

  private probe(text: string, pos: number, lineEnd: number, lengths: number[]): void {
    for (let k = 0; k < lengths.length; k++) {
      const end = pos + lengths[k];
      if (end >= lineEnd) return; // lengths ascend
      const c = text.charCodeAt(end);
      if (c === LBRACE || c === SPACE || c === TAB) {
        const rows = this.byName.get(text.slice(pos, end));
        if (rows !== undefined) this.sample(text, end, lineEnd, rows);
        return;
      }
    }
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
    let block: string | null = null;
    for (const row of rows) {
      let v: number;
      if (row.fromLabels !== null) {
        if (open < 0) continue;
        block ??= text.slice(open, close + 1);
        v = 1;
        for (const needle of row.fromLabels) {
          const s = labelValue(block, needle);
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
