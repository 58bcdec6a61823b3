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
//                           then rows of [u32 vm id][u32 heartbeat s][u32 requests routed] and, per replica,
//                           [u16 in flight][u16 decoding][u32 queued prefill tokens][u32 decode work]
//                           [u32 last request sent there: ms clock mod 2^32, 0 never]
//                           [u32 content written there, 64-token units]
//                           [u32 prefill tokens still ahead there as of the drain anchor]
//                           [u32 drain anchor: the last send or first token there, ms clock mod 2^32, 0 none]
//   prefix_router.ckpt.XXXX up to 4 entries of [u64 checkpoint hash][u32 replica address hash, low 32 bits]
//                           [u32 last touched, s: by the request that placed it, or one since that found it the
//                           deepest it held there]  (XXXX: 4 hex digits, the hash's top 16 bits; 2^16 buckets)
//                           which replica holds which prompt checkpoint (assembly/prefix/sharedCheckpoints.ts)
//   prefix_router.demand.XXXX up to 4 entries of [u64: the checkpoint hash's low 48 bits (XXXX is its top 16), then
//                           the stamp's low 16 bits at the prefix's first request, at most 4096 back][f32 requests
//                           that found it the deepest held, moving, as of the stamp][u32 stamp: the gateway's
//                           requests routed, the sum of the rows']
//                           how much of the gateway's traffic each prefix draws (assembly/prefix/prefixDemand.ts)
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

/** Bytes of a row of prefix_router.inflight before its replicas, and per replica. */
export const INFLIGHT_ROW_HEAD_BYTES = 12;
export const INFLIGHT_REPLICA_BYTES = 28;

/** What the gateway's worker VMs count, summed over replicas and every row (rows of any age are counted). */
export interface WorkTotals {
  /** Requests in flight. */
  inflight: number;
  /** Of those, requests whose response has started. */
  decoding: number;
  /** Prefill tokens of requests whose response has not started. */
  queued: number;
  /** Decode work of the decoding requests (prefill-token equivalents). */
  decodeWork: number;
}

export function workTotals(store: SharedDataLike, vmId = VM_ID): WorkTotals {
  const t: WorkTotals = { inflight: 0, decoding: 0, queued: 0, decodeWork: 0 };
  const v = store.get(vmId, KEY_INFLIGHT)?.value;
  if (!v || v.length < INFLIGHT_HEADER_BYTES) return t;
  const dv = view(v);
  const rows = dv.getUint32(24, true);
  if (rows === 0) return t;
  const rowBytes = (v.length - INFLIGHT_HEADER_BYTES) / rows;
  for (let r = 0; r < rows; r++) {
    const row = INFLIGHT_HEADER_BYTES + r * rowBytes;
    for (let o = row + INFLIGHT_ROW_HEAD_BYTES; o + INFLIGHT_REPLICA_BYTES <= row + rowBytes; o += INFLIGHT_REPLICA_BYTES) {
      t.inflight += dv.getUint16(o, true);
      t.decoding += dv.getUint16(o + 2, true);
      t.queued += dv.getUint32(o + 4, true);
      t.decodeWork += dv.getUint32(o + 8, true);
    }
  }
  return t;
}

/** Requests in flight across every worker VM's row (rows of any age are counted). */
export function inflightTotal(store: SharedDataLike, vmId = VM_ID): number {
  return workTotals(store, vmId).inflight;
}
