// One worker VM's routing core: the scheduling cycle every request runs
// (candidates, match, predict, score, pick, commit) on the state the root
// context hands it. Each stateful part has one home: what the replicas hold
// of which prefix (PrefixLocator), what is in flight and how much work it is
// (InflightCounters), what that work costs (workModel.ts), and which state is
// the newest (StateDelivery). Streams call route(), responseStarted() and
// finish(); the root context calls adopt(), refresh() and heartbeat().
import { PluginConfig } from "./config/pluginConfig";
import { decisions } from "./decisionRecord";
import { Counter, ReplicaStat, RouterMetrics } from "./metrics";
import { mix64, rendezvousWeight } from "./prefix/hash";
import { PrefixLocator } from "./prefix/prefixLocator";
import { maxTokensAsked } from "./request/promptHasher";
import { predictWork } from "./scheduling/workModel";
import { markShares } from "./scheduling/fleetShare";
import { Candidates } from "./scheduling/candidates";
import { Pick, TIE, pick, runnerUp } from "./scheduling/picker";
import { weightedScore } from "./scheduling/weightedScore";
import { Saturation } from "./admission/saturation";
import { RequestTraits, readBodyTraits } from "./request/requestTraits";
import { EndpointSubset } from "./request/endpointSubset";
import { addLoraAffinity } from "./scheduling/loraAffinity";
import { sessionCandidate } from "./scheduling/sessionAffinity";
import { GatewayBlob, WorkCounts } from "./state/gatewayBlob";
import { InflightCounters } from "./state/inflightCounters";
import { ReplicaTable } from "./state/replicaTable";
import { StateDelivery } from "./state/stateDelivery";

/**
 * A prefix no replica holds yet goes to the rendezvous choice among replicas
 * whose metrics score (queue and KV, the same for every gateway) is within
 * this fraction of those weights of the best: close loads count as equal,
 * while a clearly busier replica is still passed over. The bounded-load guard
 * still applies. Among idle replicas of near-equal predicted cost the one
 * given the least content then takes it (picker.ts); where several are
 * equal, independent VMs and gateways still agree by rendezvous.
 */
const NEW_PREFIX_BAND: f64 = 0.1;
/** Characters per token, the usual estimate for English text and code. */
const CHARS_PER_TOKEN: f64 = 4;

/** What routeEarly() did with a body still arriving. */
export const enum Routing { Routed, NoReplica, Waiting }

/** What route() decided for one request; kept by the stream until it ends. */
@final
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
  /** The decision record for x-prefix-router-decision, when this request was sampled and debug headers are on. */
  record: ArrayBuffer | null = null;
  /** What the request says of itself (session, priority, model): filled by the stream and route(). */
  readonly traits: RequestTraits = new RequestTraits();
  /** Not routed because every candidate is past the saturation bound (admission holds or refuses it). */
  saturated: bool = false;
  /** Prefill tokens counted as queued on the replica until its response starts. */
  newTokens: f64 = 0;
  /** Decode work counted on the replica from its response's start to its end. */
  decodeWork: f64 = 0;
  /** The response has started: the request counts as decoding, no longer as queued. */
  decoding: bool = false;

  reset(): void {
    this.replica = -1;
    this.saturated = false;
    this.fallbackBytes = null;
    this.record = null;
    this.matched = 0;
    this.total = 0;
    this.counted = false;
    this.newTokens = 0;
    this.decodeWork = 0;
    this.decoding = false;
  }
}

@final
export class Router {
  readonly cfg: PluginConfig;
  private readonly metrics: RouterMetrics;
  private readonly blob: GatewayBlob;
  private readonly delivery: StateDelivery;
  private readonly prefix: PrefixLocator;
  private readonly inflight: InflightCounters;
  private table: ReplicaTable = new ReplicaTable();
  private readonly cands: Candidates = new Candidates();
  private readonly picked: Pick = new Pick();
  private readonly saturation: Saturation;
  private rotation: u64 = 0;
  /** Output tokens and decode work of the request being scheduled. */
  private outputTokens: f64 = 0;
  private decodeWork: f64 = 0;
  /** Other worker VMs of this gateway, as of the last in-flight read. */
  private otherVms: i32 = 0;
  /**
   * The latest time this VM has read (routing, ticks): what a finished
   * request's in-flight row is stamped with, so the end of a stream costs no
   * clock read. The stamp only tells live rows from dead VMs', and ticks keep
   * it within a tick of now.
   */
  private seenNs: u64 = 0;

