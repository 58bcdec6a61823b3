import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_METRIC_MAPPINGS, MetricExtractor } from '../../control-plane/engineMetrics.js';
import { SAMPLE_FILES, sample, setMetric } from './support.js';

/** A reference reading of the same text: a plain, obviously-correct parser of every sample line. */
function referenceSamples(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

test('every sample file in data/metrics yields running, waiting and KV usage matching a reference reading', () => {
  assert.ok(SAMPLE_FILES.length >= 3, 'expected the shared metric samples');
  const x = new MetricExtractor();
  for (const file of SAMPLE_FILES) {
    const text = sample(file);
    const got = x.extract(text);
    const ref = referenceSamples(text);
    const sum = (name: string) => ref.filter((s) => s.name === name && s.value >= 0).reduce((a, s) => a + s.value, 0);
    const has = (name: string) => ref.some((s) => s.name === name);
    const prefix = file.startsWith('sglang') ? 'sglang' : 'vllm';
    assert.equal(typeof got.running, 'number', `${file}: running`);
    assert.equal(typeof got.waiting, 'number', `${file}: waiting`);
    assert.equal(typeof got.kvUsage, 'number', `${file}: kvUsage`);
    if (prefix === 'vllm') {
      assert.equal(got.running, sum('vllm:num_requests_running'), file);
      assert.equal(got.waiting, sum('vllm:num_requests_waiting'), file);
      const info = ref.find((s) => s.name === 'vllm:cache_config_info')!;
      assert.equal(got.kvCapacityTokens, Number(info.labels.num_gpu_blocks) * Number(info.labels.block_size), `${file}: capacity = blocks x block size`);
      if (has('vllm:prefix_cache_queries_total')) {
        assert.equal(got.prefixCacheQueries, sum('vllm:prefix_cache_queries_total'));
        assert.equal(got.prefixCacheHits, sum('vllm:prefix_cache_hits_total'));
      }
    } else {
      assert.equal(got.running, sum('sglang:num_running_reqs'));
      assert.equal(got.waiting, sum('sglang:num_queue_reqs'));
      assert.equal(got.kvUsage, sum('sglang:token_usage'));
      assert.equal(got.kvCapacityTokens, sum('sglang:max_total_num_tokens'));
      assert.equal(got.cacheHitRate, sum('sglang:cache_hit_rate'));
    }
  }
});

test('exact values from the samples', () => {
  const x = new MetricExtractor();
  assert.deepEqual(x.extract(sample('vllm-datadog-fixture.txt')), {
    running: 0, waiting: 0, kvUsage: 0, prefixCacheQueries: 117, prefixCacheHits: 64, kvCapacityTokens: 7281 * 16,
  });
  // V0: gpu_cache_usage_perc; gpu_prefix_cache_hit_rate is -1 ("no data") and is ignored.
  assert.deepEqual(x.extract(sample('vllm-aibrix-docs-partial.txt')), { running: 0, waiting: 0, kvUsage: 0, kvCapacityTokens: 81767 * 16 });
  assert.deepEqual(x.extract(sample('sglang-datadog-fixture.txt')), {
    running: 0, waiting: 0, kvUsage: 0.25, cacheHitRate: 0.2, kvCapacityTokens: 430839,
  });
});

/** The vLLM sample as a two-engine V1 server writes it: every sample line once per engine label. */
function twoEngines(text: string, perEngine: (engine: number, line: string) => string = (_e, l) => l): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) { out.push(line); continue; }
    for (const e of [0, 1]) {
      const withLabel = line.includes('{') ? line.replace('{', `{engine="${e}",`) : line.replace(/^(\S+)/, `$1{engine="${e}"}`);
      out.push(perEngine(e, withLabel));
    }
  }
  return out.join('\n');
}

test('vLLM V1 engine labels: counts and capacity sum across engines, KV usage averages', () => {
  let text = sample('vllm-datadog-fixture.txt');
  text = twoEngines(text, (e, line) => {
    line = setMetric(line, 'vllm:num_requests_running', e === 0 ? 3 : 4);
    line = setMetric(line, 'vllm:num_requests_waiting', e === 0 ? 1 : 6);
    line = setMetric(line, 'vllm:kv_cache_usage_perc', e === 0 ? 0.2 : 0.6);
    line = setMetric(line, 'vllm:prefix_cache_queries_total', e === 0 ? 100 : 300);
    return setMetric(line, 'vllm:prefix_cache_hits_total', e === 0 ? 10 : 30);
  });
  const got = new MetricExtractor().extract(text);
  assert.equal(got.running, 7);
  assert.equal(got.waiting, 7);
  assert.ok(Math.abs(got.kvUsage! - 0.4) < 1e-12);
  assert.equal(got.prefixCacheQueries, 400);
  assert.equal(got.prefixCacheHits, 40);
  assert.equal(got.kvCapacityTokens, 2 * 7281 * 16);
});

test('kv_cache_size_tokens label wins over blocks x block size', () => {
  const text = 'vllm:cache_config_info{block_size="16",kv_cache_size_tokens="200000",num_gpu_blocks="7281"} 1.0\nvllm:num_requests_running 2\n';
  assert.deepEqual(new MetricExtractor().extract(text), { kvCapacityTokens: 200000, running: 2 });
});

test('user mapping rows take priority over the built-in table, with scale and max', () => {
  const x = new MetricExtractor([
    { metric: 'myengine:queue_len', field: 'waiting', aggregate: 'max' },
    { metric: 'myengine:kv_percent', field: 'kvUsage', scale: 0.01, aggregate: 'mean' },
    ...DEFAULT_METRIC_MAPPINGS,
  ]);
  const text = 'myengine:queue_len{rank="0"} 4\nmyengine:queue_len{rank="1"} 9\nmyengine:kv_percent 50\nvllm:num_requests_waiting 100\nvllm:num_requests_running 1\n';
  const got = x.extract(text);
  assert.equal(got.waiting, 9);
  assert.equal(got.kvUsage, 0.5);
  assert.equal(got.running, 1);
});

test('tolerates CRLF, tabs, timestamps, escaped label values, NaN/Inf and malformed lines', () => {
  const text = [
    '# HELP vllm:num_requests_running x',
    'vllm:num_requests_running{model_name="a \\"quoted\\" {name}"} 2 1700000000000\r',
    'vllm:num_requests_running\t3',
    'vllm:num_requests_waiting{unterminated="x 5',
    'vllm:num_requests_waiting NaN',
    'vllm:num_requests_waiting +Inf',
    'vllm:kv_cache_usage_perc{engine="0"} 0.5',
    'vllm:cache_config_info{xblock_size="99",block_size="8",num_gpu_blocks="10"} 1',
    '',
    'garbage line without value',
    '{}{}{}',
  ].join('\n');
  const got = new MetricExtractor().extract(text);
  assert.equal(got.running, 5);
  assert.equal(got.waiting, undefined);
  assert.equal(got.kvUsage, 0.5);
  assert.equal(got.kvCapacityTokens, 80);
});

test('random bytes never throw and never invent fields', () => {
  const x = new MetricExtractor();
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = 'vllm:num_requests_running{}="\\ \n\t0123456789.e+-#';
  for (let i = 0; i < 300; i++) {
    let s = '';
    const n = Math.floor(rnd() * 400);
    for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    const got = x.extract(s);
    for (const v of Object.values(got)) assert.ok(Number.isFinite(v) && v >= 0);
  }
});
