// The filter's shared-data layout, for tools that stand in for its control-plane
// poller (the fuzz harness, the routing benchmark's simulated gateways) or read
// what its worker VMs publish (tests). The filter's own code is
// assembly/state/gatewayBlob.ts (prefix_router.inflight) and
// assembly/state/stateDelivery.ts (prefix_router.state); all of it lives under
// vm_id `prefix_router`. Layouts are little-endian:
//
//   prefix_router.state     [u64 receivedAtNs][state payload, see STATE_FORMAT.md]
//   prefix_router.inflight  [u64 state version, 0: none][u64 ns the control plane last answered]
//                           [u64 replica-set hash][u32 rows]
//                           then rows of [u32 vm id][u32 heartbeat s][u16 in-flight count per replica]
//   prefix_router.home.XXXX [u64 prompt start][u32 replica address hash][u32 blocks]
//                           [u64 last block's chained hash][u32 vm id]  (XXXX: 4 hex digits, 2^16 buckets)
//   prefix_router.depth.XXXX [u64 chained hash][u32 replica address hash][u32 vm id]
//                           where worker VMs placed prompts (assembly/prefix/prefixHomes.ts); no tool reads them
//
// Every request reads prefix_router.inflight: its stamp tells a worker VM that a
// newer state was published (the state is written first, then the stamp raised).

/** The shared-data operations these helpers need (host/'s SharedDataStore has them). */
export interface SharedDataLike {
  get(vmId: string, key: string): { value: Uint8Array; cas: number } | null;
  set(vmId: string, key: string, value: Uint8Array, cas: number): number;
}

export const VM_ID = 'prefix_router';
export const KEY_STATE = 'prefix_router.state';
export const KEY_INFLIGHT = 'prefix_router.inflight';
/** Bytes before the rows of prefix_router.inflight. */
export const INFLIGHT_HEADER_BYTES = 28;
const STAMP_BYTES = 16;
/** set()'s result when the write happened (proxy-wasm WasmResult Ok). */
const OK = 0;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** The state stamp as the filter's worker VMs see it: version 0 when none was published. */
export function readStamp(store: SharedDataLike, vmId = VM_ID): { version: bigint; seenNs: bigint } {
  const v = store.get(vmId, KEY_INFLIGHT)?.value;
  if (!v || v.length < STAMP_BYTES) return { version: 0n, seenNs: 0n };
  return { version: view(v).getBigUint64(0, true), seenNs: view(v).getBigUint64(8, true) };
}

/**
 * Sets the stamp in prefix_router.inflight to (version, seenNs), keeping the
 * rows, by CAS as the filter does (a blob too short for a header is replaced
 * by an empty one). Returns false when the CAS kept losing.
 */
export function writeStamp(store: SharedDataLike, stamp: { version: bigint; seenNs: bigint }, vmId = VM_ID): boolean {
  for (let attempt = 0; attempt < 8; attempt++) {
    const cur = store.get(vmId, KEY_INFLIGHT);
    const old = cur && cur.value.length >= INFLIGHT_HEADER_BYTES ? cur.value : new Uint8Array(INFLIGHT_HEADER_BYTES);
    const next = old.slice();
    view(next).setBigUint64(0, stamp.version, true);
    view(next).setBigUint64(8, stamp.seenNs, true);
    if (store.set(vmId, KEY_INFLIGHT, next, cur?.cas ?? 0) === OK) return true;
  }
  return false;
}

/** Requests in flight across every worker VM's live row (rows of any age are counted). */
export function inflightTotal(store: SharedDataLike, vmId = VM_ID): number {
  const v = store.get(vmId, KEY_INFLIGHT)?.value;
  if (!v || v.length < INFLIGHT_HEADER_BYTES) return 0;
  const dv = view(v);
  const rows = dv.getUint32(24, true);
  if (rows === 0) return 0;
  const rowBytes = (v.length - INFLIGHT_HEADER_BYTES) / rows;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let o = 8; o < rowBytes; o += 2) total += dv.getUint16(INFLIGHT_HEADER_BYTES + r * rowBytes + o, true);
  }
  return total;
}
