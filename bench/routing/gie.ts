// A TypeScript re-implementation of the Gateway API Inference Extension's
// endpoint picker (v1.0) as its documentation and source describe it
// (REFERENCE §6), written outside the wasm so prefix-router can be compared
// with what users would deploy instead:
// - prefix scorer: the prompt cut into 64-character blocks (at most 256, the
//   rest ignored); hash[0] = xxh64(model name), hash[i] = xxh64(block i ||
//   le64(hash[i-1])); score = leading hashes some server holds / all hashes;
//   the chosen server gets all of the request's hashes in its LRU (31,250
//   entries per server) at routing time;
// - queue scorer (maxQ - q)/(maxQ - minQ), 1 when all equal; KV scorer 1 - usage;
// - score = sum(weight x clamp(score, 0, 1)), weights prefix 3, queue 2, KV 2;
// - max-score picker with random tie-break; no load bound.
// Metrics (waiting, KV usage) are what the last 50 ms scrape saw.
import xxhash, { type XXHashAPI } from 'xxhash-wasm';
import type { Rng } from './random.js';

export const GIE_BLOCK_CHARS = 64;
export const GIE_MAX_BLOCKS = 256;
export const GIE_LRU_PER_SERVER = 31250;
export const GIE_WEIGHTS = { prefix: 3, queue: 2, kvCache: 2 } as const;

let api: XXHashAPI | null = null;
/** xxhash-wasm instantiates asynchronously once; call before hashing. */
export async function loadXxhash(): Promise<XXHashAPI> {
  if (!api) api = await xxhash();
  return api;
}

const encoder = new TextEncoder();

/** GIE's hashPrompt: [xxh64(model), then one chained hash per full 64-byte block of the (truncated) prompt]; [] below one block. */
export function giePromptHashes(x: XXHashAPI, model: string, prompt: string, blockChars = GIE_BLOCK_CHARS, maxBlocks = GIE_MAX_BLOCKS): bigint[] {
  let bytes = encoder.encode(prompt);
  if (bytes.length < blockChars) return [];
  if (bytes.length > blockChars * maxBlocks) bytes = bytes.subarray(0, blockChars * maxBlocks);
  const out: bigint[] = [x.h64Raw(encoder.encode(model), 0n)];
  const buf = new Uint8Array(blockChars + 8);
  const view = new DataView(buf.buffer);
  for (let i = 0; i + blockChars <= bytes.length; i += blockChars) {
    buf.set(bytes.subarray(i, i + blockChars), 0);
    view.setBigUint64(blockChars, out[out.length - 1]!, true);
    out.push(x.h64Raw(buf, 0n));
  }
  return out;
}

/** Per-server LRU of block hashes plus the hash -> servers lookup, as GIE's indexer. */
export class GieIndexer {
  private readonly lru: Array<Map<bigint, true>>; // insertion order = recency (re-set moves to the end)
  private readonly servers = new Map<bigint, Set<number>>();
  constructor(numServers: number, readonly capacity = GIE_LRU_PER_SERVER) {
    this.lru = Array.from({ length: numServers }, () => new Map());
  }
  add(hashes: readonly bigint[], server: number): void {
    const lru = this.lru[server]!;
    for (const h of hashes) {
      if (lru.has(h)) lru.delete(h);
      lru.set(h, true);
      if (lru.size > this.capacity) {
        const oldest = lru.keys().next().value as bigint;
        lru.delete(oldest);
        const set = this.servers.get(oldest);
        if (set) { set.delete(server); if (set.size === 0) this.servers.delete(oldest); }
      }
    }
    for (const h of hashes) {
      let set = this.servers.get(h);
      if (!set) this.servers.set(h, (set = new Set()));
      set.add(server);
    }
  }
  get(hash: bigint): ReadonlySet<number> | undefined { return this.servers.get(hash); }
  size(server: number): number { return this.lru[server]!.size; }
}

/** matchLongestPrefix: for each server, how many leading hashes it holds (greedy, stops at the first hash nobody holds). */
export function gieMatchLengths(index: GieIndexer, hashes: readonly bigint[], numServers: number): number[] {
  const m = new Array<number>(numServers).fill(0);
  for (const h of hashes) {
    const set = index.get(h);
    if (!set || set.size === 0) break;
    for (const s of set) m[s]!++;
  }
  return m;
}

export interface ServerMetrics { waiting: number; kvUsage: number }

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** (max - v)/(max - min), 1 for all when all are equal. */
export function lowerIsBetter(values: readonly number[]): number[] {
  const lo = Math.min(...values), hi = Math.max(...values);
  return values.map((v) => (hi > lo ? (hi - v) / (hi - lo) : 1));
}

/** Weighted scores of every server for one request. */
export function gieScores(match: readonly number[], totalHashes: number, metrics: readonly ServerMetrics[], w: { prefix: number; queue: number; kvCache: number } = GIE_WEIGHTS): number[] {
  const queue = lowerIsBetter(metrics.map((m) => m.waiting));
  return metrics.map((m, i) =>
    w.prefix * clamp01(totalHashes > 0 ? match[i]! / totalHashes : 0) + w.queue * clamp01(queue[i]!) + w.kvCache * clamp01(1 - m.kvUsage));
}

/** Max-score picker, ties (exactly equal scores, as GIE compares them) broken uniformly at random. */
export function pickMax(scores: readonly number[], rng: Rng): number {
  let best = -Infinity;
  const tied: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (s > best) { best = s; tied.length = 0; tied.push(i); } else if (s === best) tied.push(i);
  }
  return tied.length === 1 ? tied[0]! : tied[rng.int(tied.length)]!;
}

/** One GIE-style endpoint picker over `numServers` servers. */
export class GieRouter {
  readonly index: GieIndexer;
  constructor(private readonly x: XXHashAPI, readonly numServers: number, private readonly rng: Rng, readonly model: string, lruCapacity = GIE_LRU_PER_SERVER) {
    this.index = new GieIndexer(numServers, lruCapacity);
  }
  route(prompt: string, metrics: readonly ServerMetrics[]): { server: number; matched: number; total: number } {
    const hashes = giePromptHashes(this.x, this.model, prompt);
    const match = gieMatchLengths(this.index, hashes, this.numServers);
    const server = pickMax(gieScores(match, hashes.length, metrics), this.rng);
    this.index.add(hashes, server); // PreRequest: the chosen server is assumed to hold the prompt now
    return { server, matched: match[server]!, total: hashes.length };
  }
}
