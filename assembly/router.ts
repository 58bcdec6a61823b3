// One worker VM's routing core: it keeps the state the root context hands it
// (the replica table, and which state is the newest: StateDelivery) and
// drives the scheduling cycle over it, whose extension points and plugins
// scheduling/cycle.ts declares. Streams call route(), responseStarted() and
// finish(); the root context calls adopt(), refresh() and heartbeat().
import { PluginConfig } from "./config/pluginConfig";
import { Counter, RouterMetrics } from "./metrics";
import { PrefixLocator } from "./prefix/prefixLocator";
import { readBodyTraits } from "./request/requestTraits";
import { SchedulingCycle } from "./scheduling/cycle";
import { Decision } from "./scheduling/decision";
import { GatewayBlob, WorkCounts } from "./state/gatewayBlob";
import { ReplicaTable } from "./state/replicaTable";
import { ReportWake } from "./state/reportWake";
import { StateDelivery } from "./state/stateDelivery";

/** What routeEarly() did with a body still arriving. */
export const enum Routing { Routed, NoReplica, Waiting }

@final
export class Router {
  readonly cfg: PluginConfig;
  private readonly metrics: RouterMetrics;
  private readonly blob: GatewayBlob;
  private readonly delivery: StateDelivery;
  private readonly cycle: SchedulingCycle;
  private table: ReplicaTable = new ReplicaTable();
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
    this.cycle = new SchedulingCycle(cfg, metrics, vmId, blob);
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
    // The state carries the four weights the control plane serves; the work weight is configuration.
    t.weights.work = this.cfg.weights.work;
    const from = t.indexesIn(this.table);
    notePlacementsSeen(this.table, t, from);
    this.cycle.install(this.table, t, from);
    this.table = t;
  }

  /**
   * Chooses a replica for a request whose JSON body is [body, body+len)
   * (len 0: no body to read, route on load alone). False: no replica can take it.
   */
  route(body: usize, len: usize, nowNs: u64, d: Decision): bool {
    const hasPrompt = this.cycle.prepare(body, len, false);
    this.readTraits(len, d);
    return this.schedule(hasPrompt, nowNs, d);
  }

  /**
   * The same for a body still arriving, of which [body, body+len) has come:
   * routes once that holds all of the prompt the filter hashes, or at once
   * when `now` is set (the body nears what the proxy may buffer).
   */
  routeEarly(body: usize, len: usize, now: bool, nowNs: u64, d: Decision): Routing {
    const hasPrompt = this.cycle.prepare(body, len, true);
    if (!now && !this.cycle.prefix.complete) return Routing.Waiting;
    this.readTraits(len, d);
    return this.schedule(hasPrompt, nowNs, d) ? Routing.Routed : Routing.NoReplica;
  }

  /** Bytes of prompt text the filter hashes at most: a body shorter than this never completes it early. */
  @inline get promptBytes(): u32 {
    return this.cycle.prefix.promptBytes;
  }

  /**
   * The body's model (for LoRA affinity) and user (a session, unless the
   * headers named one), from the prompt hasher's pass over it: right after prepare().
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
    return this.cycle.admissionRoom(t, this.metricsTrusted(t, nowNs), nowNs);
  }

  /** The scheduling cycle, for a request whose prompt (if `hasPrompt`) is hashed: its points in order. */
  private schedule(hasPrompt: bool, nowNs: u64, d: Decision): bool {
    this.sawTime(nowNs);
    // One shared-data read tells both what other VMs have in flight and
    // whether a newer state was published (every request routes on the newest).
    this.refresh();
    const t = this.table;
    const cycle = this.cycle;
    cycle.begin(t, hasPrompt, this.metricsTrusted(t, nowNs), nowNs);
    if (!cycle.filter(d) || !cycle.admit(d)) return false;
    cycle.match();
    cycle.predict();
    cycle.score(d);
    cycle.pick(d);
    cycle.commit(d);
    if (cycle.prefix.pendingPlacements > 0) {
      const wake = this.reportWake;
      if (this.placementsAtOnce) {
        if (cycle.prefix.flushPlacements() && wake !== null) wake.wake();
      } else if (wake !== null && this.table.fleetCount > 1) wake.wakeSelf();
    }
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

  /** The response began (its headers came) at `nowNs`: the request decodes now. */
  responseStarted(d: Decision, nowNs: u64): void {
    this.sawTime(nowNs);
    this.cycle.responseStarted(this.table, d, nowNs);
  }

  /** The request ended (served, failed or reset): it no longer loads its replica. */
  finish(d: Decision): void {
    this.cycle.finish(this.table, d, this.seenS);
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
    return this.cycle.prefix;
  }

  /**
   * This gateway's counters per replica (by index in `table`: in flight,
   * decoding, queued tokens, decode work), summed over its worker VMs now:
   * what the poller reports to the control plane for the other gateways.
   */
  gatewayWork(nowNs: u64): WorkCounts {
    this.sawTime(nowNs);
    this.cycle.inflight.read(this.table, this.seenS);
    return this.cycle.inflight.total;
  }

  /** The replica table routed on (gatewayWork's indexes). */
  @inline get replicas(): ReplicaTable {
    return this.table;
  }

  /**
   * Each request's placements go to the gateway's outbox as it is routed,
   * not at this VM's next tick: set (by the root context) on the worker VMs
   * of a gateway of a fleet that do not poll, so that the poller, woken
   * through reportWake, reports them at once.
   */
  placementsAtOnce: bool = false;
  /**
   * The gateway's report wake (state/reportWake.ts), set by the root context
   * of a gateway of a fleet: a request that placed a prefix wakes the poller
   * (or, on the poller, its own root context) to report it.
   */
  reportWake: ReportWake | null = null;

  /** Moves this VM's placements to the gateway's outbox, for the poller to send to the control plane. */
  flushPlacements(): void {
    this.cycle.prefix.flushPlacements();
  }

  /** Refreshes this VM's in-flight row so other VMs keep counting it. */
  heartbeat(nowNs: u64): void {
    this.cycle.inflight.publish(this.table, <u32>(nowNs / 1000000000));
  }
}

/**
 * Stamps each replica of `next` (at index `from[i]` in `prev`, -1: new) where the other gateways' queued tokens rose
 * since `prev`, or that a placement of theirs in `next` names (section 1),
 * with the time `next` arrived, and carries the stamps of the rest: the
 * others' placements, which the picker's order among near-equal replicas
 * counts as this gateway's own (scheduling/picker.ts, longestIdleNear).
 */
export function notePlacementsSeen(prev: ReplicaTable, next: ReplicaTable, from: StaticArray<i32>): void {
  const atMs = <u32>(next.receivedAtNs / 1000000);
  for (let i = 0; i < next.n; i++) {
    const j = unchecked(from[i]);
    if (j < 0) continue;
    const rose = unchecked(next.otherGatewaysQueuedTokens[i]) > unchecked(prev.otherGatewaysQueuedTokens[j]);
    unchecked(next.otherGatewaysPlacedMs[i] = rose && atMs != 0 ? atMs : unchecked(prev.otherGatewaysPlacedMs[j]));
  }
  if (atMs == 0) return;
  const learned = next.learnedReplica;
  for (let k = 0, m = learned.length; k < m; k++) unchecked(next.otherGatewaysPlacedMs[unchecked(learned[k])] = atMs);
}
