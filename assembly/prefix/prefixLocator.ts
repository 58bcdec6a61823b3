// Where the gateway believes each replica holds which prompt prefix: the one
// owner of the prefix concern. It hashes a request's prompt into chained
// blocks, keeping the checkpoints (blockHasher.ts); finds, per candidate, the
// deepest checkpoint the replica holds, by binary search (presence along a
// chain is monotone: checkpoints are inserted deepest first and evicted
// oldest first), in this VM's index and in the gateway's shared one
// (sharedCheckpoints.ts: what the other worker VMs, and the other gateways
// through the control plane, placed); and records the chosen replica as
// holding the prompt, in both. This VM's PrefixIndex is the cache: each
// replica has a slot in it, with a quota that follows its KV cache, and
// resize() keeps slots and quotas in step with the replica table.
//
// It is the scheduling cycle's prefix plugin (scheduling/cycle.ts): hash()
// as the body arrives, matchRequest() before scoring, record() at commit,
// resize() when the replica set changes; and the gateway fleet's:
// takePlacements() drains what this VM inserted, learnPlacement() inserts
// what another gateway did.
import { PluginConfig } from "../config/pluginConfig";
import { Counter, RouterMetrics } from "../metrics";
import { ScanStatus, hashPrompt } from "../request/promptHasher";
import { Candidates } from "../scheduling/candidates";
import { ReplicaTable } from "../state/replicaTable";
import { mix64, rendezvousWeight } from "./hash";
import { BlockHasher, checkpointDepth, checkpointsWithin, isCheckpoint } from "./blockHasher";
import { MAX_SLOTS, PrefixIndex } from "./prefixIndex";
import { PlacementOutbox } from "./placementOutbox";
import { BUCKET_ENTRIES } from "./sharedBucket";
import { SharedCheckpoints } from "./sharedCheckpoints";
import { CacheReuse } from "./cacheReuse";
import { PrefixDemand, SharedDemand } from "./prefixDemand";
import { CacheTurnover } from "./cacheTurnover";

/** Characters per token, the usual estimate for English text and code. */
const CHARS_PER_TOKEN: u32 = 4;
/**
 * The index keeps checkpoints, each standing for the blocks it adds, and a
 * replica's quota is its whole KV cache in blocks: like the engine's cache,
 * the index's LRU holds the content sent there most recently, running
 * requests' blocks included (they are hits for the requests that follow;
 * vLLM evicts only free blocks, least recently used first, so what it has
 * dropped is the oldest content either way). The entries all quotas take
 * are estimated with this many blocks per checkpoint (1 for prompts up to 16
 * blocks, 5.6 for 128 blocks, 15 for 60k tokens; 4 errs towards more
 * entries), to fit the quotas into the index's pool.
 */
const BLOCKS_PER_CHECKPOINT: f64 = 4;
/** A replica's index quota never drops below this many blocks (1k tokens), however small its KV cache. */
const MIN_SLOT_BLOCKS: u32 = 64;
/**
 * Shared checkpoints inserted per request at most: all of a 64k-token prompt
 * (4096 blocks), the longest the engines of a long-context deployment take,
 * so that a next turn on another worker VM or gateway is priced on the whole
 * prefix its holder has, not on the first part (a 40k-token document known
 * only to 12k would be predicted to cost 6 s more prefill there than it
 * does). A longer new prompt is completed, shallowest first, by the requests
 * that follow it on other worker VMs.
 */
export const MAX_SHARED_INSERTS: i32 = 271;
/** Holders a shared search follows to their own depth at most. */
const MAX_HOLDERS: i32 = 8;

