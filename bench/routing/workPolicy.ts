// Routing on predicted work, in TypeScript: the `precise` upper bound and the
// `proto-*` prototypes of the routing changes issue 15 proposes (not product
// results: prefix-router is the wasm in filterPolicy.ts).
//
// Both use one picker. For each replica r the router predicts what sending the
// request there costs, in prompt tokens and then in time, with the T4 latency
// model the engines run:
//   new_r   = prompt tokens - tokens of its prefix r holds (what r must prefill)
//   queue_r = predicted prefill tokens of requests sent to r that have no first token yet
//   dec_r   = requests decoding on r (sent, first token seen, not finished)
//   W_r     = queue_r + new_r
//   TTFT_r  = overhead + perToken x W_r + (W_r / chunk + 1) x decodeStep(dec_r)
// and picks the lowest TTFT_r; equal predictions (idle replicas) are decided by
// the request's rendezvous weight (first block hash x replica), so independent
// entry points place a new prefix alike. (A band of 25 ms or 5% around the best
// counted as equal cost 8-40% of TTFT p95 on one system prompt and conversations.)
// Guard: a replica whose work - queued and new prefill tokens plus decode work,
// DECODE_TOKEN_COST per output token of the requests decoding there - would
// pass (1 + epsilon) x the mean work + one chunk is passed over (work, not
// request counts).
//
// What differs is the knowledge of who holds which prefix:
// - precise: the engines' caches exactly (ReplicaEngine.cachedPrefixBlocks, what
//   vLLM's KV events report) plus the prompts it sent that are not computed yet;
// - proto: an index built from its own decisions, like prefix-router's: the
//   chained block hashes at checkpoint depths (every block up to 16, then every
//   16th: about 250 entries for 60k tokens) inserted for the chosen replica,
//   deepest first so LRU evicts a chain from its tail, with a per-replica budget
//   of the KV cache's blocks; a lookup binary-searches the checkpoints for the
//   deepest one the replica holds. `maxBlocks` caps the hashed depth (256 = the
//   filter's 16 KB today). Worker VMs of one gateway share the index and the
//   work counters (shared data); gateways see each other's placements and
//   counters as of the last exchange (every scrape, 50 ms) when `fleet` is on,
//   never when it is off.
import type { ReplicaEngine } from '../../simulator/engine.js';
import { LatencyModel, T4_QWEN25_3B } from '../../simulator/latency.js';
import type { Decision, Entry, ReplicaMetrics, RoutingPolicy } from './policy.js';
import { BLOCK_TOKENS, type SimRequest } from './workloads.js';

/** vLLM's max_num_batched_tokens in the engines: a prefill advances this many tokens a step. */
const CHUNK_TOKENS = 2048;
/** prefix-router's MIN_SPILL_LOAD (assembly/scheduling/picker.ts), for the count guard. */
const MIN_SPILL_LOAD = 8;
/**
 * Prefill-token equivalents of one output token still to decode: a decode token costs the
 * engine about 0.87 ms at a saturated batch (latency model), a prefill token 0.228 ms.
 */
export const DECODE_TOKEN_COST = 3.8;
/** Predicted TTFTs closer than this (ms) are a tie, broken by rendezvous weight. */
const TIE_MS = 1e-6;
/** Checkpoints: every block up to this depth, then every CHECKPOINT_STRIDE-th. */
const DENSE_BLOCKS = 16;
const CHECKPOINT_STRIDE = 16;

const latency = new LatencyModel(T4_QWEN25_3B);

export function predictTtftMs(work: number, decoding: number): number {
  const p = T4_QWEN25_3B;
  return p.prefillOverheadMs + p.prefillTimePerTokenMs * work + (work / CHUNK_TOKENS + 1) * latency.decodeStepMs(decoding);
}

/** Block depths (1-based counts of leading blocks) at which the proto index keeps an entry. */
export function checkpointDepths(blocks: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= blocks; d++) if (d <= DENSE_BLOCKS || d % CHECKPOINT_STRIDE === 0) out.push(d);
  return out;
}

/** Rendezvous weight of (key, replica): 32-bit mix, the same in every entry point. */
function rendezvous(key: number, replica: number): number {
  let h = (Math.imul((key >>> 0) ^ Math.floor(key / 0x100000000), 0x9e3779b1) ^ Math.imul(replica + 1, 0x85ebca6b)) >>> 0;
  h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d) >>> 0; h ^= h >>> 12;
  return h >>> 0;
}