  /** `blob` is shared with `delivery`, which reads its state stamp. */
  constructor(cfg: PluginConfig, metrics: RouterMetrics, vmId: u32, blob: GatewayBlob, delivery: StateDelivery) {
    this.cfg = cfg;
    this.metrics = metrics;
    this.blob = blob;
    this.delivery = delivery;
    this.prefix = new PrefixLocator(cfg, metrics, blob.shared ? vmId : 0);
    this.inflight = new InflightCounters(blob, vmId);
    this.saturation = new Saturation(cfg.saturation);
    const t = new ReplicaTable();
    t.weights.copyFrom(cfg.weights);
    for (let i = 0; i < cfg.replicas.length; i++) {
      const r = cfg.replicas[i];
      t.add(r.address, true, false, 0, 0, 0, r.kvCapacityTokens, 0xffffffff);
    }
    this.install(t);
  }

  /** The control plane's version of the state routed on; 0 while on the static configuration. */
  get stateVersion(): u64 {
    return this.table.fromControlPlane ? this.table.version : 0;
  }

  /** Routes on `t` from now on, unless it is the state already routed on. */
  adopt(t: ReplicaTable): void {
    if (t.version == this.table.version && this.table.fromControlPlane) return;
    this.install(t);
    this.metrics.add(Counter.StateUpdates, 1);
  }

  /** Picks up a newer state another VM published (requests do it in route(), ticks here). */
  refresh(): void {
    if (!this.blob.fetch()) return;
    const t = this.delivery.notice(this.table);
    if (t !== null) this.adopt(t);
  }

  private install(t: ReplicaTable): void {
    const old = this.table;
    // The state carries the four weights the control plane serves; the work weight is configuration.
    t.weights.work = this.cfg.weights.work;
    this.prefix.resize(old, t);
    this.inflight.remap(old, t);
    this.metrics.defineReplicas(t);
    this.table = t;
  }

  /**
   * Chooses a replica for a request whose JSON body is [body, body+len)
   * (len 0: no body to read, route on load alone). False: no replica can take it.
   */
  route(body: usize, len: usize, nowNs: u64, d: Decision): bool {
    const hasPrompt = this.prefix.hash(body, len, false);
    this.readTraits(len, d);
    return this.schedule(hasPrompt, nowNs, d);
  }

  /**
   * The same for a body still arriving, of which [body, body+len) has come:
   * routes once that holds all of the prompt the filter hashes, or at once
   * when `now` is set (the body nears what the proxy may buffer).
   */
  routeEarly(body: usize, len: usize, now: bool, nowNs: u64, d: Decision): Routing {
    const hasPrompt = this.prefix.hash(body, len, true);
    if (!now && !this.prefix.complete) return Routing.Waiting;
    this.readTraits(len, d);
    return this.schedule(hasPrompt, nowNs, d) ? Routing.Routed : Routing.NoReplica;
  }

  /** Bytes of prompt text the filter hashes at most: a body shorter than this never completes it early. */
  @inline get promptBytes(): u32 {
    return this.prefix.promptBytes;
  }

  /**
   * The body's model (for LoRA affinity) and user (a session, unless the
   * headers named one), from the prompt hasher's pass over it: right after prefix.hash().
   */
  private readTraits(len: usize, d: Decision): void {
    const s = this.cfg.session;
    if (len > 0) readBodyTraits(d.traits, s.enabled && s.bodyUser);
    else d.traits.hasModel = false;
  }

  /**
   * Requests the candidates below the saturation bound can take now (at
   * least one each; unbounded without trusted metrics): how many held
   * requests a tick lets go.
   */
  admissionRoom(nowNs: u64): f64 {
    this.sawTime(nowNs);
    this.refresh();
    const t = this.table;
    const withMetrics = this.metricsTrusted(t, nowNs);
    if (!this.gather(t, withMetrics, nowNs, null)) return 0;
    this.saturation.mark(this.cands, withMetrics);
    return withMetrics ? this.saturation.room : Infinity;
  }