@final
export class PrefixLocator {
  private readonly index: PrefixIndex;
  private readonly hasher: BlockHasher;
  private readonly shared: SharedCheckpoints;
  private readonly metrics: RouterMetrics;
  private readonly reuse: CacheReuse = new CacheReuse();
  private readonly turnover: CacheTurnover = new CacheTurnover();
  private readonly demand: PrefixDemand = new PrefixDemand();
  private readonly sharedDemand: SharedDemand = new SharedDemand();
  private readonly defaultCapacityTokens: u32;
  private readonly freeSlots: Array<i32> = [];
  /** Per slot: the index quota for the replica's whole cache (resize()), and this VM's last share of the writes there (applyQuota()). */
  private readonly cacheQuota: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly writeShare: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);

  // What the last hash() and match() found, for record().
  /** A key for the prompt's start (its first block), for rendezvous placement; for a request without one, the next turn's. */
  key: u64 = 0;
  /** Requests without a prompt routed so far: equal loads take turns. */
  private rotation: u64 = 0;
  /** Some candidate holds part of the prompt (by this VM's index or the shared one). */
  anyMatch: bool = false;
  /** Per candidate: leading checkpoints this VM's index holds, and the most any index holds. */
  private readonly localHeld: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  private readonly held: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);

  // The shared search of one request: each checkpoint's bucket is read once.
  private readonly probeEpoch: StaticArray<u32>;
  private readonly probeCount: StaticArray<u8>;
  private readonly probeHolders: StaticArray<u32>;
  private readonly probeTouched: StaticArray<u32>;
  private epoch: u32 = 0;
  private readonly holderHash: StaticArray<u32> = new StaticArray<u32>(MAX_HOLDERS);
  private readonly holderHeld: StaticArray<i32> = new StaticArray<i32>(MAX_HOLDERS);
  private holders: i32 = 0;

  /** Placements this gateway inserted, for the other gateways. */
  private readonly outbox: PlacementOutbox;
  /** Placements learned from other gateways: the shared index knows what this VM's does not. */
  private learned: bool = false;
  /** The latest time seen (s): learned placements are stamped with it. */
  private nowS: u32 = 0;

  /** `sharedVmId`: this VM's id, to share the index with the other worker VMs; 0: not shared. */
  constructor(cfg: PluginConfig, metrics: RouterMetrics, sharedVmId: u32) {
    this.shared = new SharedCheckpoints(sharedVmId != 0);
    this.outbox = new PlacementOutbox(sharedVmId != 0);
    this.index = new PrefixIndex(cfg.indexEntries, true);
    const hasher = new BlockHasher(cfg.blockChars, cfg.maxBlocks);
    this.hasher = hasher;
    const checkpoints = checkpointsWithin(cfg.maxBlocks);
    this.probeEpoch = new StaticArray<u32>(checkpoints);
    this.probeCount = new StaticArray<u8>(checkpoints);
    this.probeHolders = new StaticArray<u32>(checkpoints * BUCKET_ENTRIES);
    this.probeTouched = new StaticArray<u32>(checkpoints * BUCKET_ENTRIES);
    this.metrics = metrics;
    this.defaultCapacityTokens = cfg.defaultCapacityTokens;
    for (let s = MAX_SLOTS - 1; s >= 0; s--) this.freeSlots.push(s);
    for (let s = 0; s < MAX_SLOTS; s++) unchecked(this.writeShare[s] = 1.0);
  }

  /**
   * Gives each replica of `next` a slot (keeping the one it had in `old`,
   * the table the last resize gave slots) and a quota of its KV size in
   * blocks, all quotas together fitting the index; replicas that left give
   * their slot, and what the index knew of them, back. `from`: each replica
   * of `next`'s index in `old` (ReplicaTable.indexesIn), computed when not given.
   */
  resize(old: ReplicaTable, next: ReplicaTable, from: StaticArray<i32> | null = null): void {
    const at = from !== null ? from : next.indexesIn(old);
    const kept = new StaticArray<bool>(old.n);
    for (let i = 0; i < next.n; i++) if (at[i] >= 0) kept[at[i]] = true;
    for (let i = 0; i < old.n; i++) {
      const s = old.slot[i];
      if (s >= 0 && !kept[i]) {
        this.index.clearSlot(<u32>s);
        unchecked(this.writeShare[s] = 1.0);
        this.reuse.forget(s);
        this.turnover.forget(s);
        this.metrics.forgetSlot(s);
        this.freeSlots.push(s);
      }
    }
    const blockChars = <f64>this.hasher.blockBytes;
    let sum: f64 = 0;
    const quota = new StaticArray<f64>(next.n);
    for (let i = 0; i < next.n; i++) {
      const j = at[i];
      let s = j >= 0 ? old.slot[j] : -1;
      if (s < 0 && this.freeSlots.length > 0) s = this.freeSlots.pop();
      next.slot[i] = s;
      const tokens = next.kvCapacityTokens[i] > 0 ? next.kvCapacityTokens[i] : this.defaultCapacityTokens;
      const blocks = <f64>tokens * <f64>CHARS_PER_TOKEN / blockChars;
      quota[i] = blocks;
      sum += blocks / BLOCKS_PER_CHECKPOINT;
    }
    const capacity = <f64>this.index.capacity;
    const scale = sum > capacity ? capacity / sum : 1.0;
    for (let i = 0; i < next.n; i++) {
      if (next.slot[i] < 0) continue;
      let b = <u32>Math.floor(quota[i] * scale);
      if (b < MIN_SLOT_BLOCKS) b = MIN_SLOT_BLOCKS;
      const s = next.slot[i];
      unchecked(this.cacheQuota[s] = b);
      this.applyQuota(<u32>s, unchecked(this.writeShare[s]));
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

  /** Bytes of prompt text the last hash() read (up to promptBytes). */
  @inline get textBytes(): i32 {
    return this.hasher.textBytes;
  }

  /** Bytes of prompt text per block. */
  @inline get blockBytes(): i32 {
    return this.hasher.blockBytes;
  }

  /**
   * The cycle's match point: match() for a request whose prompt hash() found
   * (`hasPrompt`); one without a prompt matches nothing and spreads by load,
   * equal loads taking turns. Either way fills each candidate's rendezvous
   * weight for the request's key. `routed`: the requests the gateway's worker
   * VMs have routed, the clock of their shared demand counts (with `fleet`).
   */
  matchRequest(t: ReplicaTable, c: Candidates, hasPrompt: bool, fleet: bool, nowS: u32, routed: u32 = 0): void {
    let key: u64;
    if (hasPrompt) {
      this.match(t, c, fleet, nowS, routed);
      key = this.key;
    } else {
      this.rotation += 1;
      key = mix64(this.rotation);
      c.totalBlocks = 0;
      this.countDemand(c, 0, false, fleet, routed);
      for (let k = 0; k < c.n; k++) {
        unchecked(c.matched[k] = 0);
        unchecked(c.formerMatched[k] = 0);
      }
      this.metrics.add(Counter.LoadOnly, 1);
    }
    for (let k = 0; k < c.n; k++) {
      unchecked(c.rendezvous[k] = rendezvousWeight(key, unchecked(t.addressHash[unchecked(c.replica[k])])));
    }
  }

  /**
   * For the prompt hash() found, fills how many of its leading blocks each
   * of the `c.n` candidates holds (`c.matched`, a checkpoint depth;
   * `c.totalBlocks`) and the share of its cache held by prompt content in reuse (`c.cacheReuse`). `fleet`: other worker VMs route for this gateway, so
   * the shared index may know more than this VM's; it is asked anyway when
   * this VM knows nothing of the prompt, or learned placements from other
   * gateways.
   */
  match(t: ReplicaTable, c: Candidates, fleet: bool, nowS: u32, routed: u32 = 0): void {
    const h = this.hasher;
    const total = h.count;
    const ck = h.checkpoints;
    const n = c.n;
    if (nowS > this.nowS) this.nowS = nowS;
    this.key = h.firstKey();
    c.totalBlocks = total;
    let best = 0;
    for (let k = 0; k < n; k++) {
      const s = unchecked(t.slot[unchecked(c.replica[k])]);
      const capacity = unchecked(t.kvCapacityTokens[unchecked(c.replica[k])]);
      unchecked(c.cacheReuse[k] = this.reuse.estimate(s, <f64>(capacity > 0 ? capacity : this.defaultCapacityTokens), unchecked(c.written[k])));
      this.turnover.observe(s, unchecked(c.written[k]), this.nowS);
      const m = s >= 0 && ck > 0 ? this.index.matchedBlocks(h.hashes, ck, <u32>s) : 0;
      unchecked(this.localHeld[k] = m);
      unchecked(c.formerMatched[k] = 0);
      unchecked(this.held[k] = m);
      unchecked(c.matched[k] = m > 0 ? checkpointDepth(m - 1) : 0);
      if (m > best) best = m;
    }
    if (ck > best && this.shared.on && (fleet || this.learned || best == 0)) this.searchShared(t, c, ck, best);
    let deepest = 0;
    for (let k = 0; k < n; k++) if (unchecked(this.held[k]) > deepest) deepest = unchecked(this.held[k]);
    this.anyMatch = deepest > 0;
    // Every holder holds the whole of what is held: the prompt's start is the held prefix's region.
    let evenly = deepest > 1;
    for (let k = 0; k < n && evenly; k++) {
      const m = unchecked(this.held[k]);
      if (m > 0 && m < deepest) evenly = false;
    }
    this.countDemand(c, deepest > 0 ? unchecked(h.hashes[deepest - 1]) : 0, deepest > 0, fleet, routed, deepest > 1 ? unchecked(h.hashes[0]) : 0, evenly);
  }

  /**
   * Counts the request in the prefix demand and hands the work model its
   * share and the requests behind it: the gateway's when other worker VMs
   * route for it (`fleet`: shared data is on; SharedDemand on clock `routed`),
   * else this VM's.
   */
  private countDemand(c: Candidates, key: u64, held: bool, fleet: bool, routed: u32, startKey: u64 = 0, evenly: bool = false): void {
    const shared = this.sharedDemand;
    const own = this.demand;
    let share = fleet ? shared.observe(key, held, routed) : own.observe(key, held);
    let requests = fleet ? shared.evidence : own.evidence;
    if (startKey != 0) {
      // Requests that go on past the prefix (a conversation's later turns, held on their own
      // replica) still ask for it: where every holder holds the same prompt start and no
      // more, its demand is that of the start, which every such request counts.
      const start = fleet ? shared.observe(startKey, true, routed) : own.countAt(startKey);
      if (evenly && start > share) {
        share = start;
        requests = fleet ? shared.evidence : own.evidence;
      }
    }
    c.demandShare = share;
    c.demandRequests = requests;
  }

  /**
   * Binary search of the shared index for the deepest of the `ck`
   * checkpoints any replica holds, deeper than the `known` this VM's index
   * found (it inserted those in the shared index too: a conversation's next
   * turn costs one read); each holder seen then on to its own depth. Raises
   * `held` and `c.matched` of the candidates it finds.
   */
  private searchShared(t: ReplicaTable, c: Candidates, ck: i32, known: i32): void {
    this.epoch++;
    if (this.epoch == 0) {
      // Wrapped: no stale probe may pass for this request's.
      for (let i = 0; i < this.probeEpoch.length; i++) unchecked(this.probeEpoch[i] = 0);
      this.epoch = 1;
    }
    this.holders = 0;
    // Most new prompts: nobody holds the first block, one read.
    if (known == 0 && this.probe(0) == 0) return;
    let lo = known > 1 ? known : 1;
    let hi = ck;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.probe(mid - 1) > 0) lo = mid;
      else hi = mid - 1;
    }
    for (let j = 0; j < this.holders; j++) {
      const r = unchecked(this.holderHash[j]);
      let l = unchecked(this.holderHeld[j]);
      let u = lo;
      while (l < u) {
        const mid = (l + u + 1) >> 1;
        if (this.probeHolds(mid - 1, r)) l = mid;
        else u = mid - 1;
      }
      if (l > unchecked(this.holderHeld[j])) unchecked(this.holderHeld[j] = l);
    }
    for (let j = 0; j < this.holders; j++) {
      const r = unchecked(this.holderHash[j]);
      const k = candidateOf(t, c, r);
      const m = unchecked(this.holderHeld[j]);
      if (k < 0 || m <= unchecked(this.held[k])) continue;
      if (this.evicted(t, c, k, m - 1, r)) {
        unchecked(c.formerMatched[k] = checkpointDepth(m - 1));
        continue;
      }
      unchecked(this.held[k] = m);
      unchecked(c.matched[k] = checkpointDepth(m - 1));
    }
  }

  /**
   * Whether candidate k (replica address hash `r`), which the shared index
   * says holds checkpoint `ck`, has likely evicted it since: the entry was
   * last touched longer ago than the replica's cache turnover. A request
   * touches the deepest checkpoint it finds held where it goes (record()),
   * and vLLM's LRU keeps a prompt's start as recent as its deepest block in
   * use, so an untouched deepest checkpoint means an unused prompt.
   */
  private evicted(t: ReplicaTable, c: Candidates, k: i32, ck: i32, r: u32): bool {
    const at = this.holderAt(ck, r);
    const touched = at >= 0 ? unchecked(this.probeTouched[at]) : 0;
    if (touched >= this.nowS) return false;
    const i = unchecked(c.replica[k]);
    const capacity = unchecked(t.kvCapacityTokens[i]);
    return <f64>(this.nowS - touched) > this.turnover.seconds(unchecked(t.slot[i]), <f64>(capacity > 0 ? capacity : this.defaultCapacityTokens));
  }

  /** Reads checkpoint k's holders (once per request); notes each holder as holding k + 1 checkpoints. Returns how many. */
  private probe(k: i32): i32 {
    const base = k * BUCKET_ENTRIES;
    let n: i32;
    if (unchecked(this.probeEpoch[k]) == this.epoch) n = <i32>unchecked(this.probeCount[k]);
    else {
      n = this.shared.holders(unchecked(this.hasher.hashes[k]), this.probeHolders, base, this.probeTouched);
      unchecked(this.probeEpoch[k] = this.epoch);
      unchecked(this.probeCount[k] = <u8>n);
    }
    for (let e = 0; e < n; e++) this.noteHolder(unchecked(this.probeHolders[base + e]), k + 1);
    return n;
  }

  /** Whether replica `r` (32-bit address hash) holds checkpoint k. */
  @inline private probeHolds(k: i32, r: u32): bool {
    return this.holderAt(k, r) >= 0;
  }

  /** Where replica `r`'s entry for checkpoint k is in the probe arrays (probeHolders, probeTouched), or -1 when it holds none. */
  private holderAt(k: i32, r: u32): i32 {
    const n = this.probe(k);
    const base = k * BUCKET_ENTRIES;
    for (let e = 0; e < n; e++) if (unchecked(this.probeHolders[base + e]) == r) return base + e;
    return -1;
  }

  private noteHolder(r: u32, held: i32): void {
    for (let j = 0; j < this.holders; j++) {
      if (unchecked(this.holderHash[j]) != r) continue;
      if (held > unchecked(this.holderHeld[j])) unchecked(this.holderHeld[j] = held);
      return;
    }
    if (this.holders == MAX_HOLDERS) return;
    unchecked(this.holderHash[this.holders] = r);
    unchecked(this.holderHeld[this.holders] = held);
    this.holders++;
  }

  /**
   * Candidate k (table replica i) was picked for the prompt hash() found: it
   * will hold the prompt once it has served the request. Returns how many
   * leading blocks the gateway believes it holds already (a checkpoint
   * depth). Records the prompt in this VM's index, and its checkpoints the
   * replica was not known to hold in the shared index (at most
   * MAX_SHARED_INSERTS, shallowest first, each inserted deepest first) and
   * the outbox. With no prompt hashed (no full block), records nothing.
   * Either way the replica's cache takes `writtenTokens` (CacheReuse).
   * `writeShare`: this VM's share of the writes to the replica,
   * the share of the cache its index remembers for it.
   */
  record(t: ReplicaTable, c: Candidates, k: i32, i: i32, writtenTokens: f64 = 0, writeShare: f64 = 1): i32 {
    const h = this.hasher;
    // Requests routed on load alone (c.totalBlocks 0) left the last prompt's hashes in place.
    const ck = c.totalBlocks > 0 ? h.checkpoints : 0;
    const held = ck > 0 ? unchecked(this.held[k]) : 0;
    const depth = held > 0 ? checkpointDepth(held - 1) : 0;
    const slot = unchecked(t.slot[i]);
    const capacity = unchecked(t.kvCapacityTokens[i]);
    this.reuse.note(slot, ck > 0 ? unchecked(h.hashes[0]) : 0, <f64>depth * <f64>h.blockBytes / <f64>CHARS_PER_TOKEN, writtenTokens,
      <f64>(capacity > 0 ? capacity : this.defaultCapacityTokens));
    if (ck == 0) return 0;
    if (slot >= 0) {
      this.applyQuota(<u32>slot, writeShare);
      this.index.record(h.hashes, ck, <u32>slot, unchecked(this.localHeld[k]));
    }
    const address = unchecked(t.addressHash[i]);
    // Touches the deepest checkpoint held, which keeps it, and so the prompt start, from reading as
    // evicted (evicted()); at most once a second it goes to the other gateways too, which touch theirs.
    if (held > 0 && this.shared.on) {
      const deepest = unchecked(h.hashes[held - 1]);
      this.shared.insert(deepest, <u32>address, this.nowS);
      if (this.shared.stored) this.outbox.post(deepest, address, <u32>checkpointDepth(held - 1));
    }
    const end = ck - held > MAX_SHARED_INSERTS ? held + MAX_SHARED_INSERTS : ck;
    for (let j = end - 1; j >= held; j--) {
      const hash = unchecked(h.hashes[j]);
      if (this.shared.on) this.shared.insert(hash, <u32>address, this.nowS);
      this.outbox.post(hash, address, <u32>checkpointDepth(j));
    }
    return depth;
  }

  /**
   * Sets slot `s`'s index quota to `share` (0..1) of its cache's, at least
   * MIN_SLOT_BLOCKS. Each worker VM's index records only the prompts it
   * placed, while the replica's cache evicts by what every VM sends there:
   * with 16 VMs a VM sending a sixteenth of the traffic would remember 16
   * times as much history as the cache keeps, and price long prompts as
   * cached long after they were evicted. So a VM's quota for a replica is
   * its share of the writes there (record()'s `writeShare`), at least an
   * even share among its gateway's worker VMs; what other VMs placed more
   * recently the shared index finds. The other gateways' writes do not cut
   * the quota below that even share: what they placed reaches this VM only
   * in the shared index, which dates a chain by its last touch and takes it
   * as wholly held or wholly gone, so a quota cut to the fleet's share
   * forgets this gateway's placements before their engine does, and the
   * shared index's answer in their place errs more.
   */
  private applyQuota(s: u32, share: f64): void {
    const whole = unchecked(this.cacheQuota[s]);
    const part = share >= 1 ? 1.0 : share > 0 ? share : 0.0;
    unchecked(this.writeShare[s] = part);
    const q = <u32>Math.floor(<f64>whole * part);
    this.index.setSlotCapacity(s, q > MIN_SLOT_BLOCKS ? q : MIN_SLOT_BLOCKS);
  }

  /**
   * Drains the oldest placements the gateway inserted (checkpoint hash,
   * replica address hash, depth in blocks) into the arrays, as many as the
   * shortest holds; returns how many. For the VM that polls the control
   * plane: every worker VM's placements reach it (flushPlacements).
   */
  takePlacements(hashes: StaticArray<u64>, replicas: StaticArray<u64>, depths: StaticArray<u32>): i32 {
    return this.outbox.take(hashes, replicas, depths);
  }

  /** Moves this VM's placements to the gateway's outbox in shared data (each worker VM's ticks); true when they found it empty. */
  flushPlacements(): bool {
    return this.outbox.flush() && this.outbox.foundEmpty;
  }

  /** Notes the time (s) learned placements are stamped with. */
  sawTime(nowS: u32): void {
    if (nowS > this.nowS) this.nowS = nowS;
  }

  /** Placements in this VM's ring, not yet in the gateway's outbox. */
  @inline get pendingPlacements(): i32 {
    return this.outbox.pending;
  }

  /**
   * Inserts a placement another gateway made (checkpoint hash, replica
   * address hash, depth in blocks) into the shared index, where every worker
   * VM of this gateway finds it. False when it cannot be used: no shared
   * data, or a depth that is not a checkpoint depth.
   */
  learnPlacement(hash: u64, replicaAddressHash: u64, depth: u32): bool {
    if (!this.shared.on || depth == 0 || depth > <u32>I32.MAX_VALUE || !isCheckpoint(<i32>depth)) return false;
    this.learned = true;
    return this.shared.insert(hash, <u32>replicaAddressHash, this.nowS);
  }
}

/** The candidate whose replica's 32-bit address hash is `r`, or -1. */
function candidateOf(t: ReplicaTable, c: Candidates, r: u32): i32 {
  for (let k = 0; k < c.n; k++) {
    if (<u32>unchecked(t.addressHash[unchecked(c.replica[k])]) == r) return k;
  }
  return -1;
}
