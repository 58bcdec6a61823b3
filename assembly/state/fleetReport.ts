// What this gateway tells the rest of the fleet with each long poll
// (plugin/STATE_FORMAT.md, "Gateway fleet"): its id, the cursor of the
// placements it has learned, its work per replica, and the placements its
// worker VMs made since the last report. The control plane decodes it in
// control-plane/fleetWire.ts.
//
// Only the VM holding the poll lease sends reports, but every VM places
// prompts: each VM moves its placements into the gateway's shared outbox on
// its tick (`share`), and the poller takes the whole outbox with its report
// (`build`). The id and the cursor live in shared data too, so they survive
// the lease moving to another VM.
import { HostBytes, WasmResult, getShared, randomU64, setShared, sharedCas } from "../abi/hostCalls";
import { ReplicaTable } from "./replicaTable";
import { fnv1a32 } from "./stateWire";

export const REPORT_CONTENT_TYPE = "application/vnd.prefix-router.fleet-report.v1";
const REPORT_MAGIC: u32 = 0x52465250;
const REPORT_FORMAT: u16 = 1;
const HEADER_BYTES: usize = 32;
const WORK_BYTES: usize = 16;
const PLACEMENT_BYTES: usize = 20;
/** Placements one report carries at most (the control plane's limit); more wait for the next report. */
export const MAX_REPORT_PLACEMENTS: i32 = 8192;
const MAX_REPORT_WORK: i32 = 4096;
/** [u64 gateway id][u64 placements seen]. */
const KEY_FLEET_ID = String.UTF8.encode("prefix_router.fleet.id");
/** [u32 count][count x (u64 checkpoint hash, u64 replica address hash, u32 depth)]: placements no report carried yet. */
const KEY_FLEET_OUTBOX = String.UTF8.encode("prefix_router.fleet.outbox");
const OUTBOX_HEADER: usize = 4;
/** Attempts of a CAS loop; contention is between a few worker threads. */
const CAS_ATTEMPTS = 8;

/** This VM's placements one tick or poll moves at most (the prefix locator's outbox holds as many). */
export const OWN_PLACEMENTS: i32 = 4096;

@final
export class FleetReport {
  /** This VM's new placements, for its caller to drain the prefix locator's outbox into before share() or build(). */
  readonly ownHashes: StaticArray<u64> = new StaticArray<u64>(OWN_PLACEMENTS);
  readonly ownReplicas: StaticArray<u64> = new StaticArray<u64>(OWN_PLACEMENTS);
  readonly ownDepths: StaticArray<u32> = new StaticArray<u32>(OWN_PLACEMENTS);
  private readonly hashes: StaticArray<u64> = new StaticArray<u64>(MAX_REPORT_PLACEMENTS);
  private readonly replicas: StaticArray<u64> = new StaticArray<u64>(MAX_REPORT_PLACEMENTS);
  private readonly depths: StaticArray<u32> = new StaticArray<u32>(MAX_REPORT_PLACEMENTS);
  private readonly bytes: HostBytes = new HostBytes();
  /** The encoded report of the last build(); valid until the next one. */
  ptr: usize = 0;
  len: usize = 0;
  /** Placements the last build() carried. */
  placements: i32 = 0;