/** Per-replica LRU of checkpoint hashes, each weighing the blocks it stands for. */
export class CheckpointIndex {
  private readonly lru: Array<Map<number, number>>; // hash -> blocks it covers; insertion order = recency
  private readonly used: number[];
  constructor(n: number, private readonly capacityBlocks: number) {
    this.lru = Array.from({ length: n }, () => new Map());
    this.used = new Array(n).fill(0);
  }
  /** Records that `replica` holds the first `blocks` blocks of `hashes`; deepest first, so eviction takes tails first. */
  insert(replica: number, hashes: readonly number[], blocks: number): void {
    const lru = this.lru[replica]!;
    const depths = checkpointDepths(blocks);
    for (let i = depths.length - 1; i >= 0; i--) {
      const d = depths[i]!;
      const h = hashes[d - 1]!;
      const covers = d - (i > 0 ? depths[i - 1]! : 0);
      const old = lru.get(h);
      if (old !== undefined) { lru.delete(h); this.used[replica]! -= old; }
      lru.set(h, covers);
      this.used[replica]! += covers;
    }
    while (this.used[replica]! > this.capacityBlocks) {
      const [h, covers] = lru.entries().next().value as [number, number];
      lru.delete(h);
      this.used[replica]! -= covers;
    }
  }
  /** Deepest checkpoint of `hashes` (first `blocks`) that `replica` holds, by binary search over the checkpoints. */
  matchBlocks(replica: number, hashes: readonly number[], blocks: number): number {
    const lru = this.lru[replica]!;
    const depths = checkpointDepths(blocks);
    let lo = 0, hi = depths.length; // answer: count of leading checkpoints held
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lru.has(hashes[depths[mid - 1]! - 1]!)) lo = mid; else hi = mid - 1;
    }
    return lo === 0 ? 0 : depths[lo - 1]!;
  }
}

/** Who holds which prefix, as one router knows it. */
interface PrefixKnowledge {
  /** Leading blocks of `req` that `replica` holds, as seen from `gateway`. */
  matched(replica: number, req: SimRequest, gateway: number): number;
  /** The request was sent to `replica` from `gateway`. */
  placed(replica: number, req: SimRequest, gateway: number): void;
  /** The request's prompt is computed on `replica` (first token), or it ended. */
  settled(replica: number, req: SimRequest): void;
  /** A scrape (the exchange between gateways) happened. */
  exchange(): void;
}

/** Exact: the engines' caches, plus prompts sent and not computed yet. */
class EngineKnowledge implements PrefixKnowledge {
  private engines: readonly ReplicaEngine[] = [];
  private readonly pending: Array<Map<number, number>>; // hash -> in-flight requests carrying it
  constructor(n: number) { this.pending = Array.from({ length: n }, () => new Map()); }
  bind(engines: readonly ReplicaEngine[]): void { this.engines = engines; }
  matched(replica: number, req: SimRequest): number {
    const cached = this.engines[replica]!.cachedPrefixBlocks(req.blockHashes);
    const p = this.pending[replica]!;
    let k = 0;
    while (k < req.blockHashes.length && p.has(req.blockHashes[k]!)) k++;
    return Math.max(cached, k);
  }
  placed(replica: number, req: SimRequest): void {
    const p = this.pending[replica]!;
    for (const h of req.blockHashes) p.set(h, (p.get(h) ?? 0) + 1);
  }
  settled(replica: number, req: SimRequest): void {
    const p = this.pending[replica]!;
    for (const h of req.blockHashes) {
      const c = p.get(h)! - 1;
      if (c > 0) p.set(h, c); else p.delete(h);
    }
  }
  exchange(): void {}
}

