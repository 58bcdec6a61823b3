// Prometheus text exposition of an engine snapshot, with vLLM V1's metric names and labels
// (every series carries engine="0" and model_name). Written by hand rather than with
// prom-client because the values are read from the engine's state at scrape time (gauges,
// counters and histograms alike), which prom-client's push-style API does not model.

import type { Histogram, MetricsSnapshot } from './engine.js';

export interface MetricsLabels {
  modelName: string;
  gpuMemoryUtilization: number;
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  return Number.isInteger(v) ? v.toFixed(1) : String(v); // vLLM (Python) prints 1.0, not 1
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Record<string, string>): string {
  return '{' + Object.entries(pairs).map(([k, v]) => `${k}="${esc(v)}"`).join(',') + '}';
}

export function renderMetrics(s: MetricsSnapshot, l: MetricsLabels): string {
  const base = { engine: '0', model_name: l.modelName };
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, value: number, extra?: Record<string, string>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels({ ...base, ...extra })} ${num(value)}`);
  };
  const histogram = (name: string, help: string, h: Histogram) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    const cum = h.cumulative();
    h.bounds.forEach((b, i) => lines.push(`${name}_bucket${labels({ ...base, le: num(b) })} ${num(cum[i]!)}`));
    lines.push(`${name}_bucket${labels({ ...base, le: '+Inf' })} ${num(h.count)}`);
    lines.push(`${name}_count${labels(base)} ${num(h.count)}`, `${name}_sum${labels(base)} ${num(h.sum)}`);
  };

  // cache_config_info labels come from vLLM's CacheConfig (sorted, as vLLM emits them).
  lines.push('# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig', '# TYPE vllm:cache_config_info gauge');
  lines.push(`vllm:cache_config_info${labels({
    block_size: String(s.blockSize), cache_dtype: 'auto', calculate_kv_scales: 'False', cpu_offload_gb: '0',
    enable_prefix_caching: 'True', engine: '0', gpu_memory_utilization: String(l.gpuMemoryUtilization),
    is_attention_free: 'False', kv_cache_size_tokens: String(s.numGpuBlocks * s.blockSize), num_cpu_blocks: 'None',
    num_gpu_blocks: String(s.numGpuBlocks), num_gpu_blocks_override: 'None', prefix_caching_hash_algo: 'builtin',
    sliding_window: 'None', swap_space_bytes: '4294967296',
  })} 1.0`);
  metric('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.', s.numRequestsRunning);
  metric('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.', s.numRequestsWaiting);
  metric('vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.', s.kvCacheUsage);
  metric('vllm:prefix_cache_queries_total', 'counter', 'Prefix cache queries, in terms of number of queried tokens.', s.prefixCacheQueries);
  metric('vllm:prefix_cache_hits_total', 'counter', 'Prefix cache hits, in terms of number of cached tokens.', s.prefixCacheHits);
  metric('vllm:num_preemptions_total', 'counter', 'Cumulative number of preemption from the engine.', s.preemptions);
  metric('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', s.promptTokens);
  metric('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.', s.generationTokens);
  lines.push('# HELP vllm:request_success_total Count of successfully processed requests.', '# TYPE vllm:request_success_total counter');
  for (const reason of ['stop', 'length'] as const) {
    lines.push(`vllm:request_success_total${labels({ ...base, finished_reason: reason })} ${num(s.requestSuccessByReason[reason])}`);
  }
  lines.push('# HELP vllm:lora_requests_info Running stats on lora requests.', '# TYPE vllm:lora_requests_info gauge');
  lines.push(`vllm:lora_requests_info${labels({ ...base, max_lora: String(s.maxLoras), running_lora_adapters: s.runningLoraAdapters.join(','), waiting_lora_adapters: s.waitingLoraAdapters.join(',') })} ${num(s.nowMs / 1000)}`);
  histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', s.ttftSeconds);
  histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', s.e2eSeconds);
  return lines.join('\n') + '\n';
}
