// Where this VM believes each replica holds which prompt prefix: the one owner
// of the prefix concern. It hashes a request's prompt into chained blocks,
// asks the index how many leading blocks each candidate holds (and, for a
// prompt start this worker never saw, where the other workers sent it), and
// records the chosen replica as holding the prompt. Each replica has a slot in
// the index, with a quota that follows its KV cache: resize() keeps slots and
// quotas in step with the replica table.
//
// The interface is the scheduling cycle's: hash() and match() before
// scoring, record() once a replica is picked, resize() when the replica set
// changes.
import { PluginConfig } from "../config/pluginConfig";
import { RouterMetrics } from "../metrics";
import { ScanStatus, hashPrompt } from "../request/promptHasher";
import { Candidates } from "../scheduling/candidates";
import { ReplicaTable } from "../state/replicaTable";
import { BlockHasher } from "./blockHasher";
import { PrefixHomes } from "./prefixHomes";
import { MAX_SLOTS, PrefixIndex } from "./prefixIndex";

/** Characters per token, the usual estimate for English text and code. */
const CHARS_PER_TOKEN: u32 = 4;
/**
 * A replica's index quota is the part of its KV cache that can hold cached
 * prefixes: blocks running requests use cannot be evicted, so what vLLM keeps
 * of finished prompts is about (1 - KV usage) of the cache. At least this
 * share, because running requests' blocks are mostly the hot prefixes
 * themselves, which the index's LRU keeps anyway (bench:routing measures the
 * choice: a smaller floor lost TTFT on the many-prompts shapes).
 */
const MIN_CACHE_SHARE: f64 = 0.5;
/** A replica's index quota never drops below this many blocks, however small its KV cache. */
const MIN_SLOT_BLOCKS: u32 = 16;

@final
export class PrefixLocator {
  private readonly index: PrefixIndex;
  private readonly hasher: BlockHasher;
  private readonly homes: PrefixHomes;
  private readonly metrics: RouterMetrics;
  private readonly defaultCapacityTokens: u32;
  private readonly slotOf: Map<string, i32> = new Map<string, i32>();
  private readonly freeSlots: Array<i32> = [];

  // What the last hash() and match() found, for record().
  /** A key for the prompt's start (its first block), for rendezvous placement. */
  key: u64 = 0;
  /** Some candidate holds part of the prompt (by this VM's index or the shared homes). */
  anyMatch: bool = false;
  private askedHome: bool = false;
  /** Candidate whose match is the shared homes' hint, not this VM's index; -1: none. */
  private hinted: i32 = -1;
  /** Leading blocks the shared homes say the hinted candidate holds, and what this VM's index knew of it. */
  private hintedDepth: i32 = 0;
  private hintedHeld: i32 = 0;
  /** The last match() could ask the other worker VMs' checkpoints. */
  private fleet: bool = false;

