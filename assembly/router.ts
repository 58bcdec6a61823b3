// One worker VM's routing core, owned by the root context: the replica table,
// the prefix index, the in-flight counters, and the request-path decision
// (filter -> scorers -> weighted sum -> picker). Streams call route() and
// finish(); the root context calls install() and refresh().
import { HostBytes, LogLevel, log } from "./abi/host";
import { PluginConfig } from "./config";
import { Counter, RouterMetrics } from "./metrics";
import { BlockHasher } from "./prefix/blockHasher";
import { mix64, rendezvousWeight } from "./prefix/hash";
import { MAX_SLOTS, PrefixIndex } from "./prefix/prefixIndex";
import { ScanStatus, hashPrompt } from "./request/promptHasher";
import { Candidates } from "./scheduling/candidates";
import { Pick, TIE, pick, runnerUp } from "./scheduling/picker";
import { weightedScore } from "./scheduling/weightedScore";
import { Weights } from "./scheduling/weights";
import { InflightCounters } from "./state/inflightCounters";
import { HOME_DEPTH, PrefixHomes } from "./state/prefixHomes";
import { ReplicaTable } from "./state/replicaTable";
import { fetchState } from "./state/sharedState";
import { decodeState, stateError } from "./state/stateWire";
import { STATE_REJECTED } from "./errors";

/** Characters per token, the usual estimate for English text and code. */
const CHARS_PER_TOKEN: u32 = 4;
/**
 * A prefix no replica holds yet goes to the rendezvous choice among replicas
 * whose metrics score (queue and KV, the same for every gateway) is within
 * this fraction of those weights of the best: close loads count as equal, so
 * independent VMs and gateways agree, while a clearly busier replica is still
 * passed over. The bounded-load guard still applies.
 */
const NEW_PREFIX_BAND: f64 = 0.1;
/**
 * A replica's index quota is the part of its KV cache that can hold cached
 * prefixes: blocks running requests use cannot be evicted, so what vLLM keeps
 * of finished prompts is about (1 - KV usage) of the cache. At least this
 * share, because running requests' blocks are mostly the hot prefixes
 * themselves, which the index's LRU keeps anyway. bench:routing (seed 1), hit
 * rate with the whole cache -> with this rule: sp-150x5@8 0.493 -> 0.570
 * (TTFT p95 3.44 -> 3.18 s), @16 0.729 -> 0.757, low-cache 0.098 -> 0.101,
 * sp-32x32 0.910 either way; a floor of 0.25 lost 34% on sp-150x5's TTFT p95.
 */
const MIN_CACHE_SHARE: f64 = 0.5;
/** A replica's index quota never drops below this many blocks, however small its KV cache. */
const MIN_SLOT_BLOCKS: u32 = 16;

/** What route() decided for one request; kept by the stream until it ends. */
export class Decision {
  replica: i32 = -1;
  address: string = "";
  addressBytes: ArrayBuffer = new ArrayBuffer(0);
  /** Where a retry should go if the chosen replica cannot be reached, or null with one candidate. */
  fallbackBytes: ArrayBuffer | null = null;
  tableVersion: u64 = 0;
  matched: i32 = 0;
  total: i32 = 0;
  counted: bool = false;

  reset(): void {
    this.replica = -1;
    this.fallbackBytes = null;
    this.matched = 0;
    this.total = 0;
    this.counted = false;
  }
}

export class Router {
  readonly cfg: PluginConfig;
  readonly metrics: RouterMetrics;
  readonly index: PrefixIndex;
  readonly hasher: BlockHasher;
  readonly counters: InflightCounters = new InflightCounters();
  readonly homes: PrefixHomes = new PrefixHomes();
  table: ReplicaTable = new ReplicaTable();
  private readonly cands: Candidates = new Candidates();
  private readonly picked: Pick = new Pick();
  private readonly stateBytes: HostBytes = new HostBytes();
  private slotOf: Map<string, i32> = new Map<string, i32>();
  private freeSlots: Array<i32> = [];
  private rotation: u64 = 0;
  /**
   * The latest time this VM has read (routing, ticks): what a finished
   * request's in-flight row is stamped with, so the end of a stream costs no
   * clock read. The stamp only tells live rows from dead VMs' (ROW_TTL_S),
   * and ticks keep it within TICK_MS of now.
   */
  private seenNs: u64 = 0;
  /** Last time the control plane was heard from, as published in shared data. */
  controlPlaneSeenNs: u64 = 0;