  /**
   * Moves this VM's `n` new placements (own*) into the gateway's shared
   * outbox (every VM, each tick). What does not fit, or loses the CAS race
   * too often, is dropped: placements are hints, and the next request
   * completes them.
   */
  share(n: i32): void {
    if (n > OWN_PLACEMENTS) n = OWN_PLACEMENTS;
    if (n <= 0) return;
    const b = this.bytes;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const r = getShared(KEY_FLEET_OUTBOX, b);
      if (r != WasmResult.Ok && r != WasmResult.NotFound) { b.free(); return; }
      const cas = r == WasmResult.Ok ? sharedCas : 0;
      const have = r == WasmResult.Ok && b.len >= OUTBOX_HEADER ? outboxCount(b.ptr, b.len) : 0;
      const add = have + n > MAX_REPORT_PLACEMENTS ? MAX_REPORT_PLACEMENTS - have : n;
      const size = OUTBOX_HEADER + <usize>(have + add) * PLACEMENT_BYTES;
      const v = heap.alloc(size);
      store<u32>(v, <u32>(have + add));
      if (have > 0) memory.copy(v + OUTBOX_HEADER, b.ptr + OUTBOX_HEADER, <usize>have * PLACEMENT_BYTES);
      b.free();
      for (let i = 0; i < add; i++) {
        const q = v + OUTBOX_HEADER + <usize>(have + i) * PLACEMENT_BYTES;
        store<u64>(q, unchecked(this.ownHashes[i]));
        store<u64>(q, unchecked(this.ownReplicas[i]), 8);
        store<u32>(q, unchecked(this.ownDepths[i]), 16);
      }
      const ok = setShared(KEY_FLEET_OUTBOX, v, size, cas) == WasmResult.Ok;
      heap.free(v);
      if (ok || add == 0) return;
    }
  }

  /**
   * Encodes the report of the poll about to start: the shared outbox (taken,
   * and emptied) and then this VM's `own` new placements (own*), up to
   * MAX_REPORT_PLACEMENTS; the gateway's work per replica of `t` (queued
   * prefill tokens, decode work; null: none counted). Sets ptr/len.
   */
  build(t: ReplicaTable, own: i32, queued: StaticArray<f64> | null, decodeWork: StaticArray<f64> | null): void {
    const id = this.identity();
    const b = this.bytes;
    let taken = 0;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (getShared(KEY_FLEET_OUTBOX, b) != WasmResult.Ok) { b.free(); break; }
      const cas = sharedCas;
      const have = outboxCount(b.ptr, b.len);
      if (have == 0) { b.free(); break; }
      for (let i = 0; i < have; i++) {
        const q = b.ptr + OUTBOX_HEADER + <usize>i * PLACEMENT_BYTES;
        unchecked(this.hashes[i] = load<u64>(q));
        unchecked(this.replicas[i] = load<u64>(q, 8));
        unchecked(this.depths[i] = load<u32>(q, 16));
      }
      b.free();
      store<u32>(SCRATCH, 0);
      if (setShared(KEY_FLEET_OUTBOX, SCRATCH, OUTBOX_HEADER, cas) == WasmResult.Ok) { taken = have; break; }
    }
    if (own > OWN_PLACEMENTS) own = OWN_PLACEMENTS;
    if (own > MAX_REPORT_PLACEMENTS - taken) own = MAX_REPORT_PLACEMENTS - taken;
    for (let i = 0; i < own; i++) {
      unchecked(this.hashes[taken + i] = unchecked(this.ownHashes[i]));
      unchecked(this.replicas[taken + i] = unchecked(this.ownReplicas[i]));
      unchecked(this.depths[taken + i] = unchecked(this.ownDepths[i]));
    }
    const np = taken + (own > 0 ? own : 0);
    let nw = 0;
    if (queued !== null && decodeWork !== null) {
      for (let i = 0; i < t.n && i < MAX_REPORT_WORK; i++) if (unchecked(queued[i]) > 0 || unchecked(decodeWork[i]) > 0) nw++;
    }
    if (this.ptr != 0) heap.free(this.ptr);
    const size = HEADER_BYTES + <usize>nw * WORK_BYTES + <usize>np * PLACEMENT_BYTES + 4;
    const p = heap.alloc(size);
    store<u32>(p, REPORT_MAGIC);
    store<u16>(p, REPORT_FORMAT, 4);
    store<u16>(p, 0, 6);
    store<u64>(p, id, 8);
    store<u64>(p, this.placementsSeen, 16);
    store<u32>(p, <u32>nw, 24);
    store<u32>(p, <u32>np, 28);
    let o = p + HEADER_BYTES;
    if (nw > 0) {
      const q = queued!, d = decodeWork!;
      for (let i = 0, w = 0; i < t.n && w < nw; i++) {
        const qi = unchecked(q[i]), di = unchecked(d[i]);
        if (!(qi > 0 || di > 0)) continue;
        store<u64>(o, unchecked(t.addressHash[i]));
        store<u32>(o, clampU32(qi), 8);
        store<u32>(o, clampU32(di), 12);
        o += WORK_BYTES;
        w++;
      }
    }
    for (let i = 0; i < np; i++) {
      store<u64>(o, unchecked(this.hashes[i]));
      store<u64>(o, unchecked(this.replicas[i]), 8);
      store<u32>(o, unchecked(this.depths[i]), 16);
      o += PLACEMENT_BYTES;
    }
    store<u32>(o, fnv1a32(p, <i32>(o - p)));
    this.ptr = p;
    this.len = size;
    this.placements = np;
  }

  /** The cursor of the placements this gateway has learned (the last section 1's `through`). */
  get placementsSeen(): u64 {
    const b = this.bytes;
    let seen: u64 = 0;
    if (getShared(KEY_FLEET_ID, b) == WasmResult.Ok && b.len == 16) seen = load<u64>(b.ptr, 8);
    b.free();
    return seen;
  }

  /** Records the cursor of the placements just learned. */
  learned(through: u64): void {
    const id = this.identity();
    store<u64>(SCRATCH, id);
    store<u64>(SCRATCH, through, 8);
    setShared(KEY_FLEET_ID, SCRATCH, 16, 0);
  }

  /** This gateway's id: random, made by the first VM that asks and kept in shared data for all of them. */
  identity(): u64 {
    const b = this.bytes;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const r = getShared(KEY_FLEET_ID, b);
      if (r == WasmResult.Ok && b.len == 16 && load<u64>(b.ptr) != 0) {
        const id = load<u64>(b.ptr);
        b.free();
        return id;
      }
      const cas = r == WasmResult.Ok ? sharedCas : 0;
      b.free();
      let id = randomU64();
      // A host without randomness: the clock and the VM's memory layout still tell two gateways apart.
      if (id == 0) id = <u64>changetype<usize>(this) ^ 0x9e3779b97f4a7c15;
      store<u64>(SCRATCH, id);
      store<u64>(SCRATCH, 0, 8);
      if (setShared(KEY_FLEET_ID, SCRATCH, 16, cas) == WasmResult.Ok && cas != 0) return id;
      // Created without a CAS (the key was absent): read back what won.
    }
    return 1;
  }
}

const SCRATCH: usize = memory.data(16);

/** Records in an outbox value, bounded by its length. */
function outboxCount(p: usize, len: usize): i32 {
  if (len < OUTBOX_HEADER) return 0;
  const n = load<u32>(p);
  const fit = (len - OUTBOX_HEADER) / PLACEMENT_BYTES;
  let c = <u64>n < <u64>fit ? <i32>n : <i32>fit;
  return c > MAX_REPORT_PLACEMENTS ? MAX_REPORT_PLACEMENTS : c;
}

@inline function clampU32(v: f64): u32 {
  return v >= 4294967295.0 ? 0xffffffff : <u32>v;
}
