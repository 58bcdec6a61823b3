// Envoy stats the filter defines (proxy_define_metric; Envoy keeps them under
// the `wasmcustom.` namespace and its Prometheus output strips it, turning
// '.' into '_'). plugin/METRICS.md says what each means and its unit.
// Increments are counted in linear memory and handed to the host on the root
// context's tick: one host call per counter per tick instead of several per
// request. Stats lag by at most one tick (100 ms). Per-replica stats are
// defined when the replica table changes, never on the request path.
import { MetricType, defineMetric, incrementMetric, recordMetric } from "./abi/hostCalls";
import { CharCode } from "./charCode";
import { MAX_SLOTS } from "./prefix/prefixIndex";
import { ReplicaTable } from "./state/replicaTable";

export const enum Counter {
  Routed, PrefixHits, BlocksMatched, BlocksTotal, LoadOnly, StaleState, Spilled, NoReplica,
  StateUpdates, StateRejected, PollFailures,
  AdmissionHeld, AdmissionReleased, AdmissionRefused, SessionRouted, LoraRouted, DecisionRecords, SubsetIgnored, COUNT,
}

/** Every stat name starts with this; the names below are what follows it. */
const PREFIX = "prefix_router.";

const NAMES: StaticArray<string> = [
  "requests_routed",
  "requests_prefix_hit",
  "prefix_blocks_matched",
  "prefix_blocks_total",
  "fallback_load_only",
  "fallback_stale_state",
  "load_bound_spills",
  "no_ready_replica",
  "state_updates",
  "state_rejected",
  "control_plane_poll_failures",
  "admission_held",
  "admission_released",
  "admission_refused",
  "session_affinity_routed",
  "lora_affinity_routed",
  "decision_records",
  "subset_ignored",
];

export const enum Gauge { StateVersion, ControlPlaneAgeMs, COUNT }

const GAUGE_NAMES: StaticArray<string> = [
  "state_version",
  "control_plane_age_ms",
];

/** Counters kept per replica: `prefix_router.<name>.<address with '.' and ':' as '_'>`. */
export const enum ReplicaStat { Requests, BlocksMatched, BlocksTotal, PassedOver, COUNT }

const REPLICA_NAMES: StaticArray<string> = [
  "replica_requests",
  "replica_prefix_blocks_matched",
  "replica_prefix_blocks_total",
  "replica_load_bound_passed_over",
];

const UNDEFINED: u32 = 0xffffffff;