  /** `sharedVmId`: this VM's id, to share where prompts went with the other worker VMs; 0: not shared. */
  constructor(cfg: PluginConfig, metrics: RouterMetrics, sharedVmId: u32) {
    this.homes = new PrefixHomes(sharedVmId);
    this.index = new PrefixIndex(cfg.indexEntries);
    this.hasher = new BlockHasher(cfg.blockChars, cfg.maxBlocks);
    this.metrics = metrics;
    this.defaultCapacityTokens = cfg.defaultCapacityTokens;
    for (let s = MAX_SLOTS - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  /**
   * Gives each replica of `next` a slot (keeping the one it had in `old`)
   * and a quota that follows its KV size and use, all quotas together
   * fitting the index; replicas that left give their slot, and what the
   * index knew of them, back.
   */
  resize(old: ReplicaTable, next: ReplicaTable): void {
    for (let i = 0; i < old.n; i++) {
      const a = old.addresses[i];
      if (next.indexOf(a) < 0 && this.slotOf.has(a)) {
        const s = this.slotOf.get(a);
        this.slotOf.delete(a);
        this.index.clearSlot(<u32>s);
        this.metrics.forgetSlot(s);
        this.freeSlots.push(s);
      }
    }
    const blockChars = <f64>this.hasher.blockBytes;
    let sum: f64 = 0;
    const quota = new StaticArray<f64>(next.n);
    for (let i = 0; i < next.n; i++) {
      const a = next.addresses[i];
      let s: i32 = -1;
      if (this.slotOf.has(a)) s = this.slotOf.get(a);
      else if (this.freeSlots.length > 0) {
        s = this.freeSlots.pop();
        this.slotOf.set(a, s);
      }
      next.slot[i] = s;
      const tokens = next.kvCapacityTokens[i] > 0 ? next.kvCapacityTokens[i] : this.defaultCapacityTokens;
      const free = 1.0 - next.kvUsage[i];
      const share = free > MIN_CACHE_SHARE ? (free < 1.0 ? free : 1.0) : MIN_CACHE_SHARE;
      const blocks = <f64>tokens * <f64>CHARS_PER_TOKEN / blockChars * share;
      quota[i] = blocks;
      sum += blocks;
    }
    const capacity = <f64>this.index.capacity;
    const scale = sum > capacity ? capacity / sum : 1.0;
    for (let i = 0; i < next.n; i++) {
      if (next.slot[i] < 0) continue;
      let b = <u32>Math.floor(quota[i] * scale);
      if (b < MIN_SLOT_BLOCKS) b = MIN_SLOT_BLOCKS;
      this.index.setSlotCapacity(<u32>next.slot[i], b);
    }
  }

  /**
   * Hashes the prompt of the JSON body [body, body+len) into chained blocks.
   * `cut`: the body goes on past len (it is still arriving), so a prompt
   * that runs into the end is hashed as far as it goes. False when the
   * request has no prompt to hash (len 0, not JSON, no prompt text).
   */
  hash(body: usize, len: usize, cut: bool): bool {
    this.anyMatch = false;
    this.askedHome = false;
    this.hinted = -1;
    const h = this.hasher;
    return len > 0 && hashPrompt(body, len, h, cut) == ScanStatus.Ok && h.textBytes > 0;
  }

  /** The last hash() took as much of the prompt as is ever hashed: more of the body would change nothing. */
  @inline get complete(): bool {
    return this.hasher.full;
  }

  /** Bytes of prompt text that fill the hasher: a body shorter than this cannot be complete. */
  @inline get promptBytes(): u32 {
    return <u32>this.hasher.maxBlocks * <u32>this.hasher.blockBytes;
  }

  /**
   * For the prompt hash() found, fills how many of its leading blocks each
   * of the `c.n` candidates holds (`c.matched`, `c.totalBlocks`). `fleet`:
   * other worker VMs route for this gateway, and may know more of it.
   */
  match(t: ReplicaTable, c: Candidates, fleet: bool): void {
    const h = this.hasher;
    const total = h.count;
    const n = c.n;
    this.key = h.firstKey();
    c.totalBlocks = total;
    this.fleet = fleet;
    let best = 0;
    for (let k = 0; k < n; k++) {
      const s = unchecked(t.slot[unchecked(c.replica[k])]);
      const m = s >= 0 && total > 0 ? this.index.matchedBlocks(h.hashes, total, <u32>s) : 0;
      unchecked(c.matched[k] = m);
      if (m > best) best = m;
    }
    let anyMatch = best > 0;
    // New to this worker: another worker may have placed this prompt start already.
    if (!anyMatch && total > 0) {
      this.askedHome = true;
      const k = candidateOf(t, c, this.homes.lookup(h.hashes, total));
      if (k >= 0) {
        // Scored as if this worker had sent the prompt there itself.
        unchecked(c.matched[k] = total);
        anyMatch = true;
        this.hinted = k;
        this.hintedDepth = this.homes.depth;
        this.hintedHeld = 0;
      }
    }
    // Deeper than this worker knows: another worker may have placed more of the prompt.
    if (fleet && this.hinted < 0 && best < total) {
      const k = candidateOf(t, c, this.homes.deepest(h.hashes, total, best));
      if (k >= 0) {
        const depth = this.homes.depth;
        this.hintedHeld = unchecked(c.matched[k]);
        unchecked(c.matched[k] = depth);
        anyMatch = true;
        this.hinted = k;
        this.hintedDepth = depth;
      }
    }
    this.anyMatch = anyMatch;
  }

  /**
   * Candidate k (table replica i) was picked for the prompt hash() found: it
   * will hold the prompt once it has served the request. Returns how many
   * leading blocks the gateway believes it holds already: what this VM's
   * index knew, or what the other workers' placement of the same chain tells
   * when that is what placed it there. With no prompt hashed, records nothing.
   */
  record(t: ReplicaTable, c: Candidates, k: i32, i: i32): i32 {
    const hinted = k == this.hinted;
    const held = hinted ? this.hintedHeld : unchecked(c.matched[k]);
    const total = c.totalBlocks;
    const address = <u32>unchecked(t.addressHash[i]);
    if (this.askedHome && !hinted) this.homes.store(this.hasher.hashes, total, address);
    if (this.fleet && total > 0) this.homes.storeCheckpoint(this.hasher.hashes, total, hinted ? this.hintedDepth : held, address);
    const slot = unchecked(t.slot[i]);
    if (slot >= 0 && total > 0) this.index.record(this.hasher.hashes, total, <u32>slot, held);
    return hinted ? this.hintedDepth : held;
  }
}

/** The candidate whose replica's 32-bit address hash is `home` (0: none), or -1. */
function candidateOf(t: ReplicaTable, c: Candidates, home: u32): i32 {
  if (home == 0) return -1;
  for (let k = 0; k < c.n; k++) {
    if (<u32>unchecked(t.addressHash[unchecked(c.replica[k])]) == home) return k;
  }
  return -1;
}
