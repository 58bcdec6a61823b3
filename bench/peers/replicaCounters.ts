// Each replica's own counters, read from its /metrics (vLLM names): prefix-cache queries and hits
// (tokens) and finished requests. A run's numbers are the difference of two readings.
export interface ReplicaCounters {
  prefixQueries: number;
  prefixHits: number;
  requests: number;
}

function sumOf(text: string, name: string): number {
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
  return after.map((a, i) => ({
    prefixQueries: a.prefixQueries - before[i]!.prefixQueries,
    prefixHits: a.prefixHits - before[i]!.prefixHits,
    requests: a.requests - before[i]!.requests,
  }));
}