  constructor(cfg: PluginConfig, metrics: RouterMetrics, vmId: u32) {
    this.cfg = cfg;
    this.metrics = metrics;
    this.index = new PrefixIndex(cfg.indexEntries);
    this.hasher = new BlockHasher(cfg.blockChars, cfg.maxBlocks);
    for (let s = MAX_SLOTS - 1; s >= 0; s--) this.freeSlots.push(s);
    this.counters.vmId = vmId;
    this.counters.shared = cfg.sharedState && vmId != 0;
    this.homes.enabled = this.counters.shared;
    const t = new ReplicaTable();
    t.weights.copyFrom(cfg.weights);
    for (let i = 0; i < cfg.replicas.length; i++) {
      const r = cfg.replicas[i];
      t.add(r.address, true, false, 0, 0, 0, r.kvCapacityTokens, 0xffffffff);
    }
    this.table = new ReplicaTable();
    this.install(t);
  }

  /** Makes `t` the table requests are routed on. */
  install(t: ReplicaTable): void {
    const old = this.table;
    // Replicas that left give their slot, and what the index knew of them, back.
    for (let i = 0; i < old.n; i++) {
      const a = old.addresses[i];
      if (t.indexOf(a) < 0 && this.slotOf.has(a)) {
        const s = this.slotOf.get(a);
        this.slotOf.delete(a);
        this.index.clearSlot(<u32>s);
        this.metrics.forgetSlot(s);
        this.freeSlots.push(s);
      }
    }
    // Each replica's quota follows its KV size and use; all quotas together fit the index.
    let sum: f64 = 0;
    const quota = new StaticArray<f64>(t.n);
    for (let i = 0; i < t.n; i++) {
      const a = t.addresses[i];
      let s: i32 = -1;
      if (this.slotOf.has(a)) s = this.slotOf.get(a);
      else if (this.freeSlots.length > 0) {
        s = this.freeSlots.pop();
        this.slotOf.set(a, s);
      }
      t.slot[i] = s;
      const tokens = t.kvCapacityTokens[i] > 0 ? t.kvCapacityTokens[i] : this.cfg.defaultCapacityTokens;
      const free = 1.0 - t.kvUsage[i];
      const share = free > MIN_CACHE_SHARE ? (free < 1.0 ? free : 1.0) : MIN_CACHE_SHARE;
      const blocks = <f64>tokens * <f64>CHARS_PER_TOKEN / <f64>this.cfg.blockChars * share;
      quota[i] = blocks;
      sum += blocks;
    }
    const scale = sum > <f64>this.index.capacity ? <f64>this.index.capacity / sum : 1.0;
    for (let i = 0; i < t.n; i++) {
      if (t.slot[i] < 0) continue;
      let b = <u32>Math.floor(quota[i] * scale);
      if (b < MIN_SLOT_BLOCKS) b = MIN_SLOT_BLOCKS;
      this.index.setSlotCapacity(<u32>t.slot[i], b);
    }
    this.counters.remap(old.n > 0 ? old : null, t);
    this.table = t;
  }

  /** Picks up a newer state another VM (or this one) published (ticks; requests do it in route()). */
  refresh(): void {
    if (this.counters.fetch()) this.adoptStamp();
  }

