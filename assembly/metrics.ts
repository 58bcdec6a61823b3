// Envoy stats the filter defines (proxy_define_metric); names are prefixed by
// Envoy with `wasmcustom.` in its stats output.
import { MetricType, defineMetric, incrementMetric } from "./abi/host";
import { MAX_SLOTS } from "./prefix/prefixIndex";

export class RouterMetrics {
  routed: u32 = 0;
  prefixHits: u32 = 0;
  blocksMatched: u32 = 0;
  blocksTotal: u32 = 0;
  loadOnly: u32 = 0;
  spilled: u32 = 0;
  noReplica: u32 = 0;
  stateUpdates: u32 = 0;
  stateRejected: u32 = 0;
  pollFailures: u32 = 0;
  private perReplica: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);

  define(): void {
    this.routed = defineMetric(MetricType.Counter, "prefix_router.requests_routed");
    this.prefixHits = defineMetric(MetricType.Counter, "prefix_router.requests_prefix_hit");
    this.blocksMatched = defineMetric(MetricType.Counter, "prefix_router.prefix_blocks_matched");
    this.blocksTotal = defineMetric(MetricType.Counter, "prefix_router.prefix_blocks_total");
    this.loadOnly = defineMetric(MetricType.Counter, "prefix_router.fallback_load_only");
    this.spilled = defineMetric(MetricType.Counter, "prefix_router.load_bound_spills");
    this.noReplica = defineMetric(MetricType.Counter, "prefix_router.no_ready_replica");
    this.stateUpdates = defineMetric(MetricType.Counter, "prefix_router.state_updates");
    this.stateRejected = defineMetric(MetricType.Counter, "prefix_router.state_rejected");
    this.pollFailures = defineMetric(MetricType.Counter, "prefix_router.control_plane_poll_failures");
    for (let i = 0; i < MAX_SLOTS; i++) unchecked(this.perReplica[i] = 0);
  }

  /** Counts a request for the replica in `slot`, defining its counter on first use. */
  replicaRequest(slot: i32, address: string): void {
    if (slot < 0 || slot >= MAX_SLOTS) return;
    // Stored as id + 1 so that 0 means "not defined yet" whatever ids the host hands out.
    let stored = unchecked(this.perReplica[slot]);
    if (stored == 0) {
      // Envoy stat names use '.' as a separator: keep the address in one segment.
      stored = defineMetric(MetricType.Counter, "prefix_router.replica_requests." + address.replaceAll(".", "_").replaceAll(":", "_")) + 1;
      unchecked(this.perReplica[slot] = stored);
    }
    if (stored != 0) incrementMetric(stored - 1, 1);
  }

  /** A slot changed hands: its next request defines the counter for the new address. */
  forgetSlot(slot: i32): void {
    if (slot >= 0 && slot < MAX_SLOTS) unchecked(this.perReplica[slot] = 0);
  }
}