/** The proto index: one per gateway; with `fleet`, placements reach the other gateways at the next exchange. */
class IndexKnowledge implements PrefixKnowledge {
  private readonly indexes: CheckpointIndex[];
  private outbox: Array<{ gateway: number; replica: number; hashes: readonly number[]; blocks: number }> = [];
  constructor(n: number, gateways: number, capacityBlocks: number, private readonly maxBlocks: number, private readonly fleet: boolean) {
    this.indexes = Array.from({ length: gateways }, () => new CheckpointIndex(n, capacityBlocks));
  }
  private depth(req: SimRequest): number {
    const cacheable = Math.floor((req.promptTokens - 1) / BLOCK_TOKENS);
    return Math.min(req.blockHashes.length, cacheable, this.maxBlocks);
  }
  matched(replica: number, req: SimRequest, gateway: number): number {
    return this.indexes[gateway]!.matchBlocks(replica, req.blockHashes, this.depth(req));
  }
  placed(replica: number, req: SimRequest, gateway: number): void {
    const blocks = this.depth(req);
    this.indexes[gateway]!.insert(replica, req.blockHashes, blocks);
    if (this.fleet && this.indexes.length > 1) this.outbox.push({ gateway, replica, hashes: req.blockHashes, blocks });
  }
  settled(): void {}
  exchange(): void {
    for (const m of this.outbox) this.indexes.forEach((ix, g) => { if (g !== m.gateway) ix.insert(m.replica, m.hashes, m.blocks); });
    this.outbox = [];
  }
}

interface WorkHandle { gateway: number; newTokens: number; firstToken: boolean; req: SimRequest }

export interface WorkPolicyOptions {
  name: string;
  replicas: number;
  gateways: number;
  /** Guard: queued work may pass the mean by this fraction (plus one chunk). */
  epsilon: number;
  /**
   * 'work' (default): the guard above. 'count': prefix-router's guard today, on requests in
   * flight: load + 1 <= min(ceil((1 + epsilon)(total + 1) / n), floor((1 + epsilon)(least + 1)) + 8), at least 8.
   * 'both': a replica must pass both.
   */
  guard?: 'work' | 'count' | 'both';
}

/** The work picker over some prefix knowledge. */
export class WorkPolicy implements RoutingPolicy {
  readonly name: string;
  private readonly n: number;
  /** Per gateway, per replica: queued prefill tokens, decoding requests, and their decode work (prefill-token equivalents) that gateway sent. */
  private readonly queued: number[][];
  private readonly decoding: number[][];
  private readonly decodeWork: number[][];
  /** What each gateway last heard of the others' counters (fleet exchange), per gateway. */
  private seenQueued: number[][];
  private seenDecoding: number[][];
  private seenDecodeWork: number[][];
  /** Requests in flight per gateway and replica (the count guard). */
  private readonly inflight: number[][];
  private matchedBlocks = 0;
  private totalBlocks = 0;
  private spills = 0;

  constructor(private readonly o: WorkPolicyOptions, private readonly knowledge: PrefixKnowledge, private readonly shareCounters: boolean) {
    this.name = o.name;
    this.n = o.replicas;
    const grid = () => Array.from({ length: o.gateways }, () => new Array<number>(o.replicas).fill(0));
    this.inflight = grid(); this.queued = grid(); this.decoding = grid(); this.decodeWork = grid(); this.seenQueued = grid(); this.seenDecoding = grid(); this.seenDecodeWork = grid();
  }

  static precise(o: WorkPolicyOptions): WorkPolicy {
    return new WorkPolicy(o, new EngineKnowledge(o.replicas), true);
  }

  static proto(o: WorkPolicyOptions & { capacityBlocks: number; maxBlocks: number; fleet: boolean }): WorkPolicy {
    return new WorkPolicy(o, new IndexKnowledge(o.replicas, o.gateways, o.capacityBlocks, o.maxBlocks, o.fleet), o.fleet);
  }

  bindEngines(engines: readonly ReplicaEngine[]): void {
    if (this.knowledge instanceof EngineKnowledge) this.knowledge.bind(engines);
  }

  onScrape(): void {
    this.knowledge.exchange();
    if (this.shareCounters) {
      // Every gateway learns the sum of the others' counters as they are now.
      for (let g = 0; g < this.o.gateways; g++) {
        for (let r = 0; r < this.n; r++) {
          let q = 0, d = 0, dw = 0;
          for (let h = 0; h < this.o.gateways; h++) if (h !== g) { q += this.queued[h]![r]!; d += this.decoding[h]![r]!; dw += this.decodeWork[h]![r]!; }
          this.seenQueued[g]![r] = q; this.seenDecoding[g]![r] = d; this.seenDecodeWork[g]![r] = dw;
        }
      }
    }
  }

  advanceTo(): void {}

