// Everything worker VMs share goes through proxy-wasm shared data (per vm_id,
// process-wide, CAS-versioned). These are the keys and their layouts, encoded
// once so the request path hands the host a key without allocating.

/** [u64 receivedAtNs][state payload]: the newest valid state any VM received. */
export const KEY_STATE = String.UTF8.encode("prefix_router.state");
/** [u32 holder vm id][u64 expiry ns]: which VM long-polls the control plane. */
export const KEY_POLL_LEASE = String.UTF8.encode("prefix_router.poll_lease");
/** u32 counter handing out worker VM ids. */
export const KEY_VM_SEQ = String.UTF8.encode("prefix_router.vm_seq");
/**
 * [u64 state version, 0: none][u64 ns the control plane last answered][u64 replica-set hash][u32 rows]
 * then rows [u32 vm id][u32 heartbeat s][u32 requests routed][20 bytes per replica]: read on every request, which learns
 * what other VMs have in flight, the gateway's request count (the clock of the shared prefix demand, prefixDemand.ts)
 * and whether a newer state was published (see inflightCounters, gatewayBlob).
 */
export const KEY_INFLIGHT = String.UTF8.encode("prefix_router.inflight");