  /** The scheduling cycle, for a request whose prompt (if `hasPrompt`) is hashed. */
  private schedule(hasPrompt: bool, nowNs: u64, d: Decision): bool {
    this.sawTime(nowNs);
    // One shared-data read tells both what other VMs have in flight and
    // whether a newer state was published (every request routes on the newest).
    this.refresh();
    const t = this.table;
    const c = this.cands;
    decisions.sample(t.decisionLogEvery);
    const withMetrics = this.metricsTrusted(t, nowNs);
    if (!withMetrics && t.fromControlPlane) this.metrics.add(Counter.StaleState, 1);
    const nowS = <u32>(nowNs / 1000000000);

    // Candidates: ready replicas whose metrics are fresh enough, and their load.
    if (!this.gather(t, withMetrics, nowNs, d.traits.subset)) {
      this.metrics.add(Counter.NoReplica, 1);
      return false;
    }
    // Admission: a request finds every candidate past the saturation bound.
    if (this.saturation.mark(c, withMetrics) == 0 && d.traits.inference && this.cfg.admission.enabled) {
      d.saturated = true;
      return false;
    }
    // Match: how much of the prompt each candidate holds.
    const prefix = this.prefix;
    let key: u64;
    if (hasPrompt) {
      prefix.match(t, c, this.otherVms > 0, nowS);
      key = prefix.key;
    } else {
      // Requests without a prompt spread by load; equal loads take turns.
      this.rotation += 1;
      key = mix64(this.rotation);
      c.totalBlocks = 0;
      for (let k = 0; k < c.n; k++) unchecked(c.matched[k] = 0);
      this.metrics.add(Counter.LoadOnly, 1);
    }
    for (let k = 0; k < c.n; k++) {
      unchecked(c.rendezvous[k] = rendezvousWeight(key, unchecked(t.addressHash[unchecked(c.replica[k])])));
    }
    // Predict: what the request would cost each candidate, and the work guard's bound.
    const w = t.weights;
    const cfg = this.cfg;
    const wp = cfg.work;
    const promptTokens = hasPrompt ? Math.floor(<f64>prefix.textBytes / CHARS_PER_TOKEN) : 0;
    const asked = hasPrompt ? maxTokensAsked : -1;
    this.outputTokens = asked >= 0 ? <f64>asked : wp.defaultMaxTokens;
    this.decodeWork = Math.round(wp.decodeTokenCost * this.outputTokens);
    predictWork(c, wp, promptTokens, <f64>prefix.blockBytes / CHARS_PER_TOKEN, promptTokens + this.decodeWork, cfg.loadBoundEpsilon, w.work > 0);
    // Score, then pick: a prefix nobody holds is placed among close loads on the replica given the least content.
    const newPrefix = hasPrompt && !prefix.anyMatch && w.prefix > 0;
    c.balanceContent = newPrefix;
    weightedScore(c, w, withMetrics, !newPrefix);
    if (addLoraAffinity(t, c, d.traits, this.cfg.lora)) {
      this.metrics.add(Counter.LoraRouted, 1);
      // The prediction knows nothing of adapters: near-equal predictions keep the score's order.
      c.nearMs = 0;
    }
    // A gateway of a fleet places a request nobody holds any of in its own share of the replicas, among near-equal ones.
    markShares(t, c, wp, (!hasPrompt || !prefix.anyMatch) && w.work > 0);
    const band = newPrefix ? NEW_PREFIX_BAND * (withMetrics ? w.queue + w.kvCache : 0) + TIE : TIE;
    pick(c, this.cfg.loadBoundEpsilon, band, this.picked, wp.chunkTokens);
    // A session goes to its own replica while that one has room.
    const session = this.cfg.session.enabled ? sessionCandidate(t, c, this.saturation, d.traits) : -1;
    if (session >= 0) {
      this.picked.index = session;
      this.picked.spilled = false;
      this.metrics.add(Counter.SessionRouted, 1);
    }
    if (decisions.active) decisions.guard(this.picked.cap, this.picked.preferred, this.picked.spilled, newPrefix, withMetrics, session >= 0);
    this.commit(t, this.picked.index, nowNs, d);
    return true;
  }

  /**
   * Whether the replicas' metrics can be scored: a state nobody has
   * refreshed for longer than the staleness bound routes on prefix and
   * in-flight load alone, as does the static configuration.
   */
  private metricsTrusted(t: ReplicaTable, nowNs: u64): bool {
    if (!t.fromControlPlane) return false;
    const seen = this.controlPlaneHeardNs;
    return !(nowNs > seen && nowNs - seen > <u64>this.cfg.stalenessMs * 1000000);
  }

