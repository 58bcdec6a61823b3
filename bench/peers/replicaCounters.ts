// Each replica's own counters, read from its /metrics (vLLM names): prefix-cache queries and hits
// (tokens), finished requests, prompt and generated tokens, and the sum of its requests' end-to-end
// latencies. A run's numbers are the difference of two readings.
export interface ReplicaCounters {
  prefixQueries: number;
  prefixHits: number;
  requests: number;
  promptTokens: number;
  generationTokens: number;
  /** vllm:e2e_request_latency_seconds_sum and _count: the replica's own view of request time. */
  e2eSeconds: number;
  e2eCount: number;
  /** vllm:num_preemptions_total: running requests sent back to wait (their KV freed, recomputed later). */
  preemptions: number;
}

/** Metric `name`'s value in Prometheus text, summed over its series (one series: its value); 0 when absent. */
export function sumOf(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) total += v;
  }
  return total;
}

export function parseCounters(text: string): ReplicaCounters {
  return {
    prefixQueries: sumOf(text, 'vllm:prefix_cache_queries_total'),
    prefixHits: sumOf(text, 'vllm:prefix_cache_hits_total'),
    requests: sumOf(text, 'vllm:request_success_total'),
    promptTokens: sumOf(text, 'vllm:prompt_tokens_total'),
    generationTokens: sumOf(text, 'vllm:generation_tokens_total'),
    e2eSeconds: sumOf(text, 'vllm:e2e_request_latency_seconds_sum'),
    e2eCount: sumOf(text, 'vllm:e2e_request_latency_seconds_count'),
    preemptions: sumOf(text, 'vllm:num_preemptions_total'),
  };
}

export async function readCounters(replicaUrls: string[]): Promise<ReplicaCounters[]> {
  return Promise.all(replicaUrls.map(async (u) => {
    const r = await fetch(`${u}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`${u}/metrics: HTTP ${r.status}`);
    return parseCounters(await r.text());
  }));
}

export function diffCounters(after: ReplicaCounters[], before: ReplicaCounters[]): ReplicaCounters[] {
  return after.map((a, i) => {
    const b = before[i]!;
    return {
      prefixQueries: a.prefixQueries - b.prefixQueries, prefixHits: a.prefixHits - b.prefixHits, requests: a.requests - b.requests,
      promptTokens: a.promptTokens - b.promptTokens, generationTokens: a.generationTokens - b.generationTokens,
      e2eSeconds: a.e2eSeconds - b.e2eSeconds, e2eCount: a.e2eCount - b.e2eCount, preemptions: a.preemptions - b.preemptions,
    };
  });
}

/** What the replicas served in a run, per request, from the differences of their counters. */
export interface ServedShape {
  promptTokensPerRequest: number;
  outputTokensPerRequest: number;
  /** The replicas' own mean end-to-end latency (request in to last token out), ms. */
  e2eMeanMs: number;
}

export function servedShape(delta: ReplicaCounters[]): ServedShape {
  const sum = (k: keyof ReplicaCounters) => delta.reduce((a, c) => a + c[k], 0);
  const n = sum('requests');
  const e2eN = sum('e2eCount');
  const r1 = (v: number) => Math.round(v * 10) / 10;
  return {
    promptTokensPerRequest: n ? r1(sum('promptTokens') / n) : NaN,
    outputTokensPerRequest: n ? r1(sum('generationTokens') / n) : NaN,
    e2eMeanMs: e2eN ? Math.round((1000 * sum('e2eSeconds')) / e2eN) : NaN,
  };
}
