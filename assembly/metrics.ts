// Envoy stats the filter defines (proxy_define_metric; Envoy shows them with
// a `wasmcustom.` prefix). Increments are counted in linear memory and handed
// to the host on the root context's tick: one host call per counter per tick
// instead of several per request. Stats lag by at most one tick (100 ms).
import { MetricType, defineMetric, incrementMetric } from "./abi/hostCalls";
import { MAX_SLOTS } from "./prefix/prefixIndex";

export const enum Counter {
  Routed, PrefixHits, BlocksMatched, BlocksTotal, LoadOnly, Spilled, NoReplica,
  StateUpdates, StateRejected, PollFailures,
  AdmissionHeld, AdmissionReleased, AdmissionRefused, SessionRouted, LoraRouted, COUNT,
}

const NAMES: StaticArray<string> = [
  "prefix_router.requests_routed",
  "prefix_router.requests_prefix_hit",
  "prefix_router.prefix_blocks_matched",
  "prefix_router.prefix_blocks_total",
  "prefix_router.fallback_load_only",
  "prefix_router.load_bound_spills",
  "prefix_router.no_ready_replica",
  "prefix_router.state_updates",
  "prefix_router.state_rejected",
  "prefix_router.control_plane_poll_failures",
  "prefix_router.admission_held",
  "prefix_router.admission_released",
  "prefix_router.admission_refused",
  "prefix_router.session_affinity_routed",
  "prefix_router.lora_affinity_routed",
];

@final
export class RouterMetrics {
  private readonly ids: StaticArray<u32> = new StaticArray<u32>(Counter.COUNT);
  private readonly pending: StaticArray<i64> = new StaticArray<i64>(Counter.COUNT);
  /** Per-slot counter id + 1 (0: not defined yet) and pending requests. */
  private readonly replicaIds: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly replicaPending: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  /** Without ticks (sharedState false) every increment goes to the host at once. */
  immediate: bool = false;

  define(): void {
    for (let i = 0; i < Counter.COUNT; i++) unchecked(this.ids[i] = defineMetric(MetricType.Counter, NAMES[i]));
  }

  @inline add(c: Counter, n: i64): void {
    if (this.immediate) incrementMetric(unchecked(this.ids[c]), n);
    else unchecked(this.pending[c] += n);
  }

  /** Counts a request for the replica in `slot`. */
  replicaRequest(slot: i32, address: string): void {
    if (slot < 0 || slot >= MAX_SLOTS) return;
    if (unchecked(this.replicaIds[slot]) == 0) this.defineReplica(slot, address);
    if (this.immediate) incrementMetric(unchecked(this.replicaIds[slot]) - 1, 1);
    else unchecked(this.replicaPending[slot] += 1);
  }

  private defineReplica(slot: i32, address: string): void {
    // Envoy stat names use '.' as a separator: keep the address in one segment.
    const name = "prefix_router.replica_requests." + address.replaceAll(".", "_").replaceAll(":", "_");
    unchecked(this.replicaIds[slot] = defineMetric(MetricType.Counter, name) + 1);
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
    for (let s = 0; s < MAX_SLOTS; s++) {
      const n = unchecked(this.replicaPending[s]);
      if (n != 0) {
        const id = unchecked(this.replicaIds[s]);
        if (id != 0) incrementMetric(id - 1, n);
        unchecked(this.replicaPending[s] = 0);
      }
    }
  }

  /** A slot changed hands: flush what it counted, then forget its counter. */
  forgetSlot(slot: i32): void {
    if (slot < 0 || slot >= MAX_SLOTS) return;
    const id = unchecked(this.replicaIds[slot]);
    const n = unchecked(this.replicaPending[slot]);
    if (id != 0 && n != 0) incrementMetric(id - 1, n);
    unchecked(this.replicaPending[slot] = 0);
    unchecked(this.replicaIds[slot] = 0);
  }
}