  /**
   * Acts on the state stamp of the in-flight blob just fetched: installs the
   * published state when it is newer than the table. Cheap when nothing changed.
   */
  private adoptStamp(): void {
    const c = this.counters;
    if (c.stampSeenNs > this.controlPlaneSeenNs) this.controlPlaneSeenNs = c.stampSeenNs;
    if (c.stampVersion == 0) return; // no state published yet
    if (c.stampVersion == this.table.version && this.table.fromControlPlane) return;
    if (!fetchState(this.stateBytes)) {
      this.stateBytes.free();
      return;
    }
    const receivedAt = load<u64>(this.stateBytes.ptr);
    const t = decodeState(this.stateBytes.ptr + 8, <i32>this.stateBytes.len - 8);
    this.stateBytes.free();
    if (t === null) {
      // Validated before it was published, so only a foreign writer gets here.
      this.metrics.add(Counter.StateRejected, 1);
      log(LogLevel.Error, STATE_REJECTED + stateError);
      return;
    }
    if (t.version == this.table.version && this.table.fromControlPlane) return;
    t.receivedAtNs = receivedAt;
    this.install(t);
    this.metrics.add(Counter.StateUpdates, 1);
  }

  /**
   * Chooses a replica for a request whose JSON body is [body, body+len)
   * (len 0: no body to read, route on load alone). False: no replica can take it.
   */
  route(body: usize, len: usize, nowNs: u64, d: Decision): bool {
    this.sawTime(nowNs);
    // One shared-data read gives both what other VMs have in flight and
    // whether a newer state was published (every request routes on the newest).
    if (this.counters.fetch()) this.adoptStamp();
    const t = this.table;
    const cfg = this.cfg;
    const c = this.cands;
    const seen = this.controlPlaneSeenNs > t.receivedAtNs ? this.controlPlaneSeenNs : t.receivedAtNs;
    const stalenessNs = <u64>cfg.stalenessMs * 1000000;
    // A state nobody has refreshed for longer than the bound routes on prefix and in-flight load alone.
    const degraded = t.fromControlPlane && nowNs > seen && nowNs - seen > stalenessNs;
    const withMetrics = t.fromControlPlane && !degraded;
    const nowS = <u32>(nowNs / 1000000000);

    // Filter: ready replicas whose metrics are fresh enough.
    const inflight = c.scratch;
    this.counters.read(t, inflight, nowS);
    let n = 0;
    // A replica's metrics age is the control plane's as of the state it sent;
    // time since then is covered by `degraded` (the control plane answers
    // every long poll, 304 included, while it is alive).
    for (let i = 0; i < t.n; i++) {
      if (!unchecked(t.ready[i])) continue;
      if (withMetrics && unchecked(t.metricsKnown[i]) && unchecked(t.metricsAgeMs[i]) > cfg.stalenessMs) continue;
      unchecked(c.replica[n] = i);
      unchecked(c.waiting[n] = unchecked(t.waiting[i]));
      unchecked(c.kvUsage[n] = unchecked(t.kvUsage[i]));
      n++;
    }
    // The in-flight read shares scratch space: copy it out before scorers reuse it.
    for (let k = 0; k < n; k++) unchecked(c.inflight[k] = unchecked(inflight[unchecked(c.replica[k])]));
    c.n = n;
    if (n == 0) {
      this.metrics.add(Counter.NoReplica, 1);
      return false;
    }
    for (let k = 0; k < n; k++) {
      const i = unchecked(c.replica[k]);
      // This gateway's own requests are counted as they start and end; the
      // engine queue (from metrics, up to a scrape old) adds what others sent
      // and what waits. Metrics' running count is left out: it lags the
      // in-flight count and would count finished requests again.
      unchecked(c.load[k] = unchecked(c.inflight[k]) + (withMetrics ? unchecked(t.waiting[i]) : 0));
    }

    // Prefix: hash the prompt and ask the index what each candidate holds.
    const h = this.hasher;
    let key: u64 = 0;
    let total = 0;
    let anyMatch = false;
    let hasPrompt = false;
    let homeKey: u64 = 0;
    let askedHome = false;
    let hinted = -1;
    if (len > 0 && hashPrompt(body, len, h) == ScanStatus.Ok && h.textBytes > 0) {
      hasPrompt = true;
      total = h.count;
      key = h.firstKey();
      for (let k = 0; k < n; k++) {
        const s = unchecked(t.slot[unchecked(c.replica[k])]);
        const m = s >= 0 && total > 0 ? this.index.matchedBlocks(h.hashes, total, <u32>s) : 0;
        unchecked(c.matched[k] = m);
        if (m > 0) anyMatch = true;
      }
      // New to this worker: another worker may have placed this prompt start already.
      if (!anyMatch && total > 0) {
        homeKey = unchecked(h.hashes[(total < HOME_DEPTH ? total : HOME_DEPTH) - 1]);
        askedHome = true;
        const home = this.homes.lookup(homeKey);
        if (home != 0) {
          for (let k = 0; k < n; k++) {
            if (<u32>unchecked(t.addressHash[unchecked(c.replica[k])]) == home) {
              // Scored as if this worker had sent the prompt there itself.
              unchecked(c.matched[k] = total);
              anyMatch = true;
              hinted = k;
              break;
            }
          }
        }
      }
    } else {
      // Requests without a prompt spread by load; equal loads take turns.
      this.rotation += 1;
      key = mix64(this.rotation);
      for (let k = 0; k < n; k++) unchecked(c.matched[k] = 0);
      this.metrics.add(Counter.LoadOnly, 1);
    }
    c.totalBlocks = total;
    for (let k = 0; k < n; k++) {
      unchecked(c.rendezvous[k] = rendezvousWeight(key, unchecked(t.addressHash[unchecked(c.replica[k])])));
    }

    const w: Weights = t.weights;
    const newPrefix = hasPrompt && !anyMatch && w.prefix > 0;
    weightedScore(c, w, withMetrics, !newPrefix);
    let band = TIE;
    if (newPrefix) band = NEW_PREFIX_BAND * (withMetrics ? w.queue + w.kvCache : 0) + TIE;
    pick(c, cfg.loadBoundEpsilon, band, this.picked);
    const k = this.picked.index;
    const i = unchecked(c.replica[k]);

    d.replica = i;
    d.address = unchecked(t.addresses[i]);
    d.addressBytes = unchecked(t.addressBytes[i]);
    const r = runnerUp(c, k);
    d.fallbackBytes = r >= 0 ? unchecked(t.addressBytes[unchecked(c.replica[r])]) : null;
    d.tableVersion = t.version;
    // Reported matches are what this worker's index knows, not the shared hint.
    d.matched = k == hinted ? 0 : unchecked(c.matched[k]);
    d.total = total;
    if (askedHome && k != hinted) this.homes.store(homeKey, <u32>unchecked(t.addressHash[i]));
    // The chosen replica will hold this prefix once it has served the request.
    const slot = unchecked(t.slot[i]);
    if (slot >= 0 && total > 0) this.index.record(h.hashes, total, <u32>slot, d.matched);
    this.counters.add(t, i, 1, nowS);
    d.counted = true;

    const m = this.metrics;
    m.add(Counter.Routed, 1);
    if (d.matched > 0) m.add(Counter.PrefixHits, 1);
    if (total > 0) {
      m.add(Counter.BlocksMatched, d.matched);
      m.add(Counter.BlocksTotal, total);
    }
    if (this.picked.spilled) m.add(Counter.Spilled, 1);
    m.replicaRequest(slot, d.address);
    return true;
  }

  /** The request ended (served, failed or reset): it no longer loads its replica. */
  finish(d: Decision): void {
    if (!d.counted) return;
    d.counted = false;
    const t = this.table;
    const i = d.tableVersion == t.version ? d.replica : t.indexOf(d.address);
    this.counters.add(t, i, -1, <u32>(this.seenNs / 1000000000));
  }

  /** Notes a time read elsewhere (ticks): see seenNs. */
  @inline sawTime(nowNs: u64): void {
    if (nowNs > this.seenNs) this.seenNs = nowNs;
  }

  /** Refreshes this VM's in-flight row so other VMs keep counting it. */
  heartbeat(nowNs: u64): void {
    if (this.counters.shared) this.counters.publish(this.table, <u32>(nowNs / 1000000000));
  }
}