  /** When the control plane was last heard from (a state or a 304), as this VM knows; 0: never. */
  get controlPlaneHeardNs(): u64 {
    const heard = this.delivery.controlPlaneSeenNs;
    const received = this.table.fromControlPlane ? this.table.receivedAtNs : 0;
    return heard > received ? heard : received;
  }

  /**
   * Fills the candidates: ready replicas whose metrics are fresh enough, and
   * their counters and time since the last placement; only those in `subset` when it names one. A subset of
   * which none qualifies is set aside, so the request still goes somewhere
   * (the picker then sends it to the subset's own order). False when there is none.
   */
  private gather(t: ReplicaTable, withMetrics: bool, nowNs: u64, subset: EndpointSubset | null): bool {
    if (subset !== null && subset.given) {
      if (this.gatherIn(t, withMetrics, nowNs, subset)) return true;
      this.metrics.add(Counter.SubsetIgnored, 1);
    }
    return this.gatherIn(t, withMetrics, nowNs, null);
  }

  private gatherIn(t: ReplicaTable, withMetrics: bool, nowNs: u64, subset: EndpointSubset | null): bool {
    const c = this.cands;
    const stalenessMs = this.cfg.stalenessMs;
    const nowMs = <u32>(nowNs / 1000000);
    this.otherVms = this.inflight.read(t, <u32>(nowNs / 1000000000));
    const sum = this.inflight.total;
    const perDecode = t.fleetCount > 1 ? this.decodeWorkPerRequest(t, sum) : 0;
    let n = 0;
    // A replica's metrics age is the control plane's as of the state it sent;
    // time since then is covered by metricsTrusted (the control plane answers
    // every long poll, 304 included, while it is alive).
    for (let i = 0; i < t.n; i++) {
      if (!unchecked(t.ready[i])) continue;
      if (withMetrics && unchecked(t.metricsKnown[i]) && unchecked(t.metricsAgeMs[i]) > stalenessMs) continue;
      if (subset !== null && !subset.has(unchecked(t.addressHash[i]))) continue;
      unchecked(c.replica[n] = i);
      unchecked(c.waiting[n] = unchecked(t.waiting[i]));
      unchecked(c.kvUsage[n] = unchecked(t.kvUsage[i]));
      const inflight = unchecked(sum.inflight[i]);
      unchecked(c.inflight[n] = inflight);
      unchecked(c.decoding[n] = unchecked(sum.decoding[i]));
      // Other gateways' work, as the control plane last reported it, adds to this gateway's.
      unchecked(c.queued[n] = unchecked(sum.queued[i]) + unchecked(t.otherGatewaysQueuedTokens[i]));
      unchecked(c.decodeWork[n] = unchecked(sum.decodeWork[i]) + unchecked(t.otherGatewaysDecodeWork[i]));
      const placed = unchecked(sum.placedMs[i]);
      unchecked(c.sincePlacedMs[n] = placed == 0 ? Infinity : <f64>(nowMs - placed));
      // This gateway's own requests are counted as they start and end; the
      // engine queue (from metrics, up to a scrape old) adds what others sent
      // and what waits. Metrics' running count is left out: it lags the
      // in-flight count and would count finished requests again.
      // Other gateways' decoding requests count too, estimated from their decode
      // work (the control plane reports work, not counts): without them each
      // gateway of a fleet of g sees a g-th of a replica's batch and the guard
      // lets g times as many pile up.
      const others = perDecode > 0 ? Math.round(unchecked(t.otherGatewaysDecodeWork[i]) / perDecode) : 0;
      unchecked(c.load[n] = inflight + others + (withMetrics ? unchecked(t.waiting[i]) : 0));
      n++;
    }
    c.n = n;
    return n > 0;
  }

  /** Decode work of one of this gateway's decoding requests on average; the configured default while none decodes. */
  private decodeWorkPerRequest(t: ReplicaTable, sum: WorkCounts): f64 {
    let requests: f64 = 0, work: f64 = 0;
    for (let i = 0; i < t.n; i++) {
      requests += unchecked(sum.decoding[i]);
      work += unchecked(sum.decodeWork[i]);
    }
    const wp = this.cfg.work;
    return requests > 0 && work > 0 ? work / requests : wp.decodeTokenCost * wp.defaultMaxTokens;
  }

