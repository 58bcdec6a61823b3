// The oracle hit rate: the best any router could do with unlimited cache. A
// prompt token counts as a hit when its full 16-token block was already part of
// an earlier request's prompt (chained hashes: the whole prefix up to it was),
// with vLLM's rule that the last prompt token is always computed. Warm-up
// requests fill the cache and are not counted.
import { BLOCK_TOKENS, type SimRequest } from './workloads.js';

export function oracleHitRate(requests: readonly Pick<SimRequest, 'promptTokens' | 'blockHashes' | 'warmup'>[], blockTokens = BLOCK_TOKENS): number {
  const seen = new Set<number>();
  let hits = 0;
  let tokens = 0;
  for (const r of requests) {
    const cacheable = Math.min(r.blockHashes.length, Math.floor((r.promptTokens - 1) / blockTokens));
    let k = 0;
    while (k < cacheable && seen.has(r.blockHashes[k]!)) k++;
    if (!r.warmup) {
      hits += k * blockTokens;
      tokens += r.promptTokens;
    }
    for (const h of r.blockHashes) seen.add(h);
  }
  return tokens > 0 ? hits / tokens : 0;
}