  route(req: SimRequest, entry: Entry): Decision {
    const g = entry.gateway;
    const cacheable = Math.floor((req.promptTokens - 1) / BLOCK_TOKENS);
    const ttft = new Array<number>(this.n);
    /** Everything the replica would have to do with this request: queued and new prefill, decode. */
    const work = new Array<number>(this.n);
    const newTokens = new Array<number>(this.n);
    const matched = new Array<number>(this.n);
    let totalWork = 0;
    for (let r = 0; r < this.n; r++) {
      const m = Math.min(this.knowledge.matched(r, req, g), cacheable);
      matched[r] = m;
      newTokens[r] = req.promptTokens - m * BLOCK_TOKENS;
      const q = this.queued[g]![r]! + this.seenQueued[g]![r]!;
      const d = this.decoding[g]![r]! + this.seenDecoding[g]![r]!;
      const dw = this.decodeWork[g]![r]! + this.seenDecodeWork[g]![r]!;
      work[r] = q + dw + newTokens[r]!;
      totalWork += q + dw;
      ttft[r] = predictTtftMs(q + newTokens[r]!, d);
    }
    const myWork = req.promptTokens + DECODE_TOKEN_COST * req.outputTokens;
    const cap = (1 + this.o.epsilon) * (totalWork + myWork) / this.n + CHUNK_TOKENS;
    const best = (fits: (r: number) => boolean) => {
      let lo = Infinity;
      for (let r = 0; r < this.n; r++) if (fits(r) && ttft[r]! < lo) lo = ttft[r]!;
      if (lo === Infinity) return -1;
      const key = req.blockHashes[0] ?? req.id;
      let pick = -1;
      for (let r = 0; r < this.n; r++) {
        if (!fits(r) || ttft[r]! > lo + TIE_MS) continue;
        if (pick < 0 || rendezvous(key, r) > rendezvous(key, pick)) pick = r;
      }
      return pick;
    };
    let fits = (r: number) => work[r]! <= cap;
    if (this.o.guard === 'count' || this.o.guard === 'both') {
      const load = (r: number) => this.inflight.reduce((a, row) => a + row[r]!, 0);
      let total = 0, least = Infinity;
      for (let r = 0; r < this.n; r++) { total += load(r); least = Math.min(least, load(r)); }
      const c = Math.max(MIN_SPILL_LOAD, Math.min(Math.ceil((1 + this.o.epsilon) * (total + 1) / this.n), Math.floor((1 + this.o.epsilon) * (least + 1)) + MIN_SPILL_LOAD));
      const byWork = fits;
      fits = this.o.guard === 'both' ? (r) => load(r) + 1 <= c && byWork(r) : (r) => load(r) + 1 <= c;
    }
    const unbounded = best(() => true);
    let replica = best(fits);
    if (replica < 0) replica = unbounded;
    if (replica !== unbounded) this.spills++;
    this.queued[g]![replica]! += newTokens[replica]!;
    this.inflight[g]![replica]!++;
    this.knowledge.placed(replica, req, g);
    this.matchedBlocks += matched[replica]!;
    this.totalBlocks += cacheable;
    const handle: WorkHandle = { gateway: g, newTokens: newTokens[replica]!, firstToken: false, req };
    return { replica, handle, matched: matched[replica]!, total: cacheable };
  }

  onFirstToken(d: Decision): void {
    const h = d.handle as WorkHandle;
    h.firstToken = true;
    this.queued[h.gateway]![d.replica]! -= h.newTokens;
    this.decoding[h.gateway]![d.replica]!++;
    this.decodeWork[h.gateway]![d.replica]! += DECODE_TOKEN_COST * h.req.outputTokens;
    this.knowledge.settled(d.replica, h.req);
  }

  onFinish(d: Decision): void {
    const h = d.handle as WorkHandle;
    this.inflight[h.gateway]![d.replica]!--;
    if (h.firstToken) { this.decoding[h.gateway]![d.replica]!--; this.decodeWork[h.gateway]![d.replica]! -= DECODE_TOKEN_COST * h.req.outputTokens; }
    else { this.queued[h.gateway]![d.replica]! -= h.newTokens; this.knowledge.settled(d.replica, h.req); }
  }

  async close(): Promise<void> {}

  stats(): Record<string, number> {
    return { loadBoundSpills: this.spills, matchedBlocks: this.matchedBlocks, totalBlocks: this.totalBlocks };
  }
}
