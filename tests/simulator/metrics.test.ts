import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicaEngine } from '../../simulator/engine.js';
import { renderMetrics } from '../../simulator/metrics.js';
import { tokenizePrompt } from '../../simulator/tokens.js';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Strict parser for the Prometheus text format subset vLLM emits. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const t = /^# TYPE (\S+) (gauge|counter|histogram)$/.exec(line);
    if (t) { types.set(t[1]!, t[2]!); continue; }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\} (\S+)$/.exec(line);
    assert.ok(m, `unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value), `bad value in ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

test('metrics text parses, uses vLLM V1 names and labels, and matches the engine state', () => {
  const e = new ReplicaEngine({ maxNumSeqs: 2, numGpuBlocks: 1000 });
  const sys = 'system prompt '.repeat(40);
  for (let i = 0; i < 4; i++) e.submit({ ...tokenizePrompt(sys + i, 16), outputTokens: 30 }, 0);
  e.advance(e.nextEventTime());
  e.advance(e.nextEventTime());
  const snap = e.metricsSnapshot();
  const text = renderMetrics(snap, { modelName: 'Qwen/Qwen2.5-3B-Instruct', gpuMemoryUtilization: 0.75 });
  const { samples, types } = parse(text);
  const one = (name: string) => {
    const s = samples.filter((x) => x.name === name);
    assert.equal(s.length, 1, name);
    return s[0]!;
  };
  for (const s of samples) {
    assert.equal(s.labels.engine, '0', s.name);
    if (s.name !== 'vllm:cache_config_info') assert.equal(s.labels.model_name, 'Qwen/Qwen2.5-3B-Instruct', s.name);
  }
  const cfg = one('vllm:cache_config_info');
  assert.equal(cfg.value, 1);
  assert.equal(cfg.labels.block_size, '16');
  assert.equal(cfg.labels.num_gpu_blocks, '1000');
  assert.equal(cfg.labels.enable_prefix_caching, 'True');
  assert.equal(one('vllm:num_requests_running').value, 2);
  assert.equal(one('vllm:num_requests_waiting').value, 2);
  assert.equal(one('vllm:kv_cache_usage_perc').value, snap.kvCacheUsage);
  assert.ok(snap.kvCacheUsage > 0 && snap.kvCacheUsage < 1);
  assert.equal(one('vllm:prefix_cache_queries_total').value, snap.prefixCacheQueries);
  assert.equal(one('vllm:prefix_cache_hits_total').value, snap.prefixCacheHits);
  assert.ok(snap.prefixCacheHits > 0, 'second request hit the first one\'s blocks');
  assert.equal(types.get('vllm:time_to_first_token_seconds'), 'histogram');
  assert.equal(types.get('vllm:e2e_request_latency_seconds'), 'histogram');
  assert.equal(types.get('vllm:prefix_cache_hits_total'), 'counter');
  const ttftCount = one('vllm:time_to_first_token_seconds_count').value;
  assert.equal(ttftCount, 2);
  const buckets = samples.filter((s) => s.name === 'vllm:time_to_first_token_seconds_bucket');
  assert.equal(buckets.at(-1)!.labels.le, '+Inf');
  assert.equal(buckets.at(-1)!.value, ttftCount);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative buckets');
});