  /** Candidate k was picked: fills the decision, records the prefix there, counts the request. */
  private commit(t: ReplicaTable, k: i32, nowNs: u64, d: Decision): void {
    const c = this.cands;
    const i = unchecked(c.replica[k]);
    d.replica = i;
    d.address = unchecked(t.addresses[i]);
    d.addressBytes = unchecked(t.addressBytes[i]);
    const r = runnerUp(c, k);
    d.fallbackBytes = r >= 0 ? unchecked(t.addressBytes[unchecked(c.replica[r])]) : null;
    d.tableVersion = t.version;
    d.matched = this.prefix.record(t, c, k, i, unchecked(c.newTokens[k]) + this.outputTokens);
    d.total = c.totalBlocks;
    if (decisions.active) {
      d.record = decisions.emit(t, c, k, r, d.matched, d.total, this.cfg.debugHeaders);
      this.metrics.add(Counter.DecisionRecords, 1);
    }
    d.newTokens = unchecked(c.newTokens[k]);
    d.decodeWork = this.decodeWork;
    d.decoding = false;
    this.inflight.placed(t, i, <u32>(nowNs / 1000000));
    this.inflight.add(t, i, 1, 0, d.newTokens, 0, <u32>(nowNs / 1000000000));
    d.counted = true;

    const m = this.metrics;
    m.add(Counter.Routed, 1);
    if (d.matched > 0) m.add(Counter.PrefixHits, 1);
    if (d.total > 0) {
      m.add(Counter.BlocksMatched, d.matched);
      m.add(Counter.BlocksTotal, d.total);
    }
    const slot = unchecked(t.slot[i]);
    m.addReplica(ReplicaStat.Requests, slot, 1);
    if (d.total > 0) {
      m.addReplica(ReplicaStat.BlocksMatched, slot, d.matched);
      m.addReplica(ReplicaStat.BlocksTotal, slot, d.total);
    }
    if (this.picked.spilled) {
      m.add(Counter.Spilled, 1);
      const passed = this.picked.preferred;
      if (passed >= 0) m.addReplica(ReplicaStat.PassedOver, unchecked(t.slot[unchecked(c.replica[passed])]), 1);
    }
  }

  /**
   * The response began (its headers came; for a streamed completion, with
   * the first token): the prompt is prefilled, the request decodes now.
   */
  responseStarted(d: Decision): void {
    if (!d.counted || d.decoding) return;
    d.decoding = true;
    const t = this.table;
    this.inflight.add(t, this.indexOf(t, d), 0, 1, -d.newTokens, d.decodeWork, this.seenS);
  }

  /** The request ended (served, failed or reset): it no longer loads its replica. */
  finish(d: Decision): void {
    if (!d.counted) return;
    d.counted = false;
    const t = this.table;
    const i = this.indexOf(t, d);
    if (d.decoding) this.inflight.add(t, i, -1, -1, 0, -d.decodeWork, this.seenS);
    else this.inflight.add(t, i, -1, 0, -d.newTokens, 0, this.seenS);
  }

  /** The decision's replica in table `t` (-1: it left). */
  @inline private indexOf(t: ReplicaTable, d: Decision): i32 {
    return d.tableVersion == t.version ? d.replica : t.indexOf(d.address);
  }

  @inline private get seenS(): u32 {
    return <u32>(this.seenNs / 1000000000);
  }

  /** Notes a time read elsewhere (ticks): see seenNs. */
  @inline sawTime(nowNs: u64): void {
    if (nowNs > this.seenNs) this.seenNs = nowNs;
  }

  /** Where the gateway fleet exchange reads and writes placements (the root context's poller). */
  @inline get placements(): PrefixLocator {
    return this.prefix;
  }

  /**
   * This gateway's counters per replica (by index in `table`: in flight,
   * decoding, queued tokens, decode work), summed over its worker VMs now:
   * what the poller reports to the control plane for the other gateways.
   */
  gatewayWork(nowNs: u64): WorkCounts {
    this.sawTime(nowNs);
    this.inflight.read(this.table, this.seenS);
    return this.inflight.total;
  }

  /** The replica table routed on (gatewayWork's indexes). */
  @inline get replicas(): ReplicaTable {
    return this.table;
  }

  /** Moves this VM's placements to the gateway's outbox, for the poller to send to the control plane. */
  flushPlacements(): void {
    this.prefix.flushPlacements();
  }

  /** Refreshes this VM's in-flight row so other VMs keep counting it. */
  heartbeat(nowNs: u64): void {
    this.inflight.publish(this.table, <u32>(nowNs / 1000000000));
  }
}