@final
export class RouterMetrics {
  private readonly ids: StaticArray<u32> = new StaticArray<u32>(Counter.COUNT);
  private readonly pending: StaticArray<i64> = new StaticArray<i64>(Counter.COUNT);
  private readonly gaugeIds: StaticArray<u32> = new StaticArray<u32>(Gauge.COUNT);
  /** Per (slot, stat) at [slot * ReplicaStat.COUNT + stat]: counter id + 1 (0: not defined) and pending increments. */
  private readonly replicaIds: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS * ReplicaStat.COUNT);
  private readonly replicaPending: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS * ReplicaStat.COUNT);
  /** Without ticks (sharedState false) every increment goes to the host at once. */
  immediate: bool = false;

  define(): void {
    for (let i = 0; i < Counter.COUNT; i++) unchecked(this.ids[i] = defineMetric(MetricType.Counter, PREFIX + NAMES[i]));
    for (let i = 0; i < Gauge.COUNT; i++) unchecked(this.gaugeIds[i] = defineMetric(MetricType.Gauge, PREFIX + GAUGE_NAMES[i]));
  }

  /** A call, not inlined: most of its callers are off the request path, where each copy only took bytes. */
  add(c: Counter, n: i64): void {
    if (this.immediate) incrementMetric(unchecked(this.ids[c]), n);
    else unchecked(this.pending[c] += n);
  }

  set(g: Gauge, v: u64): void {
    const id = unchecked(this.gaugeIds[g]);
    if (id != UNDEFINED) recordMetric(id, v);
  }

  /** Defines the per-replica counters of every replica of `t` that has a slot and none yet. */
  defineReplicas(t: ReplicaTable): void {
    for (let i = 0; i < t.n; i++) {
      const slot = unchecked(t.slot[i]);
      if (slot < 0 || slot >= MAX_SLOTS || unchecked(this.replicaIds[slot * ReplicaStat.COUNT]) != 0) continue;
      const suffix = "." + statSegment(unchecked(t.addresses[i]));
      for (let s = 0; s < ReplicaStat.COUNT; s++) {
        unchecked(this.replicaIds[slot * ReplicaStat.COUNT + s] = defineMetric(MetricType.Counter, PREFIX + REPLICA_NAMES[s] + suffix) + 1);
      }
    }
  }

  /** Counts `n` of stat `s` for the replica in `slot`. */
  @inline addReplica(s: ReplicaStat, slot: i32, n: i64): void {
    if (slot < 0 || slot >= MAX_SLOTS || n <= 0) return;
    const at = slot * ReplicaStat.COUNT + <i32>s;
    if (this.immediate) {
      const id = unchecked(this.replicaIds[at]);
      if (id != 0) incrementMetric(id - 1, n);
    } else unchecked(this.replicaPending[at] += <i32>n);
  }

  /**
   * Commit: a request went to the replica in `slot`, which held `matched` of
   * its `total` prompt blocks; `spilled`: the load guard passed over the
   * replica in `passedSlot` (-1: none) for it.
   */
  routed(slot: i32, matched: i32, total: i32, spilled: bool, passedSlot: i32): void {
    this.add(Counter.Routed, 1);
    if (matched > 0) this.add(Counter.PrefixHits, 1);
    if (total > 0) {
      this.add(Counter.BlocksMatched, matched);
      this.add(Counter.BlocksTotal, total);
    }
    this.addReplica(ReplicaStat.Requests, slot, 1);
    if (total > 0) {
      this.addReplica(ReplicaStat.BlocksMatched, slot, matched);
      this.addReplica(ReplicaStat.BlocksTotal, slot, total);
    }
    if (spilled) {
      this.add(Counter.Spilled, 1);
      if (passedSlot >= 0) this.addReplica(ReplicaStat.PassedOver, passedSlot, 1);
    }
  }

  /** Hands the pending increments to the host. */
  flush(): void {
    for (let i = 0; i < Counter.COUNT; i++) {
      const n = unchecked(this.pending[i]);
      if (n != 0) {
        incrementMetric(unchecked(this.ids[i]), n);
        unchecked(this.pending[i] = 0);
      }
    }
    for (let at = 0; at < MAX_SLOTS * ReplicaStat.COUNT; at++) {
      const n = unchecked(this.replicaPending[at]);
      if (n != 0) {
        const id = unchecked(this.replicaIds[at]);
        if (id != 0) incrementMetric(id - 1, n);
        unchecked(this.replicaPending[at] = 0);
      }
    }
  }

  /** A slot changed hands: flush what it counted, then forget its counters. */
  forgetSlot(slot: i32): void {
    if (slot < 0 || slot >= MAX_SLOTS) return;
    for (let s = 0; s < ReplicaStat.COUNT; s++) {
      const at = slot * ReplicaStat.COUNT + s;
      const id = unchecked(this.replicaIds[at]);
      const n = unchecked(this.replicaPending[at]);
      if (id != 0 && n != 0) incrementMetric(id - 1, n);
      unchecked(this.replicaPending[at] = 0);
      unchecked(this.replicaIds[at] = 0);
    }
  }
}

/** The address with '.' and ':' as '_': Envoy stat names use '.' as a separator, so it stays one segment. */
function statSegment(address: string): string {
  let s = "";
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    s += c == CharCode.DOT || c == CharCode.COLON ? "_" : String.fromCharCode(c);
  }
  return s;
}
